"""Attention hooks inside T2IPipeline generations (tiny SD1.5/SDXL and pixel-space models): capture + LPA,
hard binding, composition, repaint, restoration after errors, CLI flags."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from t2i_prompt.attention import AttentionStore, LPAHook, Region, RegionHook  # noqa: E402
from t2i_prompt.attention.controller import AttentionHook, unet_layers  # noqa: E402
from t2i_prompt.attention.lpa import PRESETS  # noqa: E402
from t2i_prompt.edit.repaint import LatentRecorder, repaint  # noqa: E402
from t2i_prompt.generate.pipeline import T2IPipeline  # noqa: E402

PROMPT = "a red cat on the left and a blue dog on the right in Van Gogh style"
STEPS = 3


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def pipe(request):
    return T2IPipeline.from_pretrained(f"tiny:{request.param}")


@pytest.fixture(scope="module")
def pixel():
    return T2IPipeline.from_pretrained("tiny:pixel")


def generate(pipe, hooks=(), prompt=PROMPT, seed=0, **kwargs):
    kwargs.setdefault("num_inference_steps", STEPS)
    return pipe(prompt, generator=torch.Generator().manual_seed(seed), hooks=hooks, output_type="pt", **kwargs)


@pytest.fixture(scope="module")
def vanilla(pipe):
    return generate(pipe)


def tag_stores(pipe, words):
    stores = {}
    for tag in sorted({layer.tag for layer in unet_layers(pipe.unet).values()}):
        stores[tag] = AttentionStore(words, tags=[tag], resolution=4)
    return stores


def test_lpa_covering_all_steps_blocks_attention_across_roles(pipe):
    """Content layers give zero attention to style tokens and style layers zero to content tokens."""
    lpa = LPAHook("lpa_early_style_late", window=(0, 1000), parser="pos")
    stores = tag_stores(pipe, ["cat", "dog", "gogh"])
    generate(pipe, [lpa, *stores.values()])
    assert lpa.parts[0].style == ["Van", "Gogh"] and {"cat", "dog"} <= set(lpa.parts[0].content)
    style_tags, content_tags = PRESETS["lpa_early_style_late"]
    roles = set()
    for tag, store in stores.items():
        mass = store.maps()[0].sum((1, 2))  # cat, dog, gogh
        if tag in style_tags:
            assert mass[0] == 0 and mass[1] == 0 and mass[2] > 0, tag
            roles.add("style")
        if tag in content_tags:
            assert mass[2] == 0 and mass[0] > 0 and mass[1] > 0, tag
            roles.add("content")
    assert roles == {"style", "content"}


def test_no_hook_effect_equals_vanilla(pipe, vanilla):
    lpa = LPAHook("lpa_late_only", window=(2000, 3000))  # window never reached
    store = AttentionStore(["cat"], resolution=4)
    out = generate(pipe, [lpa, store])
    torch.testing.assert_close(out.images, vanilla.images, rtol=0, atol=1e-5)
    assert store.maps().shape == (1, 1, 4, 4)


def test_processors_restored_after_exception_inside_generation(pipe):
    originals = dict(pipe.unet.attn_processors)

    class Boom(AttentionHook):
        def wants_layer(self, layer):
            return True

        def on_step_end(self, step, timestep, state):
            raise RuntimeError("boom at step end")

    with pytest.raises(RuntimeError, match="boom at step end"):
        generate(pipe, [LPAHook(window=(0, 1000)), Boom()])
    assert all(pipe.unet.attn_processors[k] is originals[k] for k in originals)


def test_hard_binding_pastes_region_latents(pipe, vanilla):
    recorder = LatentRecorder()
    hook = RegionHook([Region("a red cat", box=(0, 0, 0.5, 1))], hb_steps=1, sr_delta=0.0)
    scheduler = pipe.scheduler
    generate(pipe, [hook, recorder])
    assert pipe.scheduler is scheduler  # region passes borrow their own scheduler copy, then give it back
    assert hook.hb[0]["scheduler"] is not scheduler
    base_recorder = LatentRecorder()
    generate(pipe, [base_recorder])
    state = hook.hb[0]
    y0, y1, x0, x1 = state["box"]
    width = recorder.latents[0].shape[-1]
    assert (y0, x0, x1) == (0, 0, width // 2)
    # after step 0 the left half is the region's own latent (its own prompt and noise), the right half untouched
    assert (recorder.latents[0][..., :, : width // 2] - base_recorder.latents[0][..., :, : width // 2]).abs().max() > 1e-3
    torch.testing.assert_close(recorder.latents[0][..., :, width // 2 :], base_recorder.latents[0][..., :, width // 2 :],
                               rtol=0, atol=1e-6)


def test_lpa_and_regions_compose(pipe):
    lpa = LPAHook("lpa_early_style_late", window=(0, 1000), parser="pos")
    stores = tag_stores(pipe, ["gogh"])
    lpa_only = generate(pipe, [lpa, *stores.values()])
    regions = RegionHook([Region("a red cat", box=(0, 0, 0.5, 1)), Region("a blue dog", box=(0.5, 0, 1, 1))],
                         hb_steps=1, sr_delta=1.0)
    stores = tag_stores(pipe, ["gogh"])
    both = generate(pipe, [lpa, regions, *stores.values()])
    content_tags = PRESETS["lpa_early_style_late"][1]
    for tag, store in stores.items():  # LPA still blocks style tokens in content layers
        if tag in content_tags:
            assert store.maps()[0].sum() == 0, tag
    assert (both.images - lpa_only.images).abs().max() > 1e-3  # and the regions change the image


def test_soft_refinement_steps_option(pipe, vanilla):
    regions = [Region("a red cat", box=(0, 0, 0.5, 1))]
    none = generate(pipe, [RegionHook(regions, hb_steps=0, sr_steps="none")])
    torch.testing.assert_close(none.images, vanilla.images, rtol=0, atol=1e-5)
    late = generate(pipe, [RegionHook(regions, hb_steps=0, sr_steps=[STEPS - 1])])
    every = generate(pipe, [RegionHook(regions, hb_steps=0, sr_steps="all")])
    assert (late.images - vanilla.images).abs().max() > 0
    assert (every.images - late.images).abs().max() > 0


def test_repaint_keeps_outside_of_mask(pixel):
    out = repaint(pixel, "a red circle", Region("a blue square", box=(0.5, 0.5, 1, 1)), seed=3, dilate=0,
                  paste_outside=False, output_type="pt")
    mask = out.mask
    assert mask.float().mean() == 0.25
    # pixel space: latents are the image, so pixels outside the mask are the original ones
    torch.testing.assert_close(out.image[..., ~mask], out.original[..., ~mask], rtol=0, atol=1e-6)
    assert (out.image[..., mask] - out.original[..., mask]).abs().max() > 1e-2
    again = generate(pixel, prompt="a red circle", seed=3, num_inference_steps=None)
    torch.testing.assert_close(out.original_latents, again.latents, rtol=0, atol=1e-6)  # the original is seed 3


def test_repaint_in_latent_space_pastes_pixels(pipe):
    out = repaint(pipe, "a red cat", Region("a green frog", box=(0, 0, 0.5, 0.5)), seed=1, dilate=1,
                  num_inference_steps=STEPS, output_type="pt")
    torch.testing.assert_close(out.latents[..., ~out.mask], out.original_latents[..., ~out.mask], rtol=0, atol=1e-6)
    pixel_mask = torch.nn.functional.interpolate(out.mask.float()[None, None], size=out.image.shape[-2:])[0, 0] > 0
    torch.testing.assert_close(out.image[..., ~pixel_mask], out.original[..., ~pixel_mask], rtol=0, atol=1e-6)
    assert (out.image - out.original).abs().max() > 1e-3


def test_base_source_soft_refinement_hides_the_other_objects_words(pixel):
    """HookSpec(sr_source="base") -> RegionHook whose region queries miss exactly the other object's tokens."""
    from t2i_prompt.attention.recipes import HookSpec
    from t2i_prompt.attention.tokens import token_indices

    prompt = "a red circle to the left of a blue square in outline style"
    spec = HookSpec(auto_regions=True, hb_steps=0, sr_source="base")
    assert HookSpec.from_dict(spec.to_dict()) == spec
    (hook,) = spec.build(prompt)
    base = generate(pixel, [hook], prompt=prompt, num_inference_steps=2)
    tok = pixel.tokenizer
    assert hook.foreign_tokens == [token_indices(tok, prompt, "blue") + token_indices(tok, prompt, "square"),
                                   token_indices(tok, prompt, "red") + token_indices(tok, prompt, "circle")]
    region = generate(pixel, HookSpec(auto_regions=True, hb_steps=0).build(prompt), prompt=prompt,
                      num_inference_steps=2)
    assert (base.images - region.images).abs().max() > 1e-3
    with pytest.raises(ValueError, match="sr_source must be one of"):
        HookSpec(sr_source="regions")


