"""The data of one generation call: its text conditioning, its run state (what hooks read) and its output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class PromptEmbeddings:
    """Text conditioning for one batch. With CFG the batch is [uncond; cond] (as in diffusers).

    ``input_ids`` are the conditional prompts' ids from the first tokenizer (B, max_len), for token bookkeeping;
    ``truncated[i]`` is the text dropped from prompt i ('' when it fit).
    """

    embeds: torch.Tensor
    added_cond_kwargs: dict[str, torch.Tensor] | None = None
    do_cfg: bool = True
    input_ids: torch.Tensor | None = None
    truncated: list[str] = field(default_factory=list)

    @property
    def batch_size(self) -> int:
        """Images this conditioning is for (half the rows with CFG)."""
        return self.embeds.shape[0] // 2 if self.do_cfg else self.embeds.shape[0]


@dataclass
class GenerationRun:
    """State of one ``T2IPipeline.__call__``; hooks read it in ``on_start`` (design.md §Generation).

    ``embeds`` holds the text conditioning of the call (per-step replacements live in the step state).
    ``latent_shape`` is (batch, channels, height // s, width // s) with s the VAE scale factor (1 in pixel space).
    ``scheduler`` is this call's own scheduler (a copy: two calls sharing a pipeline never share its state);
    ``controller`` the hook controller of the call (set when the loop starts).
    """

    pipeline: Any
    prompts: list[str]
    negative_prompts: list[str] | None
    batch_size: int
    do_cfg: bool
    guidance_scale: float
    height: int
    width: int
    latent_shape: tuple[int, ...]
    timesteps: torch.Tensor
    embeds: PromptEmbeddings
    num_inference_steps: int
    scheduler: Any = None
    generators: list[torch.Generator] | None = None
    controller: Any = None

    @property
    def truncated(self) -> list[str]:
        """Per prompt, the text dropped because it exceeded the tokenizer window ('' when nothing was dropped)."""
        return self.embeds.truncated


@dataclass
class T2IPipelineOutput:
    """Images (PIL list, tensor in [0, 1] or latents per ``output_type``), final latents and the run state;
    ``nsfw_content_detected[i]`` is the safety checker's flag of image i (None without a checker), as in diffusers."""

    images: Any
    latents: torch.Tensor
    run: GenerationRun
    nsfw_content_detected: list[bool] | None = None
