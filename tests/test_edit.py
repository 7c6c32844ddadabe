"""Real-image editing: DDIM / null-text inversion, prompt-to-prompt hooks, DPL, edit_image and the edit CLI."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import eval_script, run_cli
from PIL import Image

from t2i_prompt.attention.alignment import (
    global_alignment,
    refine_alignment,
    replace_alignment,
)
from t2i_prompt.attention.controller import AttentionContext, AttentionController, LayerInfo
from t2i_prompt.attention.prompt2prompt import LocalBlend, PromptToPromptHook
from t2i_prompt.attention.store import AttentionStore
from t2i_prompt.attention.tokens import token_indices
from t2i_prompt.edit import EditConfig, edit_image, load_learned, save_edit
from t2i_prompt.edit.dpl import (
    DPL_PRESETS,
    SOFTMAX_OVER,
    DPLConfig,
    _NounMapper,
    attention_losses,
    attention_resolution,
    background_map,
    boundary_connectivity,
    kmeans,
    noun_positions_for,
    preset,
    smooth,
)
from t2i_prompt.edit.inversion import (
    EmbeddingSchedule,
    OptimisationDiverged,
    PassCounter,
    ddim_invert,
    ddim_move,
    ddim_pipeline,
    null_text_inversion,
    split_embeds,
)

SOURCE = "a red cat and a blue dog"
SWAP = "a red cat and a blue tree"
STEPS = 5


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((32, 32, 3)) * 255).astype("uint8"))


@pytest.fixture(scope="module")
def inversion(sd15_pipeline, image):
    return ddim_invert(sd15_pipeline, image, SOURCE, STEPS)


def _latent_mse(pipe, inv, guidance, hooks=()):
    out = ddim_pipeline(pipe)(SOURCE, latents=inv.start(), num_inference_steps=STEPS, guidance_scale=guidance,
                              hooks=hooks, output_type="latent")
    return float(((out.latents - inv.latents[0]) ** 2).mean())


# ------------------------------------------------------------------------------------------- inversion
def test_ddim_move_inverts_itself_and_matches_the_scheduler(sd15_pipeline, inversion):
    sched = inversion.scheduler
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 4, 16, 16, generator=g)
    up = ddim_move(sched, eps, x, 101, 301)
    assert torch.allclose(ddim_move(sched, eps, up, 301, 101), x, atol=1e-5)
    expected = sched.step(eps, inversion.timesteps[1], x).prev_sample
    assert torch.allclose(ddim_move(sched, eps, x, inversion.timesteps[1], inversion.prev_timestep(1)), expected,
                          atol=1e-5)


def test_ddim_move_from_alpha_one_with_clip_sample_stays_finite():
    """Inversion's first step starts at the schedule's final alpha; with set_alpha_to_one it is 1 (SDXL's Euler
    config converted to DDIM), where the clipped-x0 direction would divide by zero: the model's eps is kept."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(clip_sample=True, set_alpha_to_one=True)
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(1, 4, 8, 8, generator=g) * 2, torch.randn(1, 4, 8, 8, generator=g)
    up = ddim_move(sched, eps, x, -19, 1)
    a = sched.alphas_cumprod[1]
    assert torch.allclose(up, a.sqrt() * x.clamp(-1, 1) + (1 - a).sqrt() * eps)


def test_ddim_inversion_keeps_every_level(sd15_pipeline, image, inversion):
    assert len(inversion.latents) == STEPS + 1
    assert torch.allclose(inversion.latents[0], sd15_pipeline.encode_image(image))
    assert inversion.timesteps == sorted(inversion.timesteps, reverse=True)
    assert all(not torch.equal(a, b) for a, b in zip(inversion.latents, inversion.latents[1:]))


def test_null_text_inversion_reduces_reconstruction_error(sd15_pipeline, image):
    inv = ddim_invert(sd15_pipeline, image, SOURCE, STEPS)
    guided = _latent_mse(sd15_pipeline, inv, 5.0)
    step_losses = []
    null_text_inversion(sd15_pipeline, inv, 5.0, inner_steps=8, on_step=lambda i, l: step_losses.append(l))
    _, cond = split_embeds(inv.embeds)
    schedule = EmbeddingSchedule([torch.cat([u, cond.embeds]) for u in inv.uncond])
    nti = _latent_mse(sd15_pipeline, inv, 5.0, hooks=[schedule])
    assert nti < 0.8 * guided, (nti, guided)  # measured 1.68 vs 2.49
    assert all(losses[-1] < losses[0] for losses in step_losses)
    assert all(p.grad is None for p in sd15_pipeline.unet.parameters())  # only the embeddings got gradients


