"""Pixels <-> latents for ``T2IPipeline``: VAE encode / decode (with diffusers' fp16 upcast and SDXL latent
de-normalisation), the safety checker, and postprocessing to PIL / numpy. Pixel-space models (``vae=None``) use
the image in [-1, 1] as the latent.
"""

from __future__ import annotations

import torch


class ImageCodec:
    """Mixin of ``T2IPipeline``: needs ``vae``, ``is_sdxl``, ``device``, ``dtype``, ``_lock``, ``safety_checker``
    and ``feature_extractor``."""

    @torch.no_grad()
    def encode_image(self, images, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images -> latents, the inverse of ``decode_latents``: PIL images (or one), or a (B, 3, H, W) tensor in
        [0, 1]. VAE: the posterior mean (a sample with ``generator``) times the scaling factor; pixel space: 2x - 1."""
        import numpy as np

        if not isinstance(images, torch.Tensor):
            images = [images] if not isinstance(images, (list, tuple)) else list(images)
            if not images:
                raise ValueError("encode_image needs at least one image.")
            sizes = {im.size for im in images}
            if len(sizes) > 1:
                raise ValueError(f"encode_image needs images of one size, got {sorted(sizes)}; resize them first.")
            arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images])
            images = torch.from_numpy(arr).permute(0, 3, 1, 2)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"encode_image takes (B, 3, H, W) images in [0, 1], got shape {tuple(images.shape)}.")
        pixels = (images.float() * 2 - 1).to(self.device)
        if self.vae is None:
            return pixels.to(self.dtype)
        dist = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist
        latents = dist.sample(generator) if generator is not None else dist.mean
        return (latents * self.vae.config.scaling_factor).to(self.dtype)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [0, 1], shape (B, 3, H, W), fp32 on CPU. Pixel space: the latents are the image."""
        if self.vae is None:
            return (latents.float() / 2 + 0.5).clamp(0, 1).cpu()
        vae = self.vae
        with self._lock:  # an upcast changes the shared VAE's dtype for the duration of the decode
            upcast = self.needs_vae_upcast
            if upcast:
                vae.to(torch.float32)
            config = vae.config
            latents = latents.to(vae.dtype)
            mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
            if self.is_sdxl and mean is not None and std is not None:  # diffusers' SDXL pipeline de-normalises so
                shape = (1, len(mean), 1, 1)
                mean = torch.tensor(mean).view(shape).to(latents.device, latents.dtype)
                std = torch.tensor(std).view(shape).to(latents.device, latents.dtype)
                latents = latents * std / config.scaling_factor + mean
            else:
                latents = latents / config.scaling_factor
            image = vae.decode(latents).sample
            if upcast:
                vae.to(torch.float16)
        return (image.float() / 2 + 0.5).clamp(0, 1).cpu()

    @property
    def needs_vae_upcast(self) -> bool:
        """Decode an fp16 VAE in fp32: diffusers' SDXL pipeline does when the VAE's config sets ``force_upcast``
        (SDXL's VAE overflows in fp16); its SD1.x/2.x pipeline never does, whatever the config says."""
        return (self.vae is not None and self.is_sdxl and self.vae.dtype == torch.float16
                and bool(getattr(self.vae.config, "force_upcast", False)))

    def run_safety_checker(self, images: torch.Tensor) -> tuple[torch.Tensor, list[bool] | None]:
        """diffusers' NSFW check of decoded [0, 1] images: flagged ones come back black (the checker replaces them,
        as in diffusers' pipeline), with one flag per image; ``(images, None)`` without a checker."""
        if self.safety_checker is None:
            return images, None
        inputs = self.feature_extractor(self.postprocess(images, "pil"), return_tensors="pt")
        clip_input = inputs.pixel_values.to(self.safety_checker.device, self.safety_checker.dtype)
        checked, flags = self.safety_checker(images=images.clone(), clip_input=clip_input)
        return torch.as_tensor(checked, dtype=images.dtype), [bool(f) for f in flags]

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
