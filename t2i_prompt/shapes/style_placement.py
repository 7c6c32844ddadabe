"""Style-placement prompts for LPA: the global style phrase moved next to one object, and per-object style scores.

The shapes world's style is global (every object is outlined or filled), and the canonical caption puts
"in outline style" at the end. LPA (Sanjyal, arXiv 2507.20094) claims style consistency across objects when the
style words are routed apart from the content words; this set puts the phrase where it reads as belonging to the
first object only, so a model that binds style locally outlines one object and fills the other.
"""

from __future__ import annotations

import random

from .detector import DetectedObject, score_scene
from .grammar import OUTLINE_SUFFIX, RELATION_PHRASES, Scene, all_objects

PLACEMENTS = ("end", "after_first", "start")


def placed_caption(scene: Scene, placement: str) -> str:
    """The canonical relation caption of an outlined ``scene`` with "in outline style" at ``placement``:
    ``end`` (the canonical caption), ``after_first`` (right after the first object) or ``start``."""
    if scene.kind != "relation" or scene.style != "outlined":
        raise ValueError(f"style placement needs an outlined relation scene, got {scene}.")
    a, b = scene.objects
    first, rest = f"a {a.words()}", f"{RELATION_PHRASES[scene.relation]} a {b.words()}"
    if placement == "end":
        return f"{first} {rest} {OUTLINE_SUFFIX}"
    if placement == "after_first":
        return f"{first} {OUTLINE_SUFFIX} {rest}"
    if placement == "start":
        return f"{OUTLINE_SUFFIX}, {first} {rest}"
    raise ValueError(f"unknown placement {placement!r}; choose one of {PLACEMENTS}.")


def placement_scenes(n: int, seed: int) -> list[Scene]:
    """A fixed seeded list of ``n`` outlined relation scenes whose two objects have different colours (so each
    object's style is read off its own colour)."""
    rng = random.Random(seed)
    objects, scenes = all_objects(), []
    while len(scenes) < n:
        a, b = rng.sample(objects, 2)
        if a.color != b.color:
            scenes.append(Scene((a, b), rng.choice(tuple(RELATION_PHRASES)), "outlined", "relation"))
    return scenes


def object_styles(scene: Scene, detected: list[DetectedObject]) -> list[str | None]:
    """The detected style of each scene object: that of the largest detection of the object's colour (None when
    its colour is missing). Colours must differ between the scene's objects."""
    out = []
    for obj in scene.objects:
        same = [d for d in detected if d.color == obj.color]
        out.append(max(same, key=lambda d: d.area).style if same else None)
    return out


def placement_scores(scene: Scene, detected: list[DetectedObject]) -> dict:
    """Per image: style of the first and second object right, both objects sharing one style (consistency),
    content right (colour, shape, relation, count; style ignored) and the detector's all-correct."""
    styles = object_styles(scene, detected)
    score = score_scene(scene, detected)
    content = score.count and score.color == 1.0 and score.shape == 1.0 and score.relation == 1.0
    return {
        "first_style": styles[0] == scene.style,
        "second_style": styles[1] == scene.style,
        "consistent": None not in styles and styles[0] == styles[1],
        "content": bool(content),
        "all_correct": bool(score.all_correct),
    }
