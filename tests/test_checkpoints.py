"""Checkpoints as users have them: hub downloads of only what the loader reads, fp16 variants, the safety checker.

Hub file lists are the real repositories' layouts (SD1.5, a Promptist-style GPT-2, CLIP ViT-L/14); the folders loaded
are the tiny models saved in those layouts by the tests themselves.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from t2i_prompt.generate import ImageGenerator, T2IPipeline
from t2i_prompt.models import hub
from t2i_prompt.models.loading import ModelNotFoundError, resolve_model_path
from t2i_prompt.utils import make_generators

# stable-diffusion-v1-5/stable-diffusion-v1-5 as it is on the hub (flax files included)
SD15_FILES = [
    ".gitattributes", "README.md", "model_index.json", "v1-5-pruned-emaonly.ckpt", "v1-5-pruned-emaonly.safetensors",
    "v1-5-pruned.ckpt", "v1-5-pruned.safetensors", "v1-inference.yaml", "feature_extractor/preprocessor_config.json",
    "scheduler/scheduler_config.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
] + [f"{c}/{f}" for c in ("safety_checker", "text_encoder") for f in (
    "config.json", "flax_model.msgpack", "model.fp16.safetensors", "model.safetensors", "pytorch_model.bin",
    "pytorch_model.fp16.bin")] + [f"{c}/{f}" for c in ("unet", "vae") for f in (
    "config.json", "diffusion_flax_model.msgpack", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin",
    "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors")] + [
    "unet/diffusion_pytorch_model.non_ema.bin", "unet/diffusion_pytorch_model.non_ema.safetensors"]
SD15_INDEX = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0",
              "feature_extractor": ["transformers", "CLIPImageProcessor"],
              "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
              "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
              "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
              "vae": ["diffusers", "AutoencoderKL"]}
SD15_CONFIGS = ["model_index.json", "feature_extractor/preprocessor_config.json", "scheduler/scheduler_config.json",
                "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
                "tokenizer/vocab.json", "safety_checker/config.json", "text_encoder/config.json", "unet/config.json",
                "vae/config.json"]


class FakeHub:
    """The three huggingface_hub calls a download makes, answered from a file list; records what was asked."""

    def __init__(self, monkeypatch, files, index, snapshot):
        import huggingface_hub

        self.calls, self.index_file = [], snapshot / "model_index.json"
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
        monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda api, repo_id, **kw: list(files))
        monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                            lambda repo_id, filename, **kw: str(snapshot / filename))
        if index is not None and not self.index_file.exists():
            self.index_file.write_text(json.dumps(index))

        def snapshot_download(repo_id, **kwargs):
            self.calls.append((repo_id, kwargs))
            return str(snapshot)

        monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def _allowed(fake):
    (_, kwargs), = fake.calls
    assert set(kwargs) == {"allow_patterns"}  # no local_files_only, no ignore list: exactly these files
    return sorted(kwargs["allow_patterns"])


@pytest.fixture()
def sd15_snapshot(tmp_path, tiny_path):
    """tiny:sd15 with SD1.5's model_index.json (which names a safety checker this folder does not have)."""
    path = tmp_path / "snapshot"
    shutil.copytree(tiny_path("sd15"), path)
    (path / "model_index.json").write_text(json.dumps(SD15_INDEX))
    return path


