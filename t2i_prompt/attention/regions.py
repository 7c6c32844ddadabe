"""Region binding for UNets: RAG's hard binding and soft refinement.

RAG (Chen et al., "Region-Aware Text-to-Image Generation via Hard Binding and Soft Refinement", arXiv 2411.06558;
NJU-PCALab/RAG-Diffusion) was written for FLUX; this is its adaptation to ``UNet2DConditionModel``:

* **Hard binding** (``hb_steps``): for the first steps each region is denoised on its own latent (its bounding box,
  snapped to the UNet's downsampling) with its own prompt through the pipeline's ``predict_noise`` (hooks
  suspended) and its own scheduler copy; after every global step the region's latent is pasted into the global
  latent under the region's mask. RAG also replaces per-block hidden states during these steps; that is not done here.
* **Soft refinement** (``sr_delta``): in every cross-attention layer the queries also attend to the region prompts,
  in one SDPA over the concatenated region tokens with an additive bias so a query in region k sees only region k's
  tokens; the result is blended into the base output inside the regions, ``h = δ·h_R + (1−δ)·h_base`` (RAG Eq. for
  SR_delta). The RAG code applies SR at every step including the HB steps (``sr_steps="all"``, the default); the
  paper's figure applies it after them (``sr_steps="after_hb"``).
* **What the regions attend to** (``sr_source``): ``"region"`` (RAG) uses each region prompt's own encoding.
  ``"base"`` keeps the base prompt's keys and only masks, for queries in region k, the words of the other regions'
  prompts. Why: a region prompt alone ("a red circle") encodes a one-object scene in its EOS/padding tokens, and a
  model that reads its layout from them (the 32x32 shapes world draws one large centred object) redraws that
  layout across the regions at δ = 1; the base prompt's tokens keep the scene's layout and its global style phrase,
  while the mask still binds each region's attributes to it (measured in README "Attention hooks on the shapes world").

Geometry (``Region``, label maps) is in ``attention/masks.py``; repainting one region in ``edit/repaint.py``.
"""

from __future__ import annotations

import contextlib
import copy
import re
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from .controller import AttentionContext, AttentionHook, LayerInfo
from .masks import Region, label_map, labels_at, snapped_box
from .processor import split_heads

__all__ = ["RegionHook", "soft_refinement", "foreign_words", "model_sr_source", "DEFAULT_MAX_REGIONS", "SR_SOURCES"]

DEFAULT_MAX_REGIONS = 8
SR_SOURCES = ("region", "base")


def model_sr_source(pipeline) -> str:
    """The model's default ``sr_source``: ``region_sr_source`` of its sampling defaults, else RAG's ``"region"``."""
    value = getattr(pipeline, "defaults", {}).get("region_sr_source", "region")
    if value not in SR_SOURCES:
        raise ValueError(f"the model's t2i_sampling.json sets region_sr_source={value!r}; use one of {SR_SOURCES}.")
    return value


_FILLER = frozenset("a an the in of and with to on at style".split())


def foreign_words(prompts: Sequence[str]) -> list[list[str]]:
    """Per region prompt, the words of the other region prompts it does not share (fillers such as "a", "in",
    "style" never count): what soft refinement with ``sr_source="base"`` hides from that region's queries."""
    words = [[w for w in re.findall(r"[\w'-]+", p.lower()) if w not in _FILLER] for p in prompts]
    out = []
    for k, own in enumerate(words):
        other = [w for j, ws in enumerate(words) if j != k for w in ws if w not in own]
        out.append(list(dict.fromkeys(other)))
    return out


def _suspended(controller):
    return controller.suspended() if controller is not None else contextlib.nullcontext()


