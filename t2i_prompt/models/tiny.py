"""Tiny random models of every architecture the toolkit loads, built in code for tests and smoke runs.

Each builder makes a real-architecture model under ``torch.manual_seed(0)``, saves it with ``save_pretrained``
(safetensors) into ``$T2I_PROMPT_CACHE/tiny/<arch>`` and the caller loads it back through the normal loading code
(``t2i_prompt.models.loading``), so tests exercise the same path as a real checkpoint. The recipe follows diffusers'
``get_dummy_components`` (huggingface/diffusers: tests/pipelines/stable_diffusion/test_stable_diffusion.py).

Archs (``tiny:<arch>``):

* ``sd15``  diffusers SD1.5 layout: UNet2DConditionModel (CrossAttn blocks), AutoencoderKL (vae scale 2), CLIPTextModel,
  CLIP BPE tokenizer (1000 tokens), DDIMScheduler. Default 32x32 images (16x16 latents, 8x8 cross-attention maps).
* ``sdxl``  diffusers SDXL layout: + CLIPTextModelWithProjection/tokenizer_2, UNet with ``addition_embed_type="text_time"``,
  EulerDiscreteScheduler. Default 32x32 images.
* ``pixel`` pixel-space T2I in the shapes world's layout (no VAE, 3-channel UNet, ``t2i_sampling.json`` defaults 16x16).
* ``clip``  transformers ``CLIPModel`` + tokenizer + image processor (32x32) in one directory.
* ``blip``  ImageReward / VP-Score style scorer: transformers ``BlipForImageTextRetrieval`` (ViT + BERT text encoder
  with cross-attention) + ``BlipProcessor`` files, plus a score head ``score_head.safetensors`` described in
  ``score_head.json``. The head mirrors ImageReward's ``MLP`` (THUDM/ImageReward: ImageReward/ImageReward.py):
  ``mlp.layers = Sequential(Linear(d0,d1), Dropout, Linear(d1,d2), Dropout, Linear(d2,d3), Dropout, Linear(d3,d4),
  Linear(d4,1))`` so the keys are ``mlp.layers.{0,2,4,6,7}.{weight,bias}``; real dims 768->1024->128->64->16->1, here
  32->64->16->8->4->1 (``score_head.json["dims"]``). Score = ``(mlp(text_encoder(ids, encoder_hidden_states=
  vision(image))[:, 0]) - mean) / std`` with ``mean``/``std`` from the json (ImageReward normalisation).
* ``blip_vqa`` / ``owlv2`` / ``dpt``  the CompBench evaluators' architectures (``BlipForQuestionAnswering``,
  ``Owlv2ForObjectDetection``, hybrid ``DPTForDepthEstimation``) with their processors, 32 px inputs.
* ``gpt2``  ``GPT2LMHeadModel`` + byte-level BPE tokenizer (``train_bytelevel_tokenizer``).
* ``chat``  ``Qwen2ForCausalLM`` + byte-level tokenizer with ``<|im_start|>``/``<|im_end|>`` and a ChatML chat template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

# Bump when a builder changes so stale caches are rebuilt.
TINY_VERSION = 3
TINY_VERSION_FILE = "t2i_prompt_tiny.json"

CLIP_TINY_MERGES = 486  # -> 1000-token CLIP vocabulary (486 merges + 512 byte tokens + bos/eos)

_COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "pink", "brown"]
_SHAPES = ["circle", "square", "triangle", "star", "cat", "dog", "house", "tree", "car", "flower"]
_RELATIONS = ["above", "below", "left of", "right of", "next to", "on top of"]
_STYLES = ["highly detailed", "digital art", "sharp focus", "trending on artstation", "8k", "oil painting",
           "studio lighting", "cinematic", "concept art", "photorealistic"]


def tiny_corpus() -> list[str]:
    """A small deterministic prompt-like corpus used to train the tiny byte-level tokenizers."""
    lines = []
    for i, c in enumerate(_COLORS):
        for j, s in enumerate(_SHAPES):
            c2, s2 = _COLORS[(i + j + 1) % len(_COLORS)], _SHAPES[(i * 3 + j + 2) % len(_SHAPES)]
            rel = _RELATIONS[(i + j) % len(_RELATIONS)]
            style = _STYLES[(i * 7 + j) % len(_STYLES)]
            lines.append(f"a {c} {s} {rel} a {c2} {s2}")
            lines.append(f"A {c} {s} {rel} a {c2} {s2}, {style}, {_STYLES[(i + 2 * j) % len(_STYLES)]}")
    return lines


def _text_config_kwargs(vocab_size: int, hidden: int = 32) -> dict:
    """Shared CLIP text-tower config: 2 layers, 77 positions, bos/eos = the tokenizer's last two ids."""
    return dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=77, bos_token_id=vocab_size - 2,
                eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1, projection_dim=hidden)