# ------------------------------------------------------------------------------------------- 1. downloads
@pytest.mark.parametrize("dtype, safety, expected_weights", [
    (torch.float32, True, ["safety_checker/model.safetensors", "text_encoder/model.safetensors",
                           "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"]),
    (torch.float16, True, ["safety_checker/model.fp16.safetensors", "text_encoder/model.fp16.safetensors",
                           "unet/diffusion_pytorch_model.fp16.safetensors",
                           "vae/diffusion_pytorch_model.fp16.safetensors"]),
    (torch.float32, False, ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                            "vae/diffusion_pytorch_model.safetensors"]),
])
def test_sd15_hub_download_fetches_only_what_loads(monkeypatch, sd15_snapshot, dtype, safety, expected_weights):
    """One weight format (safetensors), the variant fp16 asks for, the components of model_index.json: no .ckpt,
    no root checkpoints, no .bin/flax/non_ema copies; the pipeline then loads from the snapshot."""
    fake = FakeHub(monkeypatch, SD15_FILES, SD15_INDEX, sd15_snapshot)
    expected = SD15_CONFIGS if safety else [f for f in SD15_CONFIGS if not f.startswith(("safety", "feature"))]
    plan = hub.download_plan(SD15_FILES, SD15_INDEX, "fp16" if dtype == torch.float16 else None,
                             () if safety else ("safety_checker", "feature_extractor"))
    assert sorted(plan) == sorted(expected + expected_weights)
    pipe = T2IPipeline.from_pretrained("stable-diffusion-v1-5/stable-diffusion-v1-5", device="cpu", dtype=dtype,
                                       safety_checker=safety)
    assert _allowed(fake) == sorted(plan)
    assert pipe.dtype == dtype and pipe.unet.config.cross_attention_dim == 32