def test_null_text_early_stop_counts_passes(sd15_pipeline, inversion):
    eager, never = PassCounter(), PassCounter()
    null_text_inversion(sd15_pipeline, inversion, 5.0, inner_steps=4, epsilon=1e3, counter=eager)
    null_text_inversion(sd15_pipeline, inversion, 5.0, inner_steps=4, epsilon=None, counter=never)
    assert (eager.backward, never.backward) == (STEPS, 4 * STEPS)


def test_null_text_needs_guidance(sd15_pipeline, inversion):
    with pytest.raises(ValueError, match="guidance > 1"):
        null_text_inversion(sd15_pipeline, inversion, 1.0)


# ------------------------------------------------------------------------------------------- alignment
def test_global_alignment_by_hand():
    assert global_alignment([0, 5, 6, 9], [0, 5, 7, 6, 9]) == [0, 1, -1, 2, 3]
    assert global_alignment([0, 5, 9], [0, 8, 9]) == [0, -1, 2]


def test_alignments(sd15_pipeline):
    tok = sd15_pipeline.tokenizer
    with pytest.raises(ValueError, match="--refine"):
        replace_alignment(tok, "a cat", "a fluffy cat", 77)
    ref = refine_alignment(tok, "a cat", "a red cat", 77)
    red, cat_src, cat_tgt = token_indices(tok, "a red cat", "red"), token_indices(tok, "a cat", "cat"), \
        token_indices(tok, "a red cat", "cat")
    assert ref.keep.nonzero()[:, 0].tolist() == red  # only "red" keeps its own attention
    assert all(ref.mapper[i, j] == 1 for i, j in zip(cat_src, cat_tgt)) and ref.mapper[:, red].sum() == 0
    assert torch.equal(ref.mapper.sum(0), 1 - ref.keep)


def _fake_call(q, k, v):
    class Call:
        pass

    call = Call()
    call.query, call.key, call.value, call.bias = q, k, v, None
    call.out = F.scaled_dot_product_attention(q, k, v)
    return call


def test_p2p_hook_equals_explicit_probabilities(sd15_pipeline):
    """Refine + reweight on SDPA == the reference's formula on materialised probabilities."""
    align = refine_alignment(sd15_pipeline.tokenizer, "a cat", "a red cat", 77)
    scales = torch.ones(77)
    scales[3] = 2.0
    align = align.reweighted(scales)
    hook = PromptToPromptHook([align])
    hook.num_steps = 10
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(4, 2, 16, 8, generator=g) for _ in range(3))
    k, v = torch.randn(4, 2, 77, 8, generator=g), torch.randn(4, 2, 77, 8, generator=g)
    layer = LayerInfo("x.attn2", "down", 0, "down1", 1, True, 2)
    ctx = AttentionContext(layer, 0, 900.0, 4, True, (4, 4))
    assert hook.is_active(ctx)
    out = hook.after_attention(ctx, _fake_call(q, k, v))
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)
    p_new = torch.einsum("hni,ij->hnj", probs[2], align.mapper) + probs[3] * align.keep
    assert torch.allclose(out[3], p_new @ v[3], atol=1e-5)
    assert torch.equal(out[:3], _fake_call(q, k, v).out[:3])  # uncond half and source untouched
    ctx_late = AttentionContext(layer, 8, 100.0, 4, True, (4, 4))
    assert not hook.is_active(ctx_late)  # step 8 of 10 >= 0.8 * 10


# ------------------------------------------------------------------------------------------- edit_image
@pytest.fixture(scope="module")
def nti_edits(sd15_pipeline, image):
    config = EditConfig(method="nti", num_inference_steps=STEPS, guidance_scale=5.0, nti_inner_steps=3)
    return (edit_image(sd15_pipeline, image, SOURCE, [SOURCE, SWAP], config), config)


def test_equal_prompts_return_the_reconstruction_and_a_swap_changes(nti_edits):
    result, _ = nti_edits
    rec = np.asarray(result.reconstruction, dtype=float)
    same, swapped = (np.asarray(im, dtype=float) for im in result.edits)
    assert np.abs(same - rec).max() <= 1  # equal prompts: the reconstruction (up to rounding)
    assert np.abs(swapped - rec).mean() > 3  # the known no-op failure of the anchor would give 0
    assert result.passes["unet_backward"] == 3 * STEPS
    assert set(result.word_maps) == {"red", "cat", "blue", "dog"}


