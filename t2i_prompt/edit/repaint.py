"""Repainting one region of a generated image (RAG's repaint, no inpainting model): regenerate it with a new prompt
and seed while the rest of the image follows the original generation step by step.

A ``LatentRecorder`` keeps the original latents per step; ``RepaintHook`` replaces everything outside the (dilated)
mask by them at every step end, so only the masked region changes; ``RegionHook`` binds the region's prompt there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..attention.masks import Region, dilate_mask
from ..attention.regions import RegionHook
from ..hooks import GenerationHook

__all__ = ["LatentRecorder", "RepaintHook", "RepaintOutput", "repaint"]


class LatentRecorder(GenerationHook):
    """Keep the latents at every step end (the original generation that a repaint keeps outside its mask)."""

    def __init__(self):
        self.latents: list[torch.Tensor] = []

    def on_start(self, run) -> None:
        self.latents = []

    def on_step_end(self, step, timestep, state) -> None:
        self.latents.append(state.latents.detach().clone())


class RepaintHook(GenerationHook):
    """Replace the latents outside ``mask`` (bool, latent size) by the recorded original ones at every step end."""

    def __init__(self, reference: Sequence[torch.Tensor], mask: torch.Tensor):
        if not reference:
            raise ValueError("RepaintHook needs the original generation's latents (run it with a LatentRecorder).")
        if tuple(mask.shape) != tuple(reference[0].shape[-2:]):
            raise ValueError(f"Repaint mask shape {tuple(mask.shape)} != latent size {tuple(reference[0].shape[-2:])}.")
        self.reference, self.mask = list(reference), mask.bool()

    def on_step_end(self, step, timestep, state) -> None:
        if step >= len(self.reference):
            raise ValueError(f"Repaint has {len(self.reference)} recorded steps; use the same num_inference_steps.")
        original = self.reference[step].to(state.latents)
        state.latents = torch.where(self.mask.to(state.latents.device), state.latents, original)


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
            paste_outside: bool = True, hooks: Sequence[GenerationHook] = (), **call_kwargs) -> RepaintOutput:
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
    sizes = pipeline.resolve_settings(height=call_kwargs.pop("height", None), width=call_kwargs.pop("width", None))
    height, width = sizes["height"], sizes["width"]
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