def test_sr_source_default_comes_from_the_model(pixel, monkeypatch):
    """sr_source=None means the model's default (``region_sr_source`` in t2i_sampling.json), else RAG's "region";
    the run with the default equals the run with that value given explicitly."""
    from t2i_prompt.attention.recipes import HookSpec

    prompt = "a red circle to the left of a blue square"
    (plain,) = HookSpec(auto_regions=True, hb_steps=0).build(prompt)
    generate(pixel, [plain], prompt=prompt, num_inference_steps=2)
    assert plain.sr_source == "region"
    monkeypatch.setitem(pixel.defaults, "region_sr_source", "base")
    (by_model,) = HookSpec(auto_regions=True, hb_steps=0).build(prompt)
    out = generate(pixel, [by_model], prompt=prompt, num_inference_steps=2)
    (given,) = HookSpec(auto_regions=True, hb_steps=0, sr_source="base").build(prompt)
    torch.testing.assert_close(out.images, generate(pixel, [given], prompt=prompt, num_inference_steps=2).images)
    assert by_model.sr_source == "base" and by_model.foreign_tokens
    monkeypatch.setitem(pixel.defaults, "region_sr_source", "everywhere")
    with pytest.raises(ValueError, match="region_sr_source='everywhere'"):
        generate(pixel, HookSpec(auto_regions=True, hb_steps=0).build(prompt), prompt=prompt, num_inference_steps=2)
