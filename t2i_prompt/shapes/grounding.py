"""Token-level grounding loss for the shapes T2I: each noun's cross-attention should fall on its object.

TokenCompose (Wang et al., CVPR 2024, arXiv 2312.03626) fine-tunes Stable Diffusion with, besides the denoising loss,
``L_token = mean_i (1 - sum_{u in B_i} A_i[u] / sum_u A_i[u])^2`` for every noun token i with segmentation mask B_i.
In the shapes world the renderer gives the masks exactly, so the T2I can be fine-tuned the same way; a model whose
nouns attend to their objects is what DPL and LocalBlend assume of SD (README, "Editing").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..attention.tokens import token_indices
from .grammar import Scene

__all__ = ["noun_targets", "mask_targets", "token_loss"]


def noun_targets(scene: Scene, caption: str, tokenizer) -> list[tuple[list[int], list[int]]]:
    """``[(token positions of a shape word, indices of the objects it names)]`` in caption order.

    A relation scene names each object with its own shape word (the n-th occurrence of a repeated word is the n-th
    object with that shape); a count scene names all its objects with one plural word ("circles").
    """
    if scene.kind == "count":
        word = scene.objects[0].shape + "s"
        return [(token_indices(tokenizer, caption, word), list(range(scene.count)))]
    seen: dict[str, int] = {}
    targets = []
    for k, obj in enumerate(scene.objects):
        occurrence = seen.get(obj.shape, 0)
        seen[obj.shape] = occurrence + 1
        targets.append((token_indices(tokenizer, caption, obj.shape, occurrence=occurrence), [k]))
    return targets


def mask_targets(masks: np.ndarray, objects: list[int], resolution: int) -> torch.Tensor:
    """The union of ``objects``' masks (objects, H, W) as a soft (resolution, resolution) map: the share of each
    attention cell that the objects cover (area pooling of the pixel mask)."""
    union = torch.as_tensor(np.logical_or.reduce(masks[objects]), dtype=torch.float32)
    return F.adaptive_avg_pool2d(union[None, None], resolution)[0, 0]


def token_loss(maps: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """TokenCompose's ``L_token`` over the valid (image, noun) pairs.

    Args:
        maps: (images, nouns, h, w) cross-attention probabilities of the noun tokens.
        targets: (images, nouns, h, w) object masks in [0, 1] at the same resolution.
        valid: (images, nouns) bool, False for padding (fewer nouns, or a caption dropped for CFG).
    """
    inside = (maps * targets).flatten(2).sum(-1)
    total = maps.flatten(2).sum(-1).clamp_min(1e-12)
    per_noun = (1 - inside / total).pow(2)
    weight = valid.to(per_noun)
    return (per_noun * weight).sum() / weight.sum().clamp_min(1.0)
