"""Attention-leakage measures against a known object mask (DPL's mask IoU; the share of a word's attention that
falls outside its object, i.e. the leakage DPL's losses fight)."""

from __future__ import annotations

import numpy as np

__all__ = ["attention_mask", "mask_iou", "leakage_share"]


def _upsampled(attention: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) map bilinearly resized to ``size`` = (H, W)."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(attention, dtype=np.float32))[None, None]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def attention_mask(attention: np.ndarray, size: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
    """The word's mask: its map resized to the image, min-max normalised, above ``threshold``."""
    a = _upsampled(attention, size)
    a = (a - a.min()) / (a.max() - a.min() + 1e-12)
    return a > threshold


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def leakage_share(attention: np.ndarray, mask: np.ndarray) -> float:
    """Share of the word's attention mass (map resized to the mask) that lies outside ``mask``."""
    a = np.clip(_upsampled(attention, mask.shape), 0, None)
    total = a.sum()
    return 0.0 if total == 0 else float(a[~mask].sum() / total)
