"""Attention controller, processor, capture, LPA and soft refinement on bare tiny SD1.5/SDXL-architecture UNets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_sd15_unet, tiny_sdxl_unet, unet_inputs

from t2i_prompt.attention.controller import AttentionController, AttentionHook, unet_layers
from t2i_prompt.attention.layout import plan_layout
from t2i_prompt.attention.lpa import PRESETS, LPAHook, check_window, split_style_prompt
from t2i_prompt.attention.masks import Region, label_map, labels_at
from t2i_prompt.attention.regions import RegionHook, foreign_words
from t2i_prompt.attention.store import AttentionStore, save_heatmaps
from t2i_prompt.attention.tokens import token_indices, token_indices_multi
from t2i_prompt.models.tokenizers import make_clip_tokenizer

ARCHS = {"sd15": tiny_sd15_unet, "sdxl": tiny_sdxl_unet}


@pytest.fixture(scope="module", params=list(ARCHS))
def unet(request):
    return ARCHS[request.param]()


@pytest.fixture(scope="module")
def tokenizer():
    return make_clip_tokenizer(n_merges=486)


class Everywhere(AttentionHook):
    """Installed on every layer; optionally inactive. Does nothing else."""

    def __init__(self, active=True):
        self.active = active

    def wants_layer(self, layer):
        return True

    def is_active(self, ctx):
        return self.active


def forward(unet, hooks=(), timestep=500, step=0):
    x, t, e, kw = unet_inputs(unet)
    controller = AttentionController(hooks)
    controller.on_step_begin(step, timestep)
    with torch.no_grad(), controller.installed(unet):
        return unet(x, t, e, **kw).sample


@pytest.fixture(scope="module")
def vanilla(unet):
    return forward(unet)


# ---- controller -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hooks", [(), (Everywhere(active=False),), (Everywhere(),), (Everywhere(), Everywhere())])
def test_controller_without_effect_matches_default_processors(unet, vanilla, hooks):
    x, t, e, kw = unet_inputs(unet)
    with torch.no_grad():
        reference = unet(x, t, e, **kw).sample  # no controller at all: diffusers' AttnProcessor2_0
    torch.testing.assert_close(vanilla, reference, rtol=0, atol=1e-5)
    torch.testing.assert_close(forward(unet, hooks), reference, rtol=0, atol=1e-5)


def test_layer_description_from_block_structure(unet):
    layers = unet_layers(unet)
    assert len(layers) == len(unet.attn_processors)
    tags = {layer.tag for layer in layers.values()}
    expected = {"down1", "down2", "mid", "up1", "up2"} if unet.config.block_out_channels == (16, 32, 32) else {
        "down1", "mid", "up1"}
    assert tags == expected
    for key, layer in layers.items():
        assert layer.is_cross == key.endswith("attn2.processor")
        assert layer.place == {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}[key.split(".")[0]]
    # downsampling factors: the mid block is the coarsest; SD1.5 down1 is full resolution
    assert max(layer.factor for layer in layers.values()) == layers[next(k for k in layers if k.startswith("mid"))].factor


def test_untouched_layers_keep_their_processor_and_all_are_restored(unet):
    originals = dict(unet.attn_processors)
    lpa = LPAHook("lpa_late_only", window=(0, 1000))
    controller = AttentionController([lpa])
    with controller.installed(unet):
        during = dict(unet.attn_processors)
        for key, proc in during.items():
            routed = lpa.wants_layer(controller.layers[key])
            assert (proc is originals[key]) != routed, key
        assert all(during[k] is originals[k] for k in during if k.endswith("attn1.processor"))
    assert all(unet.attn_processors[k] is originals[k] for k in originals)


def test_processors_restored_after_exception(unet):
    originals = dict(unet.attn_processors)
    controller = AttentionController([Everywhere()])
    with pytest.raises(RuntimeError, match="boom"):
        with controller.installed(unet):
            assert any(unet.attn_processors[k] is not originals[k] for k in originals)
            raise RuntimeError("boom")
    assert all(unet.attn_processors[k] is originals[k] for k in originals)


def test_hooks_see_context_with_step_timestep_and_cfg_halves(unet):
    seen = []

    class Spy(Everywhere):
        def after_attention(self, ctx, call):
            seen.append((ctx.layer.name, ctx.layer.is_cross, ctx.step, ctx.timestep, ctx.cond, ctx.uncond,
                         ctx.resolution, call.out.shape[2]))

    forward(unet, [Spy()], timestep=321, step=7)
    assert len(seen) == len(unet.attn_processors)
    for name, is_cross, step, timestep, cond, uncond, (h, w), n in seen:
        assert (step, timestep, cond, uncond) == (7, 321.0, slice(1, 2), slice(0, 1))
        assert h * w == n and is_cross == name.endswith("attn2")


def test_steps_are_announced_not_counted(unet):
    steps = []

    class Spy(Everywhere):
        def after_attention(self, ctx, call):
            steps.append(ctx.step)

    spy = Spy()
    controller = AttentionController([spy])
    x, t, e, kw = unet_inputs(unet)
    with torch.no_grad(), controller.installed(unet):
        controller.on_step_begin(3, 500)
        unet(x, t, e, **kw)
        unet(x, t, e, **kw)  # a second forward in the same step (e.g. hard binding) keeps the step
    assert set(steps) == {3} and len(steps) == 2 * len(unet.attn_processors)


# ---- capture ----------------------------------------------------------------------------------------------
def _one_layer(unet, tag):
    key = next(k for k, layer in unet_layers(unet).items() if layer.tag == tag and layer.is_cross)
    return key, unet.get_submodule(key.removesuffix(".processor"))


def test_capture_equals_explicit_softmax(unet):
    key, attn = _one_layer(unet, "down1")
    g = torch.Generator().manual_seed(0)
    side = 8
    hidden = torch.randn(2, side * side, attn.to_q.in_features, generator=g)
    context = torch.randn(2, 77, attn.to_k.in_features, generator=g)
    store = AttentionStore(resolution=side)
    store.set_token_ids([[[1, 2], [5]]], ["cat", "dog"])
    controller = AttentionController([store])
    controller.on_step_begin(0, 500)
    with torch.no_grad(), controller.installed(unet):
        out = attn(hidden, encoder_hidden_states=context)
    with torch.no_grad():
        ref_out = attn.processor(attn, hidden, encoder_hidden_states=context)
        q = attn.to_q(hidden[1:]).view(1, -1, attn.heads, attn.to_q.out_features // attn.heads).transpose(1, 2)
        k = attn.to_k(context[1:]).view(1, -1, attn.heads, attn.to_k.out_features // attn.heads).transpose(1, 2)
        probs = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1).mean(1)[0]  # (N, 77)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-5)
    maps = store.maps()[0]  # (words, side, side)
    torch.testing.assert_close(maps[0].flatten(), probs[:, 1] + probs[:, 2], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(maps[1].flatten(), probs[:, 5], rtol=1e-4, atol=1e-6)


def test_store_filters_steps_and_writes_heatmaps(unet, tmp_path):
    store = AttentionStore(places=("up",), steps=[1], resolution=4)
    store.set_token_ids([[[1], [2]]], ["red", "cat"])
    forward(unet, [store], step=0)
    with pytest.raises(ValueError, match="No attention was captured"):
        store.maps()
    forward(unet, [store], step=1)
    maps = store.word_maps(0)
    assert set(maps) == {"red", "cat"} and maps["cat"].shape == (4, 4) and (maps["cat"] > 0).all()
    from PIL import Image

    paths = save_heatmaps(Image.new("RGB", (32, 32), "white"), maps, tmp_path, prefix="img0")
    assert [p.name for p in paths] == ["img0_red.png", "img0_cat.png"]
    assert Image.open(paths[1]).size == (32, 32)


# ---- LPA --------------------------------------------------------------------------------------------------
CONTENT, STYLE = [1, 2, 3], [6, 7]


def _lpa_maps(unet, preset, mode="mask", timestep=500):
    lpa = LPAHook(preset, window=(0, 1000), mode=mode)
    lpa.set_token_ids([CONTENT], [STYLE])
    stores = {}
    for tag in {layer.tag for layer in unet_layers(unet).values()}:
        stores[tag] = AttentionStore(tags=[tag], resolution=4)
        stores[tag].set_token_ids([[CONTENT, STYLE]], ["content", "style"])
    out = forward(unet, [lpa, *stores.values()], timestep=timestep)
    return lpa, {tag: s.maps()[0].sum((1, 2)) for tag, s in stores.items()}, out


def test_lpa_mask_gives_zero_attention_across_roles(unet):
    lpa, sums, _ = _lpa_maps(unet, "lpa_early_style_late")
    style_tags, content_tags = PRESETS["lpa_early_style_late"]
    checked = 0
    for tag, (content_mass, style_mass) in sums.items():
        if tag in style_tags:
            assert content_mass == 0 and style_mass > 0, tag
            checked += 1
        elif tag in content_tags:
            assert style_mass == 0 and content_mass > 0, tag
            checked += 1
        else:
            assert content_mass > 0 and style_mass > 0, tag
    assert checked >= 2


def test_lpa_zero_embeddings_is_only_partial_suppression(unet):
    _, sums, out_zero = _lpa_maps(unet, "lpa_early_style_late", mode="zero_embeddings")
    _, _, out_mask = _lpa_maps(unet, "lpa_early_style_late", mode="mask")
    style_tags = PRESETS["lpa_early_style_late"][0]
    tag = next(t for t in sums if t in style_tags)
    assert sums[tag][0] > 0  # zeroed content keys still receive softmax weight
    assert (out_zero - out_mask).abs().max() > 1e-4


def test_lpa_zero_embeddings_zeroes_both_cfg_halves_as_the_reference():
    """The reference zeroes the forbidden token rows of the whole encoder batch, uncond half included."""
    from t2i_prompt.attention.controller import AttentionContext, LayerInfo

    lpa = LPAHook("lpa_early_style_late", window=(0, 1000), mode="zero_embeddings")
    lpa.set_token_ids([CONTENT, [2]], [STYLE, [5]])
    layer = LayerInfo("up_blocks.1.attentions.0.transformer_blocks.0.attn2", "up", 1, "up1", 2, True, 2)
    ctx = AttentionContext(layer, 0, 500.0, batch_size=4, do_cfg=True, latent_hw=(8, 8))  # 2 images x CFG
    out = lpa.edit_context(ctx, None, torch.ones(4, 10, 3))
    zeroed = (out == 0).all(-1)  # (4, 10)
    assert zeroed[0].nonzero().flatten().tolist() == CONTENT == zeroed[2].nonzero().flatten().tolist()
    assert zeroed[1].nonzero().flatten().tolist() == [2] == zeroed[3].nonzero().flatten().tolist()
    mask_mode = LPAHook("lpa_early_style_late", window=(0, 1000))
    mask_mode.set_token_ids([CONTENT, [2]], [STYLE, [5]])
    bias = mask_mode.attention_bias(ctx, 16, 10)[:, 0, 0]  # the -inf mask stays on the conditional half
    assert torch.isinf(bias[:2]).sum() == 0 and torch.isinf(bias[2]).nonzero().flatten().tolist() == CONTENT


def test_lpa_outside_window_is_vanilla(unet, vanilla):
    lpa = LPAHook("lpa_full", window=(300, 650))
    lpa.set_token_ids([CONTENT], [STYLE])
    torch.testing.assert_close(forward(unet, [lpa], timestep=800), vanilla, rtol=0, atol=1e-5)
    assert (forward(unet, [lpa], timestep=500) - vanilla).abs().max() > 1e-4


def test_parse_prompt_style_and_content():
    parts = split_style_prompt("a red cat and a blue dog in Van Gogh style", backend="pos")
    assert parts.style == ["Van", "Gogh"] and parts.style_phrase == "Van Gogh"
    assert parts.content == ["red", "cat", "blue", "dog"]
    naive = split_style_prompt("a cat, a Cat in the style of Monet", backend="naive")
    assert naive.style == ["Monet"] and naive.content[:2] == ["a", "cat"] and "Cat" not in naive.content
    assert split_style_prompt("a photo of a dog", backend="pos") .style == []


def test_lpa_bad_input():
    with pytest.raises(ValueError, match=r"Unknown LPA preset 'late'.*lpa_late_only, lpa_early_style_late"):
        LPAHook("late")
    with pytest.raises(ValueError, match="start 700 > end 300"):
        LPAHook(window=(700, 300))
    with pytest.raises(ValueError, match="two numbers"):
        check_window("300")
    with pytest.raises(ValueError, match="Unknown LPA mode"):
        LPAHook(mode="soft")


# ---- regions (soft refinement) -----------------------------------------------------------------------------
def _region_layer_call(unet, states, sr_delta=1.0, tag="down1", sr_source="region", foreign=None, context=None):
    key, attn = _one_layer(unet, tag)
    hook = RegionHook([Region("a", box=(0, 0, 0.5, 1)), Region("b", box=(0.5, 0, 1, 1))], hb_steps=0,
                      sr_delta=sr_delta, sr_source=sr_source)
    hook.set_latent_size(8, 8)
    hook.set_region_states(states)
    hook.foreign_tokens = foreign
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 64, attn.to_q.in_features, generator=g)
    if context is None:
        context = torch.randn(2, 77, attn.to_k.in_features, generator=g)
    controller = AttentionController([hook])
    controller.set_latent_size(8, 8)
    controller.on_step_begin(0, 500)
    with torch.no_grad(), controller.installed(unet):
        side = 8 // controller.layers[key].factor  # the layer's query grid for an 8x8 latent
        out = attn(hidden[:, : side * side], encoder_hidden_states=context)
    with torch.no_grad():
        ref = attn(hidden[:, : side * side], encoder_hidden_states=context)
    return hook, out.view(2, side, side, -1), ref.view(2, side, side, -1), side


def test_soft_refinement_queries_in_a_ignore_region_b_tokens(unet):
    dim = unet.config.cross_attention_dim
    g = torch.Generator().manual_seed(5)
    states = torch.randn(2, 77, dim, generator=g)
    hook, out, base, side = _region_layer_call(unet, states)
    perturbed_b = states.clone()
    perturbed_b[1] += 3 * torch.randn(77, dim, generator=g)
    _, out_b, _, _ = _region_layer_call(unet, perturbed_b)
    perturbed_a = states.clone()
    perturbed_a[0] += 3 * torch.randn(77, dim, generator=g)
    _, out_a, _, _ = _region_layer_call(unet, perturbed_a)
    left, right = slice(0, side // 2), slice(side // 2, side)
    torch.testing.assert_close(out_b[1, :, left], out[1, :, left], rtol=0, atol=1e-6)  # A ignores B's tokens
    assert (out_b[1, :, right] - out[1, :, right]).abs().max() > 1e-3
    assert (out_a[1, :, left] - out[1, :, left]).abs().max() > 1e-3
    torch.testing.assert_close(out[0], base[0], rtol=0, atol=1e-6)  # unconditional half untouched
    bias, inside = hook.region_bias(side, side, 77)
    probs_allowed = torch.exp(bias).view(side, side, 2, 77)
    assert (probs_allowed[:, left, 1] == 0).all() and (probs_allowed[:, right, 0] == 0).all()
    assert inside.sum() == side * side


def test_soft_refinement_delta_blend(unet):
    states = torch.randn(2, 77, unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(5))
    _, full, base, _ = _region_layer_call(unet, states, sr_delta=1.0)
    _, half, _, _ = _region_layer_call(unet, states, sr_delta=0.5)
    # to_out is affine, so blending the attention output blends the layer output: 0.5*h_R + 0.5*h_base
    torch.testing.assert_close(half[1], 0.5 * full[1] + 0.5 * base[1], rtol=0, atol=1e-5)


def test_soft_refinement_from_base_prompt_equals_attention_without_foreign_tokens(unet):
    """sr_source="base": a query in region a attends to the base prompt minus region b's words, i.e. exactly
    the layer's own attention over the context with those keys deleted; the unconditional half is untouched."""
    dim = unet.config.cross_attention_dim
    g = torch.Generator().manual_seed(7)
    states = torch.randn(2, 77, dim, generator=g)  # region prompts: unused by the base source
    context = torch.randn(2, 77, dim, generator=g)
    foreign = [[4, 5], [1, 2, 3]]  # base-prompt tokens of b's words (hidden from a), of a's words (hidden from b)
    _, out, base, side = _region_layer_call(unet, states, sr_source="base", foreign=foreign, context=context)
    _, attn = _one_layer(unet, "down1")
    hidden = torch.randn(2, 64, attn.to_q.in_features, generator=torch.Generator().manual_seed(0))[:, : side * side]
    left, right = slice(0, side // 2), slice(side // 2, side)
    for region, cols in ((0, left), (1, right)):
        keep = [i for i in range(77) if i not in foreign[region]]
        with torch.no_grad():
            ref = attn(hidden, encoder_hidden_states=context[:, keep]).view(2, side, side, -1)
        torch.testing.assert_close(out[1, :, cols], ref[1, :, cols], rtol=0, atol=1e-5)
        assert (ref[1, :, cols] - base[1, :, cols]).abs().max() > 1e-3  # the mask changes something
    torch.testing.assert_close(out[0], base[0], rtol=0, atol=1e-6)


def test_foreign_words_and_sr_source_checks():
    assert foreign_words(["a red circle in outline style", "a blue square in outline style"]) == [
        ["blue", "square"], ["red", "circle"]]
    assert foreign_words(["a red square", "a green square", "a green cat"]) == [["green", "cat"], ["red", "cat"],
                                                                             ["red", "square"]]
    with pytest.raises(ValueError, match="sr_source must be one of"):
        RegionHook([Region("a", box=(0, 0, 1, 1))], sr_source="prompt")


def test_label_map_later_regions_win_and_resize():
    regions = [Region("a", box=(0, 0, 0.75, 1)), Region("b", box=(0.5, 0, 1, 0.5))]
    labels = label_map(regions, 4, 4)
    expected = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, -1], [0, 0, 0, -1]])
    assert torch.equal(labels, expected)
    assert torch.equal(labels_at(labels, 2, 2), torch.tensor([[0, 1], [0, 0]]))
    mask = np.zeros((8, 8))
    mask[:, :4] = 255
    assert torch.equal(Region("m", mask=mask).mask_at(4, 4, image_size=(8, 8))[:, :2], torch.ones(4, 2, dtype=bool))