def _tiny_clip_tokenizer():
    from .tokenizers import make_clip_tokenizer

    return make_clip_tokenizer(n_merges=CLIP_TINY_MERGES)


def _tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=(16, 32), in_channels=3, out_channels=3, norm_num_groups=8,
                         down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                         up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4, sample_size=32)


def tiny_unet(seed: int = 0, **overrides):
    """A tiny ``UNet2DConditionModel`` (SD1.5 layout by default, 16/32 channels), built under ``seed``; ``overrides``
    are its config (tests, benchmarks and the tiny pipelines all build UNets here)."""
    from diffusers import UNet2DConditionModel

    kwargs = dict(block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
                  down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=8,
                  attention_head_dim=4)
    kwargs.update(overrides)
    torch.manual_seed(seed)
    return UNet2DConditionModel(**kwargs).eval()


def _tiny_text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    return CLIPTextModel(CLIPTextConfig(**_text_config_kwargs(len(tokenizer))))


def build_sd15(out_dir: Path) -> None:
    """SD1.5-style diffusers pipeline directory (latent space, vae scale factor 2, 64x64 default)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    tokenizer = _tiny_clip_tokenizer()
    text_encoder = _tiny_text_encoder(tokenizer)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              steps_offset=1, clip_sample=False, set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(vae=_tiny_vae(), text_encoder=text_encoder, tokenizer=tokenizer, unet=tiny_unet(),
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(out_dir, safe_serialization=True)


def build_sdxl(out_dir: Path) -> None:
    """SDXL-style diffusers pipeline directory: two text encoders, text_time added conditioning (env notes §4)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = _tiny_clip_tokenizer()
    cfg = CLIPTextConfig(**_text_config_kwargs(len(tokenizer)))
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(cfg)
    torch.manual_seed(1)
    text_encoder_2 = CLIPTextModelWithProjection(cfg)
    # time ids: 6 values x addition_time_embed_dim 8, plus the pooled projection (32) -> 80.
    unet = tiny_unet(addition_embed_type="text_time", addition_time_embed_dim=8,
                      projection_class_embeddings_input_dim=6 * 8 + cfg.projection_dim,
                      cross_attention_dim=2 * cfg.hidden_size, attention_head_dim=(2, 4),
                      use_linear_projection=True, transformer_layers_per_block=(1, 2))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=_tiny_vae(), text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(out_dir, safe_serialization=True)


PIXEL_DEFAULTS = {"height": 16, "width": 16, "num_inference_steps": 4, "guidance_scale": 2.0}


