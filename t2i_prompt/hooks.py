"""Step hooks: the protocol every generation hook follows, below both ``generate/`` and ``attention/``.

A denoising loop announces each step to its hooks (never counted by them), with the state they may read and
replace, in the spirit of diffusers' ``callback_on_step_end`` and its ``_callback_tensor_inputs``::

    hook.on_start(run)                       # once, with the GenerationRun (prompts, timesteps, controller, ...)
    for i, t in enumerate(run.timesteps):
        hook.on_step_begin(i, t, state)      # may replace state.embeds for this step (null-text inversion, DPL)
        ...UNet + CFG + scheduler step...
        hook.on_step_end(i, t, state)        # may replace state.latents / state.embeds for the next step
    hook.on_end()

Latent recorders, repaint and progress reporting are step hooks; attention hooks (``attention.AttentionHook``) add
the per-layer protocol on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["GenerationHook", "ProgressHook", "StepState"]


@dataclass
class StepState:
    """What a step hook sees and may replace between steps.

    ``latents``: the current latents (before the step in ``on_step_begin``, after it in ``on_step_end``);
    ``embeds``: the ``PromptEmbeddings`` the next UNet call uses (with CFG the batch is [uncond; cond]);
    ``noise_pred``: this step's guided model output, and ``denoised`` the scheduler's x0 estimate (after the step).
    """

    latents: Any
    embeds: Any
    noise_pred: Any = None
    denoised: Any = None


class GenerationHook:
    """Base class of every hook; every method is an optional no-op."""

    def on_start(self, run) -> None:
        pass

    def on_step_begin(self, step: int, timestep, state: StepState) -> None:
        pass

    def on_step_end(self, step: int, timestep, state: StepState) -> None:
        pass

    def on_end(self) -> None:
        pass


class ProgressHook(GenerationHook):
    """Calls ``callback(step, num_steps, state)`` after every step (progress bars, live previews of ``denoised``)."""

    def __init__(self, callback: Callable[[int, int, StepState], None]):
        if not callable(callback):
            raise ValueError(f"ProgressHook needs a callable callback(step, num_steps, state), got {callback!r}.")
        self.callback = callback
        self.num_steps = 0

    def on_start(self, run) -> None:
        self.num_steps = len(run.timesteps)

    def on_step_end(self, step: int, timestep, state: StepState) -> None:
        self.callback(step + 1, self.num_steps, state)