@pytest.mark.parametrize("box, message", [
    ((-0.1, 0, 0.5, 1), "outside \\[0, 1\\]"),
    ((0, 0, 1.2, 1), "outside \\[0, 1\\]"),
    ((0.5, 0, 0.5, 1), "empty or inverted"),
    ((0.6, 0, 0.2, 1), "empty or inverted"),
    ((0, 0, 1), "four numbers"),
])
def test_bad_boxes(box, message):
    with pytest.raises(ValueError, match=message):
        Region("a cat", box=box)


def test_bad_regions():
    with pytest.raises(ValueError, match=r"shape \(5, 5\); expected one of \[\(4, 4\), \(8, 8\)\]"):
        Region("a", mask=np.ones((5, 5))).mask_at(4, 4, image_size=(8, 8))
    with pytest.raises(ValueError, match="9 regions exceed the prompt budget of 8"):
        RegionHook([Region(f"r{i}", box=(0, 0, 1, 1)) for i in range(9)])
    with pytest.raises(ValueError, match="exactly one of box or mask"):
        Region("a")
    with pytest.raises(ValueError, match="sr_delta"):
        RegionHook([Region("a", box=(0, 0, 1, 1))], sr_delta=1.5)


# ---- tokens -----------------------------------------------------------------------------------------------
def test_token_indices_multi_token_repeated_and_phrases(tokenizer):
    prompt = "A Fluffy cat and a watercolor cat"
    ids = tokenizer(prompt)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    fluffy = token_indices(tokenizer, prompt, "fluffy")
    assert len(fluffy) > 1 and "".join(tokens[i] for i in fluffy).replace("</w>", "") == "fluffy"
    cats = token_indices(tokenizer, prompt, "cat")
    assert len(cats) >= 2 and all("at" in tokens[i] or tokens[i] == "c" for i in cats)
    second = token_indices(tokenizer, prompt, "cat", occurrence=1)
    assert second and min(second) > max(fluffy) and set(second) < set(cats)
    phrase = token_indices(tokenizer, prompt, "fluffy cat")
    assert phrase[0] == fluffy[0] and phrase[-1] == token_indices(tokenizer, prompt, "cat", occurrence=0)[-1]
    assert token_indices(tokenizer, prompt, "a") == [1, token_indices(tokenizer, prompt, "a", occurrence=1)[0]]
    assert token_indices_multi([tokenizer, tokenizer, None], prompt, "cat") == cats  # SDXL: same positions