def test_sdxl_hub_layout_plan():
    """stabilityai/stable-diffusion-xl-base-1.0's layout: root checkpoints, onnx/openvino/flax exports, extra VAE
    folders are all left out; fp16 takes the fp16 files."""
    towers = ["config.json", "flax_model.msgpack", "model.fp16.safetensors", "model.onnx", "model.safetensors",
              "openvino_model.bin", "openvino_model.xml"]
    models = ["config.json", "diffusion_flax_model.msgpack", "diffusion_pytorch_model.fp16.safetensors",
              "diffusion_pytorch_model.safetensors"]
    tok = ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]
    files = (["README.md", "01.png", "model_index.json", "sd_xl_base_1.0.safetensors",
              "sd_xl_base_1.0_0.9vae.safetensors", "sd_xl_offset_example-lora_1.0.safetensors",
              "scheduler/scheduler_config.json", "vae_1_0/config.json",
              "vae_1_0/diffusion_pytorch_model.safetensors", "vae_decoder/model.onnx", "unet/model.onnx_data"]
             + [f"{c}/{f}" for c in ("text_encoder", "text_encoder_2") for f in towers + ["model.onnx_data"]]
             + [f"{c}/{f}" for c in ("tokenizer", "tokenizer_2") for f in tok]
             + [f"unet/{f}" for f in models + ["model.onnx", "openvino_model.bin", "openvino_model.xml"]]
             + [f"vae/{f}" for f in models])
    index = {"_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True,
             **{c: ["diffusers", "X"] for c in ("scheduler", "unet", "vae")},
             **{c: ["transformers", "X"] for c in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")}}
    configs = (["model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
                "text_encoder_2/config.json", "unet/config.json", "vae/config.json"]
               + [f"{c}/{f}" for c in ("tokenizer", "tokenizer_2") for f in tok])
    fp16 = ["text_encoder/model.fp16.safetensors", "text_encoder_2/model.fp16.safetensors",
            "unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"]
    assert sorted(hub.download_plan(files, index, "fp16")) == sorted(configs + fp16)
    assert sorted(hub.download_plan(files, index)) == sorted(configs + [f.replace(".fp16", "") for f in fp16])


def test_transformers_hub_downloads_pick_one_format(monkeypatch, tmp_path, tiny_path):
    """A .bin-only GPT-2 (Promptist's layout) gets its .bin; CLIP ViT-L/14's repo only model.safetensors."""
    promptist = ["config.json", "generation_config.json", "merges.txt", "pytorch_model.bin", "special_tokens_map.json",
                 "tokenizer_config.json", "vocab.json", "README.md", ".gitattributes"]
    assert sorted(hub.download_plan(promptist)) == sorted(f for f in promptist if f[0] != "." and f != "README.md")
    clip = ["config.json", "flax_model.msgpack", "merges.txt", "model.safetensors", "preprocessor_config.json",
            "pytorch_model.bin", "special_tokens_map.json", "tf_model.h5", "tokenizer.json", "tokenizer_config.json",
            "vocab.json"]
    assert sorted(hub.download_plan(clip)) == sorted(
        ["config.json", "merges.txt", "model.safetensors", "preprocessor_config.json", "special_tokens_map.json",
         "tokenizer.json", "tokenizer_config.json", "vocab.json"])
    snapshot = tmp_path / "gpt2"
    shutil.copytree(tiny_path("gpt2"), snapshot)
    fake = FakeHub(monkeypatch, promptist, None, snapshot)
    from t2i_prompt.models.loading import load_causal_lm

    model, _ = load_causal_lm("microsoft/Promptist", device="cpu")
    assert _allowed(fake) == sorted(hub.download_plan(promptist)) and model.config.n_layer == 2


def test_unreachable_hub_falls_back_to_the_cached_snapshot(monkeypatch, tmp_path, tiny_path):
    import huggingface_hub

    fake = FakeHub(monkeypatch, [], None, tiny_path("gpt2"))

    def no_connection(api, repo_id, **kw):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", no_connection)
    assert resolve_model_path("microsoft/Promptist") == tiny_path("gpt2")
    assert fake.calls == [("microsoft/Promptist", {"local_files_only": True})]


def test_offline_miss_names_an_hf_download_command_that_exists():
    """The offline error gives the same selection as globs, for the `hf` CLI of the installed huggingface_hub."""
    import inspect
    from importlib.metadata import entry_points

    from huggingface_hub.cli import download

    with pytest.raises(ModelNotFoundError) as err:
        T2IPipeline.from_pretrained("t2i-prompt-tests/not-cached", device="cpu", dtype=torch.float16)
    message = str(err.value)
    assert ('hf download t2i-prompt-tests/not-cached --include "model_index.json" --include "t2i_sampling.json" '
            '--include "*/*.json"') in message
    assert '--include "*/*.fp16.safetensors"' in message and "huggingface-cli" not in message
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model_path("t2i-prompt-tests/not-cached-lm")
    assert ('--include "*.safetensors" --exclude "*.*.safetensors"') in str(err.value)
    assert "hf" in {e.name for e in entry_points(group="console_scripts")}
    params = inspect.signature(download.download).parameters
    assert {"include", "exclude"} <= set(params)


def test_weight_names_and_choice():
    assert hub.weight_variant("unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors") == ("fp16",
                                                                                                  ".safetensors")
    assert hub.weight_variant("model-00001-of-00003.safetensors") == (None, ".safetensors")
    assert hub.weight_variant("tf_model.h5") is None and hub.weight_variant("model.safetensors.index.json") is None
    names = ["model.fp16.safetensors", "model.safetensors", "pytorch_model.bin"]
    assert hub.choose_weights(names) == (["model.safetensors"], None)
    assert hub.choose_weights(names, "fp16") == (["model.fp16.safetensors"], "fp16")
    assert hub.choose_weights(["pytorch_model.bin"], "fp16") == (["pytorch_model.bin"], None)  # per-folder fallback
    assert hub.choose_weights(["model.fp16.safetensors", "model.bf16.safetensors"]) == (["model.fp16.safetensors"],
                                                                                         "fp16")


# ------------------------------------------------------------------------------------------- 2. variants
WEIGHTED = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "text_encoder": "model"}


def _write_fp16_variant(path, keep_plain: bool):
    """Save each weighted component as ``<base>.fp16.safetensors`` with *different* values (half the fp32 ones),
    so the loaded parameters tell which file was read."""
    for comp, base in WEIGHTED.items():
        plain = path / comp / f"{base}.safetensors"
        save_file({k: (v * 0.5).half().contiguous() for k, v in load_file(str(plain)).items()},
                  str(path / comp / f"{base}.fp16.safetensors"))
        if not keep_plain:
            plain.unlink()


def _file_tensor(path, comp, variant=None):
    name = WEIGHTED[comp] + (f".{variant}" if variant else "") + ".safetensors"
    weights = load_file(str(path / comp / name))
    key = next(k for k in sorted(weights) if k.endswith("weight") and weights[k].ndim == 4) if comp != "text_encoder" \
        else "embeddings.token_embedding.weight"
    return key, weights[key]


@pytest.fixture(scope="module")
def both_precisions(tmp_path_factory):
    path = tmp_path_factory.mktemp("variants") / "sd15"
    shutil.copytree(resolve_model_path("tiny:sd15"), path)
    _write_fp16_variant(path, keep_plain=True)
    return path


@pytest.mark.parametrize("dtype, variant, read", [(torch.float16, None, "fp16"), (torch.float32, None, None),
                                                   (torch.float32, "fp16", "fp16")])
def test_variant_files_are_the_ones_read(both_precisions, dtype, variant, read):
    """fp16 mode reads the fp16 files (not the fp32 ones converted); fp32 the plain ones unless told."""
    pipe = T2IPipeline.from_pretrained(str(both_precisions), device="cpu", dtype=dtype, variant=variant)
    assert pipe.variant == read and pipe.dtype == dtype
    for comp in WEIGHTED:
        key, expected = _file_tensor(both_precisions, comp, read)
        loaded = dict(getattr(pipe, comp).state_dict())[key]
        assert loaded.dtype == dtype and torch.equal(loaded, expected.to(dtype)), comp
    with pytest.raises(ValueError, match="variant 'bf16' was requested but no component"):
        T2IPipeline.from_pretrained(str(both_precisions), device="cpu", variant="bf16")


def test_fp16_only_folder_loads(tmp_path, tiny_path):
    path = tmp_path / "fp16_only"
    shutil.copytree(tiny_path("sd15"), path)
    _write_fp16_variant(path, keep_plain=False)
    pipe = T2IPipeline.from_pretrained(str(path), device="cpu", dtype=torch.float32)
    assert pipe.variant == "fp16"
    key, expected = _file_tensor(path, "unet", "fp16")
    assert torch.equal(pipe.unet.state_dict()[key], expected.float())
    out = ImageGenerator(pipe, progress=False).generate("a red cat", [0], num_inference_steps=1)
    assert out.records[0]["settings"]["variant"] == "fp16" and out.images[0].size == (32, 32)


# ------------------------------------------------------------------------------------------- 3. safety checker
def _with_safety_checker(src, dst, concept_weight: float):
    """SD1.5 layout + a tiny StableDiffusionSafetyChecker; ``concept_weight`` < -1 flags every image, > 1 none
    (a concept scores ``cos - weight``, flagged when > 0)."""
    from diffusers.pipelines.stable_diffusion.safety_checker import (
        StableDiffusionSafetyChecker,
    )
    from transformers import CLIPConfig, CLIPVisionConfig
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    shutil.copytree(src, dst)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=32)
    torch.manual_seed(0)
    checker = StableDiffusionSafetyChecker(CLIPConfig(vision_config=vision.to_dict(), projection_dim=32))
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(concept_weight)
        checker.special_care_embeds_weights.fill_(abs(concept_weight))
    checker.save_pretrained(dst / "safety_checker", safe_serialization=True)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        dst / "feature_extractor")
    index = json.loads((dst / "model_index.json").read_text())
    index.update(safety_checker=SD15_INDEX["safety_checker"], feature_extractor=SD15_INDEX["feature_extractor"],
                 requires_safety_checker=True)
    (dst / "model_index.json").write_text(json.dumps(index))
    return dst