def test_target_adds_the_learned_noun_offset_to_its_own_vector(sd15_pipeline):
    """DPL's learned vectors live in the text encoder's output space, where "cat" after "red" carries red: a target
    that swaps the adjective keeps its own ("old") "cat" plus what DPL learned, not the source's red vector."""
    from t2i_prompt.edit.image_edit import _batch_schedule, alignments_for

    pipe, target = sd15_pipeline, "a old cat and a blue dog"
    tokenizers = [pipe.tokenizer]
    positions = noun_positions_for(tokenizers, SOURCE, ("cat", "dog"))
    config = EditConfig(method="dpl", num_inference_steps=2)
    alignments = alignments_for(pipe.tokenizer, SOURCE, [SOURCE, target], config, 77)
    cond = split_embeds(pipe.encode_prompt([SOURCE], do_cfg=True))[1].embeds
    own = split_embeds(pipe.encode_prompt([SOURCE, target], do_cfg=True))[1].embeds
    g = torch.Generator().manual_seed(0)
    offsets, learned = [], []
    for _ in range(2):
        delta = torch.zeros_like(cond)
        for ps in positions.values():
            delta[0, ps] = torch.randn(len(ps), cond.shape[-1], generator=g)
        offsets.append(delta)
        learned.append(cond + delta)
    uncond = [torch.zeros_like(cond)] * 2
    schedule = _batch_schedule(uncond, learned, cond, pipe, SOURCE, [SOURCE, target], alignments, positions, 3.0)
    cat, dog = positions["cat"], positions["dog"]
    for step, rows in enumerate(schedule):
        assert rows.shape[0] == 6  # [uncond x 3; source, same, target]
        assert torch.equal(rows[3], learned[step][0])  # the source replays what was learned
        assert torch.allclose(rows[4], learned[step][0], atol=1e-6)  # equal prompts: the same row
        assert not torch.allclose(own[1, cat], cond[0, cat])  # the target's own "cat" differs (context)
        assert torch.allclose(rows[5, cat], own[1, cat] + offsets[step][0, cat], atol=1e-6)
        assert torch.allclose(rows[5, dog], own[1, dog] + offsets[step][0, dog], atol=1e-6)
        others = [i for i in range(77) if i not in cat + dog]
        assert torch.equal(rows[5, others], own[1, others])  # every other token is the target's own


def test_learned_embeddings_replay(tmp_path, sd15_pipeline, image, nti_edits):
    result, config = nti_edits
    paths = {p.name for p in save_edit(result, tmp_path)}
    assert {"reconstruction.png", "edit_0.png", "edit_1.png", "embeddings.safetensors", "attention_dog.png",
            "edit.json"} <= paths
    learned, meta = load_learned(tmp_path / "embeddings.safetensors")
    assert meta["method"] == "nti" and len(learned["uncond"]) == STEPS
    again = edit_image(sd15_pipeline, image, SOURCE, SWAP, config, learned=learned)
    assert again.passes["unet_backward"] == 0
    assert np.array_equal(np.asarray(again.reconstruction), np.asarray(result.reconstruction))
    record = json.loads((tmp_path / "edit.json").read_text())
    assert record["unet_passes"]["unet_backward"] == 3 * STEPS and record["settings"]["method"] == "nti"


def test_reweight_one_is_no_reweight_and_local_blend_keeps_outside(sd15_pipeline, image, inversion):
    base = EditConfig(method="ddim", num_inference_steps=STEPS, guidance_scale=1.0)
    plain = edit_image(sd15_pipeline, image, SOURCE, SWAP, base)
    ones = edit_image(sd15_pipeline, image, SOURCE, SWAP, dataclasses.replace(base, reweight={"tree": 1.0}))
    assert np.array_equal(np.asarray(plain.edits[0]), np.asarray(ones.edits[0]))
    # LocalBlend at the latent level: outside the mask the target latents equal the source's
    tok = sd15_pipeline.tokenizer
    dog, tree = token_indices(tok, SOURCE, "dog"), token_indices(tok, SWAP, "tree")
    blend = LocalBlend([dog, tree], threshold=0.9, start=0.0, resolution=8)
    out = ddim_pipeline(sd15_pipeline)([SOURCE, SWAP], latents=inversion.start().repeat(2, 1, 1, 1),
                                       num_inference_steps=STEPS, guidance_scale=1.0, output_type="latent",
                                       hooks=[blend])
    outside = ~blend.mask[1, 0]
    assert 0 < int(outside.sum()) < outside.numel()
    assert torch.equal(out.latents[1][:, outside], out.latents[0][:, outside])


