"""Style-placement prompts (LPA benchmark): captions parse back to their scene; per-object style scores."""

import pytest

from t2i_prompt.shapes.detector import DetectedObject
from t2i_prompt.shapes.grammar import ObjectSpec, Scene, parse_prompt
from t2i_prompt.shapes.style_placement import (
    PLACEMENTS,
    placed_caption,
    placement_scenes,
    placement_scores,
)

SCENE = Scene((ObjectSpec("red", "circle"), ObjectSpec("blue", "square")), "left", "outlined", "relation")


def test_captions_per_placement_parse_back_to_the_scene():
    assert placed_caption(SCENE, "after_first") == "a red circle in outline style to the left of a blue square"
    assert placed_caption(SCENE, "start") == "in outline style, a red circle to the left of a blue square"
    scenes = placement_scenes(12, seed=3)
    assert scenes == placement_scenes(12, seed=3) and all(s.objects[0].color != s.objects[1].color for s in scenes)
    for scene in scenes:
        for placement in PLACEMENTS:
            assert parse_prompt(placed_caption(scene, placement)) == scene
    with pytest.raises(ValueError, match="outlined relation scene"):
        placed_caption(Scene((ObjectSpec("red", "circle"),)), "end")


def test_placement_scores_on_hand_made_detections():
    red = DetectedObject("red", "circle", "outlined", 8.0, 16.0, 40)
    blue_filled = DetectedObject("blue", "square", "filled", 24.0, 16.0, 120)
    speck = DetectedObject("blue", "square", "outlined", 24.0, 4.0, 9)  # smaller: the larger blue one counts
    scores = placement_scores(SCENE, [red, blue_filled, speck])
    assert scores == {"first_style": True, "second_style": False, "consistent": False, "content": False,
                      "all_correct": False}  # content: three objects detected for two
    blue = DetectedObject("blue", "square", "outlined", 24.0, 16.0, 60)
    assert placement_scores(SCENE, [red, blue]) == {"first_style": True, "second_style": True, "consistent": True,
                                                    "content": True, "all_correct": True}
    assert placement_scores(SCENE, [red])["consistent"] is False  # the second object is missing
