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

import importlib
import inspect
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..attention.controller import AttentionController
from ..models.loading import find_weight_files, resolve_model_path
from ..utils import select_device_dtype
from .run import GenerationRun

DEFAULTS_FILE = "t2i_prompt.json"
COMPONENTS = ("unet", "scheduler", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "vae")
REQUIRED_COMPONENTS = ("unet", "scheduler", "text_encoder", "tokenizer")
# Fallback classes for directories without model_index.json (e.g. the shapes world); (library, class).
_FALLBACK_CLASSES = {
    "unet": ("diffusers", "UNet2DConditionModel"),
    "vae": ("diffusers", "AutoencoderKL"),
    "text_encoder": ("transformers", "CLIPTextModel"),
    "text_encoder_2": ("transformers", "CLIPTextModelWithProjection"),
    "tokenizer": ("transformers", "AutoTokenizer"),
    "tokenizer_2": ("transformers", "AutoTokenizer"),
}
_SAFE_LIBRARIES = ("diffusers", "transformers")


class PromptTruncationWarning(UserWarning):
    """A prompt was longer than the text encoder's token window and its tail was dropped."""


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


@dataclass
class T2IPipelineOutput:
    """Images (PIL list, tensor in [0, 1] or latents per ``output_type``), final latents and the run state."""

    images: Any
    latents: torch.Tensor
    run: GenerationRun


def _import_class(library: str, class_name: str):
    if library not in _SAFE_LIBRARIES:
        raise ValueError(f"model_index.json names component library {library!r}; only {_SAFE_LIBRARIES} are loaded "
                         "(no remote or custom code).")
    module = importlib.import_module(library)
    if not hasattr(module, class_name):
        raise ValueError(f"{library} has no class {class_name!r} (named in model_index.json).")
    return getattr(module, class_name)