def test_local_blend_mask_is_given_else_the_models_else_the_references():
    from types import SimpleNamespace

    from t2i_prompt.attention.prompt2prompt import model_blend_mask

    shapes_like = SimpleNamespace(defaults={"local_normalise": "minmax", "local_threshold": 0.5, "guidance_scale": 3.0})
    assert model_blend_mask(shapes_like) == ("minmax", 0.5)
    assert model_blend_mask(shapes_like, "max") == ("max", 0.5)  # each setting on its own
    assert model_blend_mask(shapes_like, None, 0.2) == ("minmax", 0.2)
    assert model_blend_mask(SimpleNamespace(defaults={})) == ("max", 0.3)  # SD: the reference notebook's mask
    with pytest.raises(ValueError, match="normalise 'otsu' in the model's t2i_sampling.json is not one of"):
        model_blend_mask(SimpleNamespace(defaults={"local_normalise": "otsu"}), "max")
    with pytest.raises(ValueError, match=r"LocalBlend threshold must be in \[0, 1\].*got 2.0"):
        model_blend_mask(shapes_like, None, 2.0)
    with pytest.raises(ValueError, match="take the model's with model_blend_mask"):
        LocalBlend([[1]], threshold=None)


def test_local_blend_minmax_masks_a_diffuse_map_by_hand():
    """A word at 0.6 of its peak everywhere but on a 2x2 block: max-normalised at 0.3 the mask is the whole image
    (the blend keeps nothing of the source); min-max at 0.5 it is the block dilated by the 3x3 max-pool."""
    from types import SimpleNamespace

    word_map = torch.full((6, 6), 0.6)
    word_map[1:3, 1:3] = 1.0
    dilated = torch.zeros(6, 6, dtype=torch.bool)
    dilated[0:4, 0:4] = True
    masks = {}
    for normalise, threshold in (("max", 0.3), ("minmax", 0.5)):
        blend = LocalBlend([[1], [1]], threshold=threshold, start=0.0, resolution=6, normalise=normalise)
        blend.num_steps = 1
        blend.store.maps = lambda: word_map.expand(2, 1, 6, 6)
        state = SimpleNamespace(latents=torch.stack([torch.zeros(4, 6, 6), torch.ones(4, 6, 6)]))
        blend.on_step_end(0, 999, state)
        masks[normalise] = blend.mask[1, 0]
        assert torch.equal(state.latents[1], masks[normalise].float().expand(4, 6, 6))  # source (0) outside the mask
    assert bool(masks["max"].all()) and torch.equal(masks["minmax"], dilated)
    with pytest.raises(ValueError, match="normalise 'otsu' is not one of"):
        LocalBlend([[1]], normalise="otsu")
    with pytest.raises(ValueError, match="LocalBlend normalise 'otsu' is not one of"):
        EditConfig(local_normalise="otsu")
    with pytest.raises(ValueError, match=r"LocalBlend threshold must be in \[0, 1\].*got 1.5"):
        EditConfig(local_threshold=1.5)


# ------------------------------------------------------------------------------------------- DPL
def test_kmeans_and_background_map_by_hand():
    x = torch.cat([torch.zeros(6, 3), torch.ones(6, 3) * 5, torch.ones(4, 3) * -5])
    labels = kmeans(x, 3)
    assert len(set(labels[:6].tolist())) == len(set(labels[6:12].tolist())) == len(set(labels[12:].tolist())) == 1
    assert len(set(labels.tolist())) == 3
    # 4x4 grid: left half attends to itself, right half to itself; the noun lives on the left
    attn = torch.zeros(16, 16)
    left = torch.tensor([c % 4 < 2 for c in range(16)])
    attn[left.nonzero()[:, 0][:, None], left.nonzero()[:, 0]] = 1.0 / 8
    attn[(~left).nonzero()[:, 0][:, None], (~left).nonzero()[:, 0]] = 1.0 / 8
    noun = left.float().reshape(1, 4, 4)
    bg, _ = background_map(attn, noun, clusters=2, threshold=0.2)
    assert torch.equal(bg, (~left).float().reshape(4, 4))
    losses = attention_losses(torch.stack([noun[0], 1 - noun[0]]), bg)
    assert float(losses["dj"]) == pytest.approx(0.0) and float(losses["at"]) == pytest.approx(0.0)
    assert float(losses["bg"]) == pytest.approx(0.5)  # mean of cos(left, right) = 0 and cos(right, right) = 1


