"""Single-file SD1.x/2.x and SDXL checkpoints (one ``.safetensors`` or ``.ckpt`` in the original LDM key layout, as
most SD users have them) through diffusers' ``from_single_file``, offline with a local config folder.

The config folder is a diffusers layout of the same architecture without weights (``model_index.json`` and each
component's configs and tokenizer files): ``hf download <repo> --include "*.json" --include "*.txt"``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..models.loading import check_safetensors, find_weight_files, is_offline

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
PIPELINES = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl"}
SDXL_KEY = "conditioner.embedders.1.model."  # the OpenCLIP bigG tower only SDXL base checkpoints have


def _pipeline_class(path: Path, config: Path | None):
    """diffusers' pipeline class for the checkpoint: the config's ``_class_name``, else SDXL when the file has the
    second text tower's keys (read from the safetensors header, nothing loaded)."""
    import diffusers

    if config is not None and (config / "model_index.json").is_file():
        name = json.loads((config / "model_index.json").read_text()).get("_class_name")
        if name not in PIPELINES:
            raise ValueError(f"--config {config}: model_index.json names {name!r}; single-file loading supports "
                             f"{', '.join(PIPELINES)}.")
        return getattr(diffusers, name)
    sdxl = False
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            sdxl = any(k.startswith(SDXL_KEY) for k in f.keys())
    return diffusers.StableDiffusionXLPipeline if sdxl else diffusers.StableDiffusionPipeline


def check_config_dir(config) -> Path:
    config = Path(config).expanduser()
    if not config.is_dir() or not (config / "model_index.json").is_file():
        raise FileNotFoundError(f"--config {config}: not a diffusers config folder (it needs model_index.json and "
                                "the components' configs; fetch one with `hf download <repo> --include \"*.json\" "
                                "--include \"*.txt\"`).")
    return config


def load_single_file(path: Path, config=None, device=None, dtype=None, safety_checker: bool = True):
    """The diffusers pipeline of a single-file checkpoint, on ``device`` in ``dtype``.

    Offline, ``config`` (a diffusers config folder) is required: diffusers would otherwise fetch one from the hub.
    The safety checker is loaded from the config folder when it holds its weights (single files carry none)."""
    path = Path(path)
    if path.suffix not in SINGLE_FILE_SUFFIXES:
        raise ValueError(f"{path}: a single-file checkpoint is a .safetensors or .ckpt file (got {path.suffix!r}).")
    if path.suffix == ".safetensors":
        check_safetensors(path)
    if config is None and is_offline():
        raise ValueError(f"single-file checkpoint {path}: offline, pass --config DIR (config=DIR), a diffusers "
                         "config folder of its architecture, e.g. from `hf download stable-diffusion-v1-5/"
                         "stable-diffusion-v1-5 --include \"*.json\" --include \"*.txt\"` on a machine with internet.")
    config = check_config_dir(config) if config is not None else None
    cls = _pipeline_class(path, config)
    kwargs = {"torch_dtype": dtype, "local_files_only": is_offline()}
    if config is not None:
        kwargs["config"] = str(config)
    checker_dir = config / "safety_checker" if config is not None else None
    if cls.__name__ == "StableDiffusionPipeline" and not (
            safety_checker and checker_dir is not None and checker_dir.is_dir() and find_weight_files(checker_dir, 0)):
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    pipe = cls.from_single_file(str(path), **kwargs)
    return pipe.to(device)