def test_token_indices_errors(tokenizer):
    with pytest.raises(ValueError, match="'dog' does not occur in the prompt 'a cat'"):
        token_indices(tokenizer, "a cat", "dog")
    with pytest.raises(ValueError, match="occurs 1 time"):
        token_indices(tokenizer, "a cat", "cat", occurrence=1)
    with pytest.raises(ValueError, match="beyond the tokenizer"):
        token_indices(tokenizer, "a " * 100 + "zebra", "zebra")
    with pytest.raises(ValueError, match="does not occur"):  # whole words only
        token_indices(tokenizer, "a cats", "cat")


# ---- layout planner ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt, expected", [
    ("a red cat on the left and a blue dog on the right", [("a red cat", (0, 0, .5, 1)), ("a blue dog", (.5, 0, 1, 1))]),
    ("a red circle to the left of a blue square", [("a red circle", (0, 0, .5, 1)), ("a blue square", (.5, 0, 1, 1))]),
    ("a blue square to the right of a red circle", [("a blue square", (.5, 0, 1, 1)), ("a red circle", (0, 0, .5, 1))]),
    ("a green triangle above a yellow circle, in a park", [("a green triangle", (0, 0, 1, .5)),
                                                            ("a yellow circle", (0, .5, 1, 1))]),
    ("a cat below a lamp", [("a cat", (0, .5, 1, 1)), ("a lamp", (0, 0, 1, .5))]),
])
def test_layout_planner(prompt, expected):
    plan = plan_layout(prompt)
    assert plan.base_prompt == prompt
    assert [(r.prompt, r.box) for r in plan.regions] == [(p, tuple(float(v) for v in b)) for p, b in expected]


