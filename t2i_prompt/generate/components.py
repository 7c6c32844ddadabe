"""Loading the components of a diffusers-layout directory: the classes ``model_index.json`` names, from diffusers
and transformers only (no remote or custom code), weights safetensors-first (``models.hub.choose_weights``: the
requested variant, else the plain files, else the one variant a folder holds), in the requested dtype."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from ..models.hub import choose_weights
from ..models.loading import check_weight_files, from_pretrained_safely

COMPONENTS = ("unet", "scheduler", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "vae",
              "safety_checker", "feature_extractor")
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
# Classes model_index.json names by a diffusers pipeline module (SD1.x/2.x checkpoints ship the safety checker so).
_PIPELINE_CLASSES = {("stable_diffusion", "StableDiffusionSafetyChecker"):
                     "diffusers.pipelines.stable_diffusion.safety_checker"}


def _import_class(library: str, class_name: str):
    if (library, class_name) in _PIPELINE_CLASSES:
        return getattr(importlib.import_module(_PIPELINE_CLASSES[library, class_name]), class_name)
    if library not in _SAFE_LIBRARIES:
        raise ValueError(f"model_index.json names component library {library!r}; only {_SAFE_LIBRARIES} are loaded "
                         "(no remote or custom code).")
    module = importlib.import_module(library)
    if not hasattr(module, class_name):
        raise ValueError(f"{library} has no class {class_name!r} (named in model_index.json).")
    return getattr(module, class_name)


def component_weights(sub: Path, variant: str | None = None) -> tuple[list[str], str | None]:
    """``(weight file names, their variant)`` a component folder is loaded from (``choose_weights``)."""
    return choose_weights([p.name for p in sub.iterdir() if p.is_file()], variant)


def load_component(root: Path, comp: str, entry, device, dtype, variant: str | None = None):
    """One component of a diffusers-layout directory, or None when it is absent (or null in model_index.json).
    Returns ``(component, variant of the weights read)``."""
    sub = root / comp
    if not sub.is_dir() or (entry is not None and (not entry or entry[0] is None)):
        return None, None
    if comp == "scheduler":
        library, class_name = "diffusers", json.loads((sub / "scheduler_config.json").read_text())["_class_name"]
    elif entry is not None:
        library, class_name = entry
    elif comp in _FALLBACK_CLASSES:
        library, class_name = _FALLBACK_CLASSES[comp]
    else:
        return None, None
    if comp == "feature_extractor":  # AutoImageProcessor: the PIL processor when torchvision is absent
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(str(sub)), None
    klass = _import_class(library, class_name)
    if comp.startswith("tokenizer"):
        return klass.from_pretrained(str(sub)), None
    if comp == "scheduler":
        return klass.from_config(klass.load_config(str(sub))), None
    files, used = component_weights(sub, variant)
    if not files:
        raise FileNotFoundError(f"Component {comp!r} at {str(sub)!r} has no weight files (*.safetensors).")
    check_weight_files(sub, depth=0)
    kwargs = {"torch_dtype": dtype} if library == "diffusers" else {"dtype": dtype}
    if used:
        kwargs["variant"] = used
    model = from_pretrained_safely(lambda: klass.from_pretrained(str(sub), **kwargs), sub)
    return model.to(device=device).eval(), used


# Sampling defaults shipped next to a model; the older name is still read.
DEFAULTS_FILE = "t2i_sampling.json"
DEFAULTS_FILE_NAMES = (DEFAULTS_FILE, "t2i_prompt.json")


def read_sampling_defaults(path: Path) -> dict | None:
    """The model folder's sampling defaults (``t2i_sampling.json``; height, width, steps, guidance), or None."""
    files = [path / f for f in DEFAULTS_FILE_NAMES if (path / f).is_file()]
    return json.loads(files[0].read_text()) if files else None