def _ring_and_centre(side: int = 6):
    """Self-attention of a side x side grid made of two blocks (the centre 2x2, the ring around it), each cell
    attending uniformly to its own block; returns (attention (N, N), centre mask (side, side))."""
    centre = torch.zeros(side, side, dtype=torch.bool)
    centre[side // 2 - 1:side // 2 + 1, side // 2 - 1:side // 2 + 1] = True
    flat = centre.flatten()
    attn = (flat[:, None] == flat[None, :]).float()
    return attn / attn.sum(1, keepdim=True), centre


def test_boundary_connectivity_by_hand():
    _, centre = _ring_and_centre()
    scores = boundary_connectivity(centre.long())
    assert scores[1] == 0.0  # the centre never touches the border
    assert scores[0] == pytest.approx(20 / math.sqrt(32))  # ring: 20 border cells of 32


def test_background_rules_on_diffuse_attention():
    """The noun attends everywhere (0.7 of its peak off the object): the paper's cross rule finds no background;
    the boundary rule finds the ring, and the cross rule does once the threshold is raised above 0.7."""
    attn, centre = _ring_and_centre()
    noun = torch.where(centre, 1.0, 0.7)[None]
    bg, _ = background_map(attn, noun, clusters=2, threshold=0.2, method="cross")
    assert bg is None
    bg, _ = background_map(attn, noun, clusters=2, method="boundary", boundary=2.0)
    assert torch.equal(bg, (~centre).float())
    assert background_map(attn, noun, clusters=2, method="boundary", boundary=4.0)[0] is None  # 3.54 < 4
    bg, _ = background_map(attn, noun, clusters=2, threshold=0.75, method="cross")
    assert torch.equal(bg, (~centre).float())
    with pytest.raises(ValueError, match="bg_method 'kmeans' is not one of"):
        DPLConfig(bg_method="kmeans")
    with pytest.raises(ValueError, match="background method 'x'"):
        background_map(attn, noun, method="x")


def test_dpl_fast_preset_within_twice_nti_passes(sd15_pipeline, image):
    """Worst case (random weights: no early stop fires): NTI 10 null steps per step; DPL fast at most 10 attention
    + 10 null steps, so its forward+backward passes stay under 2x NTI's."""
    fast = DPL_PRESETS["fast"]
    assert (fast.attn_inner_steps, fast.null_inner_steps, fast.null_early_stop) == (10, 10, True)
    passes = {}
    for method in ("nti", "dpl"):
        config = EditConfig(method=method, num_inference_steps=2, guidance_scale=5.0, nouns=("cat", "dog"),
                            nti_epsilon=None, dpl=preset("fast", null_epsilon=-1.0))
        passes[method] = edit_image(sd15_pipeline, image, SOURCE, SWAP, config).passes
    # NTI: inversion 2 + per step (cond 1 + 10 null + 1) + edit 2; DPL adds 10 attention passes per step
    assert passes["nti"] == {"unet_forward": 2 + 2 * 12 + 2, "unet_backward": 2 * 10}
    assert passes["dpl"] == {"unet_forward": 2 + 2 * (10 + 1 + 10 + 1) + 2, "unet_backward": 2 * 20}
    total = {m: p["unet_forward"] + p["unet_backward"] for m, p in passes.items()}
    assert total["dpl"] <= 2 * total["nti"]


def test_dpl_losses_fall_over_inner_steps(sd15_pipeline, image):
    config = EditConfig(method="dpl", num_inference_steps=3, guidance_scale=5.0, nouns=("cat", "dog"),
                        dpl=preset("fast", attn_inner_steps=4, null_inner_steps=2, lr=1e-2))
    result = edit_image(sd15_pipeline, image, SOURCE, SWAP, config)
    history = result.losses["attention"]
    assert len(history) == 3 and all(len(h) == 4 for h in history)
    assert all(h[-1]["total"] < h[0]["total"] for h in history)
    learned = result.learned["cond"]
    assert not torch.equal(learned[0], learned[-1])
    assert result.passes["unet_backward"] == 3 * (4 + 2)  # no early stop here: 4 attention + 2 null per step


def test_dpl_softmax_over_nouns_splits_every_pixel_between_the_nouns(sd15_pipeline, inversion):
    """``softmax_over="nouns"``: the nouns' maps sum to 1 at every pixel (the Gaussian smoothing keeps sums); over the
    whole prompt the other tokens take a share."""
    pipe = ddim_pipeline(sd15_pipeline)
    positions = noun_positions_for([pipe.tokenizer], SOURCE, ("cat", "dog"))
    latent = inversion.start()
    res = attention_resolution(pipe.unet, latent.shape[-1], 16)
    cond = split_embeds(inversion.embeds)[1]
    sums = {}
    for over in ("prompt", "nouns", "none"):
        mapper = _NounMapper(pipe, inversion, positions, preset("fast", softmax_over=over, attn_res=res))
        with mapper.controller.installed(pipe.unet), torch.no_grad():
            mapper.controller.set_latent_size(*latent.shape[-2:])
            maps, _ = mapper.maps(latent, inversion.timesteps[0], 0, cond)
        assert maps.shape == (2, res, res)
        sums[over] = maps.sum(0)
        maps_none = maps
    assert torch.allclose(sums["nouns"], torch.ones_like(sums["nouns"]), atol=1e-5)
    assert float(sums["prompt"].max()) < 0.999
    # "none": each noun's own attention probability (the store's map, a sum over the noun's tokens, over their
    # number), smoothed, with no re-softmax
    tokens_per_noun = torch.tensor([float(len(ps)) for ps in positions.values()])[:, None, None]
    store = AttentionStore(resolution=res)
    store.set_token_ids([list(positions.values())])
    with AttentionController([store], do_cfg=False).installed(pipe.unet) as controller, torch.no_grad():
        controller.set_latent_size(*latent.shape[-2:])
        controller.on_step_begin(0, inversion.timesteps[0])
        pipe.predict_noise(latent, inversion.timesteps[0], cond, 1.0, inversion.scheduler)
    assert torch.allclose(maps_none, smooth(store.maps()[0] / tokens_per_noun, preset("fast")), atol=1e-6)
    with pytest.raises(ValueError, match="softmax_over 'eos' is not one of"):
        DPLConfig(softmax_over="eos")


def test_dpl_early_stop_and_presets(sd15_pipeline, image):
    assert DPL_PRESETS["release"].attn_inner_steps == 21 and DPL_PRESETS["argparse"].lambda_at == 0.0
    assert DPL_PRESETS["argparse"].beta_bg == 0.3 and DPL_PRESETS["release"].beta_bg == 0.7
    easy = preset("fast", beta_at=10.0, beta_dj=10.0, beta_bg=10.0, null_inner_steps=1)
    config = EditConfig(method="dpl", num_inference_steps=3, guidance_scale=5.0, nouns=("cat", "dog"), dpl=easy)
    result = edit_image(sd15_pipeline, image, SOURCE, SWAP, config)
    assert [len(h) for h in result.losses["attention"]] == [1, 1, 1]  # thresholds met at once: no backward
    assert result.passes["unet_backward"] == 3
    # inversion 3 + per step (1 attention pass, reused as the cond prediction, 1 null + 1 uncond) + edit 3
    assert result.passes["unet_forward"] == 3 + 3 * 3 + 3


def test_nan_stops_with_learned_steps_and_restores_processors(sd15_pipeline, image):
    originals = dict(sd15_pipeline.unet.attn_processors)
    config = EditConfig(method="dpl", num_inference_steps=3, guidance_scale=5.0, nouns=("cat", "dog"),
                        dpl=preset("fast", lr=1e30, attn_inner_steps=3, null_inner_steps=1))
    with pytest.raises(OptimisationDiverged, match="lower lr") as info:
        edit_image(sd15_pipeline, image, SOURCE, SWAP, config)
    assert isinstance(info.value.learned["cond"], list)
    assert all(sd15_pipeline.unet.attn_processors[k] is p for k, p in originals.items())


# ------------------------------------------------------------------------------------------- SDXL + shapes
def test_sdxl_edit(sdxl_pipeline, image):
    config = EditConfig(method="nti", num_inference_steps=3, guidance_scale=5.0, nti_inner_steps=2)
    result = edit_image(sdxl_pipeline, image, SOURCE, [SOURCE, SWAP], config)
    rec = np.asarray(result.reconstruction, dtype=float)
    assert np.abs(np.asarray(result.edits[0], dtype=float) - rec).max() <= 1
    assert np.abs(np.asarray(result.edits[1], dtype=float) - rec).mean() > 1
    assert result.passes["unet_backward"] == 6


def test_shapes_swap_changes_the_object_not_the_rest():
    """The shapes world: a colour swap recolours the swapped object, the other object and background stay."""
    from t2i_prompt.generate import T2IPipeline
    from t2i_prompt.shapes.detector import detect_objects
    from t2i_prompt.shapes.grammar import ObjectSpec, Scene, canonical_caption
    from t2i_prompt.shapes.render import layout_slots, render_scene, shape_mask

    pipe = T2IPipeline.from_pretrained("shapes", device="cpu", dtype=torch.float32)
    scene = Scene((ObjectSpec("red", "circle"), ObjectSpec("blue", "square")), "left", kind="relation")
    source = canonical_caption(scene)
    target = source.replace("blue square", "green square")
    mask = shape_mask("square", *[v * 32 for v in layout_slots(scene)[1]])
    result = edit_image(pipe, Image.fromarray(render_scene(scene)), source, target,
                        EditConfig(method="ddim", num_inference_steps=10, guidance_scale=1.0))
    change = np.abs(np.asarray(result.edits[0], float) - np.asarray(result.reconstruction, float)).mean(-1)
    assert change[mask].mean() > 20 * change[~mask].mean()  # measured 93 vs 0.6 at 20 steps
    assert result.metrics["reconstruction_psnr"] > 25
    found = [(o.color, o.shape) for o in detect_objects(result.edits[0])]
    assert found == [("red", "circle"), ("green", "square")]


# ------------------------------------------------------------------------------------------- CLI
def test_cli_choices_mirror_the_library():
    from t2i_prompt.cli import edit as cli_edit
    from t2i_prompt.edit.image_edit import METHODS

    from t2i_prompt.attention.prompt2prompt import BLEND_NORMALISE

    assert cli_edit.METHODS == METHODS and cli_edit.DPL_PRESET_NAMES == tuple(sorted(DPL_PRESETS))
    assert cli_edit.DPL_SOFTMAX_OVER == SOFTMAX_OVER
    assert cli_edit.BLEND_NORMALISE == BLEND_NORMALISE


def test_cli_edit_writes_outputs(tmp_path, image, capsys):
    path = tmp_path / "in.png"
    image.resize((40, 40)).save(path)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="resized to 32x32"):
        code, err = run_cli(["edit", str(path), "--model", "tiny:sd15", "--source", SOURCE, "--target", SWAP,
                             "--method", "ddim", "--steps", "3", "--guidance", "1", "--local", "dog", "tree",
                             "--local-normalise", "minmax", "--local-threshold", "0.5",
                             "--out", str(out), "--no-progress"], capsys)
    assert (code, err) == (0, [])
    record = json.loads((out / "edit.json").read_text())
    assert record["settings"]["local"] == ["dog", "tree"] and record["unet_passes"]["unet_forward"] == 6
    assert (record["settings"]["local_normalise"], record["settings"]["local_threshold"]) == ("minmax", 0.5)
    assert Image.open(out / "edit.png").size == (32, 32)