@pytest.fixture(scope="module")
def checker_dirs(tmp_path_factory):
    root, src = tmp_path_factory.mktemp("checker"), resolve_model_path("tiny:sd15")
    return {"flags": _with_safety_checker(src, root / "flags", -2.0), "passes": _with_safety_checker(
        src, root / "passes", 2.0)}


@pytest.mark.parametrize("which, flagged", [("flags", True), ("passes", False)])
def test_safety_checker_kept_as_diffusers_does(checker_dirs, sd15_pipeline, which, flagged):
    """Kept and run as in diffusers: the same images (flagged ones black) and the same flags as its pipeline."""
    from diffusers import StableDiffusionPipeline

    path = checker_dirs[which]
    kw = dict(num_inference_steps=2, guidance_scale=5.0, output_type="pt")
    prompts = ["a red cat", "a dog"]
    ours = T2IPipeline.from_pretrained(str(path), device="cpu", dtype=torch.float32)
    assert ours.safety_checker is not None
    out = ours(prompts, generator=make_generators([1, 2]), **kw)
    ref = StableDiffusionPipeline.from_pretrained(str(path))
    ref.set_progress_bar_config(disable=True)
    expected = ref(prompts, generator=make_generators([1, 2]), **kw)
    assert out.nsfw_content_detected == expected.nsfw_content_detected == [flagged, flagged]
    assert (out.images - expected.images).abs().max() < 1e-5
    plain = sd15_pipeline(prompts, generator=make_generators([1, 2]), **kw).images
    if flagged:
        assert out.images.abs().max() == 0 and plain.abs().max() > 0.1
    else:
        assert (out.images - plain).abs().max() < 1e-6


