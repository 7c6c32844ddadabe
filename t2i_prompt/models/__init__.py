"""Model loading: one way to name a model (hub id, local directory, ``tiny:<arch>``, ``shapes``)."""

from .loading import (
    ModelNotFoundError,
    find_weight_files,
    load_blip,
    load_causal_lm,
    load_clip,
    load_pretrained,
    load_state_dict,
    load_tokenizer,
    resolve_model_path,
    select_device_dtype,
    shapes_weights_dir,
)
from .tiny import TINY_ARCHS, tiny_model_dir

__all__ = [
    "ModelNotFoundError", "find_weight_files", "load_blip", "load_causal_lm", "load_clip", "load_pretrained",
    "load_state_dict", "load_tokenizer", "resolve_model_path", "select_device_dtype", "shapes_weights_dir",
    "TINY_ARCHS", "tiny_model_dir",
]
