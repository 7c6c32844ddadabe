"""Loading the components of a diffusers-layout directory: the classes ``model_index.json`` names, from diffusers
and transformers only (no remote or custom code), weights safetensors-first, in the requested dtype."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from ..models.loading import check_weight_files, find_weight_files, from_pretrained_safely

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


def _import_class(library: str, class_name: str):
    if library not in _SAFE_LIBRARIES:
        raise ValueError(f"model_index.json names component library {library!r}; only {_SAFE_LIBRARIES} are loaded "
                         "(no remote or custom code).")
    module = importlib.import_module(library)
    if not hasattr(module, class_name):
        raise ValueError(f"{library} has no class {class_name!r} (named in model_index.json).")
    return getattr(module, class_name)


def load_component(root: Path, comp: str, entry, device, dtype):
    """One component of a diffusers-layout directory, or None when it is absent (or null in model_index.json)."""
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
    check_weight_files(sub, depth=0)
    dtype_kwarg = {"torch_dtype": dtype} if library == "diffusers" else {"dtype": dtype}
    model = from_pretrained_safely(lambda: klass.from_pretrained(str(sub), **dtype_kwarg), sub)
    return model.to(device=device).eval()
