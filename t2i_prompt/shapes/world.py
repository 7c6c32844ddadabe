"""The shapes world's models: architectures, shipped weight locations, data sampling.

Everything the world ships lives in ``t2i_prompt/shapes/weights/<part>/``:

* ``t2i``      diffusers layout (``model_index.json``, ``unet/``, ``text_encoder/``, ``tokenizer/``,
               ``scheduler/``) of a pixel-space ``UNet2DConditionModel`` + a tiny ``CLIPTextModel`` with the real
               CLIP BPE (first ``CLIP_MERGES`` merges), plus ``t2i_sampling.json`` (default sampling settings).
* ``clip``     a transformers ``CLIPModel`` trained contrastively on casual and canonical captions.
* ``quality``  an aesthetic-MLP (LAION key layout) on the shapes CLIP image embedding that prefers large,
               centred objects - a quality signal that can conflict with faithfulness.
* ``rewriter`` a tiny GPT-2 SFT-trained casual -> canonical with the Promptist template.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from .grammar import Scene, canonical_caption, casual_caption, random_scene
from .render import IMAGE_SIZE, render_batch, render_batch_with_masks

CLIP_MERGES = 8000  # -> vocabulary of 8514 tokens; every word of the grammar tokenises exactly as in full CLIP
TEXT_HIDDEN = 64
# Sampling defaults shipped with the model (read by T2IPipeline from t2i_sampling.json): guidance 3 is the best of
# the sweep in training/shapes/README.md §3; region binding's soft refinement attends to the base prompt here
# (README "Region binding and LPA on the shapes world"); LocalBlend's mask is min-max normalised at 0.5, since the
# shipped model's words attend diffusely (README "Editing"; max-normalised, the mask covers the whole image).
DEFAULT_SAMPLING = {"height": IMAGE_SIZE, "width": IMAGE_SIZE, "num_inference_steps": 20, "guidance_scale": 3.0,
                    "region_sr_source": "base", "local_normalise": "minmax", "local_threshold": 0.5}


# --------------------------------------------------------------------------------------- architectures
def make_tokenizer():
    from ..models.tokenizers import make_clip_tokenizer

    return make_clip_tokenizer(n_merges=CLIP_MERGES)


def make_text_config(vocab_size: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=TEXT_HIDDEN, intermediate_size=4 * TEXT_HIDDEN,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77, projection_dim=TEXT_HIDDEN,
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
    )


def make_unet(block_out_channels=(32, 64, 64)):
    """Pixel-space UNet: 32x32 plain conv level, cross-attention at 16x16 and 8x8 (and the mid block)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=tuple(block_out_channels),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN, attention_head_dim=4, norm_num_groups=8,
    )


PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def make_scheduler_config(prediction_type: str = "sample") -> dict:
    """Training noise schedule (cosine, 1000 steps); sampling uses DDIM with the same config.

    The shipped model predicts x0 ("sample"); epsilon and v prediction are options (training/shapes/README.md §3).
    ``clip_sample`` keeps x0 in the pixel range; the pipeline then takes DDIM's direction from the clipped x0, without
    which guidance fails here (same section).
    """
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type {prediction_type!r} is not one of {PREDICTION_TYPES}")
    return {
        "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "prediction_type": prediction_type,
        "clip_sample": True, "clip_sample_range": 1.0, "set_alpha_to_one": False, "steps_offset": 1,
    }


# ------------------------------------------------------------------------------------------------ data
def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _training_scenes(seed: int, step: int, batch_size: int, p_single: float, p_relation: float):
    rng = random.Random(seed * 1_000_003 + step)
    return [random_scene(rng, p_single, p_relation) for _ in range(batch_size)], np.random.default_rng([seed, step])


def sample_training_batch(seed: int, step: int, batch_size: int, p_single: float = 0.35,
                          p_relation: float = 0.45) -> tuple[list[Scene], np.ndarray]:
    """Scenes and rendered images of one training step; a pure function of (seed, step) so resume is exact."""
    scenes, nrng = _training_scenes(seed, step, batch_size, p_single, p_relation)
    return scenes, render_batch(scenes, nrng)


def sample_training_batch_with_masks(seed: int, step: int, batch_size: int, p_single: float = 0.35,
                                     p_relation: float = 0.45) -> tuple[list[Scene], np.ndarray, list[np.ndarray]]:
    """``sample_training_batch`` (the same scenes and images) plus each scene's object masks."""
    scenes, nrng = _training_scenes(seed, step, batch_size, p_single, p_relation)
    return (scenes, *render_batch_with_masks(scenes, nrng))


def caption_pairs(n: int, seed: int, split: str = "all") -> list[tuple[str, str, Scene]]:
    """(casual, canonical, scene) triples for rewriter SFT; ``split`` is the casual generator's (``grammar.SPLITS``:
    ``"train"`` never produces a held-out template or synonym, the default ``"all"`` is the full generator).

    The canonical caption describes the scene in the casual prompt's mention order ("B under A" -> "a B below
    a A", the same scene as "a A above a B"), so rewriting is a left-to-right word mapping a tiny LM learns
    without having to swap and re-bind objects.
    """
    from .grammar import parse_prompt

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        scene = random_scene(rng)
        casual = casual_caption(scene, rng, split)
        out.append((casual, canonical_caption(parse_prompt(casual)), scene))
    return out