def test_layout_planner_errors():
    with pytest.raises(ValueError, match="No layout rule matches 'a cat'"):
        plan_layout("a cat")
    with pytest.raises(ValueError, match="placed on the left"):
        plan_layout("a cat on the left and a dog on the left")
    assert len(plan_layout("a cat, a dog and a fox", side_by_side=True).regions) == 3


def test_captured_probabilities_carry_the_softmax_gradient():
    """``AttentionCall.token_probs`` (exp(q·k - lse)) has softmax's gradient under autograd: the CPU flash kernel's
    log-sum-exp carries none, and without the normalisation's term a step down the gradient raised DPL's losses."""
    from t2i_prompt.attention.processor import sdpa_with_lse

    torch.manual_seed(0)
    q, v = torch.randn(1, 2, 16, 8), torch.randn(1, 2, 5, 8)
    k = torch.randn(1, 2, 5, 8, requires_grad=True)
    reference = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, dim=-1)
    out, lse = sdpa_with_lse(q, k, v)
    probs = torch.exp(q @ k[:, :, [1, 3]].transpose(-1, -2) / 8 ** 0.5 - lse.unsqueeze(-1))
    weights = torch.linspace(0.0, 1.0, 32).reshape(16, 2)  # a loss that is not the sum of a softmax row
    grad, = torch.autograd.grad((probs * weights).sum(), k)
    expected, = torch.autograd.grad((reference[..., [1, 3]] * weights).sum(), k)
    assert torch.allclose(probs, reference[..., [1, 3]], atol=1e-6)
    assert torch.allclose(grad, expected, atol=1e-5) and float(expected.abs().max()) > 1e-2
    assert torch.allclose(out, reference @ v, atol=1e-5)
    with torch.no_grad():  # the kernel's own log-sum-exp when nothing is recorded
        assert torch.allclose(sdpa_with_lse(q, k, v)[1], torch.logsumexp(q @ k.transpose(-1, -2) / 8 ** 0.5, -1),
                              atol=1e-5)
