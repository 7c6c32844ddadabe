"""Attention controller (SKELETON - to be completed by the attention-hooks work).

The pipeline's denoising loop talks only to this class:

    controller = AttentionController(hooks)
    with controller.installed(unet):
        controller.on_start(run)
        for i, t in enumerate(run.timesteps):
            controller.on_step_begin(i, t)
            ...unet forward...
            latents = scheduler.step(...).prev_sample
            latents = controller.on_step_end(i, t, latents)
        controller.on_end()
"""

from __future__ import annotations

import contextlib
from typing import Sequence


class AttentionHook:
    """Base class of every generation hook; every method is an optional no-op."""

    def on_start(self, run) -> None:
        pass

    def on_step_begin(self, step: int, timestep: int) -> None:
        pass

    def on_step_end(self, step: int, timestep: int, latents):
        return latents

    def on_end(self) -> None:
        pass


class AttentionController:
    """Composes hooks and (later) installs one attention processor per UNet layer."""

    def __init__(self, hooks: Sequence[AttentionHook] = ()):
        self.hooks = list(hooks)

    @contextlib.contextmanager
    def installed(self, unet):
        yield self

    def on_start(self, run) -> None:
        for h in self.hooks:
            h.on_start(run)

    def on_step_begin(self, step: int, timestep: int) -> None:
        for h in self.hooks:
            h.on_step_begin(step, timestep)

    def on_step_end(self, step: int, timestep: int, latents):
        for h in self.hooks:
            latents = h.on_step_end(step, timestep, latents)
        return latents

    def on_end(self) -> None:
        for h in self.hooks:
            h.on_end()