@pytest.mark.parametrize("extra, message", [
    (["--target", "a red cat and a blue small dog"], "--refine"),
    (["--target", SWAP, "--reweight", "cat=2x"], "WORD=SCALE"),
    (["--target", SWAP, "--reweight", "dog=2"], "--reweight word 'dog'"),
    (["--target", SWAP, "--local", "horse"], "--local word 'horse'"),
    (["--target", SWAP, "--nouns", "horse"], "--nouns word 'horse'"),
    (["--target", SWAP, "--method", "nti", "--guidance", "1"], "needs guidance > 1"),
])
def test_cli_bad_input(tmp_path, image, capsys, extra, message):
    path = tmp_path / "in.png"
    image.save(path)
    argv = ["edit", str(path), "--model", "tiny:sd15", "--source", SOURCE, "--steps", "2", "--out", str(tmp_path / "o")]
    code, err = run_cli(argv + extra, capsys)
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_cli_bad_image(tmp_path, capsys):
    (tmp_path / "note.png").write_text("not an image")
    for name, message in (("missing.png", "IMAGE file not found"), ("note.png", "not a readable image")):
        code, err = run_cli(["edit", str(tmp_path / name), "--source", SOURCE, "--target", SWAP], capsys)
        assert code == 2 and message in err[0], err


