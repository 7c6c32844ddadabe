"""Scorer backends: the four model calls CompBench's metrics need, behind one small interface.

A backend answers ``vqa(images, questions)`` (p_yes / (p_yes + p_no) per question), ``detect(images, labels)``
(``rules.Detection`` lists in the official 480-px frame), ``depth(images)`` (0-1 inverse depth in that frame) and
``clip(images, texts)`` (raw cosine). ``transformers`` runs BLIP-VQA / OWLv2 / DPT-hybrid / CLIP checkpoints by hub id
or local path; ``shapes`` answers from the shapes world's exact detector and its CLIP. Every call is batched.
"""

from __future__ import annotations

DEFAULT_MODELS = {
    # transformers' BLIP conversion script (models/blip/convert_blip_original_pytorch_to_hf.py) converts
    # model_base_vqa_capfilt_large.pth (ViT-B, BlipConfig defaults) into BlipForQuestionAnswering: on the hub that
    # is Salesforce/blip-vqa-capfilt-large (blip-vqa-base is model_vqa.pth, commented out in the same script).
    "vqa": "Salesforce/blip-vqa-capfilt-large",
    "detector": "google/owlv2-base-patch16-ensemble",
    "depth": "Intel/dpt-hybrid-midas",
    "clip": "openai/clip-vit-base-patch32",
}
MODEL_FLAGS = {"vqa": "--vqa-model", "detector": "--detector-model", "depth": "--depth-model", "clip": "--clip-model"}
BACKENDS = ("transformers", "shapes")
VQA_IMAGE_SIZE = 480  # BLIP_vqa.py evaluates at 480 px (the checkpoint was trained at 384; positions interpolated)


def build_backend(name: str, models: dict | None = None, needed: tuple[str, ...] = (), device=None,
                  batch_size: int = 16, detector_threshold: float | None = None):
    """The backend ``name`` with ``models`` overriding ``DEFAULT_MODELS``; the models in ``needed`` are resolved
    first, so a missing one fails before anything loads (the error names the hub id and the flag for a path)."""
    if name == "shapes":
        from .shapes_backend import ShapesBackend

        return ShapesBackend(clip=(models or {}).get("clip") or "shapes:clip", device=device)
    if name != "transformers":
        raise ValueError(f"unknown --backend {name!r}; choose one of {', '.join(BACKENDS)}.")
    from .transformers_backend import TransformersBackend

    chosen = {**DEFAULT_MODELS, **{k: v for k, v in (models or {}).items() if v}}
    for part in needed:
        check_model(part, chosen[part])
    return TransformersBackend(chosen, device=device, batch_size=batch_size, detector_threshold=detector_threshold)


def check_model(part: str, name: str):
    """The local path of an evaluator model; a miss names the hub id and how to pass a local path."""
    from ..models.loading import ModelNotFoundError, resolve_model_path

    try:
        return resolve_model_path(name)
    except ModelNotFoundError as e:
        raise ModelNotFoundError(
            f"evaluator model {name!r} ({part}) is not available: download it (`huggingface-cli download {name}`) "
            f"or pass a local directory saved with save_pretrained as {MODEL_FLAGS[part]} /path/to/model"
        ) from e
