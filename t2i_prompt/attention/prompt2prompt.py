"""Prompt-to-prompt editing (Hertz et al. 2022, arXiv 2208.01626) as attention hooks on the one controller.

The batch is [source, target, ...] (the conditional CFG half is edited, as in the reference; the unconditional
half is left alone). While ``step < cross_replace_steps * n`` each target's cross-attention probabilities become
``P_new[:, j] = sum_i P_src[:, i] mapper[i, j] + keep[j] P_tgt[:, j]`` (word swap, refinement, re-weighting are
different ``TokenAlignment``s); while ``step < self_replace_steps * n`` the target's self-attention probabilities on
layers with at most ``self_max_queries`` positions become the source's. Both are computed without materialising
probabilities, because ``P @ V`` is linear in V::

    P_new @ V_tgt = SDPA(q_src, k_src, mapper @ V_tgt) + SDPA(q_tgt, k_tgt, keep * V_tgt)

``LocalBlend`` keeps the latents outside the edited words' attention mask equal to the source's (the reference's
``LocalBlend``: max-pooled maps, threshold 0.3), reading maps through ``AttentionStore`` (the capture path).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .alignment import TokenAlignment
from .controller import AttentionContext, AttentionHook, LayerInfo
from .store import AttentionStore

__all__ = ["PromptToPromptHook", "LocalBlend", "BLEND_NORMALISE", "REFERENCE_BLEND", "check_blend_mask", "model_blend_mask",
           "DEFAULT_CROSS_REPLACE", "DEFAULT_SELF_REPLACE"]

DEFAULT_CROSS_REPLACE = 0.8  # share of the steps with cross-attention injection (the reference's notebooks)
DEFAULT_SELF_REPLACE = 0.4  # share of the steps with self-attention injection
BLEND_NORMALISE = ("max", "minmax")  # LocalBlend map normalisation: the reference's, or from the map's minimum
REFERENCE_BLEND = {"local_normalise": "max", "local_threshold": 0.3}  # the reference notebook's mask
SELF_MAX_QUERIES = 32 * 32  # the reference injects self-attention only on maps up to 32x32


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"{name} must be a fraction of the steps in [0, 1], got {value}.")
    return value


def check_blend_mask(normalise: str | None, threshold: float | None, where: str = "") -> float | None:
    """LocalBlend's mask settings (one rule for the hook, ``EditConfig`` and the app; ``None``: the model's default,
    checked when it is resolved); returns the threshold. ``where`` names the settings' source in the error."""
    if normalise is not None and normalise not in BLEND_NORMALISE:
        raise ValueError(f"LocalBlend normalise {normalise!r}{where} is not one of {BLEND_NORMALISE}.")
    if threshold is None:
        return None
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0 or math.isnan(threshold):
        raise ValueError(f"LocalBlend threshold{where} must be in [0, 1] (a share of the normalised map), "
                         f"got {threshold}.")
    return threshold


def model_blend_mask(pipeline, normalise: str | None = None, threshold: float | None = None) -> tuple[str, float]:
    """LocalBlend's (normalise, threshold): each given value, else the model's default (``local_normalise`` /
    ``local_threshold`` of its ``t2i_sampling.json``; the shapes world's is minmax 0.5), else the reference's."""
    model = {k: v for k, v in getattr(pipeline, "defaults", {}).items() if k in REFERENCE_BLEND}
    defaults = {**REFERENCE_BLEND, **model}
    check_blend_mask(defaults["local_normalise"], defaults["local_threshold"],
                     where=" in the model's t2i_sampling.json")
    normalise = defaults["local_normalise"] if normalise is None else normalise
    threshold = defaults["local_threshold"] if threshold is None else threshold
    return normalise, check_blend_mask(normalise, threshold)