def build_pixel(out_dir: Path) -> None:
    """Pixel-space T2I directory in the shapes world's layout: no VAE, an RGB UNet, ``t2i_sampling.json`` defaults."""
    from diffusers import DDIMScheduler

    tokenizer = _tiny_clip_tokenizer()
    text_encoder = _tiny_text_encoder(tokenizer)
    unet = tiny_unet(in_channels=3, out_channels=3, sample_size=16)
    scheduler = DDIMScheduler(beta_schedule="squaredcos_cap_v2", steps_offset=1, clip_sample=False,
                              set_alpha_to_one=False)
    unet.save_pretrained(out_dir / "unet", safe_serialization=True)
    text_encoder.save_pretrained(out_dir / "text_encoder", safe_serialization=True)
    tokenizer.save_pretrained(out_dir / "tokenizer")
    scheduler.save_pretrained(out_dir / "scheduler")
    index = {"_class_name": "T2IPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "DDIMScheduler"]}
    (out_dir / "model_index.json").write_text(json.dumps(index, indent=2))
    (out_dir / "t2i_sampling.json").write_text(json.dumps(PIXEL_DEFAULTS, indent=2))


def build_clip(out_dir: Path) -> None:
    """transformers CLIPModel (text + vision towers, projection 32) with tokenizer and a 32x32 image processor."""
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = _tiny_clip_tokenizer()
    text = _text_config_kwargs(len(tokenizer))
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=32)
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision.to_dict(), projection_dim=32))
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out_dir)


BLIP_HEAD_DIMS = (32, 64, 16, 8, 4, 1)  # ImageReward: (768, 1024, 128, 64, 16, 1)
AESTHETIC_DIMS = (32, 1024, 128, 64, 16, 1)  # the LAION predictor's hidden sizes on tiny:clip's 32-d embedding
MLP_LINEAR_INDICES = (0, 2, 4, 6, 7)  # Linear layers of the LAION / ImageReward MLP (dropouts in between)


def mlp_head_state(dims, prefix: str = "", seed: int = 0, scale: float | None = None) -> dict[str, torch.Tensor]:
    """Weights in the LAION aesthetic / ImageReward MLP key layout (``<prefix>layers.{0,2,4,6,7}.{weight,bias}``):
    ``nn.Linear`` defaults under ``seed``, or N(0, scale) when ``scale`` is given."""
    torch.manual_seed(seed)
    state = {}
    for idx, (d_in, d_out) in zip(MLP_LINEAR_INDICES, zip(dims[:-1], dims[1:])):
        if scale is None:
            layer = torch.nn.Linear(d_in, d_out)
            weight, bias = layer.weight.detach(), layer.bias.detach()
        else:
            weight, bias = torch.randn(d_out, d_in) * scale, torch.randn(d_out) * scale
        state[f"{prefix}layers.{idx}.weight"], state[f"{prefix}layers.{idx}.bias"] = weight.contiguous(), bias
    return state


def build_quality(out_dir: Path) -> None:
    """LAION-layout aesthetic MLP on tiny:clip's embedding (the ``shapes:quality`` folder layout)."""
    from safetensors.torch import save_file

    save_file(mlp_head_state(AESTHETIC_DIMS), str(out_dir / "model.safetensors"))
    (out_dir / "config.json").write_text(json.dumps({"embed_dim": AESTHETIC_DIMS[0], "clip": "tiny:clip"}))


def _tiny_bert_tokenizer():
    """A small BERT WordPiece tokenizer (lower-case): specials, ``[ENC]`` (ImageReward's bos), chars, corpus words."""
    from transformers import BertTokenizer

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?:;'\"-()")
    words = sorted({w for line in tiny_corpus() for w in line.lower().replace(",", " ").split()})
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[ENC]"] + chars + ["##" + c for c in chars[:36]] + words
    tokens = list(dict.fromkeys(tokens))
    tok = BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True, model_max_length=35)
    tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tok


