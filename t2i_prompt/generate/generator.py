"""``ImageGenerator``: prompts x seeds -> images + one metadata record per image, each image reproducible alone."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..utils import atomic_save_image, atomic_write_json, make_generators
from .pipeline import T2IPipeline

METADATA_FILE = "generation.json"


@dataclass
class GenerationOutput:
    """``images[i]`` was generated from ``records[i]`` (prompt, seed, model, settings, truncated text)."""

    images: list = field(default_factory=list)
    records: list[dict] = field(default_factory=list)

    def save(self, out_dir: str | os.PathLike, metadata_name: str = METADATA_FILE) -> list[Path]:
        """Write ``NNN_seed<seed>.png`` per image and ``generation.json`` (records + file names), atomically.

        Images a previous save into the same directory listed in its ``generation.json`` and this one does not
        rewrite are removed, so the directory always matches its metadata; other files are left alone."""
        import json

        out = Path(out_dir)
        previous = []
        meta = out / metadata_name
        if meta.is_file():
            try:
                previous = [r.get("file") for r in json.loads(meta.read_text()).get("images", [])]
            except (ValueError, AttributeError):
                previous = []
        paths = []
        for i, (image, record) in enumerate(zip(self.images, self.records)):
            path = out / f"{i:03d}_seed{record['seed']}.png"
            atomic_save_image(image, path)
            record["file"] = path.name
            paths.append(path)
        atomic_write_json(out / metadata_name, {"images": self.records})
        written = {p.name for p in paths}
        for name in previous:
            if isinstance(name, str) and name not in written and "/" not in name and (out / name).is_file():
                (out / name).unlink()
        return paths


def warn_if_oversized(pipeline, height: int, width: int, factor: int = 4) -> None:
    """Warn when a size is more than ``factor`` x the model's native side: it works, but slowly and off-distribution."""
    import warnings

    native_h, native_w = pipeline.defaults["height"], pipeline.defaults["width"]
    if isinstance(height, int) and isinstance(width, int) and height * width > factor ** 2 * native_h * native_w:
        warnings.warn(f"{width}x{height} is far above this model's native {native_w}x{native_h}; generation will be "
                      f"slow and off-distribution (pass --width {native_w} --height {native_h}).", stacklevel=3)


class ImageGenerator:
    """Batch generation over a ``T2IPipeline`` (or a model name; ``None`` = the shapes world).

    Every (prompt, seed) pair gets its own ``torch.Generator(seed)`` for its initial noise, so image i of a batch
    equals the same prompt and seed generated alone (up to float rounding of batched kernels).
    """

    def __init__(self, pipeline_or_name: T2IPipeline | str | os.PathLike | None = None, device=None, dtype=None,
                 batch_size: int = 4, progress: bool = True, **load_options):
        """``load_options`` go to ``T2IPipeline.from_pretrained`` with a name (``variant=``, ``safety_checker=``)."""
        if isinstance(pipeline_or_name, T2IPipeline):
            self.pipeline = pipeline_or_name
        else:
            self.pipeline = T2IPipeline.from_pretrained(pipeline_or_name, device=device, dtype=dtype, **load_options)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.batch_size = batch_size
        self.progress = progress

    @property
    def model_name(self) -> str:
        return self.pipeline.name or "custom"

    def generate(self, prompts: str | Sequence[str], seeds: int | Sequence[int] = 0,
                 negative_prompt: str | Sequence[str] | None = None, num_inference_steps: int | None = None,
                 guidance_scale: float | None = None, height: int | None = None, width: int | None = None,
                 hooks: Sequence = (), batch_size: int | None = None, progress: bool | None = None,
                 hook_spec=None, size_conditioning: dict | None = None) -> GenerationOutput:
        """Generate every prompt with every seed (prompt-major order); ``negative_prompt`` is one or one per prompt.

        ``hooks`` are passed to every pipeline call, i.e. they see each batch as one run; ``hook_spec`` (the
        ``HookSpec`` they were built from) is recorded in every image's settings so it can be regenerated.
        ``size_conditioning``: SDXL's ``original_size``/``crops_coords_top_left``/``target_size`` (+ ``negative_*``),
        recorded in the settings. A record's ``nsfw_content_detected`` is the safety checker's flag (None without).
        """
        from .micro_conditioning import check_size_conditioning

        sizes = check_size_conditioning(size_conditioning)
        from tqdm.auto import tqdm

        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        seeds = [seeds] if isinstance(seeds, int) else [int(s) for s in seeds]
        if not prompts or not seeds:
            raise ValueError("Give at least one prompt and one seed.")
        if negative_prompt is None or isinstance(negative_prompt, str):
            negatives = [negative_prompt] * len(prompts)
        else:
            negatives = list(negative_prompt)
            if len(negatives) != len(prompts):
                raise ValueError(f"negative_prompt has {len(negatives)} entries for {len(prompts)} prompts; "
                                 "pass one string or one per prompt.")
        settings = self.pipeline.resolve_settings(num_inference_steps, guidance_scale, height, width)
        warn_if_oversized(self.pipeline, settings["height"], settings["width"])
        jobs = [(p, n, s) for p, n in zip(prompts, negatives) for s in seeds]
        bs = batch_size or self.batch_size
        batches = [jobs[i : i + bs] for i in range(0, len(jobs), bs)]
        show = (self.progress if progress is None else progress) and len(batches) > 1
        out = GenerationOutput()
        for batch in tqdm(batches, desc="generate", unit="batch", disable=not show):
            batch_prompts = [p for p, _, _ in batch]
            negs = [n or "" for _, n, _ in batch] if any(n is not None for _, n, _ in batch) else None
            result = self.pipeline(batch_prompts, negative_prompt=negs, hooks=hooks,
                                   generator=make_generators([s for _, _, s in batch]), **settings, **sizes)
            for k, (prompt, neg, seed) in enumerate(batch):
                out.images.append(result.images[k])
                out.records.append({
                    "index": len(out.records), "prompt": prompt, "seed": seed, "model": self.model_name,
                    "settings": dict(settings, negative_prompt=neg, scheduler=type(self.pipeline.scheduler).__name__,
                                     dtype=str(self.pipeline.dtype).replace("torch.", ""),
                                     variant=self.pipeline.variant,
                                     hooks=hook_spec.to_dict() if hook_spec is not None else None,
                                     **({"size_conditioning": {n: list(v) for n, v in sizes.items()}}
                                        if sizes else {})),
                    "truncated": result.run.truncated[k],
                    "nsfw_content_detected": (None if result.nsfw_content_detected is None
                                              else result.nsfw_content_detected[k]),
                })
        return out
