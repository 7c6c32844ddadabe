"""``T2IPipeline``: one denoising loop for SD1.x/2.x, SDXL and pixel-space UNets (the shapes world).

The structure follows diffusers' ``StableDiffusionPipeline.__call__`` (huggingface/diffusers:
src/diffusers/pipelines/stable_diffusion/pipeline_stable_diffusion.py): check inputs, encode the prompt, set
timesteps, prepare latents, an inline loop with classifier-free guidance (Ho & Salimans 2022) visible, decode,
postprocess. The differences between model families are data, not code paths:

* SDXL = two (tokenizer, text encoder) pairs whose penultimate hidden states are concatenated, plus
  ``added_cond_kwargs`` (pooled text embeds of the second encoder and the 6 size/crop "time ids"; Podell et al. 2023
  §2.2), used when ``unet.config.addition_embed_type == "text_time"``.
* pixel space = ``vae=None``: the UNet denoises RGB in [-1, 1] directly.

Every loop step talks to an ``AttentionController`` (design.md), which is how attention hooks plug in.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import threading
from typing import Any, Sequence

import torch

from ..attention.controller import AttentionController
from ..hooks import StepState
from ..models.loading import resolve_model_path
from ..utils import select_device_dtype
from .components import COMPONENTS, REQUIRED_COMPONENTS, load_component, read_sampling_defaults
from .images import ImageCodec
from .micro_conditioning import add_time_ids, check_size_conditioning
from .prompts import as_prompt_list, tokenize_window
from .run import GenerationRun, PromptEmbeddings, T2IPipelineOutput


class T2IPipeline(ImageCodec):
    """Text-to-image sampling over diffusers/transformers components (see module docstring).

    Args mirror diffusers' pipeline components; ``defaults`` may set ``height``, ``width``,
    ``num_inference_steps`` and ``guidance_scale`` (read from ``t2i_sampling.json`` by ``from_pretrained``).
    """

    def __init__(self, unet, scheduler, text_encoder, tokenizer, text_encoder_2=None, tokenizer_2=None, vae=None,
                 defaults: dict | None = None, name: str | None = None, force_zeros_for_empty_prompt: bool = False,
                 safety_checker=None, feature_extractor=None, variant: str | None = None):
        if (text_encoder_2 is None) != (tokenizer_2 is None):
            raise ValueError("text_encoder_2 and tokenizer_2 must be given together (SDXL) or both be None.")
        self.unet, self.scheduler, self.vae = unet, scheduler, vae
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.text_encoder_2, self.tokenizer_2 = text_encoder_2, tokenizer_2
        self.name = name
        self.variant = variant  # the weight variant read ("fp16"), None for the plain files
        if (safety_checker is None) != (feature_extractor is None):
            raise ValueError("safety_checker and feature_extractor must be given together (SD1.x/2.x) or both None.")
        self.safety_checker, self.feature_extractor = safety_checker, feature_extractor
        # SDXL convention: with no negative prompt the unconditional embedding is all zeros.
        self.force_zeros_for_empty_prompt = force_zeros_for_empty_prompt
        self.defaults = {"num_inference_steps": 50, "guidance_scale": 5.0 if self.is_sdxl else 7.5,
                         "height": unet.config.sample_size * self.vae_scale_factor,
                         "width": unet.config.sample_size * self.vae_scale_factor}
        self.defaults.update({k: v for k, v in (defaults or {}).items() if v is not None})
        # One pipeline may serve concurrent requests (an app): a call installs attention processors on the shared
        # UNet and the fast tokenizers keep padding state per call, so calls take turns on both (re-entrant: hooks
        # encode region prompts inside a call); everything else of a call (scheduler copy, run state) is its own.
        self._lock = threading.RLock()

    def resolve_settings(self, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                         height: int | None = None, width: int | None = None) -> dict[str, Any]:
        """The sampling settings a call uses: each given value, else the model's default (the one copy of this rule).
        ``None`` means "the default"; anything else is used as given and checked by ``check_inputs``."""
        given = {"num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale, "height": height,
                 "width": width}
        settings = {k: (self.defaults[k] if v is None else v) for k, v in given.items()}
        settings["guidance_scale"] = float(settings["guidance_scale"])
        return settings

    # ------------------------------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def is_sdxl(self) -> bool:
        return getattr(self.unet.config, "addition_embed_type", None) == "text_time"

    @property
    def vae_scale_factor(self) -> int:
        return 1 if self.vae is None else 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: 8 as in diffusers (the VAE's factor if larger). The UNet handles
        latents its downsampling does not divide (diffusers' ``forward_upsample_size``); hooks round their masks."""
        return max(8, self.vae_scale_factor)

    @property
    def text_towers(self) -> list[tuple[Any, Any]]:
        """(tokenizer, text encoder) pairs: one for SD1.x/2.x and pixel models, two for SDXL."""
        towers = [(self.tokenizer, self.text_encoder)]
        if self.text_encoder_2 is not None:
            towers.append((self.tokenizer_2, self.text_encoder_2))
        return towers

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.unet, self.vae, self.text_encoder, self.text_encoder_2, self.safety_checker)
                if m is not None]

    def to(self, device=None, dtype=None) -> "T2IPipeline":
        for m in self.modules():
            m.to(device=device, dtype=dtype)
        return self

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name: str | os.PathLike | None = None, device=None, dtype=None,
                        variant: str | None = None, safety_checker: bool = True,
                        config: str | os.PathLike | None = None) -> "T2IPipeline":
        """Load from a diffusers-layout directory (``shapes`` by default, ``tiny:sd15``, a path or a hub id).

        ``model_index.json`` lists the components; without it, sub-directories are loaded with fallback classes
        (UNet2DConditionModel, CLIPTextModel, AutoTokenizer, the scheduler's ``_class_name``). ``variant`` reads
        ``*.<variant>.safetensors`` (e.g. ``"fp16"``: half the bytes); in fp16 the fp16 files are read whenever the
        checkpoint has them, and a folder holding only variant files loads without being told. ``safety_checker``:
        keep the checkpoint's NSFW checker as diffusers does (``False`` drops it and skips its download).
        A single ``.safetensors``/``.ckpt`` file (original SD/SDXL layout) loads through diffusers'
        ``from_single_file`` with ``config``, a local diffusers config folder (required offline).
        """
        device, dtype = select_device_dtype(device, dtype)
        wanted = variant or ("fp16" if dtype == torch.float16 else None)
        skip = () if safety_checker else ("safety_checker", "feature_extractor")
        path = resolve_model_path(name, variant=wanted, skip=skip, diffusers_layout=True)
        if path.is_file():
            from .single_file import load_single_file

            if variant:
                raise ValueError(f"--variant {variant}: a single-file checkpoint ({path}) has no variants; drop it.")
            pipe = load_single_file(path, config, device, dtype, safety_checker)
            return cls.from_diffusers(pipe, name=str(name))
        if config is not None:
            raise ValueError(f"--config is for single-file checkpoints; {str(path)!r} is a folder with its own "
                             "configs (drop --config).")
        index_file = path / "model_index.json"
        index = json.loads(index_file.read_text()) if index_file.exists() else {}
        parts: dict[str, Any] = {}
        used = set()
        for comp in COMPONENTS:
            if comp in skip:
                parts[comp] = None
                continue
            parts[comp], comp_variant = load_component(path, comp, index.get(comp), device, dtype, wanted)
            used.add(comp_variant)
        missing = [c for c in REQUIRED_COMPONENTS if parts[c] is None]
        if missing:
            raise FileNotFoundError(f"Model directory {str(path)!r} lacks required component(s) {missing}; a T2I "
                                    f"model needs {list(REQUIRED_COMPONENTS)} sub-directories (diffusers layout).")
        if variant and variant not in used:
            raise ValueError(f"variant {variant!r} was requested but no component of {str(path)!r} has "
                             f"*.{variant}.safetensors (or .bin) weights; drop --variant to read the plain files.")
        defaults = read_sampling_defaults(path)
        force_zeros = bool(index.get("force_zeros_for_empty_prompt", False))
        variants = sorted(v for v in used if v)
        return cls(**parts, defaults=defaults, name=str(name or "shapes"), force_zeros_for_empty_prompt=force_zeros,
                   variant=variants[0] if variants else None)

    @classmethod
    def from_diffusers(cls, pipe, defaults: dict | None = None, name: str | None = None) -> "T2IPipeline":
        """Wrap the components of an existing diffusers pipeline (StableDiffusion[XL]Pipeline or similar)."""
        comps = dict(pipe.components)
        if comps.get("safety_checker") is None or comps.get("feature_extractor") is None:
            comps["safety_checker"] = comps["feature_extractor"] = None
        force_zeros = bool(getattr(pipe, "config", {}).get("force_zeros_for_empty_prompt", False))
        return cls(**{c: comps.get(c) for c in COMPONENTS}, defaults=defaults,
                   name=name or getattr(pipe, "name_or_path", None) or type(pipe).__name__,
                   force_zeros_for_empty_prompt=force_zeros)

    # ------------------------------------------------------------------------------------------ 1. inputs
    def check_inputs(self, prompts: list[str], negative_prompts: list[str] | None, height: int, width: int,
                     num_inference_steps: int, generator, latents, guidance_scale: float = 1.0) -> None:
        """Raise ValueError naming the bad argument (diffusers ``check_inputs`` style); never silently correct."""
        if not math.isfinite(guidance_scale) or guidance_scale < 0:
            raise ValueError(f"`guidance_scale` must be a finite number >= 0 (<= 1 turns guidance off), "
                             f"got {guidance_scale!r}.")
        if negative_prompts is not None and len(negative_prompts) != len(prompts):
            raise ValueError(f"`negative_prompt` has {len(negative_prompts)} entries but `prompt` has {len(prompts)}; "
                             "pass one negative prompt or one per prompt.")
        multiple = self.size_multiple
        for what, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0 or v % multiple:
                raise ValueError(f"`{what}` must be a positive multiple of {multiple} for this model, got {v!r}.")
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be a positive integer, got {num_inference_steps!r}.")
        if isinstance(generator, (list, tuple)) and len(generator) != len(prompts):
            raise ValueError(f"Got {len(generator)} generators for {len(prompts)} prompts; pass one per prompt "
                             "(each image's noise comes from its own generator).")
        if latents is not None and latents.shape[0] != len(prompts):
            raise ValueError(f"`latents` has batch size {latents.shape[0]} but there are {len(prompts)} prompts.")

    # ------------------------------------------------------------------------------------------ 3. prompt
    def _encode_text(self, texts: list[str], what: str):
        """Run every text tower; returns (hidden states concatenated on the feature dim, pooled, ids, dropped)."""
        hidden, pooled, first_ids, dropped = [], None, None, None
        penultimate = len(self.text_towers) > 1  # SDXL uses hidden_states[-2] of both encoders (as in diffusers)
        for tokenizer, encoder in self.text_towers:
            ids, drop = tokenize_window(tokenizer, encoder, texts, what, warn=first_ids is None)
            if first_ids is None:
                first_ids, dropped = ids, drop
            out = encoder(ids.to(encoder.device), output_hidden_states=penultimate)
            hidden.append(out.hidden_states[-2] if penultimate else out.last_hidden_state)
            pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
        return torch.cat(hidden, dim=-1).to(self.dtype), pooled.to(self.dtype), first_ids, dropped

    def encode_prompt(self, prompts: str | Sequence[str], negative_prompts: str | Sequence[str] | None = None,
                      do_cfg: bool = True, height: int | None = None, width: int | None = None,
                      size_conditioning: dict | None = None) -> PromptEmbeddings:
        """Text conditioning for a batch; with ``do_cfg`` the batch is [uncond; cond].

        Prompts longer than the tokenizer window are truncated with a ``PromptTruncationWarning``; the dropped
        text is in ``PromptEmbeddings.truncated``. ``height``/``width`` and ``size_conditioning`` (diffusers'
        ``original_size``, ``crops_coords_top_left``, ``target_size`` and their ``negative_*``) only matter for
        SDXL time ids.
        """
        with self._lock:
            return self._encode_prompt(as_prompt_list(prompts), negative_prompts, do_cfg, height, width,
                                       size_conditioning)

    def _encode_prompt(self, prompts, negative_prompts, do_cfg, height, width, sizes=None) -> PromptEmbeddings:
        cond, cond_pooled, ids, dropped = self._encode_text(prompts, "prompt")
        added = None
        if self.is_sdxl:
            h, w = height or self.defaults["height"], width or self.defaults["width"]
            neg_ids, pos_ids = add_time_ids(h, w, len(prompts), sizes, device=self.device, dtype=self.dtype)
            added = {"text_embeds": cond_pooled, "time_ids": pos_ids}
        if do_cfg:
            if negative_prompts is None and self.force_zeros_for_empty_prompt:
                uncond, uncond_pooled = torch.zeros_like(cond), torch.zeros_like(cond_pooled)
            else:
                negs = [""] * len(prompts) if negative_prompts is None else as_prompt_list(negative_prompts,
                                                                                          "negative_prompt")
                if len(negs) == 1 and len(prompts) > 1:
                    negs = negs * len(prompts)
                uncond, uncond_pooled, _, _ = self._encode_text(negs, "negative_prompt")
            cond = torch.cat([uncond, cond])
            if added is not None:
                added = {"text_embeds": torch.cat([uncond_pooled, added["text_embeds"]]),
                         "time_ids": torch.cat([neg_ids, added["time_ids"]])}
        return PromptEmbeddings(cond, added, do_cfg, ids, dropped)

    # ------------------------------------------------------------------------------------------ 5. latents
    def latent_shape(self, batch_size: int, height: int, width: int) -> tuple[int, int, int, int]:
        s = self.vae_scale_factor
        return batch_size, self.unet.config.in_channels, height // s, width // s

    def prepare_latents(self, batch_size: int, height: int, width: int, generator=None,
                        latents: torch.Tensor | None = None, scheduler=None) -> torch.Tensor:
        """Initial noise scaled by the scheduler's ``init_noise_sigma``.

        With a list of generators, sample i's noise is drawn from generator i alone (in fp32 on the generator's
        device), so an image does not depend on what else is in its batch.
        """
        shape = self.latent_shape(batch_size, height, width)
        if latents is None:
            gens = list(generator) if isinstance(generator, (list, tuple)) else [generator] * batch_size
            if isinstance(generator, (list, tuple)):
                noise = [torch.randn(shape[1:], generator=g, device=g.device, dtype=torch.float32) for g in gens]
                latents = torch.stack(noise)
            else:
                dev = generator.device if generator is not None else torch.device("cpu")
                latents = torch.randn(shape, generator=generator, device=dev, dtype=torch.float32)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"`latents` must have shape {shape} for {height}x{width}, got {tuple(latents.shape)}.")
        return latents.to(device=self.device, dtype=self.dtype) * (scheduler or self.scheduler).init_noise_sigma

    # ------------------------------------------------------------------------------------------ UNet + CFG
    def predict_noise(self, latents: torch.Tensor, t, embeds: PromptEmbeddings, guidance_scale: float,
                      scheduler=None) -> torch.Tensor:
        """One UNet evaluation with classifier-free guidance: eps_u + w (eps_c - eps_u) (Ho & Salimans 2022).

        Doubles ``latents`` as [uncond; cond] when ``embeds.do_cfg``. ``scheduler`` scales the model input (stateful
        schedulers such as Euler read their step index from it): the call's own scheduler, or a region's or an
        inversion's; default the pipeline's. Public because hooks with their own UNet passes (hard binding) call it.
        """
        model_input = torch.cat([latents, latents]) if embeds.do_cfg else latents
        model_input = (scheduler or self.scheduler).scale_model_input(model_input, t)
        noise_pred = self.unet(model_input, t, encoder_hidden_states=embeds.embeds,
                               added_cond_kwargs=embeds.added_cond_kwargs).sample
        if embeds.do_cfg:
            noise_uncond, noise_cond = noise_pred.chunk(2)
            noise_pred = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
        return noise_pred

    def step_kwargs(self, generator, scheduler=None) -> dict:
        """Per-sample generators for stochastic schedulers (DDPM, Euler ancestral), and consistent clipping for DDIM.

        A scheduler that clips its x0 estimate (``clip_sample`` / ``thresholding``) must take the DDIM direction
        from the same clipped x0 (``use_clipped_model_output``): with the unclipped epsilon, guidance's overshoot
        beyond the pixel range (a white background sits at +1) is fed back into x_t and grows new objects in the
        shapes world (training/shapes/README.md §3). Latent-space configs (SD, SDXL) do not clip: no change there.
        """
        scheduler = scheduler or self.scheduler
        params = inspect.signature(scheduler.step).parameters
        kwargs = {}
        if generator is not None and "generator" in params:
            kwargs["generator"] = generator
        config = scheduler.config
        if "use_clipped_model_output" in params and (config.get("clip_sample") or config.get("thresholding")):
            kwargs["use_clipped_model_output"] = True
        return kwargs

    # ------------------------------------------------------------------------------------------ __call__
    @torch.no_grad()
    def __call__(self, prompt: str | Sequence[str] | None = None, negative_prompt: str | Sequence[str] | None = None,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 height: int | None = None, width: int | None = None,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 latents: torch.Tensor | None = None, hooks: Sequence = (), output_type: str = "pil",
                 prompt_embeds: PromptEmbeddings | None = None, original_size: tuple[int, int] | None = None,
                 crops_coords_top_left: tuple[int, int] | None = None, target_size: tuple[int, int] | None = None,
                 negative_original_size: tuple[int, int] | None = None,
                 negative_crops_coords_top_left: tuple[int, int] | None = None,
                 negative_target_size: tuple[int, int] | None = None) -> T2IPipelineOutput:
        """Generate images for ``prompt`` (str or list); see the module docstring for the steps.

        ``prompt_embeds`` replaces prompt encoding (diffusers' name; with CFG its batch is [uncond; cond]); ``prompt``
        may then still be given, for hooks that read the words. Step hooks may replace the embeddings per step.
        The size/crop arguments are SDXL's micro-conditioning, with diffusers' names and defaults. A checkpoint's
        safety checker (SD1.x/2.x) blacks out flagged images, listed in ``nsfw_content_detected``.
        """
        sizes = check_size_conditioning({
            "original_size": original_size, "crops_coords_top_left": crops_coords_top_left,
            "target_size": target_size, "negative_original_size": negative_original_size,
            "negative_crops_coords_top_left": negative_crops_coords_top_left,
            "negative_target_size": negative_target_size})
        # 0. Defaults (from t2i_sampling.json when the model ships one)
        settings = self.resolve_settings(num_inference_steps, guidance_scale, height, width)
        num_inference_steps, guidance_scale = settings["num_inference_steps"], settings["guidance_scale"]
        height, width = settings["height"], settings["width"]
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"`output_type` must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}.")

        # 1. Check inputs
        do_cfg = guidance_scale > 1.0  # diffusers convention: w <= 1 means no guidance
        if prompt is None and prompt_embeds is None:
            raise ValueError("give `prompt` or `prompt_embeds`.")
        if prompt_embeds is not None and prompt_embeds.do_cfg != do_cfg:
            raise ValueError(f"`prompt_embeds` were encoded with do_cfg={prompt_embeds.do_cfg} but guidance_scale="
                             f"{guidance_scale} means do_cfg={do_cfg}; encode with the same guidance.")
        prompts = as_prompt_list(prompt) if prompt is not None else [""] * prompt_embeds.batch_size
        if prompt_embeds is not None and len(prompts) != prompt_embeds.batch_size:
            raise ValueError(f"{len(prompts)} prompts for `prompt_embeds` of {prompt_embeds.batch_size} images.")
        negative_prompts = None if negative_prompt is None else as_prompt_list(negative_prompt, "negative_prompt")
        if negative_prompts is not None and len(negative_prompts) == 1:
            negative_prompts = negative_prompts * len(prompts)
        self.check_inputs(prompts, negative_prompts, height, width, num_inference_steps, generator, latents,
                          guidance_scale)
        batch_size = len(prompts)

        # 2. Encode input prompt
        embeds = prompt_embeds or self.encode_prompt(prompts, negative_prompts, do_cfg=do_cfg, height=height,
                                                     width=width, size_conditioning=sizes)

        # 3. Prepare timesteps (on this call's own scheduler: a shared pipeline's scheduler is never mutated)
        scheduler = copy.deepcopy(self.scheduler)
        scheduler.set_timesteps(num_inference_steps, device=self.device)
        timesteps = scheduler.timesteps

        # 4. Prepare latent variables
        latents = self.prepare_latents(batch_size, height, width, generator, latents, scheduler)
        generators = list(generator) if isinstance(generator, (list, tuple)) else None
        run = GenerationRun(pipeline=self, prompts=prompts, negative_prompts=negative_prompts, batch_size=batch_size,
                            do_cfg=do_cfg, guidance_scale=guidance_scale, height=height, width=width,
                            latent_shape=tuple(latents.shape), timesteps=timesteps, embeds=embeds,
                            num_inference_steps=num_inference_steps, scheduler=scheduler, generators=generators)
        step_kwargs = self.step_kwargs(generator, scheduler)

        # 5. Denoising loop (hooks see every step through the controller and may replace latents / embeddings)
        controller = AttentionController(hooks)
        state = StepState(latents=latents, embeds=embeds)
        with self._lock, controller.installed(self.unet):
            controller.on_start(run)
            for i, t in enumerate(timesteps):
                controller.on_step_begin(i, t, state)
                state.noise_pred = self.predict_noise(state.latents, t, state.embeds, guidance_scale, scheduler)
                step = scheduler.step(state.noise_pred, t, state.latents, **step_kwargs)
                state.latents, state.denoised = step.prev_sample, getattr(step, "pred_original_sample", None)
                controller.on_step_end(i, t, state)
            controller.on_end()
        latents = state.latents

        # 6. Decode and postprocess
        if output_type == "latent":
            return T2IPipelineOutput(latents, latents, run)
        images, flagged = self.run_safety_checker(self.decode_latents(latents))
        return T2IPipelineOutput(self.postprocess(images, output_type), latents, run, flagged)
