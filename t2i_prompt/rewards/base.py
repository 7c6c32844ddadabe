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


MAX_IMAGE_PIXELS = 64 * 1024 * 1024  # larger files are refused (decompression bombs), PIL's default is 89 M


def load_images(paths: Sequence[str | os.PathLike], what: str = "image", mode: str = "RGB") -> list[Image.Image]:
    """Open image files (as ``mode``); a missing file, a non-image or an image over ``MAX_IMAGE_PIXELS`` (a
    decompression bomb) raises a ValueError/FileNotFoundError naming the file."""
    import warnings

    images = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"{what} file not found: {path}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    if im.width * im.height > MAX_IMAGE_PIXELS:
                        raise ValueError(f"{what} {path} is {im.width}x{im.height} pixels, over the limit of "
                                         f"{MAX_IMAGE_PIXELS} (a decompression bomb?); resize it first.")
                    images.append(im.convert(mode))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ValueError(f"{what} {path} is too large to decode safely ({e}); resize it first.") from e
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise ValueError(f"{what} {path} is not a readable image file ({e.__class__.__name__}); pass a PNG/JPEG "
                             "file.") from e
    return images
