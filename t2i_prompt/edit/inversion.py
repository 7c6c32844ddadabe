"""DDIM inversion and null-text inversion of a real image (Mokady et al. 2023, "Null-text Inversion for Editing
Real Images using Guided Diffusion Models", arXiv 2211.09794; reference code google/prompt-to-prompt
``null_text_w_ptp.ipynb``).

``ddim_invert`` runs deterministic DDIM backwards (image -> noise) with the conditional prediction only, keeping the
latent of every level. Sampling back with guidance w > 1 drifts off that trajectory; ``null_text_inversion``
optimises one unconditional embedding per step so each guided DDIM step lands on the inverted latent of the next
level (Adam, lr 1e-2 * (1 - i/100), early stop when the loss is below ``epsilon + i * 2e-5``, as in the paper's
code). ``EmbeddingSchedule`` replays per-step embeddings inside ``T2IPipeline.__call__``; ``ddim_pipeline`` gives a
view of a pipeline whose sampler is the DDIM scheduler the inversion used.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..generate.run import PromptEmbeddings
from ..hooks import GenerationHook

__all__ = ["Inversion", "EmbeddingSchedule", "PassCounter", "OptimisationDiverged", "ddim_pipeline", "ddim_move",
           "ddim_invert", "null_text_inversion", "nti_lr", "backward_into"]


class OptimisationDiverged(ValueError):
    """A loss became NaN/inf; ``learned`` keeps the per-step embeddings finished before it (for saving)."""

    def __init__(self, message: str, learned: dict[str, list[torch.Tensor]] | None = None):
        super().__init__(message)
        self.learned = learned or {}


class PassCounter:
    """Counts UNet forward calls (a CFG-batched call is one) and the backward passes the optimisers run."""

    def __init__(self, unet=None):
        self.forward = 0
        self.backward = 0
        self._handle = unet.register_forward_hook(self._count) if unet is not None else None

    def _count(self, module, args, output) -> None:
        self.forward += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def to_dict(self) -> dict[str, int]:
        return {"unet_forward": self.forward, "unet_backward": self.backward}


def ddim_pipeline(pipeline):
    """A view of ``pipeline`` sampling with deterministic DDIM (eta 0) on its own noise schedule; it shares the
    weights and the lock. Inversion needs DDIM; SDXL's Euler scheduler is converted from the same config."""
    from diffusers import DDIMScheduler

    view = copy.copy(pipeline)
    if not isinstance(pipeline.scheduler, DDIMScheduler):
        view.scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    return view


def _alpha(scheduler, t: int) -> torch.Tensor:
    """Cumulative alpha at integer timestep ``t``; below 0 it is the schedule's final value (DDIM's convention)."""
    return scheduler.alphas_cumprod[t] if t >= 0 else scheduler.final_alpha_cumprod


def ddim_move(scheduler, model_output: torch.Tensor, sample: torch.Tensor, t_from: int, t_to: int) -> torch.Tensor:
    """Deterministic DDIM (Song et al. 2021, eq. 12 with sigma = 0) from level ``t_from`` to ``t_to`` in either
    direction: x0 and eps from the model output (epsilon / sample / v prediction), then sqrt(a_to) x0 + sqrt(1-a_to) eps.
    Matches ``DDIMScheduler.step(..., use_clipped_model_output=True)`` (the pipeline's setting) when moving down:
    with ``clip_sample`` the direction's eps is recomputed from the clipped x0."""
    a_from = _alpha(scheduler, t_from).to(sample)
    a_to = _alpha(scheduler, t_to).to(sample)
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        x0 = (sample - (1 - a_from).sqrt() * model_output) / a_from.sqrt()
        eps = model_output
    elif kind == "sample":
        x0 = model_output
        eps = (sample - a_from.sqrt() * x0) / (1 - a_from).sqrt()
    elif kind == "v_prediction":
        x0 = a_from.sqrt() * sample - (1 - a_from).sqrt() * model_output
        eps = a_from.sqrt() * model_output + (1 - a_from).sqrt() * sample
    else:
        raise ValueError(f"Unsupported prediction_type {kind!r}; DDIM inversion needs epsilon, sample or v_prediction.")
    if scheduler.config.clip_sample:
        rng = scheduler.config.clip_sample_range
        x0 = x0.clamp(-rng, rng)
        if float(a_from) < 1.0:  # at alpha 1 (set_alpha_to_one, inversion's first step) eps is not defined by x0
            eps = (sample - a_from.sqrt() * x0) / (1 - a_from).sqrt()
    return a_to.sqrt() * x0 + (1 - a_to).sqrt() * eps


