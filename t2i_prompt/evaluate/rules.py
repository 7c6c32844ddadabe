"""T2I-CompBench(++) scoring rules as pure functions: numbers in, a per-image score out.

Each rule follows the official scripts (Karine-Huang/T2I-CompBench @ 1b70949; read, not copied; summarised in
``docs`` of the shared notes ``compbench-protocol.md`` §2): B-VQA's product over noun chunks
(``BLIPvqa_eval/BLIP_vqa.py``), the UniDet 2D rule (``UniDet_eval/2D_spatial_eval.py``), the 3D depth/IoU rule
(``UniDet_eval/3D_spatial_eval.py``), numeracy (``UniDet_eval/numeracy_eval.py``) and 3-in-1
(``3_in_1_eval/3_in_1.py``). Boxes are ``(x0, y0, x1, y1)`` pixels in the official detection frame
(:func:`official_frame_scale`); the backends (``backends.py``) produce them, these functions only do arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

RULES_VERSION = 1  # part of every score's cache key: bump when a rule changes

# The official detector input: detectron2 ResizeShortestEdge(479, max_size=480) in UniDet_eval.
FRAME_SHORT, FRAME_LONG = 479, 480
DETECTION_THRESHOLD = 0.5  # UniDet score threshold of the official scripts
SPATIAL_CUTOFF = 0.5  # 2D: a final score below this is set to 0
NEAR_PIXELS = 150.0  # 2D "next to / near / on side of": centre distance under which pos = 1
OVERLAP_IOU = 0.1  # 2D left/right/top/bottom: boxes overlapping less than this count as separated
DEPTH_IOU = 0.5  # 3D: IoU at which a correctly ordered pair gets pos = 1
DEDUP_OVERLAP = 0.9  # numeracy: same-class boxes with IoU or containment above this are one object

# First match wins, in this order (2D_spatial_eval.py).
SPATIAL_RELATIONS = ("on side of", "next to", "near", "on the left of", "on the right of", "on the bottom of",
                     "on the top of", "on top of")
NEAR_RELATIONS = ("on side of", "next to", "near")
DEPTH_RELATIONS = ("in front of", "behind", "hidden")


@dataclass(frozen=True)
class Detection:
    """One detected object: its class name (the queried noun), box in the official frame, confidence."""

    label: str
    box: tuple[float, float, float, float]
    score: float

    def to_dict(self) -> dict:
        return {"label": self.label, "box": [round(float(v), 4) for v in self.box], "score": round(float(self.score), 6)}


def official_frame_scale(width: int, height: int) -> float:
    """Factor from image pixels to the detection frame: short side 479, long side at most 480."""
    return min(FRAME_SHORT / min(width, height), FRAME_LONG / max(width, height))


# ------------------------------------------------------------------------------------------- B-VQA
def answer_probability(p_yes: float, p_no: float) -> float:
    """``p_yes / (p_yes + p_no)`` over the first decoder token (BLIP ``vqa_prob``)."""
    total = p_yes + p_no
    return float(p_yes / total) if total > 0 else 0.0


def bvqa_score(chunk_probabilities: Sequence[float]) -> float:
    """Image score = product of the per-chunk yes-probabilities (no chunk asked: 1, as missing chunks count 1)."""
    return float(np.prod(np.asarray(chunk_probabilities, dtype=np.float64))) if len(chunk_probabilities) else 1.0


# ------------------------------------------------------------------------------------------- boxes
def box_area(box) -> float:
    x0, y0, x1, y1 = box
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def box_intersection(a, b) -> float:
    return box_area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def box_iou(a, b) -> float:
    inter = box_intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0


def best_detection(detections: Sequence[Detection], label: str,
                   threshold: float = DETECTION_THRESHOLD) -> Detection | None:
    """The most confident detection of ``label`` at or above ``threshold`` (the first one on ties), or None."""
    found = [d for d in detections if d.label == label and d.score >= threshold]
    return max(found, key=lambda d: d.score) if found else None


# ------------------------------------------------------------------------------------------- 2D spatial
def spatial_2d_position(box1, box2, relation: str) -> float:
    """``pos`` of "obj1 <relation> obj2": distance = obj2 centre - obj1 centre (image y grows downwards)."""
    (x1, y1), (x2, y2) = box_centre(box1), box_centre(box2)
    dx, dy = x2 - x1, y2 - y1
    if relation in NEAR_RELATIONS:
        if abs(dx) < NEAR_PIXELS or abs(dy) < NEAR_PIXELS:
            return 1.0
        return NEAR_PIXELS / max(abs(dx), abs(dy))
    directions = {  # obj1 is left of / right of / below / above obj2
        "on the left of": dx > 0 and abs(dx) > abs(dy),
        "on the right of": dx < 0 and abs(dx) > abs(dy),
        "on the bottom of": dy < 0 and abs(dy) > abs(dx),
        "on the top of": dy > 0 and abs(dy) > abs(dx),
    }
    if not directions.get(relation, False):  # wrong direction, or "on top of" (not handled officially)
        return 0.0
    iou = box_iou(box1, box2)
    return 1.0 if iou < OVERLAP_IOU else OVERLAP_IOU / iou


def pair_score(det1: Detection | None, det2: Detection | None, pos: float | None) -> float:
    """``0.25 conf1 + 0.25 conf2 + 0.5 pos`` with both objects, ``0.25 conf`` with one, 0 with none."""
    if det1 is not None and det2 is not None:
        return 0.25 * det1.score + 0.25 * det2.score + 0.5 * float(pos)
    found = det1 or det2
    return 0.25 * found.score if found is not None else 0.0


def spatial_2d_score(det1: Detection | None, det2: Detection | None, relation: str) -> float:
    """UniDet 2D per-image score, then the official cut: anything below 0.5 becomes 0."""
    pos = spatial_2d_position(det1.box, det2.box, relation) if det1 is not None and det2 is not None else None
    score = pair_score(det1, det2, pos)
    return 0.0 if score < SPATIAL_CUTOFF else score


# ------------------------------------------------------------------------------------------- 3D spatial
def mean_box_depth(depth: np.ndarray, box) -> float:
    """Mean depth inside a box, indexed ``depth[x0:x1, y0:y1]`` exactly as 3D_spatial_eval.py does (the crop is
    transposed relative to the image; kept for comparable numbers)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    crop = np.asarray(depth)[x0:x1, y0:y1]
    return float(crop.mean()) if crop.size else 0.0