def test_safety_checker_flag_recorded_and_opt_out(checker_dirs):
    gen = ImageGenerator(str(checker_dirs["flags"]), device="cpu", progress=False)
    out = gen.generate("a red cat", [0], num_inference_steps=1)
    assert out.records[0]["nsfw_content_detected"] is True
    assert max(out.images[0].getdata()) == (0, 0, 0)  # blacked out
    off = ImageGenerator(str(checker_dirs["flags"]), device="cpu", progress=False, safety_checker=False)
    assert off.pipeline.safety_checker is None and off.pipeline.feature_extractor is None
    kept = off.generate("a red cat", [0], num_inference_steps=1)
    assert kept.records[0]["nsfw_content_detected"] is None and max(max(p) for p in kept.images[0].getdata()) > 0


# ------------------------------------------------------------------------------------------- 5. sizes
def _deep_sd15(base):
    """tiny:sd15's parts with a 4-level UNet (downsampling 8, as SD1.5's): 40 px = 20 latents it does not divide."""
    from t2i_prompt.models.tiny import tiny_unet

    unet = tiny_unet(block_out_channels=(16, 32, 32, 32), down_block_types=(
        "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"), up_block_types=(
        "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
    return T2IPipeline(unet, base.scheduler, base.text_encoder, base.tokenizer, vae=base.vae)


@pytest.mark.parametrize("deep, size", [(False, 72), (True, 40)])
def test_multiples_of_8_match_diffusers(sd15_pipeline, deep, size):
    """Any multiple of 8 runs as in diffusers, also where the UNet's grid does not divide the latents."""
    from diffusers import StableDiffusionPipeline

    pipe = _deep_sd15(sd15_pipeline) if deep else sd15_pipeline
    ref = StableDiffusionPipeline(vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
                                  unet=pipe.unet, scheduler=pipe.scheduler, safety_checker=None,
                                  feature_extractor=None, requires_safety_checker=False)
    ref.set_progress_bar_config(disable=True)
    kw = dict(num_inference_steps=2, guidance_scale=5.0, height=size, width=size, output_type="pt")
    ours = pipe("a red cat", generator=make_generators([3]), **kw)
    expected = ref("a red cat", generator=make_generators([3]), **kw).images
    assert ours.images.shape == (1, 3, size, size) and (ours.images - expected).abs().max() < 1e-5


@pytest.fixture(scope="module")
def deep_pipeline(sd15_pipeline):
    return _deep_sd15(sd15_pipeline)


def test_hooks_round_their_masks_at_sizes_the_grid_does_not_divide(deep_pipeline):
    """At 40 px the attention grids are 20, 10, 5, 3 (ceil): map capture reads them without touching the image,
    regions bind on their rounded label maps, and the image keeps its size."""
    from t2i_prompt.attention.recipes import HookSpec

    pipe, prompt = deep_pipeline, "a red cat and a dog"
    kw = dict(num_inference_steps=2, height=40, width=40, output_type="pt")
    plain = pipe(prompt, generator=make_generators([0]), **kw).images
    capture = HookSpec(capture=["cat"]).build(prompt)
    captured = pipe(prompt, generator=make_generators([0]), hooks=capture, **kw).images
    assert torch.equal(captured, plain)
    maps = capture[0].word_maps(0)["cat"]
    assert maps.shape == (capture[0].resolution, capture[0].resolution) and maps.max() > 0
    regions = HookSpec(regions=["0,0,0.5,1:a red cat", "0.5,0,1,1:a dog"]).build(prompt)
    bound = pipe(prompt, generator=make_generators([0]), hooks=regions, **kw).images
    assert bound.shape == plain.shape and (bound - plain).abs().max() > 1e-3
    labels = regions[0].labels
    assert labels.shape == (20, 20) and (labels[:, :10] == 0).all() and (labels[:, 10:] == 1).all()


# ------------------------------------------------------------------------------------------- 5. SDXL conditioning
SIZES = dict(original_size=(64, 48), crops_coords_top_left=(4, 8), target_size=(40, 32),
             negative_original_size=(16, 24), negative_crops_coords_top_left=(2, 2), negative_target_size=(24, 16))


@pytest.mark.parametrize("sizes, prompts", [
    (SIZES, ["a red cat"]),
    ({k: v for k, v in SIZES.items() if not k.startswith("negative")}, ["a red cat", "a dog"])])
def test_sdxl_micro_conditioning_equals_diffusers(sdxl_pipeline, tiny_path, sizes, prompts):
    """The same images as diffusers' StableDiffusionXLPipeline for the same size/crop values. Negative sizes are
    compared on one prompt: for a batch, diffusers repeats [negative; positive] time ids per image, pairing image
    2's unconditional row with the positive ids; ours keeps [negatives; positives] aligned with [uncond; cond]."""
    from diffusers import StableDiffusionXLPipeline

    ref = StableDiffusionXLPipeline.from_pretrained(str(tiny_path("sdxl")))
    ref.set_progress_bar_config(disable=True)
    kw = dict(num_inference_steps=2, guidance_scale=4.0, height=32, width=32, output_type="pt")
    seeds = make_generators(range(1, len(prompts) + 1))
    expected = ref(prompts, generator=seeds, **kw, **sizes).images
    ours = sdxl_pipeline(prompts, generator=make_generators(range(1, len(prompts) + 1)), **kw, **sizes)
    assert (ours.images - expected).abs().max() < 1e-5
    default = sdxl_pipeline(prompts, generator=make_generators(range(1, len(prompts) + 1)), **kw).images
    assert (default - ours.images).abs().max() > 1e-4  # the conditioning changes the image
    neg = [16, 24, 2, 2, 24, 16] if "negative_target_size" in sizes else [64, 48, 4, 8, 40, 32]
    n = len(prompts)
    assert ours.run.embeds.added_cond_kwargs["time_ids"].tolist() == [neg] * n + [[64, 48, 4, 8, 40, 32]] * n


def test_size_conditioning_is_checked_and_recorded(sdxl_pipeline):
    with pytest.raises(ValueError, match="`original_size` must be two integers"):
        sdxl_pipeline("a cat", num_inference_steps=1, original_size=(64,))
    out = ImageGenerator(sdxl_pipeline, progress=False).generate(
        "a cat", [0], num_inference_steps=1, size_conditioning={"target_size": (16, 16)})
    assert out.records[0]["settings"]["size_conditioning"] == {"target_size": [16, 16]}


# ------------------------------------------------------------------------------------------- 5. VAE upcasting
@pytest.mark.parametrize("arch, force_upcast, decoded_in", [("sdxl", True, torch.float32),
                                                             ("sdxl", False, torch.float16),
                                                             ("sd15", True, torch.float16)])
def test_vae_upcast_follows_the_vae_config_per_pipeline(tiny_path, arch, force_upcast, decoded_in):
    """As diffusers: its SDXL pipeline decodes an fp16 VAE in fp32 when the config says ``force_upcast``; its SD
    pipeline never upcasts. The VAE is fp16 again afterwards."""
    pipe = T2IPipeline.from_pretrained(f"tiny:{arch}", device="cpu", dtype=torch.float16)
    pipe.vae.register_to_config(force_upcast=force_upcast)
    seen = []
    handle = pipe.vae.decoder.conv_in.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    images = pipe.decode_latents(torch.randn(1, 4, 8, 8, dtype=torch.float16))
    handle.remove()
    assert seen == [decoded_in] and pipe.vae.dtype == torch.float16 and images.shape == (1, 3, 16, 16)


# ------------------------------------------------------------------------------------------- 5. CLI options
@pytest.mark.parametrize("argv", [
    ["generate", "a cat"], ["run", "a cat", "--rewriter", "tiny:gpt2"],
    ["repaint", "a cat", "--region", "0,0,0.5,1:a dog"], ["shapes", "eval", "--benchmark", "single"]])
def test_every_command_that_loads_a_t2i_model_takes_the_loading_flags(monkeypatch, capsys, tmp_path, argv):
    from helpers import run_cli

    seen = []

    def from_pretrained(cls, name=None, **kwargs):
        seen.append((name, kwargs))
        raise ValueError("stop after recording the load")

    monkeypatch.setattr(T2IPipeline, "from_pretrained", classmethod(from_pretrained))
    out = [] if argv[0] == "shapes" else ["--out", str(tmp_path / "out")]
    code, err = run_cli([*argv, "--model", "tiny:sd15", "--device", "cpu", "--dtype", "fp16", "--variant", "fp16",
                         "--no-safety-checker", *out], capsys)
    assert code == 2 and "stop after recording the load" in err[0]
    assert seen == [("tiny:sd15", {"device": "cpu", "dtype": "fp16", "variant": "fp16", "safety_checker": False,
                                   "config": None})]


def test_generate_cli_size_conditioning(tmp_path, capsys, sdxl_pipeline):
    from t2i_prompt.cli import main

    code = main(["generate", "a red cat", "--model", "tiny:sdxl", "--steps", "2", "--original-size", "64", "48",
                 "--crops-top-left", "4", "8", "--out", str(tmp_path), "--json", "--no-progress"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)["images"][0]
    assert record["settings"]["size_conditioning"] == {"original_size": [64, 48], "crops_coords_top_left": [4, 8]}
    expected = sdxl_pipeline("a red cat", num_inference_steps=2, generator=make_generators([0]), output_type="np",
                             original_size=(64, 48), crops_coords_top_left=(4, 8)).images[0]
    import numpy as np
    from PIL import Image

    saved = np.asarray(Image.open(tmp_path / record["file"]))
    assert np.abs(saved.astype(int) - expected.astype(int)).max() <= 1


# ------------------------------------------------------------------------------------------- 6. other formats
@pytest.fixture(scope="module")
def single_file(tmp_path_factory, sd15_pipeline):
    """tiny:sd15 as one safetensors file in the original SD layout, plus a weightless config folder."""
    from ldm_layout import sd15_single_file_state

    root = tmp_path_factory.mktemp("single_file")
    p = sd15_pipeline
    save_file(sd15_single_file_state(p.unet, p.vae, p.text_encoder), str(root / "tiny-sd15.safetensors"))
    shutil.copytree(resolve_model_path("tiny:sd15"), root / "config", ignore=shutil.ignore_patterns("*.safetensors"))
    return root


def test_ldm_layout_inverts_diffusers_conversion(sd15_pipeline):
    """The test-side writer of the original layout is exactly undone by diffusers' own converters."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )
    from ldm_layout import sd15_single_file_state

    p = sd15_pipeline
    state = sd15_single_file_state(p.unet, p.vae, p.text_encoder)
    assert any(k.startswith("model.diffusion_model.input_blocks.") for k in state)
    for module, converted in ((p.unet, convert_ldm_unet_checkpoint(state, dict(p.unet.config))),
                              (p.vae, convert_ldm_vae_checkpoint(state, dict(p.vae.config)))):
        expected = module.state_dict()
        assert set(converted) == set(expected) and all(torch.equal(converted[k], expected[k]) for k in expected)


def test_single_file_checkpoint_loads_offline_with_a_config_folder(single_file, sd15_pipeline, capsys):
    path, config = single_file / "tiny-sd15.safetensors", single_file / "config"
    assert not list(config.rglob("*.safetensors"))
    pipe = T2IPipeline.from_pretrained(str(path), device="cpu", dtype=torch.float32, config=str(config))
    kw = dict(num_inference_steps=2, output_type="pt")
    ours = pipe("a red cat", generator=make_generators([0]), **kw).images
    assert torch.equal(ours, sd15_pipeline("a red cat", generator=make_generators([0]), **kw).images)
    assert type(pipe.scheduler).__name__ == "DDIMScheduler" and pipe.safety_checker is None
    with pytest.raises(ValueError, match=r"offline, pass --config DIR .*hf download"):
        T2IPipeline.from_pretrained(str(path), device="cpu")
    with pytest.raises(ValueError, match="a single-file checkpoint .* has no variants"):
        T2IPipeline.from_pretrained(str(path), device="cpu", config=str(config), variant="fp16")
    from t2i_prompt.cli import main

    out = single_file / "generated"
    assert main(["generate", "a red cat", "--model", str(path), "--config", str(config), "--steps", "2", "--out",
                 str(out), "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["images"][0]["model"] == str(path)


def test_official_imagereward_pt_gets_a_one_line_conversion_error(tmp_path, capsys):
    from t2i_prompt.cli import main
    from t2i_prompt.rewards import VPScore

    pt = tmp_path / "ImageReward.pt"
    torch.save({"blip.visual_encoder.cls_token": torch.zeros(1, 1, 4), "mlp.layers.0.weight": torch.zeros(2, 4)}, pt)
    with pytest.raises(ValueError, match=r"official ImageReward checkpoint .*convert_blip_original_pytorch_to_hf"):
        VPScore.from_pretrained(str(pt))
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    assert main(["score", "--prompt", "a cat", str(image), "--reward", "vp_score", "--vp-model", str(pt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "score_head.safetensors" in err[0]
    other = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="is a single weights file; VP-Score loads a folder"):
        VPScore.from_pretrained(str(other))


@pytest.fixture(scope="module")
def sdxl_single_file(tmp_path_factory, sdxl_pipeline):
    """An SDXL diffusers folder whose second text tower is wider than the first (48 vs 32; SDXL's are 1280 vs
    768: diffusers' single-file loader tells the towers apart by width), and the same weights as one SGM-layout file."""
    from diffusers import StableDiffusionXLPipeline
    from ldm_layout import sdxl_single_file_state
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from t2i_prompt.models.tiny import tiny_unet

    root, base = tmp_path_factory.mktemp("sdxl_single"), sdxl_pipeline
    cfg = dict(base.text_encoder.config.to_dict(), hidden_size=48, intermediate_size=96, projection_dim=48)
    torch.manual_seed(2)
    wide = CLIPTextModelWithProjection(CLIPTextConfig(**{k: v for k, v in cfg.items() if not k.startswith("_")}))
    unet = tiny_unet(addition_embed_type="text_time", addition_time_embed_dim=8,
                     projection_class_embeddings_input_dim=6 * 8 + 48, cross_attention_dim=32 + 48,
                     attention_head_dim=(2, 4), use_linear_projection=True, transformer_layers_per_block=(1, 2))
    pipe = StableDiffusionXLPipeline(vae=base.vae, text_encoder=base.text_encoder, text_encoder_2=wide,
                                     tokenizer=base.tokenizer, tokenizer_2=base.tokenizer, unet=unet,
                                     scheduler=base.scheduler)
    pipe.save_pretrained(root / "folder", safe_serialization=True)
    save_file(sdxl_single_file_state(unet, base.vae, base.text_encoder, wide), str(root / "tiny-sdxl.safetensors"))
    shutil.copytree(root / "folder", root / "config", ignore=shutil.ignore_patterns("*.safetensors"))
    return root


def test_sdxl_single_file_equals_its_folder(sdxl_single_file):
    root = sdxl_single_file
    folder = T2IPipeline.from_pretrained(str(root / "folder"), device="cpu", dtype=torch.float32)
    single = T2IPipeline.from_pretrained(str(root / "tiny-sdxl.safetensors"), device="cpu", dtype=torch.float32,
                                         config=str(root / "config"))
    assert single.is_sdxl and single.text_encoder_2.config.hidden_size == 48
    kw = dict(num_inference_steps=2, output_type="pt")
    diff = (single("a red cat", generator=make_generators([0]), **kw).images
            - folder("a red cat", generator=make_generators([0]), **kw).images).abs().max()
    assert diff < 1e-5, diff
    from t2i_prompt.generate.single_file import _pipeline_class

    assert _pipeline_class(root / "tiny-sdxl.safetensors", None).__name__ == "StableDiffusionXLPipeline"