@dataclass
class Inversion:
    """An inverted image: ``latents[k]`` is the latent at level k (0 = the image, ``num_steps`` = the noise);
    sampling step i (``timesteps[i]``) starts at ``latents[num_steps - i]`` and should reach ``latents[num_steps - i - 1]``.
    ``embeds`` is the source prompt's conditioning with CFG ([uncond; cond]), ``scheduler`` the DDIM schedule used."""

    latents: list[torch.Tensor]
    timesteps: list[int]
    embeds: PromptEmbeddings
    scheduler: object
    prompt: str
    seconds: float = 0.0
    uncond: list[torch.Tensor] = field(default_factory=list)  # per sampling step, after null-text inversion

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    def target(self, step: int) -> torch.Tensor:
        """The inverted latent that sampling step ``step`` should land on."""
        return self.latents[self.num_steps - step - 1]

    def start(self) -> torch.Tensor:
        return self.latents[-1]

    def prev_timestep(self, step: int) -> int:
        """The level sampling step ``step`` moves to (DDIM's ``t - T/n``)."""
        ratio = self.scheduler.config.num_train_timesteps // self.num_steps
        return int(self.timesteps[step]) - ratio


def split_embeds(embeds: PromptEmbeddings) -> tuple[PromptEmbeddings, PromptEmbeddings]:
    """[uncond; cond] -> (uncond, cond) as guidance-free conditionings (their added SDXL kwargs split alike)."""
    n = embeds.batch_size
    halves = []
    for rows in (slice(0, n), slice(n, 2 * n)):
        added = None
        if embeds.added_cond_kwargs is not None:
            added = {k: v[rows] for k, v in embeds.added_cond_kwargs.items()}
        halves.append(PromptEmbeddings(embeds.embeds[rows], added, False, embeds.input_ids, embeds.truncated))
    return halves[0], halves[1]


def with_rows(embeds: PromptEmbeddings, hidden: torch.Tensor) -> PromptEmbeddings:
    """``embeds`` with its hidden states replaced (same batch layout)."""
    return PromptEmbeddings(hidden, embeds.added_cond_kwargs, embeds.do_cfg, embeds.input_ids, embeds.truncated)


@torch.no_grad()
def ddim_invert(pipeline, image, prompt: str, num_inference_steps: int = 50, progress: bool = False,
                hooks: Sequence[GenerationHook] = ()) -> Inversion:
    """DDIM inversion of ``image`` (PIL, or (1, 3, H, W) in [0, 1]) under ``prompt`` with the conditional prediction
    (guidance 1, as null-text inversion prescribes). ``hooks`` (e.g. an attention store) see each inversion step
    through a controller of their own; returns every level's latent."""
    import time

    from tqdm.auto import tqdm

    from ..attention.controller import AttentionController

    start = time.perf_counter()
    pipe = ddim_pipeline(pipeline)
    scheduler = copy.deepcopy(pipe.scheduler)
    scheduler.set_timesteps(num_inference_steps)
    timesteps = [int(t) for t in scheduler.timesteps]
    latent = pipe.encode_image(image)
    height, width = latent.shape[-2] * pipe.vae_scale_factor, latent.shape[-1] * pipe.vae_scale_factor
    embeds = pipe.encode_prompt([prompt], do_cfg=True, height=height, width=width)
    _, cond = split_embeds(embeds)
    ratio = scheduler.config.num_train_timesteps // num_inference_steps
    latents = [latent]
    controller = AttentionController(hooks, do_cfg=False)
    with pipe._lock, controller.installed(pipe.unet):
        controller.set_latent_size(*latent.shape[-2:])
        for k, t in enumerate(tqdm(list(reversed(timesteps)), desc="DDIM inversion", disable=not progress)):
            controller.on_step_begin(num_inference_steps - 1 - k, t)
            eps = pipe.predict_noise(latent, t, cond, 1.0, scheduler)
            latent = ddim_move(scheduler, eps, latent, t - ratio, t)
            latents.append(latent)
    return Inversion(latents, timesteps, embeds, scheduler, prompt, time.perf_counter() - start)


def backward_into(loss: torch.Tensor, param: torch.Tensor) -> None:
    """``param.grad = d loss / d param`` alone: the UNet's weights get no gradient (half the backward work, and a
    shared pipeline's parameters are never touched)."""
    (param.grad,) = torch.autograd.grad(loss, [param])


def nti_lr(step: int) -> float:
    """The null-text learning rate at sampling step ``step`` (paper's code: 1e-2 * (1 - i / 100))."""
    return 1e-2 * (1.0 - step / 100.0)