def test_leakage_measures_by_hand():
    from t2i_prompt.edit.leakage import attention_mask, leakage_share, mask_iou

    mask = np.zeros((4, 4), dtype=bool)
    mask[:, :2] = True
    attention = np.zeros((4, 4))
    attention[:, 0] = 3.0
    attention[:, 3] = 1.0
    assert leakage_share(attention, mask) == pytest.approx(0.25)
    assert mask_iou(attention_mask(attention, (4, 4)), mask) == pytest.approx(0.5)  # column 0 of columns 0-1
    assert mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0


def test_attention_tokens_pixel_winners_and_the_shapes_diagnosis(tmp_path):
    """By hand: the token with the largest map wins a pixel. On the shipped shapes model a function word wins ~every
    pixel and the nouns none: the README's reason why DPL's softmax over the prompt saturates."""
    tokens = eval_script("attention_tokens")
    maps = torch.tensor([[[0.5, 0.4], [0.1, 0.1]], [[0.2, 0.3], [0.3, 0.2]], [[0.3, 0.3], [0.6, 0.7]]])
    assert tokens.pixel_winners(maps) == [0.5, 0.0, 0.5]
    args = tokens.make_parser().parse_args(["--scenes", "1", "--threads", "1", "--out", str(tmp_path / "t.json")])
    result = tokens.main(args)
    row = json.loads((tmp_path / "t.json").read_text())["results"]["rows"][0]
    assert row["prompt"] == "a green square to the left of a red triangle"
    assert [t for t, n in zip(row["tokens"], row["noun"]) if n] == ["square</w>", "tri", "angle</w>"]
    assert sum(row["pixels_won"]) == pytest.approx(1.0)
    assert result["summary"]["nouns_pixel_share"] < 0.05 and row["top_token"] not in ("square</w>", "tri")


