"""Is the image of a REWRITE faithful to the ORIGINAL prompt? The two shapes-world checks a rewriter evaluation needs.

A reward can be hacked by a rewriter that changes what is asked for (the shapes quality predictor prefers one big
centred filled object, so dropping the second object of "a red circle left of a blue square" raises it). Both checks
therefore look at the *original* prompt, never at the rewrite's own scene:

* ``correct_against_original``: the exact detector's all-correct of the image against ``parse_prompt(original)``.
* ``drops_objects`` (re-exported from ``evaluate``): the rewrite names fewer objects than the original mentions.
"""

from __future__ import annotations

from .detector import score_image
from .evaluate import drops_objects
from .grammar import PromptParseError, parse_prompt

__all__ = ["correct_against_original", "drops_objects"]


def correct_against_original(original: str, image) -> bool | None:
    """Detector all-correct of ``image`` (rendered from a rewrite of ``original``) against the original's scene;
    ``None`` when the grammar cannot parse ``original`` (such prompts are left out of the accuracy, not counted
    wrong)."""
    try:
        scene = parse_prompt(original)
    except PromptParseError:
        return None
    return bool(score_image(scene, image).all_correct)
