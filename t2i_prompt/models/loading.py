"""One way to name a model: ``None``/``shapes[:part]``, ``tiny:<arch>``, a local directory or file, or a hub id.

``resolve_model_path`` turns a name into a local path (never downloading when ``HF_HUB_OFFLINE=1``); the ``load_*``
helpers load transformers models from it. Weights are read safetensors-first, and pickles only with
``torch.load(weights_only=True)`` so a checkpoint cannot run code on load.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ..utils import select_device_dtype

__all__ = [
    "ModelNotFoundError", "SHAPES_PARTS", "WEIGHT_SUFFIXES", "resolve_model_path", "shapes_weights_dir",
    "select_device_dtype", "load_state_dict", "find_weight_files", "load_pretrained", "load_tokenizer",
    "load_clip", "load_causal_lm", "load_blip", "is_offline",
]

SHAPES_PARTS = ("t2i", "clip", "quality", "rewriter")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


class ModelNotFoundError(FileNotFoundError):
    """A model name that resolves to nothing on this machine (message names it and how to give a local path)."""


def is_offline() -> bool:
    """True when the hub must not be contacted (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` set)."""
    return any(os.environ.get(k, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def shapes_weights_dir(part: str = "t2i") -> Path:
    """``t2i_prompt/shapes/weights/<part>``: the shipped weights of the embedded shapes world."""
    if part not in SHAPES_PARTS:
        raise ValueError(f"Unknown shapes component {part!r}; choose one of: "
                         + ", ".join("shapes" if p == "t2i" else f"shapes:{p}" for p in SHAPES_PARTS) + ".")
    return Path(__file__).resolve().parent.parent / "shapes" / "weights" / part  # no import of the shapes package


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", ".\\")) or os.path.isabs(name) or name.endswith(WEIGHT_SUFFIXES)


def find_weight_files(path: Path, depth: int = 1) -> list[Path]:
    """Weight files in ``path`` and (for diffusers layouts) its sub-directories up to ``depth`` levels."""
    path = Path(path)
    if path.is_file():
        return [path] if path.name.endswith(WEIGHT_SUFFIXES) else []
    found = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if depth > 0:
        for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found += find_weight_files(sub, depth - 1)
    return found


def check_safetensors(path: str | os.PathLike) -> Path:
    """A ValueError "corrupt or truncated file: PATH" unless ``path`` is a whole safetensors file: an 8-byte header
    length, a JSON header of that length, and tensor data ending exactly at the end of the file."""
    import json
    import struct

    path = Path(path)
    size = path.stat().st_size
    fix = "re-download or re-save it"
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"corrupt or truncated file: {path} ({size} bytes, no safetensors header) — {fix}")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise ValueError(f"corrupt or truncated file: {path} (header of {n} bytes in a {size}-byte file) — {fix}")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise ValueError(f"corrupt or truncated file: {path} (unreadable safetensors header) — {fix}") from None
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    expected = 8 + n + max(ends, default=0)
    if expected != size:
        raise ValueError(f"corrupt or truncated file: {path} ({size} bytes, its header describes {expected}) — {fix}")
    return path


def check_weight_files(path: str | os.PathLike, depth: int = 1) -> None:
    """``check_safetensors`` on every safetensors file of a model directory (cheap: headers and sizes only)."""
    for f in find_weight_files(Path(path), depth):
        if f.suffix == ".safetensors":
            check_safetensors(f)


def _require_weights(path: Path, name: str) -> Path:
    if not find_weight_files(path):
        kinds = ", ".join(f"*{s}" for s in WEIGHT_SUFFIXES)
        raise FileNotFoundError(
            f"Model path {str(path)!r} (from {name!r}) contains no weight files ({kinds}). Point --model at a "
            "directory saved with save_pretrained (diffusers or transformers layout) or at a weights file."
        )
    return path


def _resolve_hub_id(name: str, variant: str | None = None, skip: tuple[str, ...] = (),
                    diffusers_layout: bool = False) -> Path:
    """A hub id -> its snapshot: offline the cached one; online only the files the loaders read (``hub.fetch``)."""
    from huggingface_hub import snapshot_download

    from .hub import download_command, fetch

    offline = is_offline()
    try:
        return Path(snapshot_download(name, local_files_only=True)) if offline else fetch(name, variant, skip)
    except Exception as e:  # LocalEntryNotFoundError, HFValidationError, connection errors, gated repos...
        where = "the local Hugging Face cache (offline: HF_HUB_OFFLINE=1)" if offline else "the hub or the local cache"
        raise ModelNotFoundError(
            f"Model {name!r} was not found: it is not an existing local path, not 'shapes[:part]' or 'tiny:<arch>', "
            f"and not in {where} ({type(e).__name__}). Pass a local path to a model directory instead "
            f"(e.g. --model /path/to/model saved with save_pretrained), or download what the loader reads first "
            f"on a machine with internet: `{download_command(name, diffusers_layout, variant, skip)}` "
            "(a repository without safetensors weights: --include \"*.bin\" instead)."
        ) from e


def resolve_model_path(name: str | os.PathLike | None = None, variant: str | None = None,
                       skip: tuple[str, ...] = (), diffusers_layout: bool = False) -> Path:
    """Map a model name to a local path (see module docstring). ``None`` means the shapes world's T2I model.

    ``variant`` (e.g. ``"fp16"``) and ``skip`` (component folders not loaded) narrow what a hub id downloads;
    ``diffusers_layout`` shapes the download hint of the offline error."""
    if name is None:
        name = "shapes"
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"A model name must be a non-empty string, got {name!r}.")
    name = name.strip()
    if name == "shapes" or name.startswith("shapes:"):
        part = "t2i" if name == "shapes" else name.split(":", 1)[1]
        path = shapes_weights_dir(part)
        if not path.is_dir():
            raise ModelNotFoundError(
                f"The shapes world weights for {name!r} are missing: {path} does not exist. They are shipped with "
                "the package (trained by training/train_shapes*.py); reinstall t2i-prompt or pass a local path with "
                "--model."
            )
        return _require_weights(path, name)
    if name.startswith("tiny:"):
        from .tiny import tiny_model_dir

        return tiny_model_dir(name.split(":", 1)[1])
    path = Path(name).expanduser()
    if path.exists():
        return _require_weights(path.resolve(), name)
    if _looks_like_path(name):
        raise ModelNotFoundError(f"Local path {name!r} does not exist; check the spelling, or give a hub id "
                                 "that is in the local Hugging Face cache.")
    return _resolve_hub_id(name, variant, tuple(skip), diffusers_layout)


# --------------------------------------------------------------------------------------------- state dicts
def _torch_load_safely(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise refused_pickle_error(path) from e


def refused_pickle_error(path) -> ValueError:
    return ValueError(
        f"Refusing to load {str(path)!r}: it is a pickle holding more than tensors (e.g. custom classes), and "
        "t2i-prompt refuses to unpickle arbitrary code (torch.load(weights_only=True) rejected it). Convert it "
        "once to safetensors, in an environment you trust and only if you trust its source: unpickle it fully, "
        "then save its tensors with `safetensors.torch.save_file(state_dict, 'model.safetensors')`."
    )


def from_pretrained_safely(load, path):
    """``load()`` (a library's ``from_pretrained``); a pickle it refused becomes the one clear refusal message."""
    try:
        return load()
    except (OSError, RuntimeError, ValueError) as e:
        cause = e
        while cause is not None and not isinstance(cause, pickle.UnpicklingError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        bins = [f for f in find_weight_files(Path(path), depth=0) if f.name.endswith(_PICKLE_SUFFIXES)]
        raise refused_pickle_error(bins[0] if bins else path) from e


def _as_tensor_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "module"):  # common checkpoint wrappers
        if isinstance(obj, dict) and isinstance(obj.get(key), dict) and not isinstance(obj.get(key), torch.Tensor):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{str(path)!r} does not hold a state dict (a mapping of names to tensors); "
                         f"got {type(obj).__name__}.")
    return dict(obj)


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from a file or directory: ``*.safetensors`` first, else ``.pt/.pth/.bin/.ckpt``.

    Pickled files are read with ``weights_only=True``; one that needs arbitrary code raises ``ValueError``. A
    directory with several files of the chosen kind (shards) is merged.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Weights path {str(path)!r} does not exist.")
    files = [path] if path.is_file() else find_weight_files(path, depth=0)
    safe = [f for f in files if f.suffix == ".safetensors"]
    chosen = safe or [f for f in files if f.name.endswith(_PICKLE_SUFFIXES)]
    if not chosen:
        raise FileNotFoundError(f"No weight file (*.safetensors, *.pt, *.pth, *.bin, *.ckpt) at {str(path)!r}.")
    state: dict[str, torch.Tensor] = {}
    for f in chosen:
        state.update(load_file(str(check_safetensors(f))) if f.suffix == ".safetensors"
                     else _as_tensor_dict(_torch_load_safely(f), f))
    return state


# --------------------------------------------------------------------------------------------- model loaders
def load_pretrained(cls, name: str | os.PathLike | None, device=None, dtype=None, subfolder: str | None = None,
                    **kwargs):
    """``cls.from_pretrained`` on a resolved name (safetensors preferred), moved to the chosen device/dtype, eval mode."""
    path = resolve_model_path(name)
    if subfolder:
        path = path / subfolder
        if not path.is_dir():
            raise FileNotFoundError(f"{str(path)!r} does not exist: model {name!r} has no {subfolder!r} component.")
        _require_weights(path, f"{name}/{subfolder}")
    device, dtype = select_device_dtype(device, dtype)
    check_weight_files(path, depth=0)
    model = from_pretrained_safely(lambda: cls.from_pretrained(str(path), **kwargs), path)
    return model.to(device=device, dtype=dtype).eval()


def load_tokenizer(name: str | os.PathLike | None, subfolder: str | None = None, **kwargs):
    """``AutoTokenizer`` from a resolved name (tokenizer files only; no remote code)."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    if subfolder:
        path = path / subfolder
    require_tokenizer_files(path)
    return AutoTokenizer.from_pretrained(str(path), **kwargs)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model", "spiece.model",
                   "vocab.txt")


def require_tokenizer_files(path: str | os.PathLike) -> Path:
    """A model directory without tokenizer files is an error here (transformers would silently build a stub)."""
    path = Path(path)
    if path.is_dir() and not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise FileNotFoundError(f"{path} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the tokenizer "
                                "next to the model (tokenizer.save_pretrained(dir)).")
    return path


def load_clip(name: str | os.PathLike | None = "shapes:clip", device=None, dtype=None):
    """A transformers ``CLIPModel`` with its tokenizer and image processor -> ``(model, tokenizer, image_processor)``."""
    from transformers import AutoImageProcessor, CLIPModel

    path = resolve_model_path(name)  # once: a hub id is fetched once for all three parts
    model = load_pretrained(CLIPModel, path, device, dtype)
    return model, load_tokenizer(path), AutoImageProcessor.from_pretrained(str(path))


def ensure_pad_token(tokenizer):
    """A decoder LM tokenizer without a pad token pads with EOS (GPT-2 convention, as Promptist does)."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token; add one (tokenizer.pad_token = ...).")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name: str | os.PathLike | None = "shapes:rewriter", device=None, dtype=None):
    """A transformers causal LM (GPT-2, Llama, Qwen, ...) and its tokenizer -> ``(model, tokenizer)``."""
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name)
    return load_pretrained(AutoModelForCausalLM, path, device, dtype), ensure_pad_token(load_tokenizer(path))


def load_blip(name: str | os.PathLike | None, device=None, dtype=None):
    """A BLIP image-text model (ImageReward / VP-Score backbone) -> ``(model, processor, head_state, head_meta)``.

    ``head_state`` / ``head_meta`` are the ImageReward-layout score head (``score_head.safetensors`` +
    ``score_head.json``, see ``t2i_prompt.models.tiny``), or ``None`` when the directory has none.
    """
    import json

    from transformers import BlipForImageTextRetrieval, BlipProcessor

    path = resolve_model_path(name)
    model = load_pretrained(BlipForImageTextRetrieval, path, device, dtype)
    processor = BlipProcessor.from_pretrained(str(path))
    head_file = path / "score_head.safetensors"
    head_state = load_state_dict(head_file) if head_file.exists() else None
    meta_file = path / "score_head.json"
    head_meta = json.loads(meta_file.read_text()) if meta_file.exists() else None
    return model, processor, head_state, head_meta