def build_blip(out_dir: Path) -> None:
    """BLIP image-text model (ImageReward / VP-Score backbone) + ImageReward-layout score head (see module doc)."""
    from safetensors.torch import save_file
    from transformers import BlipConfig, BlipForImageTextRetrieval, BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    tokenizer = _tiny_bert_tokenizer()
    hidden = BLIP_HEAD_DIMS[0]
    text = dict(vocab_size=len(tokenizer), hidden_size=hidden, encoder_hidden_size=hidden, intermediate_size=64,
                num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64,
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                sep_token_id=tokenizer.sep_token_id)
    vision = dict(hidden_size=hidden, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  image_size=32, patch_size=8)
    torch.manual_seed(0)
    model = BlipForImageTextRetrieval(BlipConfig(text_config=text, vision_config=vision, projection_dim=32,
                                                 image_text_hidden_size=32))
    model.save_pretrained(out_dir, safe_serialization=True)
    image_processor = BlipImageProcessorPil(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out_dir)
    save_file(mlp_head_state(BLIP_HEAD_DIMS, prefix="mlp.", scale=0.2), str(out_dir / "score_head.safetensors"))
    meta = {"dims": list(BLIP_HEAD_DIMS), "mean": 0.0, "std": 1.0, "layout": "ImageReward MLP: mlp.layers.{0,2,4,6,7}",
            "input": "BLIP text encoder [:, 0] hidden state with image cross-attention"}
    (out_dir / "score_head.json").write_text(json.dumps(meta, indent=2))


def _lm_tokenizer(extra_special: list[str] = ()):
    from .tokenizers import train_bytelevel_tokenizer

    tok = train_bytelevel_tokenizer(tiny_corpus(), vocab_size=600)
    if extra_special:
        tok.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return tok


def build_gpt2(out_dir: Path) -> None:
    """GPT2LMHeadModel (2 layers, 32 dims) with a byte-level BPE tokenizer trained on ``tiny_corpus``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = _lm_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                       pad_token_id=tok.pad_token_id))
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)


CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_chat(out_dir: Path) -> None:
    """Qwen2ForCausalLM (2 layers, GQA 4/2 heads) with a ChatML chat template (Qwen's ``<|im_start|>`` format)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = _lm_tokenizer(["<|im_start|>", "<|im_end|>"])
    tok.chat_template = CHATML_TEMPLATE
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.eos_token_id = [cfg.eos_token_id, tok.eos_token_id]
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)


# The CompBench evaluators' builders live in their own file; it uses the tokenizer helpers above.
from .tiny_evaluators import build_blip_vqa, build_dpt, build_owlv2  # noqa: E402

TINY_BUILDERS: dict[str, Callable[[Path], None]] = {
    "sd15": build_sd15,
    "sdxl": build_sdxl,
    "pixel": build_pixel,
    "clip": build_clip,
    "quality": build_quality,
    "blip": build_blip,
    "blip_vqa": build_blip_vqa,
    "owlv2": build_owlv2,
    "dpt": build_dpt,
    "gpt2": build_gpt2,
    "chat": build_chat,
}
TINY_ARCHS = tuple(TINY_BUILDERS)


def _is_current(path: Path) -> bool:
    try:
        return json.loads((path / TINY_VERSION_FILE).read_text()).get("version") == TINY_VERSION
    except (OSError, ValueError):
        return False


def tiny_model_dir(arch: str, cache_dir: Path | None = None) -> Path:
    """Directory of the tiny ``arch`` model, building it on first use (or when its ``TINY_VERSION`` is stale).

    Built in a temp dir next to the target and swapped in (``cache.atomic_dir``), so parallel processes never see
    a half-written directory; builds are deterministic, so racing builders write identical copies.
    """
    from ..cache import atomic_dir
    from ..utils import cache_dir as default_cache_dir

    if arch not in TINY_BUILDERS:
        raise ValueError(f"Unknown tiny architecture {arch!r}; choose one of: "
                         + ", ".join(f"tiny:{a}" for a in TINY_ARCHS) + ".")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "tiny"
    target = root / arch
    if _is_current(target):
        return target
    with atomic_dir(target) as tmp:  # parallel builders: the last complete copy wins
        TINY_BUILDERS[arch](tmp)
        (tmp / TINY_VERSION_FILE).write_text(json.dumps({"arch": arch, "version": TINY_VERSION}))
    return target