def optimise_uncond(pipe, inversion: Inversion, step: int, latent: torch.Tensor, uncond: PromptEmbeddings,
                    noise_cond: torch.Tensor, guidance_scale: float, inner_steps: int, epsilon: float | None,
                    counter: PassCounter, bar=None) -> tuple[torch.Tensor, list[float]]:
    """One step of null-text inversion: Adam on the unconditional hidden states so that the guided DDIM step from
    ``latent`` lands on the inverted latent; stops early below ``epsilon + step * 2e-5`` (None: never). Returns the
    learned hidden states and the loss of every inner iteration."""
    t, target = inversion.timesteps[step], inversion.target(step)
    t_prev = inversion.prev_timestep(step)
    hidden = uncond.embeds.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([hidden], lr=nti_lr(step))
    losses: list[float] = []
    for _ in range(inner_steps):
        with torch.enable_grad():
            noise_uncond = pipe.predict_noise(latent, t, with_rows(uncond, hidden), 1.0, inversion.scheduler)
            guided = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
            loss = F.mse_loss(ddim_move(inversion.scheduler, guided, latent, t, t_prev), target)
            if not torch.isfinite(loss):
                raise OptimisationDiverged(f"null-text inversion: the loss became {loss.item()} at step {step}; "
                                           "lower the guidance or the learning rate (kept the steps before).")
            backward_into(loss, hidden)
            counter.backward += 1
            optimiser.step()
        losses.append(loss.item())
        if bar is not None:
            bar.update(1)
        if epsilon is not None and losses[-1] < epsilon + step * 2e-5:
            break
    return hidden.detach(), losses


def null_text_inversion(pipeline, inversion: Inversion, guidance_scale: float = 7.5, inner_steps: int = 10,
                        epsilon: float | None = 1e-5, progress: bool = False, counter: PassCounter | None = None,
                        on_step: Callable[[int, list[float]], None] | None = None) -> Inversion:
    """Null-text inversion (Mokady et al. 2023, Algorithm 1): per sampling step, optimise the unconditional
    embedding, then take the guided DDIM step with it. Fills and returns ``inversion.uncond`` (one per step)."""
    from tqdm.auto import tqdm

    if guidance_scale <= 1.0:
        raise ValueError(f"null-text inversion needs guidance > 1 (got {guidance_scale}); at guidance <= 1 plain "
                         "DDIM inversion already reconstructs, use method 'ddim'.")
    pipe = ddim_pipeline(pipeline)
    counter = counter or PassCounter()
    uncond, cond = split_embeds(inversion.embeds)
    latent = inversion.start()
    learned: list[torch.Tensor] = []
    bar = tqdm(total=inversion.num_steps * inner_steps, desc="null-text inversion", disable=not progress)
    for i, t in enumerate(inversion.timesteps):
        with torch.no_grad():
            noise_cond = pipe.predict_noise(latent, t, cond, 1.0, inversion.scheduler)
        try:
            hidden, losses = optimise_uncond(pipe, inversion, i, latent, uncond, noise_cond, guidance_scale,
                                             inner_steps, epsilon, counter, bar)
        except OptimisationDiverged as e:
            e.learned = {"uncond": learned}
            raise
        bar.update(inner_steps - len(losses))
        learned.append(hidden)
        uncond = with_rows(uncond, hidden)  # warm start of the next step, as in the paper
        if on_step is not None:
            on_step(i, losses)
        with torch.no_grad():
            noise_uncond = pipe.predict_noise(latent, t, uncond, 1.0, inversion.scheduler)
            guided = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
            latent = ddim_move(inversion.scheduler, guided, latent, t, inversion.prev_timestep(i))
    bar.close()
    inversion.uncond = learned
    return inversion


class EmbeddingSchedule(GenerationHook):
    """Replays per-step conditioning: at step i the call's hidden states become ``hidden[i]`` (the whole CFG batch,
    e.g. learned null-text rows + prompt rows); steps beyond the schedule keep the last entry."""

    def __init__(self, hidden: Sequence[torch.Tensor]):
        if not hidden:
            raise ValueError("EmbeddingSchedule needs at least one step of embeddings.")
        self.hidden = list(hidden)

    def on_step_begin(self, step, timestep, state) -> None:
        h = self.hidden[min(step, len(self.hidden) - 1)]
        if tuple(h.shape) != tuple(state.embeds.embeds.shape):
            raise ValueError(f"Scheduled embeddings have shape {tuple(h.shape)} but the call's are "
                             f"{tuple(state.embeds.embeds.shape)}; build the schedule for the same prompts.")
        state.embeds = with_rows(state.embeds, h.to(state.embeds.embeds))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1]."""
    mse = float(F.mse_loss(a.float(), b.float()))
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)
