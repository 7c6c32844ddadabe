"""Attention controller: one protocol for every attention hook (capture, LPA, regions) and every step hook.

In the spirit of prompt-to-prompt's ``AttentionControl`` and diffusers' attention processors: hooks are small
objects; the controller installs ``HookedAttnProcessor`` on the layers some hook wants (``set_attn_processor``,
never patched ``forward``), leaves the other layers on their original processor (SDPA), tells hooks when steps
begin and end (announced by the pipeline, never counted) and restores the original processor objects on exit,
also when generation raises.

The pipeline's denoising loop talks only to this class:

    controller = AttentionController(hooks)
    with controller.installed(unet):
        controller.on_start(run)                  # run.controller is this controller
        for i, t in enumerate(run.timesteps):
            controller.on_step_begin(i, t, state)  # state: t2i_prompt.hooks.StepState
            ...unet forward...
            state.latents = scheduler.step(...).prev_sample
            controller.on_step_end(i, t, state)
        controller.on_end()

Step hooks (``t2i_prompt.hooks.GenerationHook``) only see the step protocol; ``AttentionHook`` adds the layer one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import torch

from ..hooks import GenerationHook, StepState
from .processor import HookedAttnProcessor, infer_hw

__all__ = ["AttentionHook", "AttentionController", "AttentionContext", "LayerInfo", "unet_layers"]


@dataclass(frozen=True)
class LayerInfo:
    """One attention layer of a UNet, described from the block structure (works for SD1.5, SDXL, shapes, tiny).

    ``tag``: ``down{k}``/``up{k}`` numbers the attention-bearing down/up blocks from 1 in forward order, ``mid``
    for the mid block; with SD1.5 this reproduces LPA's names (down1 = down_blocks.0, up1 = up_blocks.1).
    ``factor``: the layer's spatial downsampling relative to the latent (1, 2, 4, ...).
    """

    name: str  # diffusers module path, e.g. "down_blocks.1.attentions.0.transformer_blocks.0.attn2"
    place: str  # "down" | "mid" | "up"
    block: int  # index in down_blocks / up_blocks (0 for mid)
    tag: str
    factor: int
    is_cross: bool
    heads: int


@dataclass
class AttentionContext:
    """What a hook knows about one attention call. The CFG batch is ``[uncond; cond]`` when ``do_cfg``."""

    layer: LayerInfo
    step: int | None
    timestep: float | None
    batch_size: int  # rows of this call (2x the images with CFG)
    do_cfg: bool
    latent_hw: tuple[int, int] | None
    num_queries: int = 0
    resolution: tuple[int, int] | None = None  # (h, w) of this layer's query grid

    @property
    def num_images(self) -> int:
        return self.batch_size // 2 if self.do_cfg else self.batch_size

    @property
    def cond(self) -> slice:
        """Rows of the conditional half."""
        return slice(self.num_images, self.batch_size) if self.do_cfg else slice(0, self.batch_size)

    @property
    def uncond(self) -> slice | None:
        """Rows of the unconditional half (None without CFG)."""
        return slice(0, self.num_images) if self.do_cfg else None

    def set_queries(self, num_queries: int, hw: tuple[int, int] | None) -> None:
        self.num_queries = num_queries
        self.resolution = hw if hw is not None else infer_hw(num_queries, self.latent_hw, self.layer.factor)


class AttentionHook(GenerationHook):
    """Base class of attention hooks: the step protocol of ``GenerationHook`` plus, on layers where
    ``wants_layer`` is True and only when ``is_active``: ``edit_context`` (cross-attention tokens before k/v),
    ``attention_bias`` (additive, -inf masks), ``after_attention`` (observe or replace the (B, heads, N, d) output).
    Set ``needs_probabilities`` to get ``call.token_probs``. Every method is an optional no-op.
    """

    needs_probabilities = False

    def wants_layer(self, layer: LayerInfo) -> bool:
        return False

    def is_active(self, ctx: AttentionContext) -> bool:
        return True

    def edit_context(self, ctx: AttentionContext, attn, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        return encoder_hidden_states

    def attention_bias(self, ctx: AttentionContext, num_queries: int, num_keys: int) -> torch.Tensor | None:
        return None

    def after_attention(self, ctx: AttentionContext, call) -> torch.Tensor | None:
        return None


def _number_blocks(blocks: dict, place: str, unet_blocks, factor, resampler: str, change) -> int:
    """Tag the attention-bearing blocks ``<place>1, <place>2, ...`` in forward order with their downsampling factor;
    returns the factor after the last block (each resampler multiplies it by ``change``)."""
    k = 0
    for i, block in enumerate(unet_blocks):
        if hasattr(block, "attentions"):
            k += 1
            blocks[f"{place}_blocks.{i}."] = (place, i, f"{place}{k}", int(factor))
        if getattr(block, resampler, None):
            factor *= change
    return factor


def unet_layers(unet) -> dict[str, LayerInfo]:
    """Describe every attention layer of a ``UNet2DConditionModel``, keyed by its ``attn_processors`` key."""
    blocks: dict[str, tuple[str, int, str, int]] = {}  # module prefix -> (place, block, tag, factor)
    factor = _number_blocks(blocks, "down", unet.down_blocks, 1, "downsamplers", 2)
    if unet.mid_block is not None:
        blocks["mid_block."] = ("mid", 0, "mid", factor)
    _number_blocks(blocks, "up", unet.up_blocks, factor, "upsamplers", 0.5)
    layers = {}
    for key in unet.attn_processors:
        name = key.removesuffix(".processor")
        prefix = next((p for p in blocks if name.startswith(p)), None)
        if prefix is None:
            raise ValueError(f"Attention layer {name!r} is outside down_blocks/mid_block/up_blocks; unsupported UNet.")
        place, block, tag, f = blocks[prefix]
        module = unet.get_submodule(name)
        layers[key] = LayerInfo(name, place, block, tag, f, bool(module.is_cross_attention), int(module.heads))
    return layers


class AttentionController:
    """Composes hooks (applied in list order) and installs one processor per hooked attention layer."""

    def __init__(self, hooks: Sequence[AttentionHook] = (), do_cfg: bool = True):
        self.hooks = [h for h in hooks if h is not None]
        for hook in self.hooks:
            if not isinstance(hook, GenerationHook):
                raise TypeError(f"{type(hook).__name__} is not a hook; subclass t2i_prompt.hooks.GenerationHook "
                                "(step hooks) or t2i_prompt.attention.AttentionHook (attention hooks).")
        self.do_cfg = do_cfg
        self.step: int | None = None
        self.timestep = None
        self.latent_hw: tuple[int, int] | None = None
        self.layers: dict[str, LayerInfo] = {}
        self._suspended = 0

    # ---- installation -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def installed(self, unet):
        """Install processors on the layers some hook wants; restore the original processor objects on exit."""
        originals = dict(unet.attn_processors)
        self.layers = unet_layers(unet)
        processors = dict(originals)
        for key, layer in self.layers.items():
            wanting = [h for h in self.hooks if isinstance(h, AttentionHook) and h.wants_layer(layer)]
            if wanting:
                processors[key] = HookedAttnProcessor(self, layer, wanting)
        try:
            if any(p is not originals[k] for k, p in processors.items()):
                unet.set_attn_processor(processors)
            yield self
        finally:
            unet.set_attn_processor(originals)

    @contextlib.contextmanager
    def suspended(self):
        """Run UNet passes inside this block with plain SDPA (hooks off), e.g. hard binding's per-region passes."""
        self._suspended += 1
        try:
            yield
        finally:
            self._suspended -= 1

    def context(self, layer: LayerInfo, hidden_states: torch.Tensor) -> AttentionContext | None:
        """The context of one attention call, or None while suspended."""
        if self._suspended:
            return None
        return AttentionContext(layer, self.step, self.timestep, hidden_states.shape[0], self.do_cfg, self.latent_hw)

    def set_latent_size(self, height: int, width: int) -> None:
        """Latent (h, w) for layers whose queries arrive flattened (set by ``on_start`` from the run)."""
        self.latent_hw = (int(height), int(width))

    # ---- step protocol -----------------------------------------------------------------------------------
    def on_start(self, run) -> None:
        if hasattr(run, "controller"):
            run.controller = self  # hooks reach the controller through the run (e.g. to suspend themselves)
        self.do_cfg = bool(getattr(run, "do_cfg", self.do_cfg))
        shape = getattr(run, "latent_shape", None)
        if shape is not None:
            self.set_latent_size(shape[-2], shape[-1])
        for h in self.hooks:
            h.on_start(run)

    def on_step_begin(self, step: int, timestep, state: StepState | None = None) -> None:
        self.step = int(step)
        self.timestep = float(timestep.item() if isinstance(timestep, torch.Tensor) else timestep)
        for h in self.hooks:
            h.on_step_begin(step, timestep, state)

    def on_step_end(self, step: int, timestep, state: StepState) -> None:
        for h in self.hooks:
            h.on_step_end(step, timestep, state)

    def on_end(self) -> None:
        for h in self.hooks:
            h.on_end()
