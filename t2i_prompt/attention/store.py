"""``AttentionStore``: per-word cross-attention maps, aggregated over chosen layers and steps (prompt-to-prompt).

Only the requested tokens are computed: the SDPA kernel returns the log-sum-exp of each query row, so the
probability of token j is ``exp(q·k_j * scale + bias_j - lse)`` and no (N x 77) probability matrix is built
(docs: hook-speed-anchors.md, capture goal <= 1.02x). Maps are averaged over heads, taken from the conditional
CFG half, summed over a word's tokens, resized to ``resolution`` and averaged over the captured calls.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..utils import atomic_save_image
from .controller import AttentionContext, AttentionHook, LayerInfo
from .tokens import token_indices_multi

__all__ = ["AttentionStore", "SelfAttentionStore", "heatmap_overlay", "save_heatmaps"]


class AttentionStore(AttentionHook):
    """Capture cross-attention maps of ``words`` (words or phrases of the prompt).

    Args:
        words: words/phrases whose maps are kept (resolved against each prompt in ``on_start``), or use
            ``set_token_ids`` for bare-UNet use.
        places: subset of ("down", "mid", "up") to aggregate over.
        tags: optional subset of layer tags (``down1``, ``mid``, ``up2``...; see ``LayerInfo``).
        steps: step indices to aggregate over (None = all).
        resolution: side of the returned square maps (each layer's map is bilinearly resized to it).
    """

    needs_probabilities = True

    def __init__(
        self,
        words: Sequence[str] = (),
        places: Iterable[str] = ("down", "mid", "up"),
        tags: Iterable[str] | None = None,
        steps: Iterable[int] | None = None,
        resolution: int = 16,
    ):
        self.words = list(words)
        self.places = set(places)
        bad = self.places - {"down", "mid", "up"}
        if bad:
            raise ValueError(f"Unknown places {sorted(bad)}; choose from 'down', 'mid', 'up'.")
        self.tags = set(tags) if tags is not None else None
        self.steps = set(steps) if steps is not None else None
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}.")
        self.resolution = int(resolution)
        self.word_ids: list[list[list[int]]] = []  # [image][word] -> token positions
        self._fixed = False  # positions given with set_token_ids: a pipeline run keeps them
        self.reset()

    def reset(self) -> None:
        """Forget everything captured (``on_start`` keeps earlier runs: an ImageGenerator calls it once per batch)."""
        self._runs: list[torch.Tensor] = []  # mean maps of finished runs, (images, words, res, res) each
        self._sum: torch.Tensor | None = None  # current run's sum over captured calls
        self._count = 0

    def _finish_run(self) -> None:
        if self._sum is not None:
            self._runs.append(self._sum / self._count)
        self._sum, self._count = None, 0

    def set_token_ids(self, word_ids: Sequence[Sequence[Sequence[int]]], words: Sequence[str] | None = None) -> None:
        """Token positions per image and word (``[image][word] -> [positions]``); a later pipeline run keeps them
        instead of resolving ``words`` in its prompts (e.g. a source word's positions read in an edited prompt)."""
        self._fixed = True
        self.word_ids = [[list(ids) for ids in image] for image in word_ids]
        if words is not None:
            self.words = list(words)
        self._union = sorted({i for image in self.word_ids for ids in image for i in ids})
        assign = torch.zeros(len(self.word_ids), len(self._union), len(self.word_ids[0]))
        for b, image in enumerate(self.word_ids):
            for w, ids in enumerate(image):
                for i in ids:
                    assign[b, self._union.index(i), w] = 1.0
        self._assign = assign  # (images, T, words): which token belongs to which word
        self._finish_run()

    def on_start(self, run) -> None:
        if self._fixed:
            self._finish_run()
            return
        tokenizers = [run.pipeline.tokenizer, getattr(run.pipeline, "tokenizer_2", None)]
        self.set_token_ids([[token_indices_multi(tokenizers, p, w) for w in self.words] for p in run.prompts])
        self._fixed = False

    def wants_layer(self, layer: LayerInfo) -> bool:
        return layer.is_cross and layer.place in self.places and (self.tags is None or layer.tag in self.tags)

    def is_active(self, ctx: AttentionContext) -> bool:
        return bool(self.word_ids) and (self.steps is None or ctx.step in self.steps)

    def after_attention(self, ctx: AttentionContext, call) -> None:
        ids = torch.tensor(self._union, device=call.query.device)
        probs = call.token_probs(ctx.cond, ids).mean(dim=1)  # (images, N, T)
        assign = self._assign.to(probs)
        if assign.shape[0] != probs.shape[0]:
            assign = assign[:1].expand(probs.shape[0], -1, -1)
        maps = torch.einsum("bnt,btw->bwn", probs, assign)  # (images, words, N)
        h, w = ctx.resolution
        maps = maps.reshape(maps.shape[0], maps.shape[1], h, w)
        maps = F.interpolate(maps.float(), size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        self._sum = maps if self._sum is None else self._sum + maps
        self._count += 1
        return None

    def maps(self) -> torch.Tensor:
        """Mean map per image and word over all runs: (images, words, res, res); probabilities, not normalised."""
        runs = self._runs + ([self._sum / self._count] if self._sum is not None else [])
        if not runs:
            raise ValueError("No attention was captured: run a generation with this store as a hook first.")
        return torch.cat(runs)

    def word_maps(self, image: int = 0) -> dict[str, np.ndarray]:
        """``{word: (res, res) float array}`` for one image."""
        maps = self.maps()[image].cpu().numpy()
        return {w: maps[i] for i, w in enumerate(self.words)}


class SelfAttentionStore(AttentionHook):
    """Mean self-attention probabilities (conditional half, heads averaged) of the layers whose query grid is
    ``resolution`` x ``resolution``: (images, N, N) with N = resolution^2 (DPL's background clustering input)."""

    needs_probabilities = True

    def __init__(self, resolution: int = 16):
        self.resolution = int(resolution)
        self._sum: torch.Tensor | None = None
        self._count = 0

    def wants_layer(self, layer: LayerInfo) -> bool:
        return not layer.is_cross

    def after_attention(self, ctx: AttentionContext, call) -> None:
        if ctx.resolution != (self.resolution, self.resolution):
            return None
        keys = torch.arange(call.key.shape[2], device=call.query.device)
        probs = call.token_probs(ctx.cond, keys).mean(dim=1).float()  # (images, N, N)
        self._sum = probs if self._sum is None else self._sum + probs
        self._count += 1
        return None

    def maps(self) -> torch.Tensor:
        if self._sum is None:
            raise ValueError(f"No self-attention layer has a {self.resolution}x{self.resolution} query grid; "
                             "choose a resolution the UNet has (latent side / 2^k).")
        return self._sum / self._count


def _colormap(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB uint8 with a blue-cyan-yellow-red ramp (jet-like), no matplotlib needed."""
    r = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def heatmap_overlay(image, attention: np.ndarray, alpha: float = 0.5):
    """Blend a min-max normalised attention map (resized to the image) over a PIL image; returns a PIL image."""
    from PIL import Image

    a = np.asarray(attention, dtype=np.float64)
    a = (a - a.min()) / (a.max() - a.min() + 1e-12)
    heat = Image.fromarray(_colormap(a)).resize(image.size, Image.BILINEAR)
    return Image.blend(image.convert("RGB"), heat, alpha)


def save_heatmaps(image, word_maps: dict[str, np.ndarray], out_dir: str | os.PathLike, prefix: str = "attn") -> list[Path]:
    """Write one overlay PNG per word (``<prefix>_<word>.png``, atomically) and return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for word, attention in word_maps.items():
        safe = "".join(c if c.isalnum() else "_" for c in word)
        paths.append(atomic_save_image(heatmap_overlay(image, attention), out / f"{prefix}_{safe}.png"))
    return paths
