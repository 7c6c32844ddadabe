"""Model naming, safe weight loading and the tiny builders, all through the real loading code."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from t2i_prompt.models import tiny
from t2i_prompt.models.loading import (
    ModelNotFoundError,
    load_blip,
    load_causal_lm,
    load_clip,
    load_state_dict,
    resolve_model_path,
    select_device_dtype,
)
from t2i_prompt.utils import atomic_save_image, atomic_write_json


class _NotATensor:
    """A custom class: pickling it makes a checkpoint that ``weights_only=True`` must refuse."""

    def __init__(self):
        self.payload = "arbitrary code could run here"


def _assert_weights_equal(model, weight_file):
    """Every tensor in the saved file equals the loaded model's parameter/buffer of the same name."""
    on_disk = load_state_dict(weight_file)
    loaded = model.state_dict()
    shared = set(on_disk) & set(loaded)
    assert len(shared) >= 0.9 * len(on_disk), "loaded model should expose the saved keys"
    for key in shared:
        assert torch.equal(on_disk[key], loaded[key]), key


# ------------------------------------------------------------------------------------------- tiny models
def test_tiny_clip_loads_and_runs(tiny_path):
    from PIL import Image
    from transformers import CLIPModel

    model, tokenizer, image_processor = load_clip("tiny:clip", device="cpu")
    assert isinstance(model, CLIPModel) and not model.training
    assert len(tokenizer) == 1000 and tokenizer.model_max_length == 77
    assert model.config.text_config.eos_token_id == 999 and model.config.projection_dim == 32
    ids = tokenizer(["a red cat", "a dog"], padding="max_length", max_length=77, return_tensors="pt")
    pixels = image_processor(images=[Image.new("RGB", (50, 40), "red")] * 2, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (2, 3, 32, 32)
    with torch.no_grad():
        out = model(input_ids=ids.input_ids, attention_mask=ids.attention_mask, pixel_values=pixels)
    assert out.logits_per_image.shape == (2, 2) and out.text_embeds.shape == (2, 32)
    _assert_weights_equal(model, tiny_path("clip") / "model.safetensors")


def test_tiny_blip_score_head_layout(tiny_path):
    from PIL import Image
    from transformers import BlipForImageTextRetrieval

    model, processor, head, meta = load_blip("tiny:blip", device="cpu")
    assert isinstance(model, BlipForImageTextRetrieval)
    assert meta["dims"] == [32, 64, 16, 8, 4, 1] and meta["mean"] == 0.0 and meta["std"] == 1.0
    dims = [32, 64, 16, 8, 4, 1]
    expected = {}
    for idx, d_in, d_out in zip((0, 2, 4, 6, 7), dims[:-1], dims[1:]):
        expected[f"mlp.layers.{idx}.weight"], expected[f"mlp.layers.{idx}.bias"] = (d_out, d_in), (d_out,)
    assert {k: tuple(v.shape) for k, v in head.items()} == expected
    assert processor.tokenizer.convert_tokens_to_ids("[ENC]") != processor.tokenizer.unk_token_id
    inputs = processor(images=[Image.new("RGB", (40, 40), "blue")], text=["a blue circle"], return_tensors="pt")
    with torch.no_grad():  # ImageReward: text encoder over image tokens, CLS state -> MLP
        image_embeds = model.vision_model(pixel_values=inputs["pixel_values"]).last_hidden_state
        assert image_embeds.shape == (1, 1 + (32 // 8) ** 2, 32)
        text = model.text_encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                  encoder_hidden_states=image_embeds).last_hidden_state[:, 0]
        x = text
        for idx in (0, 2, 4, 6, 7):
            x = x @ head[f"mlp.layers.{idx}.weight"].T + head[f"mlp.layers.{idx}.bias"]
    assert text.shape == (1, 32) and x.shape == (1, 1) and torch.isfinite(x).all()
    _assert_weights_equal(model, tiny_path("blip") / "model.safetensors")


@pytest.mark.parametrize("arch, cls_name", [("gpt2", "GPT2LMHeadModel"), ("chat", "Qwen2ForCausalLM")])
def test_tiny_causal_lms(tiny_path, arch, cls_name):
    model, tokenizer = load_causal_lm(f"tiny:{arch}", device="cpu")
    assert type(model).__name__ == cls_name and model.config.vocab_size == len(tokenizer)
    text = "a red circle above a blue square, 8k!"
    assert tokenizer.decode(tokenizer(text).input_ids) == text  # byte-level BPE is lossless
    ids = tokenizer([text], return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))
    _assert_weights_equal(model, tiny_path(arch) / "model.safetensors")


def test_tiny_chat_template():
    _, tokenizer = load_causal_lm("tiny:chat", device="cpu")
    text = tokenizer.apply_chat_template([{"role": "user", "content": "a cat"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == "<|im_start|>user\na cat<|im_end|>\n<|im_start|>assistant\n"
    assert len(tokenizer.tokenize("<|im_start|>")) == 1


@pytest.mark.parametrize("arch", ["sd15", "sdxl", "pixel"])
def test_tiny_t2i_components_load(tiny_path, arch, request):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    pipe = request.getfixturevalue(f"{arch}_pipeline")
    assert isinstance(pipe.unet, UNet2DConditionModel) and isinstance(pipe.text_encoder, CLIPTextModel)
    assert len(pipe.tokenizer) == 1000
    if arch == "pixel":
        assert pipe.vae is None and pipe.unet.config.in_channels == 3 and pipe.vae_scale_factor == 1
        assert pipe.defaults == {"height": 16, "width": 16, "num_inference_steps": 4, "guidance_scale": 2.0}
    else:
        assert isinstance(pipe.vae, AutoencoderKL) and pipe.vae_scale_factor == 2
        _assert_weights_equal(pipe.vae, tiny_path(arch) / "vae" / "diffusion_pytorch_model.safetensors")
    if arch == "sdxl":
        assert isinstance(pipe.text_encoder_2, CLIPTextModelWithProjection) and pipe.is_sdxl
        assert pipe.unet.config.cross_attention_dim == 64 and type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    else:
        assert pipe.text_encoder_2 is None and not pipe.is_sdxl and type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert pipe.scheduler.config.steps_offset == 1
    _assert_weights_equal(pipe.unet, tiny_path(arch) / "unet" / "diffusion_pytorch_model.safetensors")
    _assert_weights_equal(pipe.text_encoder, tiny_path(arch) / "text_encoder" / "model.safetensors")
    # forward pass shapes
    c = pipe.unet.config.in_channels
    embeds = pipe.encode_prompt(["a red cat"], do_cfg=False, height=32, width=32)
    with torch.no_grad():
        out = pipe.unet(torch.zeros(1, c, 8, 8), 10, encoder_hidden_states=embeds.embeds,
                        added_cond_kwargs=embeds.added_cond_kwargs).sample
    assert out.shape == (1, c, 8, 8)


def test_tiny_build_is_deterministic_and_atomic(tmp_path):
    a = tiny.tiny_model_dir("gpt2", cache_dir=tmp_path / "a")
    b = tiny.tiny_model_dir("gpt2", cache_dir=tmp_path / "b")
    sa, sb = load_state_dict(a), load_state_dict(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["gpt2"]  # no temp dirs left behind
    assert json.loads((a / tiny.TINY_VERSION_FILE).read_text()) == {"arch": "gpt2", "version": tiny.TINY_VERSION}
    assert tiny.tiny_model_dir("gpt2", cache_dir=tmp_path / "a") == a  # cached, not rebuilt


def test_tiny_build_replaces_stale_version(tmp_path):
    target = tiny.tiny_model_dir("gpt2", cache_dir=tmp_path)
    (target / tiny.TINY_VERSION_FILE).write_text(json.dumps({"arch": "gpt2", "version": -1}))
    (target / "leftover.txt").write_text("old")
    rebuilt = tiny.tiny_model_dir("gpt2", cache_dir=tmp_path)
    assert rebuilt == target and not (target / "leftover.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpt2"]


def test_unknown_tiny_arch():
    with pytest.raises(ValueError, match=r"tiny:sd15.*tiny:chat"):
        resolve_model_path("tiny:sd99")


# ------------------------------------------------------------------------------------------- naming errors
def test_unknown_hub_id_offline_is_model_not_found():
    name = "t2i-prompt-tests/definitely-not-cached"
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model_path(name)
    assert isinstance(err.value, FileNotFoundError)
    assert name in str(err.value) and "local path" in str(err.value)


def test_hub_id_found_in_local_cache_offline(tmp_path, monkeypatch):
    """Offline, a hub id resolves to its snapshot in the local HF cache (standard cache layout, no network)."""
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--some-org--tiny-model"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    save_file({"w": torch.ones(2)}, str(snapshot / "model.safetensors"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    path = resolve_model_path("some-org/tiny-model")
    assert path.resolve() == snapshot.resolve()
    assert torch.equal(load_state_dict(path)["w"], torch.ones(2))


def test_missing_shapes_weights_are_a_clear_error(tmp_path, monkeypatch):
    from t2i_prompt.models import loading

    monkeypatch.setattr(loading, "shapes_weights_dir", lambda part="t2i": tmp_path / "weights" / part)
    with pytest.raises(ModelNotFoundError, match=r"shapes world weights for 'shapes:quality' are missing"):
        resolve_model_path("shapes:quality")
    (tmp_path / "weights" / "t2i").mkdir(parents=True)
    save_file({"w": torch.ones(1)}, str(tmp_path / "weights" / "t2i" / "model.safetensors"))
    assert resolve_model_path(None) == tmp_path / "weights" / "t2i"


def test_missing_local_path():
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_path("./no/such/model/dir")


def test_local_dir_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "unet").mkdir()
    with pytest.raises(FileNotFoundError, match="contains no weight files"):
        resolve_model_path(str(tmp_path))


def test_unknown_shapes_part():
    with pytest.raises(ValueError, match="shapes:clip"):
        resolve_model_path("shapes:bogus")


def test_local_dir_with_weights_resolves(tmp_path):
    save_file({"w": torch.ones(2)}, str(tmp_path / "model.safetensors"))
    assert resolve_model_path(str(tmp_path)) == tmp_path.resolve()


# ------------------------------------------------------------------------------------------- state dicts
def test_pickle_with_custom_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "obj": _NotATensor()}, path)
    with pytest.raises(ValueError, match="refuses to unpickle arbitrary code") as err:
        load_state_dict(path)
    assert "safetensors" in str(err.value) and "evil.pt" in str(err.value)


def test_pt_state_dict_loads(tmp_path):
    sd = {"layer.weight": torch.arange(6.0).reshape(2, 3), "layer.bias": torch.tensor([1.0, -1.0])}
    torch.save(sd, tmp_path / "model.pth")
    loaded = load_state_dict(tmp_path / "model.pth")
    assert loaded.keys() == sd.keys() and all(torch.equal(loaded[k], sd[k]) for k in sd)
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "wrapped.pt")  # common training-checkpoint wrapper
    assert torch.equal(load_state_dict(tmp_path / "wrapped.pt")["layer.weight"], sd["layer.weight"])


def test_safetensors_preferred_over_pickle(tmp_path):
    save_file({"w": torch.ones(3)}, str(tmp_path / "model.safetensors"))
    torch.save({"w": torch.zeros(3)}, tmp_path / "model.pt")
    assert torch.equal(load_state_dict(tmp_path)["w"], torch.ones(3))


def test_non_state_dict_pickle_is_rejected(tmp_path):
    torch.save([torch.ones(1)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        load_state_dict(tmp_path / "list.pt")


# ------------------------------------------------------------------------------------------- utils
def test_select_device_dtype():
    assert select_device_dtype("cpu") == (torch.device("cpu"), torch.float32)
    assert select_device_dtype("cpu", "fp16") == (torch.device("cpu"), torch.float16)
    assert select_device_dtype("cpu", torch.bfloat16)[1] == torch.bfloat16
    expected = (torch.device("cuda"), torch.float16) if torch.cuda.is_available() else (torch.device("cpu"),
                                                                                        torch.float32)
    assert select_device_dtype() == expected
    with pytest.raises(ValueError, match="Unknown dtype 'float8'"):
        select_device_dtype("cpu", "float8")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device_dtype("cuda")


def test_atomic_writes(tmp_path):
    from PIL import Image

    atomic_write_json(tmp_path / "sub" / "m.json", {"a": 1, "p": tmp_path})
    assert json.loads((tmp_path / "sub" / "m.json").read_text()) == {"a": 1, "p": str(tmp_path)}
    image = Image.new("RGB", (3, 2), (10, 20, 30))
    atomic_save_image(image, tmp_path / "x.png")
    assert Image.open(tmp_path / "x.png").getpixel((2, 1)) == (10, 20, 30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "x.png"]  # no temp files left


def test_tiny_quality_is_a_tiny_arch_through_the_real_loader():
    """``tiny:quality`` resolves like every tiny name and loads as the LAION-layout predictor on tiny:clip."""
    from safetensors.torch import load_file

    from t2i_prompt.rewards import AestheticReward

    path = resolve_model_path("tiny:quality")
    assert path == tiny.tiny_model_dir("quality") and (path / "model.safetensors").is_file()
    reward = AestheticReward.from_pretrained("tiny:quality")
    state = load_file(str(path / "model.safetensors"))
    assert sorted(state) == sorted(f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias"))
    assert reward.mlp.embed_dim == reward.clip.embed_dim == 32
    torch.testing.assert_close(reward.mlp.layers[0].weight, state["layers.0.weight"])


def test_clip_prefix_names_the_clip_text_tower_as_documented():
    """The documented ``clip:<model>`` embedder name (config help: ``clip:shapes:clip``) works."""
    from t2i_prompt.rewards import CLIPEmbedder, TextSimilarity

    sim = TextSimilarity.from_pretrained("clip:tiny:clip")
    assert sim.clip is CLIPEmbedder.shared("tiny:clip")
    a, b = ["a red circle", "a blue square"], ["a red circle", "a green star"]
    expected = (sim.clip.encode_texts(a) * sim.clip.encode_texts(b)).sum(-1)
    torch.testing.assert_close(sim.similarity(a, b), expected)
    assert float(sim.similarity(a[:1], a[:1])) == pytest.approx(1.0, abs=1e-5)