def _as_prompt_list(prompt: str | Sequence[str], what: str = "prompt") -> list[str]:
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise ValueError(f"`{what}` is an empty list; pass at least one text.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ValueError(f"`{what}[{i}]` must be a string, got {type(p).__name__}.")
        if what == "prompt" and not p.strip():
            raise ValueError(f"`prompt[{i}]` is empty or whitespace; give a text that describes the image.")
    return prompts


class T2IPipeline:
    """Text-to-image sampling over diffusers/transformers components (see module docstring).

    Args mirror diffusers' pipeline components; ``defaults`` may set ``height``, ``width``,
    ``num_inference_steps`` and ``guidance_scale`` (read from ``t2i_prompt.json`` by ``from_pretrained``).
    """

    def __init__(self, unet, scheduler, text_encoder, tokenizer, text_encoder_2=None, tokenizer_2=None, vae=None,
                 defaults: dict | None = None, name: str | None = None, force_zeros_for_empty_prompt: bool = False):
        if (text_encoder_2 is None) != (tokenizer_2 is None):
            raise ValueError("text_encoder_2 and tokenizer_2 must be given together (SDXL) or both be None.")
        self.unet, self.scheduler, self.vae = unet, scheduler, vae
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.text_encoder_2, self.tokenizer_2 = text_encoder_2, tokenizer_2
        self.name = name
        # SDXL convention: with no negative prompt the unconditional embedding is all zeros.
        self.force_zeros_for_empty_prompt = force_zeros_for_empty_prompt
        self.defaults = {"num_inference_steps": 50, "guidance_scale": 5.0 if self.is_sdxl else 7.5,
                         "height": unet.config.sample_size * self.vae_scale_factor,
                         "width": unet.config.sample_size * self.vae_scale_factor}
        self.defaults.update({k: v for k, v in (defaults or {}).items() if v is not None})

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
    def text_towers(self) -> list[tuple[Any, Any]]:
        """(tokenizer, text encoder) pairs: one for SD1.x/2.x and pixel models, two for SDXL."""
        towers = [(self.tokenizer, self.text_encoder)]
        if self.text_encoder_2 is not None:
            towers.append((self.tokenizer_2, self.text_encoder_2))
        return towers

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.unet, self.vae, self.text_encoder, self.text_encoder_2) if m is not None]

    def to(self, device=None, dtype=None) -> "T2IPipeline":
        for m in self.modules():
            m.to(device=device, dtype=dtype)
        return self

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name: str | os.PathLike | None = None, device=None, dtype=None) -> "T2IPipeline":
        """Load from a diffusers-layout directory (``shapes`` by default, ``tiny:sd15``, a path or a hub id).

        ``model_index.json`` lists the components; without it, sub-directories are loaded with fallback classes
        (UNet2DConditionModel, CLIPTextModel, AutoTokenizer, the scheduler's ``_class_name``).
        """
        path = resolve_model_path(name)
        if not path.is_dir():
            raise ValueError(f"{str(path)!r} is a file; a T2I model must be a diffusers-layout directory "
                             "(unet/, text_encoder/, tokenizer/, scheduler/, optional vae/).")
        index_file = path / "model_index.json"
        index = json.loads(index_file.read_text()) if index_file.exists() else {}
        device, dtype = select_device_dtype(device, dtype)
        parts: dict[str, Any] = {}
        for comp in COMPONENTS:
            parts[comp] = cls._load_component(path, comp, index.get(comp), device, dtype)
        missing = [c for c in REQUIRED_COMPONENTS if parts[c] is None]
        if missing:
            raise FileNotFoundError(f"Model directory {str(path)!r} lacks required component(s) {missing}; a T2I "
                                    f"model needs {list(REQUIRED_COMPONENTS)} sub-directories (diffusers layout).")
        defaults_file = path / DEFAULTS_FILE
        defaults = json.loads(defaults_file.read_text()) if defaults_file.exists() else None
        force_zeros = bool(index.get("force_zeros_for_empty_prompt", False))
        return cls(**parts, defaults=defaults, name=str(name or "shapes"), force_zeros_for_empty_prompt=force_zeros)

    @staticmethod
    def _load_component(root: Path, comp: str, entry, device, dtype):
        sub = root / comp
        if not sub.is_dir() or (entry is not None and (not entry or entry[0] is None)):
            return None
        if comp == "scheduler":
            library, class_name = "diffusers", json.loads((sub / "scheduler_config.json").read_text())["_class_name"]
        elif entry is not None:
            library, class_name = entry
        else:
            library, class_name = _FALLBACK_CLASSES[comp]
        klass = _import_class(library, class_name)
        if comp.startswith("tokenizer"):
            return klass.from_pretrained(str(sub))
        if comp == "scheduler":
            return klass.from_config(klass.load_config(str(sub)))
        if not find_weight_files(sub, depth=0):
            raise FileNotFoundError(f"Component {comp!r} at {str(sub)!r} has no weight files (*.safetensors).")
        dtype_kwarg = {"torch_dtype": dtype} if library == "diffusers" else {"dtype": dtype}
        return klass.from_pretrained(str(sub), **dtype_kwarg).to(device=device).eval()

    @classmethod
    def from_diffusers(cls, pipe, defaults: dict | None = None, name: str | None = None) -> "T2IPipeline":
        """Wrap the components of an existing diffusers pipeline (StableDiffusion[XL]Pipeline or similar)."""
        comps = pipe.components
        force_zeros = bool(getattr(pipe, "config", {}).get("force_zeros_for_empty_prompt", False))
        return cls(**{c: comps.get(c) for c in COMPONENTS}, defaults=defaults,
                   name=name or getattr(pipe, "name_or_path", None) or type(pipe).__name__,
                   force_zeros_for_empty_prompt=force_zeros)

    # ------------------------------------------------------------------------------------------ 1. inputs
    def check_inputs(self, prompts: list[str], negative_prompts: list[str] | None, height: int, width: int,
                     num_inference_steps: int, generator, latents) -> None:
        """Raise ValueError naming the bad argument (diffusers ``check_inputs`` style); never silently correct."""
        if negative_prompts is not None and len(negative_prompts) != len(prompts):
            raise ValueError(f"`negative_prompt` has {len(negative_prompts)} entries but `prompt` has {len(prompts)}; "
                             "pass one negative prompt or one per prompt.")
        multiple = self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)
        for what, v in (("height", height), ("width", width)):
            if not isinstance(v, int) or v <= 0 or v % multiple:
                raise ValueError(f"`{what}` must be a positive multiple of {multiple} for this model, got {v!r}.")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be a positive integer, got {num_inference_steps!r}.")
        if isinstance(generator, (list, tuple)) and len(generator) != len(prompts):
            raise ValueError(f"Got {len(generator)} generators for {len(prompts)} prompts; pass one per prompt "
                             "(each image's noise comes from its own generator).")
        if latents is not None and latents.shape[0] != len(prompts):
            raise ValueError(f"`latents` has batch size {latents.shape[0]} but there are {len(prompts)} prompts.")

    # ------------------------------------------------------------------------------------------ 3. prompt
    def _tokenize(self, tokenizer, encoder, texts: list[str], what: str, warn: bool = True
                  ) -> tuple[torch.Tensor, list[str]]:
        """Pad/truncate to the token window; warn about (if ``warn``) and return each prompt's dropped text.

        The window is the tokenizer's ``model_max_length`` (77 for CLIP), or the encoder's position count when the
        tokenizer has no real limit (transformers uses ~1e30 for "unset").
        """
        max_len = tokenizer.model_max_length
        if max_len > 100_000:
            max_len = encoder.config.max_position_embeddings
        ids = tokenizer(texts, padding="max_length", max_length=max_len, truncation=True, return_tensors="pt").input_ids
        full = tokenizer(texts, truncation=True, max_length=1 << 20).input_ids  # explicit limit: no length log spam
        dropped = []
        for i, seq in enumerate(full):
            # keep bos + (max_len - 2) tokens + eos; everything before the final eos beyond that is dropped
            extra = seq[max_len - 1 : -1] if len(seq) > max_len else []
            text = tokenizer.decode(extra, skip_special_tokens=True).strip() if extra else ""
            if extra and warn:
                warnings.warn(f"{what}[{i}] is longer than the text encoder's {max_len}-token window; "
                              f"{len(extra)} token(s) were dropped: {text!r}", PromptTruncationWarning, stacklevel=4)
            dropped.append(text)
        return ids, dropped

    def _encode_text(self, texts: list[str], what: str):
        """Run every text tower; returns (hidden states concatenated on the feature dim, pooled, ids, dropped)."""
        hidden, pooled, first_ids, dropped = [], None, None, None
        penultimate = len(self.text_towers) > 1  # SDXL uses hidden_states[-2] of both encoders (as in diffusers)
        for tokenizer, encoder in self.text_towers:
            ids, drop = self._tokenize(tokenizer, encoder, texts, what, warn=first_ids is None)
            if first_ids is None:
                first_ids, dropped = ids, drop
            out = encoder(ids.to(encoder.device), output_hidden_states=penultimate)
            hidden.append(out.hidden_states[-2] if penultimate else out.last_hidden_state)
            pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
        return torch.cat(hidden, dim=-1).to(self.dtype), pooled.to(self.dtype), first_ids, dropped

    def _add_time_ids(self, height: int, width: int, batch: int) -> torch.Tensor:
        """SDXL micro-conditioning: (original size, crop top-left, target size) = ((h, w), (0, 0), (h, w))."""
        ids = torch.tensor([[height, width, 0, 0, height, width]], device=self.device, dtype=self.dtype)
        return ids.repeat(batch, 1)

    def encode_prompt(self, prompts: str | Sequence[str], negative_prompts: str | Sequence[str] | None = None,
                      do_cfg: bool = True, height: int | None = None, width: int | None = None) -> PromptEmbeddings:
        """Text conditioning for a batch; with ``do_cfg`` the batch is [uncond; cond].

        Prompts longer than the tokenizer window are truncated with a ``PromptTruncationWarning``; the dropped
        text is in ``PromptEmbeddings.truncated``. ``height``/``width`` only matter for SDXL time ids.
        """
        prompts = _as_prompt_list(prompts)
        cond, cond_pooled, ids, dropped = self._encode_text(prompts, "prompt")
        added = None
        if self.is_sdxl:
            h, w = height or self.defaults["height"], width or self.defaults["width"]
            added = {"text_embeds": cond_pooled, "time_ids": self._add_time_ids(h, w, len(prompts))}
        if do_cfg:
            if negative_prompts is None and self.force_zeros_for_empty_prompt:
                uncond, uncond_pooled = torch.zeros_like(cond), torch.zeros_like(cond_pooled)
            else:
                negs = [""] * len(prompts) if negative_prompts is None else _as_prompt_list(negative_prompts,
                                                                                          "negative_prompt")
                if len(negs) == 1 and len(prompts) > 1:
                    negs = negs * len(prompts)
                uncond, uncond_pooled, _, _ = self._encode_text(negs, "negative_prompt")
            cond = torch.cat([uncond, cond])
            if added is not None:
                added = {"text_embeds": torch.cat([uncond_pooled, added["text_embeds"]]),
                         "time_ids": torch.cat([added["time_ids"], added["time_ids"]])}
        return PromptEmbeddings(cond, added, do_cfg, ids, dropped)

    # ------------------------------------------------------------------------------------------ 5. latents
    def latent_shape(self, batch_size: int, height: int, width: int) -> tuple[int, int, int, int]:
        s = self.vae_scale_factor
        return batch_size, self.unet.config.in_channels, height // s, width // s

    def prepare_latents(self, batch_size: int, height: int, width: int, generator=None,
                        latents: torch.Tensor | None = None) -> torch.Tensor:
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
        return latents.to(device=self.device, dtype=self.dtype) * self.scheduler.init_noise_sigma

    # ------------------------------------------------------------------------------------------ UNet + CFG
    def predict_noise(self, latents: torch.Tensor, t, embeds: PromptEmbeddings, guidance_scale: float) -> torch.Tensor:
        """One UNet evaluation with classifier-free guidance: eps_u + w (eps_c - eps_u) (Ho & Salimans 2022).

        Doubles ``latents`` as [uncond; cond] when ``embeds.do_cfg``. Public because hooks that need their own
        UNet passes (e.g. hard region binding) call it.
        """
        model_input = torch.cat([latents, latents]) if embeds.do_cfg else latents
        model_input = self.scheduler.scale_model_input(model_input, t)
        noise_pred = self.unet(model_input, t, encoder_hidden_states=embeds.embeds,
                               added_cond_kwargs=embeds.added_cond_kwargs).sample
        if embeds.do_cfg:
            noise_uncond, noise_cond = noise_pred.chunk(2)
            noise_pred = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
        return noise_pred

    # ------------------------------------------------------------------------------------------ decode
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [0, 1], shape (B, 3, H, W), fp32 on CPU. Pixel space: the latents are the image."""
        if self.vae is None:
            image = latents
        else:
            vae = self.vae
            upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
            if upcast:  # SDXL's VAE overflows in fp16 (diffusers upcasts the same way)
                vae.to(torch.float32)
            image = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
            if upcast:
                vae.to(torch.float16)
        return (image.float() / 2 + 0.5).clamp(0, 1).cpu()

    @staticmethod
    def postprocess(images: torch.Tensor, output_type: str = "pil"):
        """[0, 1] tensor -> ``"pil"`` list of PIL images, ``"np"`` uint8 HWC array, or ``"pt"`` unchanged."""
        if output_type == "pt":
            return images
        arr = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype("uint8")
        if output_type == "np":
            return arr
        from PIL import Image

        return [Image.fromarray(a) for a in arr]

    def _step_kwargs(self, generator) -> dict:
        """Pass per-sample generators to stochastic schedulers (DDPM, Euler ancestral) that accept them."""
        if generator is not None and "generator" in inspect.signature(self.scheduler.step).parameters:
            return {"generator": generator}
        return {}

    # ------------------------------------------------------------------------------------------ __call__
    @torch.no_grad()
    def __call__(self, prompt: str | Sequence[str], negative_prompt: str | Sequence[str] | None = None,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 height: int | None = None, width: int | None = None,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 latents: torch.Tensor | None = None, hooks: Sequence = (), output_type: str = "pil"
                 ) -> T2IPipelineOutput:
        """Generate images for ``prompt`` (str or list); see the module docstring for the steps."""
        # 0. Defaults (from t2i_prompt.json when the model ships one)
        height = height or self.defaults["height"]
        width = width or self.defaults["width"]
        num_inference_steps = num_inference_steps or self.defaults["num_inference_steps"]
        guidance_scale = float(self.defaults["guidance_scale"] if guidance_scale is None else guidance_scale)
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"`output_type` must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}.")

        # 1. Check inputs
        prompts = _as_prompt_list(prompt)
        negative_prompts = None if negative_prompt is None else _as_prompt_list(negative_prompt, "negative_prompt")
        if negative_prompts is not None and len(negative_prompts) == 1:
            negative_prompts = negative_prompts * len(prompts)
        self.check_inputs(prompts, negative_prompts, height, width, num_inference_steps, generator, latents)
        batch_size = len(prompts)
        do_cfg = guidance_scale > 1.0  # diffusers convention: w <= 1 means no guidance

        # 2. Encode input prompt
        embeds = self.encode_prompt(prompts, negative_prompts, do_cfg=do_cfg, height=height, width=width)

        # 3. Prepare timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        timesteps = self.scheduler.timesteps

        # 4. Prepare latent variables
        latents = self.prepare_latents(batch_size, height, width, generator, latents)
        generators = list(generator) if isinstance(generator, (list, tuple)) else None
        run = GenerationRun(pipeline=self, prompts=prompts, negative_prompts=negative_prompts, batch_size=batch_size,
                            do_cfg=do_cfg, guidance_scale=guidance_scale, height=height, width=width,
                            latent_shape=tuple(latents.shape), timesteps=timesteps, embeds=embeds,
                            num_inference_steps=num_inference_steps, generators=generators)
        step_kwargs = self._step_kwargs(generator)

        # 5. Denoising loop (hooks see every step through the controller)
        controller = AttentionController(hooks)
        with controller.installed(self.unet):
            controller.on_start(run)
            for i, t in enumerate(timesteps):
                controller.on_step_begin(i, t)
                noise_pred = self.predict_noise(latents, t, embeds, guidance_scale)
                latents = self.scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample
                latents = controller.on_step_end(i, t, latents)
            controller.on_end()

        # 6. Decode and postprocess
        if output_type == "latent":
            return T2IPipelineOutput(latents, latents, run)
        images = self.postprocess(self.decode_latents(latents), output_type)
        return T2IPipelineOutput(images, latents, run)
