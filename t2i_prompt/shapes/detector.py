"""Exact detector for the shapes world: objects out of an image, and a prompt's spec scored against them.

Pixels are snapped to the nearest palette colour (or background); each colour's 8-connected components
above ``MIN_AREA`` pixels are objects. Style: the fraction of the hole-filled component that is ink
(outlines leave the inside white). Shape: the hole-filled component's fill ratio of its bounding box
(square ~1, circle ~pi/4, triangle ~1/2). Position: the centroid.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from .grammar import Scene
from .render import PALETTE

MIN_AREA = 8  # pixels; smaller specks are noise
MAX_COLOR_DISTANCE = 120.0  # RGB distance beyond which a pixel counts as background
RELATION_MARGIN = 3.0  # pixels the centroids must differ by on the relation's axis
_STRUCT8 = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class DetectedObject:
    color: str
    shape: str
    style: str
    x: float  # centroid, pixels
    y: float
    area: int

    def to_dict(self) -> dict:
        return asdict(self)


def _classify_shape(filled: np.ndarray) -> str:
    ys, xs = np.nonzero(filled)
    h = ys.max() - ys.min() + 1
    w = xs.max() - xs.min() + 1
    fill = filled.sum() / float(h * w)
    if fill > 0.88:
        return "square"
    if fill > 0.64:
        return "circle"
    return "triangle"


def _components(image):
    """(colour name, component mask, hole-filled mask) of every palette-coloured object in an RGB image."""
    img = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.float32)
    names = list(PALETTE)
    colors = np.array([PALETTE[n] for n in names] + [(255, 255, 255)], dtype=np.float32)
    dist = np.linalg.norm(img[:, :, None, :] - colors[None, None], axis=-1)  # (H, W, 5)
    label = dist.argmin(-1)
    label[dist.min(-1) > MAX_COLOR_DISTANCE] = len(names)  # far from everything -> background
    for ci, name in enumerate(names):
        comps, n = ndimage.label(label == ci, structure=_STRUCT8)
        for k in range(1, n + 1):
            comp = comps == k
            if int(comp.sum()) >= MIN_AREA:
                yield name, comp, ndimage.binary_fill_holes(comp)


def detect_objects(image) -> list[DetectedObject]:
    """Objects in an RGB image (PIL or (H, W, 3) array), sorted left-to-right then top-to-bottom."""
    objects = []
    for name, comp, filled in _components(image):
        area = int(comp.sum())
        style = "outlined" if area / filled.sum() < 0.88 else "filled"
        cy, cx = ndimage.center_of_mass(filled)
        objects.append(DetectedObject(name, _classify_shape(filled), style, float(cx), float(cy), area))
    return sorted(objects, key=lambda o: (round(o.x / 4), o.y))


def detect_boxes(image) -> list[tuple[str, str, tuple[int, int, int, int]]]:
    """(colour, shape, pixel box x0, y0, x1, y1 with exclusive ends) of every object, in ``detect_objects`` order."""
    found = []
    for name, _, filled in _components(image):
        ys, xs = np.nonzero(filled)
        cy, cx = ndimage.center_of_mass(filled)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        found.append(((round(cx / 4), cy), (name, _classify_shape(filled), box)))
    return [item for _, item in sorted(found, key=lambda f: f[0])]


def relation_holds(a: DetectedObject, b: DetectedObject, relation: str) -> bool:
    """Does "a <relation> b" hold geometrically (dominant axis, with a margin)?"""
    dx, dy = a.x - b.x, a.y - b.y
    if relation in ("left", "right"):
        sign = -1 if relation == "left" else 1
        return sign * dx > RELATION_MARGIN and abs(dx) > abs(dy)
    sign = -1 if relation == "above" else 1
    return sign * dy > RELATION_MARGIN and abs(dy) > abs(dx)


@dataclass
class SceneScore:
    """Per-category correctness of one image against one scene spec."""

    color: float  # fraction of spec objects whose matched detection has the right colour
    shape: float
    relation: float | None  # None when the scene has no relation
    count: bool  # exact number of objects
    style: bool  # every detected object has the spec's style (and at least one was found)
    all_correct: bool
    detected: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)


def score_scene(scene: Scene, detected: list[DetectedObject]) -> SceneScore:
    """Match detections to the spec (best assignment over permutations) and score every category."""
    spec = list(scene.objects)
    n = len(spec)
    best, best_key = None, (-1, -1)
    padded = detected + [None] * max(0, n - len(detected))
    for perm in itertools.permutations(range(len(padded)), n):
        assigned = [padded[i] for i in perm]
        cm = sum(d is not None and d.color == o.color for d, o in zip(assigned, spec))
        sm = sum(d is not None and d.shape == o.shape for d, o in zip(assigned, spec))
        rel = 0
        if scene.relation is not None and all(d is not None for d in assigned):
            rel = int(relation_holds(assigned[0], assigned[1], scene.relation))
        key = (cm + sm + rel, rel)
        if key > best_key:
            best, best_key = assigned, key
    color = sum(d is not None and d.color == o.color for d, o in zip(best, spec)) / n
    shape = sum(d is not None and d.shape == o.shape for d, o in zip(best, spec)) / n
    relation = None
    if scene.relation is not None:
        relation = float(all(d is not None for d in best) and relation_holds(best[0], best[1], scene.relation))
    count = len(detected) == n
    style = bool(detected) and all(d.style == scene.style for d in detected)
    all_correct = count and style and color == 1.0 and shape == 1.0 and relation in (None, 1.0)
    return SceneScore(color, shape, relation, count, style, all_correct, [d.to_dict() for d in detected])


def score_image(scene: Scene, image) -> SceneScore:
    return score_scene(scene, detect_objects(image))
