"""CompBench scoring rules against hand-computed values (boxes in the 480-px frame)."""

from __future__ import annotations

import numpy as np
import pytest

from t2i_prompt.evaluate import rules
from t2i_prompt.evaluate.rules import Detection


def det(box, score=1.0, label="x"):
    return Detection(label, box, score)


# ------------------------------------------------------------------------------------------- B-VQA
def test_bvqa_answer_and_product():
    assert rules.answer_probability(0.6, 0.2) == pytest.approx(0.75)
    assert rules.bvqa_score([0.75, 0.5]) == pytest.approx(0.375)
    assert rules.bvqa_score([]) == 1.0  # no chunk asked: missing chunks count 1


# ------------------------------------------------------------------------------------------- 2D spatial
def test_spatial_2d_both_found_separated():
    # dx = 200 > 0, dy = 0, no overlap -> pos 1; 0.25*0.9 + 0.25*0.8 + 0.5 = 0.925
    a, b = det((0, 0, 100, 100), 0.9), det((200, 0, 300, 100), 0.8)
    assert rules.spatial_2d_score(a, b, "on the left of") == pytest.approx(0.925)


def test_spatial_2d_overlap():
    # IoU = 5000 / 15000 = 1/3 -> pos = 0.1 / (1/3) = 0.3 -> 0.25 + 0.25 + 0.15
    a, b = det((0, 0, 100, 100)), det((50, 0, 150, 100))
    assert rules.spatial_2d_score(a, b, "on the left of") == pytest.approx(0.65)


def test_spatial_2d_wrong_direction_one_found_none():
    a, b = det((0, 0, 100, 100), 0.9), det((200, 0, 300, 100), 0.8)
    assert rules.spatial_2d_score(a, b, "on the right of") == 0.0  # 0.425 before the < 0.5 cut
    assert rules.pair_score(a, None, None) == pytest.approx(0.225)
    assert rules.spatial_2d_score(a, None, "on the left of") == 0.0  # one object can never pass
    assert rules.spatial_2d_score(None, None, "on the left of") == 0.0


def test_spatial_2d_vertical_and_unhandled_on_top_of():
    above, below = det((0, 0, 10, 10)), det((0, 100, 10, 110))
    assert rules.spatial_2d_score(above, below, "on the top of") == pytest.approx(1.0)
    assert rules.spatial_2d_score(below, above, "on the bottom of") == pytest.approx(1.0)
    assert rules.spatial_2d_score(above, below, "on the bottom of") == pytest.approx(0.5)  # pos 0: 0.5 is not < 0.5
    assert rules.spatial_2d_position(above.box, below.box, "on top of") == 0.0


def test_spatial_2d_near_150px_rule():
    a = det((0, 0, 10, 10))
    far = det((400, 300, 410, 310))  # |dx| = 400, |dy| = 300 -> 150 / 400
    assert rules.spatial_2d_position(a.box, far.box, "next to") == pytest.approx(0.375)
    assert rules.spatial_2d_score(a, far, "near") == pytest.approx(0.5 + 0.5 * 0.375)
    level = det((400, 100, 410, 110))  # |dy| = 100 < 150
    assert rules.spatial_2d_position(a.box, level.box, "on side of") == 1.0


def test_frame_scale():
    assert rules.official_frame_scale(512, 512) == pytest.approx(479 / 512)
    assert rules.official_frame_scale(640, 480) == pytest.approx(0.75)  # long side capped at 480
    assert rules.official_frame_scale(32, 32) == pytest.approx(479 / 32)


# ------------------------------------------------------------------------------------------- 3D
def test_spatial_3d_depth_and_iou():
    depth = np.full((10, 10), 0.2)
    depth[:5] = 0.8  # rows 0-4; the official crop indexes rows with x
    a, b = det((0, 0, 5, 10)), det((3, 0, 10, 10))
    assert rules.mean_box_depth(depth, a.box) == pytest.approx(0.8)
    assert rules.mean_box_depth(depth, b.box) == pytest.approx((2 * 0.8 + 5 * 0.2) / 7)
    # IoU = 20 / 100 = 0.2 -> pos = 0.2 / 0.5 = 0.4, no cut: 0.25 + 0.25 + 0.2
    assert rules.spatial_3d_score(a, b, depth, "in front of") == pytest.approx(0.7)
    assert rules.spatial_3d_score(a, b, depth, "behind") == pytest.approx(0.5)  # wrong order
    assert rules.spatial_3d_score(b, a, depth, "hidden") == pytest.approx(0.7)
    apart = det((6, 0, 10, 10))
    assert rules.spatial_3d_position(a.box, apart.box, 0.8, 0.2, "in front of") == 0.0  # no overlap
    assert rules.spatial_3d_position(a.box, a.box, 0.8, 0.2, "in front of") == 1.0  # IoU 1 > 0.5
    assert rules.spatial_3d_score(a, None, depth, "behind") == pytest.approx(0.25)


# ------------------------------------------------------------------------------------------- numeracy
def test_numeracy_dedup_and_counts():
    dets = [det((0, 0, 10, 10), 0.9, "dog"), det((0, 0, 10, 9.5), 0.8, "dog"),  # IoU 0.95: one dog
            det((50, 50, 60, 60), 0.7, "dog"), det((80, 80, 90, 90), 0.4, "cat")]  # the cat is under 0.5
    assert len(rules.deduplicate(dets)) == 3
    assert rules.numeracy_score([("dog", 2), ("cat", 1)], dets) == pytest.approx((1.0 + 0.0) / 2)
    assert rules.numeracy_score([("dog", 3)], dets) == pytest.approx(0.5)  # detected, wrong count
    inside = [det((0, 0, 10, 10), 0.9, "dog"), det((2, 2, 8, 8), 0.8, "dog")]  # IoU 0.36, contained 100 %
    assert len(rules.deduplicate(inside)) == 1
    other_class = [det((0, 0, 10, 10), 0.9, "dog"), det((0, 0, 10, 10), 0.8, "cat")]
    assert len(rules.deduplicate(other_class)) == 2


# ------------------------------------------------------------------------------------------- 3-in-1
@pytest.mark.parametrize("kind, expected", [("spatial", 0.5), ("action", 0.65), ("spatialaction", 1.9 / 3)])
def test_three_in_one(kind, expected):
    assert rules.three_in_one(kind, bvqa=0.4, spatial=0.6, clip=0.9) == pytest.approx(expected)
