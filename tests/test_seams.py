"""Generation seams for editing and a shared server: concurrent calls on one pipeline, per-call schedulers,
``prompt_embeds=``, step hooks that replace embeddings, ``encode_image``; compare workflow without files."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from t2i_prompt.attention import Region, RegionHook
from t2i_prompt.hooks import GenerationHook, ProgressHook


def _regions(k):
    return [Region(f"a red cat {k}", box=(0, 0, 0.5, 1)), Region("a blue dog", box=(0.5, 0, 1, 1))]


def _generate(pipe, prompt, seed, k):
    hooks = [RegionHook(_regions(k), hb_steps=2, sr_delta=0.7)]
    return pipe(prompt, num_inference_steps=3, guidance_scale=3.0, hooks=hooks,
                generator=torch.Generator().manual_seed(seed), output_type="np").images


def test_concurrent_region_calls_on_one_pipeline_equal_sequential_calls(sd15_pipeline):
    jobs = [("a red cat on the left and a blue dog on the right", 0, 0), ("a cat and a dog", 5, 1)]
    sequential = [_generate(sd15_pipeline, *job) for job in jobs]
    results: dict[int, np.ndarray] = {}
    errors = []

    def work(i):
        try:
            results[i] = _generate(sd15_pipeline, *jobs[i])
        except Exception as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(2):
        np.testing.assert_array_equal(results[i], sequential[i])
    assert not np.array_equal(sequential[0], sequential[1])


def test_a_call_never_mutates_the_shared_scheduler(sd15_pipeline):
    before = dict(sd15_pipeline.scheduler.config), sd15_pipeline.scheduler.num_inference_steps
    out = sd15_pipeline("a cat", num_inference_steps=2, hooks=[RegionHook(_regions(0), hb_steps=1)], output_type="latent")
    assert out.run.scheduler is not sd15_pipeline.scheduler and out.run.scheduler.num_inference_steps == 2
    assert (dict(sd15_pipeline.scheduler.config), sd15_pipeline.scheduler.num_inference_steps) == before


def test_prompt_embeds_equal_prompt(sd15_pipeline):
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    by_text = sd15_pipeline("a red cat", num_inference_steps=2, guidance_scale=4.0, generator=gen(), output_type="latent")
    embeds = sd15_pipeline.encode_prompt(["a red cat"], do_cfg=True)
    by_embeds = sd15_pipeline(prompt_embeds=embeds, num_inference_steps=2, guidance_scale=4.0, generator=gen(),
                     output_type="latent")
    torch.testing.assert_close(by_embeds.latents, by_text.latents, rtol=0, atol=0)
    with pytest.raises(ValueError, match="do_cfg=True but guidance_scale=1.0"):
        sd15_pipeline(prompt_embeds=embeds, num_inference_steps=2, guidance_scale=1.0)
    with pytest.raises(ValueError, match="give `prompt` or `prompt_embeds`"):
        sd15_pipeline(num_inference_steps=2)


class SwapEmbeds(GenerationHook):
    """Replaces the unconditional half per step (what null-text inversion does) and records what it saw."""

    def __init__(self, replacement):
        self.replacement, self.seen = replacement, []

    def on_step_begin(self, step, timestep, state):
        self.seen.append(state.embeds.embeds.clone())
        if step == 1:
            embeds = state.embeds.embeds.clone()
            embeds[0] = self.replacement
            state.embeds = type(state.embeds)(embeds, state.embeds.added_cond_kwargs, True, state.embeds.input_ids,
                                              state.embeds.truncated)


def test_step_hooks_replace_embeddings_between_steps(sd15_pipeline):
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    base = sd15_pipeline("a red cat", num_inference_steps=3, guidance_scale=4.0, generator=gen(), output_type="latent")
    other = sd15_pipeline.encode_prompt(["a blue dog"], do_cfg=False).embeds[0]
    hook = SwapEmbeds(other)
    swapped = sd15_pipeline("a red cat", num_inference_steps=3, guidance_scale=4.0, generator=gen(), output_type="latent",
                   hooks=[hook])
    torch.testing.assert_close(hook.seen[2][0], other)  # step 2 saw the replacement made at step 1
    assert (swapped.latents - base.latents).abs().max() > 1e-4


def test_progress_hook_and_denoised_preview(pixel_pipeline):
    calls = []
    pixel_pipeline("a red circle", num_inference_steps=3, hooks=[ProgressHook(lambda i, n, s: calls.append((i, n, s.denoised)))])
    assert [(i, n) for i, n, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(d is not None and d.shape == (1, 3, 16, 16) for _, _, d in calls)


def test_encode_image_inverts_decode_in_pixel_space_and_is_vae_mean(pixel_pipeline, sd15_pipeline):
    images = pixel_pipeline("a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images
    latents = pixel_pipeline.encode_image(images)
    back = pixel_pipeline.postprocess(pixel_pipeline.decode_latents(latents), "np")
    np.testing.assert_array_equal(back[0], np.asarray(images[0]))
    image = sd15_pipeline("a cat", num_inference_steps=2, output_type="pt").images
    z = sd15_pipeline.encode_image(image)
    expected = sd15_pipeline.vae.encode(image * 2 - 1).latent_dist.mean * sd15_pipeline.vae.config.scaling_factor
    torch.testing.assert_close(z, expected)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        sd15_pipeline.encode_image(torch.zeros(3, 8, 8))


def test_predict_noise_scales_input_with_the_given_scheduler(sd15_pipeline):
    import copy

    from diffusers import EulerDiscreteScheduler

    euler = EulerDiscreteScheduler.from_config(sd15_pipeline.scheduler.config)
    euler.set_timesteps(4)
    t = euler.timesteps[0]
    embeds = sd15_pipeline.encode_prompt(["a cat"], do_cfg=False)
    x = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    mine = sd15_pipeline.predict_noise(x, t, embeds, 1.0, scheduler=copy.deepcopy(euler))
    expected = sd15_pipeline.unet(euler.scale_model_input(x, t), t, encoder_hidden_states=embeds.embeds).sample
    torch.testing.assert_close(mine, expected)


def test_compare_rewrite_returns_images_and_writes_nothing(tmp_path, monkeypatch):
    from PIL import Image

    from t2i_prompt.workflows.compare import compare_rewrite, save_comparison

    monkeypatch.chdir(tmp_path)
    result = compare_rewrite("a red circle to the left of a blue square", model="tiny:sd15", rewriter="tiny:gpt2",
                             seeds=[0, 1], k=2, num_inference_steps=2, rewrite_kwargs={"max_new_tokens": 6},
                             progress=False)
    assert list(tmp_path.iterdir()) == []
    assert all(isinstance(im, Image.Image) for w in ("original", "refined") for im in result.images[w])
    assert len(result.images["refined"]) == 2 and len(result.candidates) == 2
    assert result.refined == result.candidates[0]["text"]
    assert result.settings["rewrite"] == {"k": 2, "do_sample": False, "max_new_tokens": 6, "num_beams": 8,
                                          "length_penalty": -1.0}
    assert result.scores["mean"]["original"]["clip"] == pytest.approx(np.mean(result.scores["original"]["clip"]))
    written = save_comparison(result, tmp_path / "out")
    assert written["files"]["grid"] == "grid.png" and (tmp_path / "out" / "result.json").is_file()
    saved = Image.open(tmp_path / "out" / written["files"]["refined"][1])
    np.testing.assert_array_equal(np.asarray(saved), np.asarray(result.images["refined"][1]))
