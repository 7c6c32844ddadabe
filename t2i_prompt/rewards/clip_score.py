"""CLIP score in its common variants: ``scale * max(cos(E_text, E_image), 0)``.

* Hessel et al. 2021 CLIPScore (jmhessel/clipscore): ``scale=2.5, clamp=True, prefix="A photo depicts "``.
* torchmetrics ``CLIPScore``: ``scale=100, clamp=True``.
* T2I-CompBench / LPA raw cosine: ``scale=1, clamp=False``; Promptist: ``scale=1, clamp=True``.
Scores are only comparable between runs that use the same CLIP model and the same variant.
"""

from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image

from t2i_prompt.rewards.base import check_pairs
from t2i_prompt.rewards.clip_model import CLIPEmbedder

ALLOWED_SCALES = (1.0, 2.5, 100.0)

# name -> (scale, clamp, prefix)
CLIP_SCORE_PRESETS = {
    "raw": (1.0, False, ""),
    "promptist": (1.0, True, ""),
    "hessel": (2.5, True, "A photo depicts "),
    "torchmetrics": (100.0, True, ""),
}


class CLIPScore:
    """``score(prompts, images) -> scale * cos`` (clamped at 0 when ``clamp``), with optional caption prefix."""

    higher_is_better = True

    def __init__(self, clip: CLIPEmbedder, scale: float = 1.0, clamp: bool = True, prefix: str = ""):
        if float(scale) not in ALLOWED_SCALES:
            raise ValueError(
                f"scale must be one of {ALLOWED_SCALES} (raw cosine, Hessel CLIPScore, torchmetrics), got {scale}."
            )
        self.clip = clip
        self.scale = float(scale)
        self.clamp = bool(clamp)
        self.prefix = prefix
        self.name = "clip_score"
        self.value_range = (0.0, self.scale) if self.clamp else (-self.scale, self.scale)

    @classmethod
    def from_pretrained(cls, name: str | None = "shapes:clip", preset: str | None = None, device=None, **kwargs):
        """Build on the shared embedder for ``name``; ``preset`` is one of ``CLIP_SCORE_PRESETS``."""
        if preset is not None:
            if preset not in CLIP_SCORE_PRESETS:
                raise ValueError(f"unknown CLIP score preset {preset!r}; choose from {sorted(CLIP_SCORE_PRESETS)}.")
            scale, clamp, prefix = CLIP_SCORE_PRESETS[preset]
            kwargs = {"scale": scale, "clamp": clamp, "prefix": prefix, **kwargs}
        return cls(CLIPEmbedder.shared(name, device=device), **kwargs)

    def score(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> torch.Tensor:
        check_pairs(prompts, images)
        cos = self.clip.cosine([self.prefix + p for p in prompts], images)
        if self.clamp:
            cos = cos.clamp_min(0.0)
        return self.scale * cos