def test_edit_leakage_takes_the_presets_steps_unless_given():
    """``--dpl-preset release`` runs the release recipe (21 attention, 51 null steps), not the script's own numbers."""
    from t2i_prompt.edit.dpl import DPL_PRESETS

    script = eval_script("edit_leakage")
    release = script.dpl_config(script.make_parser().parse_args(["--dpl-preset", "release"]))
    assert (release.attn_inner_steps, release.null_inner_steps, release.lr) == (
        DPL_PRESETS["release"].attn_inner_steps, DPL_PRESETS["release"].null_inner_steps, DPL_PRESETS["release"].lr)
    assert (release.attn_inner_steps, release.null_inner_steps) == (21, 51)
    given = script.dpl_config(script.make_parser().parse_args(["--dpl-attn-steps", "3", "--dpl-lr", "0.01",
                                                               "--dpl-softmax-over", "nouns"]))
    assert (given.attn_inner_steps, given.null_inner_steps, given.lr, given.softmax_over) == (3, 10, 0.01, "nouns")
    assert given.null_early_stop  # the rest is the fast preset's


def test_edit_leakage_local_without_settings_runs_and_records_the_models_mask(tmp_path):
    """``--local`` with no mask flags uses the model's mask (shipped shapes: minmax 0.5) and the file says so."""
    script = eval_script("edit_leakage")
    out = tmp_path / "el.json"
    args = script.make_parser().parse_args(["--scenes", "1", "--steps", "2", "--methods", "ddim", "--local",
                                            "--threads", "1", "--out", str(out)])
    assert (args.local_normalise, args.local_threshold) == (None, None)
    script.main(args)
    saved = json.loads(out.read_text())
    assert (saved["args"]["local_normalise"], saved["args"]["local_threshold"]) == ("minmax", 0.5)
    row = saved["results"]["rows"]["ddim"][0]
    assert row["scene"] != row["target"] and 0.0 <= row["change_outside"] <= 255.0


def _leakage_file(path, seed, rows, lr=3e-3):
    args = {"seed": seed, "out": str(path), "threads": 2, "methods": ["nti", "dpl"], "dpl_lr": lr, "scenes": len(rows)}
    path.write_text(json.dumps({"args": args, "results": {"rows": {"nti": rows, "dpl": rows[::-1]}}}))
    return str(path)


def test_edit_leakage_pools_files_of_other_seeds_and_refuses_other_settings(tmp_path):
    """``--pool`` summarises the scenes of several seeds as one set; files of other settings or a repeated seed fail."""
    script = eval_script("edit_leakage")

    def row(iou, leak):
        return {"iou": [iou, iou], "leakage": [leak, leak], "psnr": 20.0, "internal_ok": True, "external_ok": True,
                "change_outside": 1.0, "passes": {"unet_forward": 10, "unet_backward": 5}, "seconds": 1.0,
                "background_iou": None}

    first = [row(0.2, 0.5), row(0.4, 0.3)]
    second = [row(0.6, 0.1)]
    a = _leakage_file(tmp_path / "a.json", 1, first)
    b = _leakage_file(tmp_path / "b.json", 2, second)
    out = tmp_path / "pooled.json"
    pooled = script.main(script.make_parser().parse_args(["--pool", a, b, "--out", str(out)]))
    assert (pooled["scenes"], pooled["seeds"]) == (3, [1, 2])
    assert pooled["summary"]["nti"]["iou"]["mean"] == pytest.approx(0.4)
    # dpl's rows are each file's reversed, so the paired difference is the pooled per-scene one: (0.4-0.2, 0.2-0.4, 0)
    assert pooled["summary"]["dpl_minus_nti"]["iou"]["mean"] == pytest.approx(0.0)
    assert json.loads(out.read_text())["results"]["scenes"] == 3
    with pytest.raises(ValueError, match="drop --dpl-lr, --guidance, --seed"):
        script.main(script.make_parser().parse_args(["--pool", a, b, "--guidance", "5", "--dpl-lr", "1e-2", "--seed", "4"]))
    c = _leakage_file(tmp_path / "c.json", 3, second, lr=1e-2)
    with pytest.raises(ValueError, match="dpl_lr differ"):
        script.pool_results([a, c])
    with pytest.raises(ValueError, match="seed 1 is already pooled"):
        script.pool_results([a, a])
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(ValueError, match="text.json: not JSON"):
        script.pool_results([a, str(tmp_path / "text.json")])
    (tmp_path / "other.json").write_text(json.dumps({"summary": {}}))
    with pytest.raises(ValueError, match="not an edit_leakage results file"):
        script.pool_results([a, str(tmp_path / "other.json")])
