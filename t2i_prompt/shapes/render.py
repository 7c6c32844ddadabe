"""Procedural renderer: a :class:`~t2i_prompt.shapes.grammar.Scene` -> an RGB uint8 image.

Layouts are fixed slots with a small jitter so that a tiny CPU-trained diffusion model can learn the
world: one object is large and centred, two objects sit left/right (or top/bottom) of the centre,
three objects form a triangle. Shapes are hard-edged masks evaluated at pixel centres; outlined
objects keep a ``OUTLINE_WIDTH``-pixel rim.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .grammar import Scene

IMAGE_SIZE = 32
BACKGROUND = (255, 255, 255)
PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 160, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 195, 20),
}
OUTLINE_WIDTH = 2
JITTER = 1.0  # pixels, uniform in [-JITTER, JITTER] per object and axis

# (centre_x, centre_y, half_size) per slot, as fractions of the image size.
_SINGLE = [(0.5, 0.5, 0.25)]
_PAIR_H = [(0.25, 0.5, 0.19), (0.75, 0.5, 0.19)]
_PAIR_V = [(0.5, 0.25, 0.19), (0.5, 0.75, 0.19)]
_TRIPLE = [(0.25, 0.27, 0.17), (0.75, 0.27, 0.17), (0.5, 0.74, 0.17)]


def layout_slots(scene: Scene) -> list[tuple[float, float, float]]:
    """Slot (cx, cy, half) in fractions for each of ``scene.objects``, in order."""
    if scene.count == 1:
        return list(_SINGLE)
    if scene.kind == "count":
        return list(_PAIR_H) if scene.count == 2 else list(_TRIPLE)
    slots = {"left": _PAIR_H, "right": _PAIR_H[::-1], "above": _PAIR_V, "below": _PAIR_V[::-1]}
    return list(slots[scene.relation])


def shape_mask(shape: str, cx: float, cy: float, half: float, size: int = IMAGE_SIZE) -> np.ndarray:
    """Boolean (size, size) mask of a filled shape centred at (cx, cy) pixels with half-extent ``half``."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        return dx**2 + dy**2 <= half**2
    if shape == "square":
        h = half * 0.86  # equal-area-ish with the circle
        return (np.abs(dx) <= h) & (np.abs(dy) <= h)
    if shape == "triangle":
        # upward isosceles triangle: apex at cy - half, base at cy + half, base width 2*half
        t = (dy + half) / (2 * half)  # 0 at apex, 1 at base
        return (t >= 0) & (t <= 1) & (np.abs(dx) <= t * half)
    raise ValueError(f"unknown shape {shape!r}")


def outline(mask: np.ndarray, width: int = OUTLINE_WIDTH) -> np.ndarray:
    """Rim of a filled mask: the mask minus its erosion by ``width`` pixels."""
    return mask & ~ndimage.binary_erosion(mask, iterations=width)


def render_scene(scene: Scene, rng: np.random.Generator | None = None, size: int = IMAGE_SIZE) -> np.ndarray:
    """Render ``scene`` to a (size, size, 3) uint8 image; ``rng`` adds the positional jitter (None: none)."""
    return render_scene_with_masks(scene, rng, size)[0]


def render_scene_with_masks(scene: Scene, rng: np.random.Generator | None = None,
                            size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The image of ``render_scene`` and each object's filled mask, (objects, size, size) bool, in scene order.

    The mask is the object's whole extent (outlined objects included), the region its noun names.
    """
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    masks = []
    for obj, (fx, fy, fh) in zip(scene.objects, layout_slots(scene)):
        jx, jy = (rng.uniform(-JITTER, JITTER, size=2) if rng is not None else (0.0, 0.0))
        mask = shape_mask(obj.shape, fx * size + jx, fy * size + jy, fh * size, size)
        masks.append(mask)
        img[outline(mask) if scene.style == "outlined" else mask] = PALETTE[obj.color]
    return img, np.stack(masks)


def render_batch(scenes: list[Scene], rng: np.random.Generator | None = None) -> np.ndarray:
    """(N, size, size, 3) uint8 images."""
    return np.stack([render_scene(s, rng) for s in scenes])


def render_batch_with_masks(scenes: list[Scene], rng: np.random.Generator | None = None
                            ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``render_batch`` plus each scene's object masks (the same images: the jitter draws are identical)."""
    pairs = [render_scene_with_masks(s, rng) for s in scenes]
    return np.stack([p[0] for p in pairs]), [p[1] for p in pairs]
