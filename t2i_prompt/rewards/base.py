"""The reward protocol shared by every scorer, plus input checks and image loading.

A reward maps ``(prompts, images)`` pairs to one number each, batched: ``score(prompts, images) -> (N,)``.
``value_range`` is the theoretical range (``(-inf, inf)`` when unbounded) and ``higher_is_better`` says
which way is good, so callers (ranking, DPO pair building, reports) never guess.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import torch
from PIL import Image, UnidentifiedImageError

UNBOUNDED = (-math.inf, math.inf)


@runtime_checkable
class Reward(Protocol):
    """``score(prompts, images) -> torch.Tensor`` of shape ``(N,)``, float32, on CPU."""

    name: str
    value_range: tuple[float, float]
    higher_is_better: bool

    def score(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> torch.Tensor: ...


def check_pairs(prompts: Sequence[str], images: Sequence[Image.Image]) -> None:
    """Raise a ``ValueError`` unless there is exactly one prompt per image and every prompt is non-empty."""
    if isinstance(prompts, str):
        raise ValueError("prompts must be a list of strings, got a single string; wrap it in a list.")
    if len(prompts) != len(images):
        raise ValueError(
            f"got {len(prompts)} prompt(s) for {len(images)} image(s); pass one prompt per image "
            "(repeat the prompt to score several images of it)."
        )
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompt {i} is empty or not a string ({p!r}); every image needs a non-empty prompt.")
    for i, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise ValueError(f"image {i} is a {type(im).__name__}, expected a PIL.Image.Image.")


def load_images(paths: Sequence[str | os.PathLike]) -> list[Image.Image]:
    """Open image files as RGB; a missing file or a file that is not an image raises an error naming it."""
    images = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        try:
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"{path} is not a readable image file ({e.__class__.__name__}); pass PNG/JPEG files.") from e
    return images
