"""T2IPipeline, ImageGenerator and the generate CLI on tiny SD1.5, SDXL and pixel-space models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from t2i_prompt.attention.controller import AttentionHook
from t2i_prompt.generate import ImageGenerator, PromptTruncationWarning, T2IPipeline
from t2i_prompt.utils import make_generators

STEPS = 2


def _gens(*seeds):
    return make_generators(seeds)


def _pt(pipe, prompts, seeds, **kw):
    kw.setdefault("num_inference_steps", STEPS)
    return pipe(prompts, generator=_gens(*seeds), output_type="pt", **kw).images


class RecordingHook(AttentionHook):
    """Records every controller call; optionally replaces the latents after the last step."""

    def __init__(self, final_latents=None):
        self.calls, self.run, self.final_latents = [], None, final_latents

    def on_start(self, run):
        self.run = run
        self.calls.append(("start",))

    def on_step_begin(self, step, timestep, state):
        self.calls.append(("begin", step, int(timestep)))

    def on_step_end(self, step, timestep, state):
        self.calls.append(("end", step, int(timestep)))
        if self.final_latents is not None and step == len(self.run.timesteps) - 1:
            state.latents = self.final_latents(state.latents)

    def on_end(self):
        self.calls.append(("finish",))


# ------------------------------------------------------------------------------------------- sizes, seeds
@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_image_sizes(arch, request):
    pipe = request.getfixturevalue(f"{arch}_pipeline")
    out = pipe("a red cat", num_inference_steps=STEPS, height=24, width=32, generator=_gens(0))
    assert len(out.images) == 1 and isinstance(out.images[0], Image.Image)
    assert out.images[0].size == (32, 24)  # PIL size is (width, height)
    assert out.latents.shape == (1, 4, 12, 16)
    default = pipe("a red cat", num_inference_steps=1, generator=_gens(0))
    assert default.images[0].size == (32, 32)


def test_same_seed_same_image_different_seed_differs(sd15_pipeline):
    a = _pt(sd15_pipeline, "a red cat", [7])
    b = _pt(sd15_pipeline, "a red cat", [7])
    c = _pt(sd15_pipeline, "a red cat", [8])
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-2


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_batch_image_equals_image_alone(arch, request):
    pipe = request.getfixturevalue(f"{arch}_pipeline")
    batch = _pt(pipe, ["a red cat", "a blue dog", "a green tree"], [3, 4, 5])
    alone = _pt(pipe, ["a blue dog"], [4])
    assert (batch[1] - alone[0]).abs().max() < 1e-5
    assert (batch[0] - batch[1]).abs().max() > 1e-2


def test_stochastic_scheduler_keeps_images_reproducible_alone(sd15_pipeline):
    """Ancestral sampling draws step noise from each image's own generator too (passed to scheduler.step)."""
    from diffusers import EulerAncestralDiscreteScheduler

    p = sd15_pipeline
    pipe = T2IPipeline(p.unet, EulerAncestralDiscreteScheduler.from_config(p.scheduler.config), p.text_encoder,
                       p.tokenizer, vae=p.vae)
    batch = _pt(pipe, ["a red cat", "a blue dog"], [3, 4], num_inference_steps=3)
    alone = _pt(pipe, ["a blue dog"], [4], num_inference_steps=3)
    again = _pt(pipe, ["a blue dog"], [4], num_inference_steps=3)
    assert torch.equal(alone, again) and (batch[1] - alone[0]).abs().max() < 1e-5


@pytest.mark.parametrize("arch, diffusers_class, guidance", [("sd15", "StableDiffusionPipeline", 6.0),
                                                              ("sdxl", "StableDiffusionXLPipeline", 4.0)])
def test_matches_diffusers_pipeline(arch, diffusers_class, guidance, tiny_path, request):
    """Our one loop reproduces diffusers' own SD1.5 (DDIM) and SDXL (Euler, zeroed uncond, time ids) pipelines."""
    import diffusers

    ref = getattr(diffusers, diffusers_class).from_pretrained(str(tiny_path(arch)))
    ref.set_progress_bar_config(disable=True)
    kw = dict(num_inference_steps=3, guidance_scale=guidance, height=32, width=32)
    expected = ref(["a red cat", "a dog"], generator=_gens(1, 2), output_type="pt", **kw).images
    ours = _pt(request.getfixturevalue(f"{arch}_pipeline"), ["a red cat", "a dog"], [1, 2], **kw)
    assert (expected - ours).abs().max() < 1e-5
    wrapped = T2IPipeline.from_diffusers(ref)  # the wrapper around diffusers' components gives the same
    assert (_pt(wrapped, ["a red cat", "a dog"], [1, 2], **kw) - ours).abs().max() < 1e-6


# ------------------------------------------------------------------------------------------- CFG
def test_cfg_on_and_off(sd15_pipeline):
    pipe = sd15_pipeline
    on, off = RecordingHook(), RecordingHook()
    img_on = _pt(pipe, ["a red cat", "a dog"], [0, 1], guidance_scale=5.0, hooks=[on])
    img_off = _pt(pipe, ["a red cat", "a dog"], [0, 1], guidance_scale=1.0, hooks=[off])
    assert on.run.do_cfg and on.run.embeds.embeds.shape == (4, 77, 32)
    assert not off.run.do_cfg and off.run.embeds.embeds.shape == (2, 77, 32)
    assert (img_on - img_off).abs().max() > 1e-3


