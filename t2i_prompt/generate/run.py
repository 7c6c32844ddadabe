"""``GenerationRun``: everything a hook may want to know about the current generation, built once per call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .pipeline import PromptEmbeddings, T2IPipeline


@dataclass
class GenerationRun:
    """State of one ``T2IPipeline.__call__``; hooks read it in ``on_start`` (design.md §Generation).

    ``embeds`` holds the text conditioning with the CFG batch laid out as [uncond; cond] when ``do_cfg``.
    ``latent_shape`` is (batch, channels, height // s, width // s) with s the VAE scale factor (1 in pixel space).
    """

    pipeline: "T2IPipeline"
    prompts: list[str]
    negative_prompts: list[str] | None
    batch_size: int
    do_cfg: bool
    guidance_scale: float
    height: int
    width: int
    latent_shape: tuple[int, ...]
    timesteps: torch.Tensor
    embeds: "PromptEmbeddings"
    num_inference_steps: int
    generators: list[torch.Generator] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def truncated(self) -> list[str]:
        """Per prompt, the text dropped because it exceeded the tokenizer window ('' when nothing was dropped)."""
        return self.embeds.truncated