class PromptToPromptHook(AttentionHook):
    """Inject the source's attention into each target of the batch (image 0 = source, one alignment per target)."""

    def __init__(self, alignments: Sequence[TokenAlignment], cross_replace_steps: float = DEFAULT_CROSS_REPLACE,
                 self_replace_steps: float = DEFAULT_SELF_REPLACE, self_max_queries: int = SELF_MAX_QUERIES):
        if not alignments:
            raise ValueError("PromptToPromptHook needs one TokenAlignment per target prompt.")
        self.alignments = list(alignments)
        self.cross_replace_steps = _check_fraction("cross_replace_steps", cross_replace_steps)
        self.self_replace_steps = _check_fraction("self_replace_steps", self_replace_steps)
        self.self_max_queries = int(self_max_queries)
        self.num_steps = 0

    def on_start(self, run) -> None:
        self.num_steps = len(run.timesteps)
        if run.batch_size != len(self.alignments) + 1:
            raise ValueError(f"prompt-to-prompt got {run.batch_size} prompts for {len(self.alignments)} target "
                             "alignment(s); pass [source, *targets].")

    def wants_layer(self, layer: LayerInfo) -> bool:
        return True

    def is_active(self, ctx: AttentionContext) -> bool:
        if ctx.step is None:
            return False
        share = self.cross_replace_steps if ctx.layer.is_cross else self.self_replace_steps
        return ctx.step < share * self.num_steps

    def after_attention(self, ctx: AttentionContext, call) -> torch.Tensor | None:
        if not ctx.layer.is_cross and call.query.shape[2] > self.self_max_queries:
            return None
        rows = range(ctx.cond.start, ctx.cond.stop)
        src = rows[0]
        q, k, v = call.query, call.key, call.value  # (B, heads, N, d)
        bias = None if call.bias is None else call.bias.expand(q.shape[0], -1, -1, -1)
        out = call.out.clone()
        for n, tgt in enumerate(rows[1:]):
            b_src = None if bias is None else bias[src:src + 1]
            if not ctx.layer.is_cross:
                out[tgt] = F.scaled_dot_product_attention(q[src:src + 1], k[src:src + 1], v[tgt:tgt + 1], attn_mask=b_src)[0]
                continue
            align = self.alignments[n]
            mapper, keep = align.mapper.to(v), align.keep.to(v)
            mapped_v = torch.einsum("ij,hjd->hid", mapper, v[tgt])  # (heads, Nk, d): sum_j mapper[i, j] V_tgt[j]
            new = F.scaled_dot_product_attention(q[src:src + 1], k[src:src + 1], mapped_v[None], attn_mask=b_src)[0]
            if bool(keep.any()):
                b_tgt = None if bias is None else bias[tgt:tgt + 1]
                own = F.scaled_dot_product_attention(q[tgt:tgt + 1], k[tgt:tgt + 1], (v[tgt] * keep[:, None])[None],
                                                     attn_mask=b_tgt)[0]
                new = new + own
            out[tgt] = new
        return out


class LocalBlend(AttentionHook):
    """Keep the source's latents outside the union of the blend words' attention masks (source and target).

    ``word_ids[image]`` are the token positions of the blend words in each prompt of the batch; from ``start``
    (share of the steps) on, after every step ``x_i = x_src + mask * (x_i - x_src)`` with ``mask`` the max-pooled,
    max-normalised step maps above ``threshold``, united with the source's. ``normalise="minmax"`` rescales each map
    from its minimum instead of zero: where a word attends diffusely (the shapes world: off-object attention at
    0.4-0.8 of the peak) a max-normalised mask covers the whole image and the blend does nothing.
    """

    def __init__(self, word_ids: Sequence[Sequence[int]], threshold: float = 0.3, start: float = 0.2,
                 resolution: int = 16, normalise: str = "max"):
        if not any(word_ids):
            raise ValueError("LocalBlend needs the positions of at least one word (--local WORDS from the prompts).")
        if normalise is None or threshold is None:
            raise ValueError("LocalBlend needs its mask settings; take the model's with model_blend_mask(pipeline).")
        self.threshold = check_blend_mask(normalise, threshold)
        self.normalise = normalise
        self.start = _check_fraction("LocalBlend start", start)
        self.store = AttentionStore(resolution=resolution)
        self.store.set_token_ids([[list(ids)] for ids in word_ids], words=["blend"])
        self.num_steps = 0
        self.mask: torch.Tensor | None = None  # last blend mask, (images, 1, h, w) bool

    needs_probabilities = True

    def on_start(self, run) -> None:
        self.num_steps = len(run.timesteps)

    def wants_layer(self, layer: LayerInfo) -> bool:
        return self.store.wants_layer(layer)

    def is_active(self, ctx: AttentionContext) -> bool:
        return self.store.is_active(ctx)

    def after_attention(self, ctx: AttentionContext, call) -> None:
        return self.store.after_attention(ctx, call)

    def on_step_begin(self, step, timestep, state) -> None:
        self.store.reset()

    def on_step_end(self, step, timestep, state) -> None:
        if step < self.start * self.num_steps:
            return
        maps = self.store.maps()  # (images, 1, res, res)
        maps = F.max_pool2d(maps, kernel_size=3, stride=1, padding=1)
        maps = F.interpolate(maps, size=tuple(state.latents.shape[-2:]), mode="bilinear", align_corners=False)
        flat = maps.flatten(1)
        low = flat.amin(dim=1) if self.normalise == "minmax" else torch.zeros_like(flat[:, 0])
        maps = (maps - low[:, None, None, None]) / (flat.amax(dim=1) - low).clamp_min(1e-12)[:, None, None, None]
        mask = maps > self.threshold
        mask = mask | mask[:1]
        self.mask = mask
        latents = state.latents
        source = latents[:1]
        state.latents = source + mask.to(latents) * (latents - source)