def test_predict_noise_is_classifier_free_guidance(sd15_pipeline):
    """eps = eps_u + w (eps_c - eps_u), with the CFG batch laid out as [uncond; cond]."""
    pipe = sd15_pipeline
    pipe.scheduler.set_timesteps(5)
    t = pipe.scheduler.timesteps[1]
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    embeds = pipe.encode_prompt(["a red cat", "a dog"], ["blurry", "ugly"], do_cfg=True)
    uncond_only = pipe.encode_prompt(["blurry", "ugly"], do_cfg=False).embeds
    assert torch.allclose(embeds.embeds[:2], uncond_only, atol=1e-6)
    with torch.no_grad():
        guided = pipe.predict_noise(latents, t, embeds, 3.0)
        eps_u = pipe.unet(latents, t, encoder_hidden_states=embeds.embeds[:2]).sample
        eps_c = pipe.unet(latents, t, encoder_hidden_states=embeds.embeds[2:]).sample
    assert torch.allclose(guided, eps_u + 3.0 * (eps_c - eps_u), atol=1e-5)


def test_sdxl_added_conditioning(sdxl_pipeline):
    embeds = sdxl_pipeline.encode_prompt(["a red cat", "a dog"], do_cfg=True, height=24, width=32)
    assert embeds.embeds.shape == (4, 77, 64)  # penultimate states of both encoders, concatenated
    assert embeds.added_cond_kwargs["text_embeds"].shape == (4, 32)
    assert embeds.added_cond_kwargs["time_ids"].tolist() == [[24.0, 32.0, 0.0, 0.0, 24.0, 32.0]] * 4
    # no negative prompt + force_zeros_for_empty_prompt: the unconditional half is zeros (SDXL convention)
    assert sdxl_pipeline.force_zeros_for_empty_prompt
    assert embeds.embeds[:2].abs().max() == 0 and embeds.added_cond_kwargs["text_embeds"][:2].abs().max() == 0
    assert embeds.embeds[2:].abs().max() > 0
    with_neg = sdxl_pipeline.encode_prompt(["a red cat"], ["blurry"], do_cfg=True)
    assert with_neg.embeds[0].abs().max() > 0


# ------------------------------------------------------------------------------------------- pixel space
def test_pixel_space_pipeline_without_model_index(tmp_path, tiny_path):
    """A shapes-world-like directory (no VAE, no model_index.json) loads with fallback classes and its defaults."""
    model_dir = tmp_path / "pixel"
    shutil.copytree(tiny_path("pixel"), model_dir)
    (model_dir / "model_index.json").unlink()
    pipe = T2IPipeline.from_pretrained(str(model_dir), device="cpu")
    assert pipe.vae is None and pipe.defaults["num_inference_steps"] == 4
    hook = RecordingHook()
    out = pipe("a red circle", generator=_gens(0), hooks=[hook], output_type="pt")
    assert out.images.shape == (1, 3, 16, 16) and out.latents.shape == (1, 3, 16, 16)
    assert torch.allclose(out.images, (out.latents / 2 + 0.5).clamp(0, 1))  # pixels are the latents
    assert hook.run.guidance_scale == 2.0 and len(hook.run.timesteps) == 4


# ------------------------------------------------------------------------------------------- hooks
def test_hooks_called_once_per_step_in_order(sd15_pipeline):
    hook = RecordingHook()
    sd15_pipeline("a red cat", num_inference_steps=3, generator=_gens(0), hooks=[hook])
    timesteps = [int(t) for t in hook.run.timesteps]
    assert len(timesteps) == 3 and timesteps == sorted(timesteps, reverse=True)
    expected = [("start",)]
    for i, t in enumerate(timesteps):
        expected += [("begin", i, t), ("end", i, t)]
    assert hook.calls == expected + [("finish",)]
    run = hook.run
    assert run.prompts == ["a red cat"] and run.batch_size == 1 and run.latent_shape == (1, 4, 16, 16)
    assert run.height == run.width == 32 and run.num_inference_steps == 3


def test_on_step_end_can_replace_latents(pixel_pipeline):
    hook = RecordingHook(final_latents=torch.zeros_like)
    out = pixel_pipeline("a red circle", generator=_gens(0), hooks=[hook], output_type="np")
    assert (out.images == 128).all()  # zero pixels in [-1, 1] -> 0.5 -> 128


# ------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("prompt", ["", "   ", ["a cat", " "]])
def test_empty_prompt_is_rejected(sd15_pipeline, prompt):
    with pytest.raises(ValueError, match="empty or whitespace"):
        sd15_pipeline(prompt, num_inference_steps=1)


