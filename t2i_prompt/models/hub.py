"""Which files of a model folder the loaders read, and fetching only those from the hub.

The selection rule follows diffusers' download logic (``DiffusionPipeline.download``: the components named in
``model_index.json``, one weight format with safetensors first, the requested variant with a per-component
fallback to the plain files): it decides both what ``snapshot_download`` fetches and which variant a local folder
is loaded with, so a download never holds files the loader would skip (every legacy ``.ckpt``, both precisions,
flax/onnx/tf exports).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

__all__ = ["WEIGHT_FORMATS", "CONFIG_SUFFIXES", "weight_variant", "choose_weights", "download_plan",
           "download_globs", "download_command", "fetch"]

MODEL_INDEX = "model_index.json"
# Formats in order of preference; the pickled ones are read with torch.load(weights_only=True) only.
WEIGHT_FORMATS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
# Everything else a loader reads: configs, tokenizer vocabularies / merges / sentencepiece models, chat templates.
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".jinja")
ROOT_FILES = ("model_index.json", "t2i_sampling.json", "t2i_prompt.json")  # read beside a diffusers layout
# "<base>[.<variant>][-00001-of-00002].<format>"; a base holds no dot (diffusion_pytorch_model, model, ...).
_WEIGHT_NAME = re.compile(r"^[^.]+(?:\.(?P<variant>[A-Za-z0-9_]+))?(?:-\d+-of-\d+)?(?P<fmt>\.[a-z]+)$")


def weight_variant(filename: str) -> tuple[str | None, str] | None:
    """``(variant or None, format)`` of a weight file name, or None when it is no weight file."""
    match = _WEIGHT_NAME.match(Path(filename).name)
    if match is None or match.group("fmt") not in WEIGHT_FORMATS:
        return None
    return match.group("variant"), match.group("fmt")


def choose_weights(names: Iterable[str], variant: str | None = None) -> tuple[list[str], str | None]:
    """The weight files of one folder a loader reads -> ``(files, variant they carry)``.

    The first format (safetensors first) that has files of the requested variant, else plain files; with no variant
    requested and no plain files, the one variant there is (a folder of ``*.fp16.safetensors`` only)."""
    parsed = {n: weight_variant(n) for n in names}
    parsed = {n: v for n, v in parsed.items() if v is not None}
    wanted = [variant, None] if variant else [None]
    for want in wanted:
        for fmt in WEIGHT_FORMATS:
            files = sorted(n for n, (v, f) in parsed.items() if f == fmt and v == want)
            if files:
                return files, want
    present = sorted({v for v, _ in parsed.values() if v is not None}, key=lambda v: (v != "fp16", v))
    if present:
        return choose_weights(names, present[0])
    return [], None


def _by_folder(files: Iterable[str]) -> dict[str, list[str]]:
    folders: dict[str, list[str]] = {}
    for f in files:
        folder, _, name = f.rpartition("/")
        folders.setdefault(folder, []).append(name)
    return folders


def _folder_files(folder: str, names: list[str], variant: str | None) -> list[str]:
    prefix = f"{folder}/" if folder else ""
    weights, _ = choose_weights(names, variant)
    configs = sorted(n for n in names if n.endswith(CONFIG_SUFFIXES))
    return [prefix + n for n in configs + weights]


def index_components(index: dict, skip: Iterable[str] = ()) -> list[str]:
    """Component folders ``model_index.json`` names with a class (``[lib, cls]``; ``[null, null]`` is absent)."""
    skip = set(skip)
    return [k for k, v in index.items() if not k.startswith("_") and k not in skip and isinstance(v, list)
            and len(v) == 2 and v[0] is not None]


def download_plan(files: Iterable[str], index: dict | None = None, variant: str | None = None,
                  skip: Iterable[str] = ()) -> list[str]:
    """The exact repository files to fetch, given the repository's file list.

    diffusers layout (``index`` = its ``model_index.json``): the root files the pipeline reads and, per component
    folder not in ``skip``, its configs and chosen weights. transformers layout (``index`` None): the root folder's
    configs and chosen weights."""
    folders = _by_folder(files)
    if index is None:
        return _folder_files("", folders.get("", []), variant)
    plan = [f for f in ROOT_FILES if f in folders.get("", [])]
    for comp in index_components(index, skip):
        plan += _folder_files(comp, folders.get(comp, []), variant)
    return plan


def download_globs(diffusers_layout: bool, variant: str | None = None, skip: Iterable[str] = ()
                   ) -> tuple[list[str], list[str]]:
    """``(include, exclude)`` glob patterns of the same rule when the file list is unknown (the offline hint):
    configs and the safetensors weights of the variant (or the plain ones), no root checkpoints in a diffusers
    layout."""
    sub = "*/" if diffusers_layout else ""
    include = list(ROOT_FILES[:2]) if diffusers_layout else []
    include += [f"{sub}*{s}" for s in CONFIG_SUFFIXES]
    if variant:
        include += [f"{sub}*.{variant}.safetensors", f"{sub}*.{variant}-*.safetensors"]
        exclude = []
    else:
        include.append(f"{sub}*.safetensors")
        exclude = [f"{sub}*.*.safetensors"]  # variant files carry a second dot
    exclude += [f"{c}/*" for c in skip]
    return include, exclude


def download_command(name: str, diffusers_layout: bool, variant: str | None = None, skip: Iterable[str] = ()) -> str:
    """The ``hf download`` command (huggingface_hub's CLI) that fetches what the loader reads."""
    include, exclude = download_globs(diffusers_layout, variant, skip)
    args = [f'--include "{p}"' for p in include] + [f'--exclude "{p}"' for p in exclude]
    return f"hf download {name} " + " ".join(args)


def fetch(name: str, variant: str | None = None, skip: Iterable[str] = ()) -> Path:
    """Download the files ``download_plan`` picks from hub repository ``name`` into the HF cache; its snapshot."""
    import huggingface_hub

    try:
        files = huggingface_hub.HfApi().list_repo_files(name)
    except Exception:  # no connection, rate limit, ...: the cached snapshot if any, as snapshot_download does
        return Path(huggingface_hub.snapshot_download(name, local_files_only=True))
    index = None
    if MODEL_INDEX in files:
        index = json.loads(Path(huggingface_hub.hf_hub_download(name, MODEL_INDEX)).read_text())
    plan = download_plan(files, index, variant, skip)
    return Path(huggingface_hub.snapshot_download(name, allow_patterns=plan))