class RegionHook(AttentionHook):
    """RAG hard binding + soft refinement for any ``UNet2DConditionModel`` (the run's prompt is the base prompt).

    Args:
        regions: ``Region`` list (boxes or masks, each with a prompt and optional negative prompt).
        hb_steps: hard-binding steps (RAG ``HB_replace``, default 2); 0 disables hard binding.
        sr_delta: soft-refinement weight δ in [0, 1] (RAG ``SR_delta``, default 1.0); 0 disables it.
        sr_steps: ``"all"`` (RAG code: every step), ``"after_hb"`` (paper figure), ``"none"``, or step indices.
        max_regions: the prompt budget: soft refinement attends to all region prompts at once (R x 77 tokens).
        sr_source: ``"region"`` (RAG: attend to the region prompts) or ``"base"`` (attend to the base prompt with
            the other regions' words masked out, see the module docstring); None: the model's default
            (``region_sr_source`` in its ``t2i_sampling.json``; ``"base"`` for the shapes world), else ``"region"``.
        seed: mixed with each image's own seed (``run.generators``) and the region index into the seed of the
            region's own initial noise for hard binding (RAG gives every region its own noise latent).
    """

    def __init__(self, regions: Sequence[Region], hb_steps: int = 2, sr_delta: float = 1.0,
                 sr_steps: str | Iterable[int] = "all", max_regions: int = DEFAULT_MAX_REGIONS, seed: int = 0,
                 sr_source: str | None = None):
        regions = list(regions)
        if not regions:
            raise ValueError("RegionHook needs at least one region.")
        if len(regions) > max_regions:
            raise ValueError(
                f"{len(regions)} regions exceed the prompt budget of {max_regions} region prompts "
                f"(soft refinement attends to all region prompts at once); merge regions or raise max_regions."
            )
        if not all(isinstance(r, Region) for r in regions):
            raise ValueError("regions must be Region objects (prompt + box or mask).")
        if hb_steps < 0:
            raise ValueError(f"hb_steps must be >= 0, got {hb_steps}.")
        if not 0.0 <= sr_delta <= 1.0:
            raise ValueError(f"sr_delta must be in [0, 1], got {sr_delta}.")
        if isinstance(sr_steps, str) and sr_steps not in ("all", "after_hb", "none"):
            raise ValueError(f"sr_steps must be 'all', 'after_hb', 'none' or step indices, got {sr_steps!r}.")
        if sr_source is not None and sr_source not in SR_SOURCES:
            raise ValueError(f"sr_source must be one of {SR_SOURCES} or None (the model's default), got {sr_source!r}.")
        self.regions, self.hb_steps, self.sr_delta, self.seed = regions, int(hb_steps), float(sr_delta), int(seed)
        self.sr_source_arg = sr_source
        self.sr_source = sr_source or "region"  # resolved against the model's default in on_start
        self.foreign_tokens: list[list[int]] | None = None  # per region: base-prompt tokens of the other regions
        self.sr_steps = sr_steps if isinstance(sr_steps, str) else {int(s) for s in sr_steps}
        self.labels: torch.Tensor | None = None
        self.run = None
        self.cond_states: torch.Tensor | None = None  # (R, L, D) region prompt states, set by on_start
        self.uncond_states: torch.Tensor | None = None
        self.hb: list[dict | None] = []  # per region: hard-binding latent, box, embeddings, own scheduler
        self._kv: dict = {}
        self._bias: dict = {}

    # ---- setup -------------------------------------------------------------------------------------------
    def set_region_states(self, cond: torch.Tensor, uncond: torch.Tensor | None = None) -> None:
        """Region prompt encoder states (R, L, D) for the conditional (and optionally unconditional) half."""
        if cond.shape[0] != len(self.regions):
            raise ValueError(f"Expected {len(self.regions)} region prompt states, got {cond.shape[0]}.")
        self.cond_states, self.uncond_states = cond, uncond
        self._kv.clear()
        self._bias.clear()

    def set_foreign_tokens(self, pipeline, prompt: str) -> None:
        """Base-prompt token positions of each region's foreign words (``foreign_words``); a word missing from the
        base prompt (a region prompt that adds it) has nothing to hide."""
        from .tokens import find_word_spans, token_indices_multi

        tokenizers = [pipeline.tokenizer, getattr(pipeline, "tokenizer_2", None)]
        self.foreign_tokens = [
            sorted({i for w in words if find_word_spans(prompt, w) for i in token_indices_multi(tokenizers, prompt, w)})
            for words in foreign_words([r.prompt for r in self.regions])]
        self._bias.clear()

    def set_latent_size(self, height: int, width: int, image_size=None) -> None:
        self.labels = label_map(self.regions, height, width, image_size)

    def on_start(self, run) -> None:
        self.run = run
        pipe = run.pipeline
        self.sr_source = self.sr_source_arg or model_sr_source(pipe)
        h, w = run.latent_shape[-2:]
        self.set_latent_size(h, w, (run.height, run.width))
        embeds = pipe.encode_prompt([r.prompt for r in self.regions], self._negatives(), do_cfg=run.do_cfg,
                                    height=run.height, width=run.width).embeds
        n = len(self.regions)
        cond = embeds[n:] if run.do_cfg else embeds
        uncond = embeds[:n] if run.do_cfg and any(r.negative_prompt for r in self.regions) else None
        self.set_region_states(cond, uncond)
        if self.sr_source == "base":
            self.set_foreign_tokens(run.pipeline, run.prompts[0])
        if self.hb_steps > 0:
            self._setup_hard_binding(run)

    def _negatives(self) -> list[str] | None:
        """Region negative prompts ('' where missing), or None when no region has one (the pipeline's default)."""
        if not any(r.negative_prompt for r in self.regions):
            return None
        return [r.negative_prompt or "" for r in self.regions]

    def _setup_hard_binding(self, run) -> None:
        """Per region: latent bounding box (snapped to the UNet's downsampling), prompt embeddings, noise, scheduler."""
        pipe = run.pipeline
        snap = 2 ** (len(pipe.unet.config.block_out_channels) - 1)
        self.hb = []
        for k, region in enumerate(self.regions):
            inside = (self.labels == k).nonzero()
            if inside.numel() == 0:  # fully covered by later regions
                self.hb.append(None)
                continue
            box = snapped_box(inside, snap, self.labels.shape)
            y0, y1, x0, x1 = box
            shape = (run.batch_size, run.latent_shape[1], y1 - y0, x1 - x0)
            scheduler = copy.deepcopy(run.scheduler or pipe.scheduler)  # at step 0: timesteps set, index fresh
            noise = torch.stack([torch.randn(shape[1:], generator=g, dtype=torch.float32)
                                 for g in self._region_generators(run, k)]) * scheduler.init_noise_sigma
            negatives = [region.negative_prompt or ""] * run.batch_size if region.negative_prompt else None
            embeds = pipe.encode_prompt([region.prompt] * run.batch_size, negatives, do_cfg=run.do_cfg,
                                        height=run.height, width=run.width)
            latent_dtype = run.embeds.embeds.dtype
            self.hb.append({"box": box, "latents": noise.to(pipe.unet.device, latent_dtype), "embeds": embeds,
                            "scheduler": scheduler, "mask": self.labels[y0:y1, x0:x1] == k})

    def _region_generators(self, run, k: int) -> list[torch.Generator]:
        """One generator per image for region k's noise, from the image's own seed, so an image stays
        reproducible alone (as with the pipeline's per-image generators)."""
        seeds = [g.initial_seed() for g in run.generators] if run.generators else [0] * run.batch_size
        return [torch.Generator().manual_seed((s * 1_000_003 + self.seed * 1009 + k) % 2**63) for s in seeds]

    # ---- hard binding ------------------------------------------------------------------------------------
    def on_step_end(self, step: int, timestep, step_state) -> None:
        if step >= self.hb_steps or self.run is None:
            return
        run, latents = self.run, step_state.latents.clone()
        for state in self.hb:
            if state is None:
                continue
            z = state["latents"]
            with _suspended(run.controller):  # the region's own UNet pass runs without hooks
                eps = run.pipeline.predict_noise(z, timestep, state["embeds"], run.guidance_scale,
                                                 scheduler=state["scheduler"])
            step_kwargs = run.pipeline.step_kwargs(None, state["scheduler"])
            z = state["scheduler"].step(eps, timestep, z, **step_kwargs).prev_sample
            state["latents"] = z
            y0, y1, x0, x1 = state["box"]
            mask = state["mask"].to(latents.device)
            latents[..., y0:y1, x0:x1] = torch.where(mask, z.to(latents.dtype), latents[..., y0:y1, x0:x1])
        step_state.latents = latents

    # ---- soft refinement ---------------------------------------------------------------------------------
    def wants_layer(self, layer: LayerInfo) -> bool:
        return layer.is_cross and self.sr_delta > 0 and self.sr_steps != "none"

    def is_active(self, ctx: AttentionContext) -> bool:
        if self.labels is None or self.cond_states is None:
            return False
        if self.sr_steps == "all":
            return True
        if self.sr_steps == "after_hb":
            return ctx.step is not None and ctx.step >= self.hb_steps
        return ctx.step in self.sr_steps

    def region_bias(self, height: int, width: int, tokens_per_region: int):
        """(N, R*L) additive bias (0 / -inf: a query in region k sees only region k's tokens; background rows see
        all, their result is discarded) and the (N, 1) inside-any-region indicator, at a layer's resolution."""
        key = (height, width, tokens_per_region)
        if key not in self._bias:
            labels = labels_at(self.labels, height, width).flatten()  # (N,)
            owner = torch.arange(len(self.regions)).repeat_interleave(tokens_per_region)  # (R*L,)
            allowed = (labels[:, None] == owner[None, :]) | (labels[:, None] < 0)
            bias = torch.zeros(allowed.shape).masked_fill_(~allowed, float("-inf"))
            self._bias[key] = (bias, (labels >= 0).float()[:, None])
        return self._bias[key]

    def _region_kv(self, ctx: AttentionContext, attn, states: torch.Tensor, half: str):
        """Keys/values of the concatenated region prompts for one layer: (1, heads, R*L, d) each (cached)."""
        key = (ctx.layer.name, half)
        if key not in self._kv:
            states = states.to(device=attn.to_k.weight.device, dtype=attn.to_k.weight.dtype)
            if attn.norm_cross:
                states = attn.norm_encoder_hidden_states(states)
            flat = states.reshape(1, -1, states.shape[-1])  # (1, R*L, D)
            k, v = attn.to_k(flat), attn.to_v(flat)
            head_dim = k.shape[-1] // attn.heads
            self._kv[key] = (split_heads(k, attn.heads, head_dim), split_heads(v, attn.heads, head_dim))
        return self._kv[key]

    def base_bias(self, height: int, width: int, num_keys: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, L) additive bias over the base prompt's keys (-inf at the foreign tokens of a query's region) and the
        (N, 1) inside-any-region indicator, at a layer's resolution."""
        key = ("base", height, width, num_keys)
        if key not in self._bias:
            labels = labels_at(self.labels, height, width).flatten()
            hidden = torch.zeros(len(self.regions) + 1, num_keys, dtype=torch.bool)  # row 0: background
            for k, ids in enumerate(self.foreign_tokens or []):
                hidden[k + 1, [i for i in ids if i < num_keys]] = True
            bias = torch.zeros(hidden.shape).masked_fill_(hidden, float("-inf"))[labels + 1]
            self._bias[key] = (bias, (labels >= 0).float()[:, None])
        return self._bias[key]

    def after_attention(self, ctx: AttentionContext, call):
        if self.sr_source == "base":
            return self._base_refinement(ctx, call)
        out = call.out.clone()
        halves = [("cond", ctx.cond, self.cond_states)]
        if self.uncond_states is not None and ctx.uncond is not None:
            halves.append(("uncond", ctx.uncond, self.uncond_states))
        h, w = ctx.resolution
        for half, rows, states in halves:
            k, v = self._region_kv(ctx, call.attn, states, half)
            bias, inside = self.region_bias(h, w, states.shape[1])
            q = call.query[rows]  # (b, heads, N, d)
            k, v = k.expand(q.shape[0], -1, -1, -1), v.expand(q.shape[0], -1, -1, -1)
            h_region = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q)[None, None])
            out[rows] = soft_refinement(out[rows], h_region, inside.to(q), self.sr_delta)
        return out

    def _base_refinement(self, ctx: AttentionContext, call):
        """Soft refinement over the base prompt's own keys, each region's foreign words masked (conditional rows)."""
        out = call.out.clone()
        h, w = ctx.resolution
        rows = ctx.cond
        q, k, v = call.query[rows], call.key[rows], call.value[rows]
        bias, inside = self.base_bias(h, w, k.shape[2])
        h_region = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q)[None, None])
        out[rows] = soft_refinement(out[rows], h_region, inside.to(q), self.sr_delta)
        return out


def soft_refinement(h_base: torch.Tensor, h_region: torch.Tensor, inside: torch.Tensor, delta: float) -> torch.Tensor:
    """RAG soft refinement: ``h = δ·h_R + (1−δ)·h_base`` inside the regions, ``h_base`` outside; inside is (N, 1)."""
    return h_base + inside * delta * (h_region - h_base)