def test_bad_arguments(sd15_pipeline):
    with pytest.raises(ValueError, match="`height` must be a positive multiple of 8"):
        sd15_pipeline("a cat", height=30, num_inference_steps=1)
    with pytest.raises(ValueError, match="`negative_prompt` has 2 entries"):
        sd15_pipeline(["a cat", "a dog", "a cow"], negative_prompt=["x", "y"], num_inference_steps=1)
    with pytest.raises(ValueError, match="2 generators for 1 prompts"):
        sd15_pipeline("a cat", generator=_gens(0, 1), num_inference_steps=1)


def test_long_prompt_is_truncated_with_warning(sd15_pipeline):
    prompt = "a red cat sitting on a blue chair " * 12  # ~96 tokens > 77
    with pytest.warns(PromptTruncationWarning, match=r"77-token window; \d+ token\(s\) were dropped"):
        embeds = sd15_pipeline.encode_prompt([prompt, "a dog"])
    assert embeds.truncated[1] == "" and embeds.truncated[0] and prompt.strip().endswith(embeds.truncated[0])
    kept = sd15_pipeline.tokenizer.decode(embeds.input_ids[0], skip_special_tokens=True).strip()
    assert prompt.startswith(kept) and len(kept) + len(embeds.truncated[0]) + 1 == len(prompt.strip())
    with pytest.warns(PromptTruncationWarning):
        out = ImageGenerator(sd15_pipeline, progress=False).generate(prompt, [0], num_inference_steps=1)
    assert out.records[0]["truncated"] == embeds.truncated[0]


# ------------------------------------------------------------------------------------------- ImageGenerator
def test_generator_prompts_by_seeds(sd15_pipeline):
    gen = ImageGenerator(sd15_pipeline, batch_size=3, progress=False)
    out = gen.generate(["a red cat", "a dog"], seeds=[1, 2], num_inference_steps=STEPS, guidance_scale=4.0,
                       negative_prompt="blurry")
    assert [(r["prompt"], r["seed"]) for r in out.records] == [("a red cat", 1), ("a red cat", 2), ("a dog", 1),
                                                               ("a dog", 2)]
    rec = out.records[3]
    assert rec["model"] == "tiny:sd15" and rec["index"] == 3 and rec["truncated"] == ""
    assert rec["settings"] == {"num_inference_steps": STEPS, "guidance_scale": 4.0, "height": 32, "width": 32,
                               "negative_prompt": "blurry", "scheduler": "DDIMScheduler", "dtype": "float32",
                               "variant": None, "hooks": None}
    assert rec["nsfw_content_detected"] is None  # tiny:sd15 ships no safety checker
    # image 3 (second batch) equals the same prompt + seed generated alone
    alone = ImageGenerator(sd15_pipeline, batch_size=1, progress=False).generate(
        "a dog", [2], num_inference_steps=STEPS, guidance_scale=4.0, negative_prompt="blurry")
    diff = np.asarray(out.images[3]).astype(np.int16) - np.asarray(alone.images[0]).astype(np.int16)
    assert np.abs(diff).max() <= 1


def test_generation_output_save(tmp_path, pixel_pipeline):
    out = ImageGenerator(pixel_pipeline, progress=False).generate("a red circle", [3, 4], num_inference_steps=2)
    paths = out.save(tmp_path / "out")
    assert [p.name for p in paths] == ["000_seed3.png", "001_seed4.png"]
    meta = json.loads((tmp_path / "out" / "generation.json").read_text())
    assert [r["file"] for r in meta["images"]] == ["000_seed3.png", "001_seed4.png"]
    assert Image.open(paths[1]).size == (16, 16)
    assert list(Image.open(paths[1]).getdata()) == list(out.images[1].getdata())


# ------------------------------------------------------------------------------------------- CLI
def test_cli_generate_writes_files(tmp_path, capsys):
    from t2i_prompt.cli import main

    out_dir = tmp_path / "gen"
    code = main(["generate", "a red cat", "--model", "tiny:sd15", "--seed", "5", "--num-images", "2",
                 "--steps", "2", "--guidance", "3", "--height", "24", "--out", str(out_dir), "--json",
                 "--no-progress"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in printed["images"]] == [5, 6]
    meta = json.loads((out_dir / "generation.json").read_text())
    assert meta["images"] == printed["images"]
    assert meta["images"][0]["settings"]["height"] == 24 and meta["images"][0]["prompt"] == "a red cat"
    for record in meta["images"]:
        assert Image.open(out_dir / record["file"]).size == (32, 24)


def test_cli_generate_errors(tmp_path, capsys):
    from t2i_prompt.cli import main
    from t2i_prompt.cli.options import resolve_seeds

    assert main(["generate", " ", "--model", "tiny:sd15", "--out", str(tmp_path)]) == 2
    assert "empty or whitespace" in capsys.readouterr().err
    assert main(["generate", "a cat", "--model", "no-such-org/no-such-model", "--out", str(tmp_path)]) == 2
    assert "local path" in capsys.readouterr().err
    assert resolve_seeds([0], None) == [0] and resolve_seeds([5], 3) == [5, 6, 7]
    with pytest.raises(ValueError, match="disagrees"):
        resolve_seeds([1, 2], 3)
