"""The shapes world as a CompBench evaluator: its exact detector as VQA and detector, its CLIP as CLIPScore.

VQA: ``"a red circle?"`` is answered with p_yes 1 when an object of that colour and shape is in the image, else 0
(a chunk without a colour asks for the shape only; one without a shape noun is 0). Detection: every object matching the
queried noun (circle / square / triangle, plurals too, optionally with a colour: the shapes prompt set's numeracy
nouns are "red circle" ...) with confidence 1, its pixel box scaled to the official 480-px frame. There is no depth model, so 3d_spatial needs the transformers backend.
"""

from __future__ import annotations

import re

from PIL import Image

from ..cache import cache_key, fingerprint
from ..shapes.grammar import COLORS, SHAPES
from ..shapes.render import IMAGE_SIZE
from .rules import Detection, official_frame_scale

_SHAPE_NOUNS = {s: s for s in SHAPES} | {f"{s}s": s for s in SHAPES}
DETECTOR_VERSION = "shapes-detector-1"


def _world_image(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    return image if image.size == (IMAGE_SIZE, IMAGE_SIZE) else image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.NEAREST)


def _objects(image: Image.Image):
    from ..shapes.detector import detect_boxes

    return detect_boxes(_world_image(image))


def question_object(question: str) -> tuple[str | None, str | None]:
    """(colour or None, shape or None) asked by a B-VQA question such as ``"a red circle?"``."""
    words = re.findall(r"[a-z]+", question.lower())
    color = next((w for w in words if w in COLORS), None)
    shape = next((_SHAPE_NOUNS[w] for w in words if w in _SHAPE_NOUNS), None)
    return color, shape


class ShapesBackend:
    name = "shapes"

    def __init__(self, clip: str = "shapes:clip", device=None):
        self.clip_name, self.device = clip, device
        self._clip = None

    def models(self) -> dict:
        return {"vqa": DETECTOR_VERSION, "detector": DETECTOR_VERSION, "clip": self.clip_name}

    def tier(self) -> str:
        return f"official-rules, shapes-world models (exact detector, {self.clip_name})"

    def fingerprint(self, part: str) -> str:
        if part == "clip":
            from ..models.loading import resolve_model_path

            return fingerprint(resolve_model_path(self.clip_name))
        if part == "depth":
            self.depth([])
        return cache_key(DETECTOR_VERSION, IMAGE_SIZE)

    def vqa(self, images, questions: list[list[str]]) -> list[list[float]]:
        out = []
        for image, asked in zip(images, questions):
            objects = _objects(image)
            answers = []
            for q in asked:
                color, shape = question_object(q)
                hit = shape is not None and any(s == shape and (color is None or c == color) for c, s, _ in objects)
                answers.append(1.0 if hit else 0.0)
            out.append(answers)
        return out

    def detect(self, images, labels: list[list[str]]) -> list[list[Detection]]:
        out = []
        for image, wanted in zip(images, labels):
            scale = official_frame_scale(IMAGE_SIZE, IMAGE_SIZE)  # world pixels -> the 479-px frame
            asked = [(label, *question_object(label)) for label in wanted]
            found = []
            for color, shape, box in _objects(image):
                for label, want_color, want_shape in asked:
                    if want_shape == shape and want_color in (None, color):
                        found.append(Detection(label, tuple(v * scale for v in box), 1.0))
            out.append(found)
        return out

    def depth(self, images):
        raise ValueError("the shapes backend has no depth model; score 3d_spatial with --backend transformers.")

    def clip(self, images, texts) -> list[float]:
        from ..rewards.clip_model import CLIPEmbedder

        if self._clip is None:
            self._clip = CLIPEmbedder.from_pretrained(self.clip_name, device=self.device, cache_size=0)
        return [float(v) for v in self._clip.cosine(list(texts), [im.convert("RGB") for im in images])]
