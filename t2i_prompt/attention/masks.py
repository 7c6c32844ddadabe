"""Region geometry: regions with their own prompt (box or mask), box checks, label maps at any resolution, dilation.

Overlaps: a position belongs to the **last** region that covers it (RAG issue #11: later boxes overwrite earlier ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

__all__ = ["Region", "check_box", "label_map", "labels_at", "dilate_mask", "snapped_box"]


def check_box(box) -> tuple[float, float, float, float]:
    """Validate a box ``(x0, y0, x1, y1)`` given as fractions of the image width/height."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError) as e:
        raise ValueError(f"A box must be four numbers x0,y0,x1,y1 (fractions of the image), got {box!r}.") from e
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):
        raise ValueError(f"Box {box!r} is outside [0, 1]; give x0,y0,x1,y1 as fractions of the image size.")
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"Box {box!r} is empty or inverted; need x0 < x1 and y0 < y1.")
    return x0, y0, x1, y1


@dataclass
class Region:
    """A region of the image with its own prompt: a ``box`` (x0, y0, x1, y1 fractions) or a ``mask`` (H, W)."""

    prompt: str
    box: tuple[float, float, float, float] | None = None
    mask: Any = None  # array/tensor (H, W), > 0.5 inside; image or latent size
    negative_prompt: str | None = None

    def __post_init__(self):
        if (self.box is None) == (self.mask is None):
            raise ValueError(f"Region {self.prompt!r}: give exactly one of box or mask.")
        if self.box is not None:
            self.box = check_box(self.box)
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise ValueError("Every region needs a non-empty prompt.")

    def mask_at(self, height: int, width: int, image_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Bool (height, width) mask; a mask must be (height, width) or ``image_size`` (then area-resized)."""
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            r0, r1 = int(round(y0 * height)), max(int(round(y1 * height)), int(round(y0 * height)) + 1)
            c0, c1 = int(round(x0 * width)), max(int(round(x1 * width)), int(round(x0 * width)) + 1)
            mask = torch.zeros(height, width, dtype=torch.bool)
            mask[r0:min(r1, height), c0:min(c1, width)] = True
            return mask
        m = torch.as_tensor(self.mask, dtype=torch.float32)
        if m.ndim == 3 and m.shape[0] == 1:
            m = m[0]
        sizes = [(height, width)] + ([tuple(image_size)] if image_size is not None else [])
        if m.ndim != 2 or tuple(m.shape) not in sizes:
            raise ValueError(
                f"Mask of region {self.prompt!r} has shape {tuple(m.shape)}; expected one of {sizes} (height, width)."
            )
        if m.max() > 1:
            m = m / 255.0
        if tuple(m.shape) != (height, width):
            m = F.interpolate(m[None, None], size=(height, width), mode="area")[0, 0]
        return m > 0.5


def label_map(regions: Sequence[Region], height: int, width: int, image_size=None) -> torch.Tensor:
    """(height, width) long map: index of the region owning each position (later regions win), -1 for background."""
    labels = torch.full((height, width), -1, dtype=torch.long)
    for k, region in enumerate(regions):
        labels[region.mask_at(height, width, image_size)] = k
    return labels


def labels_at(labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize a label map to (height, width) by area-weighted majority vote; background (-1) counts as a label
    and ties go to the later region, as overlaps do."""
    if tuple(labels.shape) == (height, width):
        return labels
    num = int(labels.max()) + 2
    onehot = F.one_hot(labels + 1, num).permute(2, 0, 1)[None].float()  # (1, R+1, H, W)
    votes = F.adaptive_avg_pool2d(onehot, (height, width))[0].flip(0)  # last label first: argmax picks it on ties
    return (num - 1 - votes.argmax(0)) - 1


def dilate_mask(mask: torch.Tensor, iterations: int = 1) -> torch.Tensor:
    """Grow a bool (H, W) mask by ``iterations`` pixels (3x3 max-pool), like RAG's background dilation."""
    m = mask.float()[None, None]
    for _ in range(int(iterations)):
        m = F.max_pool2d(m, 3, stride=1, padding=1)
    return m[0, 0] > 0.5


def snapped_box(inside: torch.Tensor, snap: int, shape) -> tuple[int, int, int, int]:
    """Bounding box (y0, y1, x0, x1) of the positions ``inside`` (K, 2), grown to multiples of ``snap``."""
    height, width = shape
    y0, x0 = (int(v) for v in inside.min(0).values)
    y1, x1 = (int(v) + 1 for v in inside.max(0).values)

    def grow(a, b, size):
        a = (a // snap) * snap
        b = min(-(-b // snap) * snap, size)
        if b - a < snap:
            a = max(0, b - snap)
        return a, b

    (y0, y1), (x0, x1) = grow(y0, y1, height), grow(x0, x1, width)
    return y0, y1, x0, x1