def spatial_3d_position(box1, box2, depth1: float, depth2: float, relation: str) -> float:
    """``pos`` of "obj1 <relation> obj2" from mean MiDaS depths (inverse depth: larger = closer) and box IoU."""
    if relation not in DEPTH_RELATIONS:
        raise ValueError(f"3D relation {relation!r} is not one of {DEPTH_RELATIONS}")
    correct = depth1 > depth2 if relation == "in front of" else depth1 < depth2
    iou = box_iou(box1, box2)
    if not correct or iou <= 0:
        return 0.0
    return 1.0 if iou > DEPTH_IOU else iou / DEPTH_IOU


def spatial_3d_score(det1: Detection | None, det2: Detection | None, depth: np.ndarray | None,
                     relation: str) -> float:
    """3D per-image score: the 2D combination without the < 0.5 cut."""
    pos = None
    if det1 is not None and det2 is not None:
        pos = spatial_3d_position(det1.box, det2.box, mean_box_depth(depth, det1.box),
                                  mean_box_depth(depth, det2.box), relation)
    return pair_score(det1, det2, pos)


# ------------------------------------------------------------------------------------------- numeracy
def deduplicate(detections: Sequence[Detection]) -> list[Detection]:
    """Drop a detection when a more confident one of the same class overlaps it (IoU or containment > 0.9)."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        duplicate = False
        for k in kept:
            if k.label != d.label:
                continue
            inter = box_intersection(k.box, d.box)
            smaller = min(box_area(k.box), box_area(d.box))
            if box_iou(k.box, d.box) > DEDUP_OVERLAP or (smaller > 0 and inter / smaller > DEDUP_OVERLAP):
                duplicate = True
                break
        if not duplicate:
            kept.append(d)
    return kept


def numeracy_score(targets: Sequence[tuple[str, int]], detections: Sequence[Detection],
                   threshold: float = DETECTION_THRESHOLD) -> float:
    """Mean over the counted objects of 0.5 (class detected) + 0.5 (detected count == stated count)."""
    if not targets:
        return 0.0
    kept = deduplicate([d for d in detections if d.score >= threshold])
    total = 0.0
    for label, count in targets:
        n = sum(d.label == label for d in kept)
        total += (0.5 if n > 0 else 0.0) + (0.5 if n == count else 0.0)
    return total / len(targets)


# ------------------------------------------------------------------------------------------- 3-in-1
COMPLEX_KINDS = ("spatial", "action", "spatialaction")


def three_in_one(kind: str, bvqa: float, spatial: float, clip: float) -> float:
    """Complex: spatial prompts (B-VQA + 2D)/2, action prompts (B-VQA + CLIP)/2, the rest the mean of all three."""
    if kind == "spatial":
        return (spatial + bvqa) / 2.0
    if kind == "action":
        return (clip + bvqa) / 2.0
    return (bvqa + spatial + clip) / 3.0
