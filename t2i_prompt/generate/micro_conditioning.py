"""SDXL micro-conditioning: the size/crop values (diffusers' argument names) and the added time ids they make."""

from __future__ import annotations

import torch

SIZE_CONDITIONING = ("original_size", "crops_coords_top_left", "target_size", "negative_original_size",
                     "negative_crops_coords_top_left", "negative_target_size")


def check_size_conditioning(sizes: dict | None) -> dict:
    """SDXL's size/crop conditioning values (diffusers' names) as ``(int, int)`` pairs; None entries dropped."""
    out = {}
    for key, value in (sizes or {}).items():
        if key not in SIZE_CONDITIONING:
            raise ValueError(f"unknown size conditioning {key!r}; use {', '.join(SIZE_CONDITIONING)}.")
        if value is None:
            continue
        pair = tuple(value) if isinstance(value, (list, tuple)) else ()
        if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair):
            raise ValueError(f"`{key}` must be two integers >= 0 (height, width or top, left), got {value!r}.")
        out[key] = pair
    return out


def add_time_ids(height: int, width: int, batch: int, sizes: dict | None = None, device=None, dtype=None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """SDXL micro-conditioning (Podell et al. 2023 §2.2) as diffusers builds it: ``original_size +
    crops_coords_top_left + target_size`` (defaults (h, w), (0, 0), (h, w)); the negative ids use the
    ``negative_*`` values only when both negative sizes are given. Returns (negative, positive) rows."""
    sizes = check_size_conditioning(sizes)
    original = sizes.get("original_size") or (height, width)
    crops = sizes.get("crops_coords_top_left") or (0, 0)
    target = sizes.get("target_size") or (height, width)
    positive = [*original, *crops, *target]
    negative = positive
    if sizes.get("negative_original_size") and sizes.get("negative_target_size"):
        negative = [*sizes["negative_original_size"], *(sizes.get("negative_crops_coords_top_left") or (0, 0)),
                    *sizes["negative_target_size"]]
    rows = torch.tensor([negative, positive], device=device, dtype=dtype)
    return rows[:1].repeat(batch, 1), rows[1:].repeat(batch, 1)
