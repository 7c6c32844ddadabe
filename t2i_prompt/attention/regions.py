"""Region binding for UNets: RAG's hard binding and soft refinement, and repainting.

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
* **Repaint**: a ``LatentRecorder`` keeps the original latents per step; ``RepaintHook`` replaces everything outside
  the (dilated) mask by them at every step end, so only the masked region changes.

Overlaps: a position belongs to the **last** region that covers it (RAG issue #11: later boxes overwrite earlier ones).
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F

from .controller import AttentionContext, AttentionHook, LayerInfo
from .processor import split_heads

__all__ = ["Region", "check_box", "label_map", "labels_at", "RegionHook", "LatentRecorder", "RepaintHook", "dilate_mask",
           "soft_refinement", "repaint", "RepaintOutput"]

DEFAULT_MAX_REGIONS = 8


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


def _maybe_suspended(controller):
    return controller.suspended() if controller is not None else contextlib.nullcontext()


@contextlib.contextmanager
def _using_scheduler(pipeline, scheduler):
    """Let ``predict_noise`` scale its input with the region's own scheduler copy: stateful schedulers (Euler)
    read their step index there, and the global scheduler has already advanced past this step."""
    saved, pipeline.scheduler = pipeline.scheduler, scheduler
    try:
        yield
    finally:
        pipeline.scheduler = saved


class RegionHook(AttentionHook):
    """RAG hard binding + soft refinement for any ``UNet2DConditionModel`` (the run's prompt is the base prompt).

    Args:
        regions: ``Region`` list (boxes or masks, each with a prompt and optional negative prompt).
        hb_steps: hard-binding steps (RAG ``HB_replace``, default 2); 0 disables hard binding.
        sr_delta: soft-refinement weight δ in [0, 1] (RAG ``SR_delta``, default 1.0); 0 disables it.
        sr_steps: ``"all"`` (RAG code: every step), ``"after_hb"`` (paper figure), ``"none"``, or step indices.
        max_regions: the prompt budget: soft refinement attends to all region prompts at once (R x 77 tokens).
        seed: mixed with each image's own seed (``run.generators``) and the region index into the seed of the
            region's own initial noise for hard binding (RAG gives every region its own noise latent).
    """

    def __init__(self, regions: Sequence[Region], hb_steps: int = 2, sr_delta: float = 1.0,
                 sr_steps: str | Iterable[int] = "all", max_regions: int = DEFAULT_MAX_REGIONS, seed: int = 0):
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
        self.regions, self.hb_steps, self.sr_delta, self.seed = regions, int(hb_steps), float(sr_delta), int(seed)
        self.sr_steps = sr_steps if isinstance(sr_steps, str) else {int(s) for s in sr_steps}
        self.labels: torch.Tensor | None = None
        self.run = None

    # ---- setup -------------------------------------------------------------------------------------------
    def set_region_states(self, cond: torch.Tensor, uncond: torch.Tensor | None = None) -> None:
        """Region prompt encoder states (R, L, D) for the conditional (and optionally unconditional) half."""
        if cond.shape[0] != len(self.regions):
            raise ValueError(f"Expected {len(self.regions)} region prompt states, got {cond.shape[0]}.")
        self.cond_states, self.uncond_states = cond, uncond
        self._kv: dict = {}
        self._bias: dict = {}

    def set_latent_size(self, height: int, width: int, image_size=None) -> None:
        self.labels = label_map(self.regions, height, width, image_size)

    def on_start(self, run) -> None:
        self.run = run
        pipe = run.pipeline
        h, w = run.latent_shape[-2:]
        self.set_latent_size(h, w, (run.height, run.width))
        embeds = pipe.encode_prompt([r.prompt for r in self.regions], self._negatives(), do_cfg=run.do_cfg,
                                    height=run.height, width=run.width).embeds
        n = len(self.regions)
        cond = embeds[n:] if run.do_cfg else embeds
        uncond = embeds[:n] if run.do_cfg and any(r.negative_prompt for r in self.regions) else None
        self.set_region_states(cond, uncond)
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
            box = _snapped_box(inside, snap, self.labels.shape)
            y0, y1, x0, x1 = box
            shape = (run.batch_size, run.latent_shape[1], y1 - y0, x1 - x0)
            scheduler = copy.deepcopy(pipe.scheduler)
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
    def on_step_end(self, step: int, timestep, latents):
        if step >= self.hb_steps or self.run is None:
            return latents
        run, latents = self.run, latents.clone()
        for state in self.hb:
            if state is None:
                continue
            z = state["latents"]
            with _maybe_suspended(self.controller), _using_scheduler(run.pipeline, state["scheduler"]):
                eps = run.pipeline.predict_noise(z, timestep, state["embeds"], run.guidance_scale)
            z = state["scheduler"].step(eps, timestep, z).prev_sample
            state["latents"] = z
            y0, y1, x0, x1 = state["box"]
            mask = state["mask"].to(latents.device)
            latents[..., y0:y1, x0:x1] = torch.where(mask, z.to(latents.dtype), latents[..., y0:y1, x0:x1])
        return latents

    # ---- soft refinement ---------------------------------------------------------------------------------
    def wants_layer(self, layer: LayerInfo) -> bool:
        return layer.is_cross and self.sr_delta > 0 and self.sr_steps != "none"

    def is_active(self, ctx: AttentionContext) -> bool:
        if self.labels is None or not hasattr(self, "cond_states"):
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

    def after_attention(self, ctx: AttentionContext, call):
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


def soft_refinement(h_base: torch.Tensor, h_region: torch.Tensor, inside: torch.Tensor, delta: float) -> torch.Tensor:
    """RAG soft refinement: ``h = δ·h_R + (1−δ)·h_base`` inside the regions, ``h_base`` outside; inside is (N, 1)."""
    return h_base + inside * delta * (h_region - h_base)


def _snapped_box(inside: torch.Tensor, snap: int, shape) -> tuple[int, int, int, int]:
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


class LatentRecorder(AttentionHook):
    """Keep the latents at every step end (the original generation that a repaint keeps outside its mask)."""

    def __init__(self):
        self.latents: list[torch.Tensor] = []

    def on_start(self, run) -> None:
        self.latents = []

    def on_step_end(self, step, timestep, latents):
        self.latents.append(latents.detach().clone())
        return latents


class RepaintHook(AttentionHook):
    """Replace the latents outside ``mask`` (bool, latent size) by the recorded original ones at every step end."""

    def __init__(self, reference: Sequence[torch.Tensor], mask: torch.Tensor):
        if not reference:
            raise ValueError("RepaintHook needs the original generation's latents (run it with a LatentRecorder).")
        if tuple(mask.shape) != tuple(reference[0].shape[-2:]):
            raise ValueError(f"Repaint mask shape {tuple(mask.shape)} != latent size {tuple(reference[0].shape[-2:])}.")
        self.reference, self.mask = list(reference), mask.bool()

    def on_step_end(self, step, timestep, latents):
        if step >= len(self.reference):
            raise ValueError(f"Repaint has {len(self.reference)} recorded steps; use the same num_inference_steps.")
        original = self.reference[step].to(latents)
        return torch.where(self.mask.to(latents.device), latents, original)


@dataclass
class RepaintOutput:
    """Original and repainted images (``output_type`` of the pipeline), the latent mask and both final latents."""

    original: Any
    image: Any
    mask: torch.Tensor  # bool (h, w) at latent resolution, after dilation
    original_latents: torch.Tensor
    latents: torch.Tensor


def repaint(pipeline, prompt: str, region: Region, seed: int = 0, new_seed: int | None = None,
            repaint_prompt: str | None = None, dilate: int = 1, hb_steps: int = 2, sr_delta: float = 1.0,
            paste_outside: bool = True, hooks: Sequence[AttentionHook] = (), **call_kwargs) -> RepaintOutput:
    """Regenerate ``region`` (box or mask) with ``region.prompt`` and a new seed; everything else stays as generated.

    1. Generate ``prompt`` from ``seed`` with a ``LatentRecorder`` (the original).
    2. Generate again from the same noise, with fresh noise (``new_seed``, default ``seed + 1``) inside the dilated
       mask, the whole-image prompt ``repaint_prompt`` (default ``prompt``), the region bound to ``region.prompt``
       (``RegionHook``: hard binding + soft refinement, RAG's repaint HB/SR prompts) and ``RepaintHook`` restoring
       the original latents outside the mask at every step end (RAG repainting, no inpainting model).
    3. With ``paste_outside`` the decoded original pixels outside the mask are pasted back, because a VAE decoder
       (its mid-block attention) lets the changed region shift far-away pixels slightly; in pixel space
       (vae=None) the latents are the image, so this changes nothing.
    ``call_kwargs`` go to both pipeline calls (num_inference_steps, guidance_scale, height, width, negative_prompt).
    """
    height = call_kwargs.pop("height", None) or pipeline.defaults["height"]
    width = call_kwargs.pop("width", None) or pipeline.defaults["width"]
    output_type = call_kwargs.pop("output_type", "pil")
    shape = pipeline.latent_shape(1, height, width)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(int(seed)))
    mask = dilate_mask(region.mask_at(shape[-2], shape[-1], (height, width)), dilate)
    if not mask.any():
        raise ValueError(f"Repaint region {region.box or 'mask'} covers no latent position; enlarge it.")
    new_seed = int(seed) + 1 if new_seed is None else int(new_seed)
    new_noise = torch.randn(shape, generator=torch.Generator().manual_seed(new_seed))
    recorder = LatentRecorder()
    original = pipeline(prompt, height=height, width=width, latents=noise, hooks=[*hooks, recorder],
                        output_type="pt", **call_kwargs)
    bound = Region(region.prompt, mask=mask.float(), negative_prompt=region.negative_prompt)
    repaint_hooks = [*hooks, RegionHook([bound], hb_steps=hb_steps, sr_delta=sr_delta, seed=new_seed),
                     RepaintHook(recorder.latents, mask)]
    result = pipeline(repaint_prompt or prompt, height=height, width=width,
                      latents=torch.where(mask, new_noise, noise), hooks=repaint_hooks, output_type="pt", **call_kwargs)
    image = result.images
    if paste_outside:
        pixel_mask = F.interpolate(mask.float()[None, None], size=image.shape[-2:], mode="nearest")[0, 0] > 0.5
        image = torch.where(pixel_mask, image, original.images)
    return RepaintOutput(pipeline.postprocess(original.images, output_type), pipeline.postprocess(image, output_type),
                         mask, original.latents, result.latents)
