"""Rewards: CLIP-score variants, LAION aesthetic layout, shared image pass, Promptist composite, VP-Score, MiniLM."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image

from t2i_prompt.models.loading import resolve_model_path
from t2i_prompt.rewards import (
    AestheticMLP,
    AestheticReward,
    CLIPEmbedder,
    CLIPScore,
    CompositeReward,
    PromptistReward,
    Reward,
    TextSimilarity,
    VPScore,
    load_images,
    save_predictor,
)

PROMPTS = ["a red circle", "a blue square above a green star", "a yellow tree", "a purple car", "a cat", "a dog"]


class NotATensor:
    """Any custom class makes a pickle that torch.load(weights_only=True) must refuse."""


def _images(n=6, size=48):
    """Deterministic, distinct RGB images (gradients in different colours)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        arr = (torch.rand(size, size + 8 * i, 3, generator=g) * 255).to(torch.uint8).numpy()
        out.append(Image.fromarray(arr))
    return out


@pytest.fixture(scope="module")
def clip():
    return CLIPEmbedder.from_pretrained("tiny:clip")


@pytest.fixture(scope="module")
def hand_cos(clip):
    """Cosines computed independently with the model's own feature methods and the saved image processor."""
    from transformers import AutoImageProcessor

    images = _images()
    proc = AutoImageProcessor.from_pretrained(str(resolve_model_path("tiny:clip")))
    with torch.no_grad():
        pix = proc(images=images, return_tensors="pt")["pixel_values"]
        img = clip.model.get_image_features(pixel_values=pix).pooler_output

        def text(prompts):
            tok = clip.tokenizer(prompts, padding=True, return_tensors="pt")
            return clip.model.get_text_features(**tok).pooler_output

        def cos(t):
            return torch.nn.functional.cosine_similarity(t, img, dim=-1)

        return {"plain": cos(text(PROMPTS)), "hessel": cos(text(["A photo depicts " + p for p in PROMPTS]))}


def test_clip_score_variants_match_hand_computation(clip, hand_cos):
    images = _images()
    raw = CLIPScore(clip, scale=1, clamp=False).score(PROMPTS, images)
    torch.testing.assert_close(raw, hand_cos["plain"], atol=1e-5, rtol=0)
    assert (hand_cos["plain"] < 0).any() and (hand_cos["plain"] > 0).any()  # the clamp below is exercised
    tm = CLIPScore(clip, scale=100, clamp=True).score(PROMPTS, images)
    torch.testing.assert_close(tm, 100 * hand_cos["plain"].clamp_min(0), atol=1e-3, rtol=0)
    hessel = CLIPScore(clip, scale=2.5, clamp=True, prefix="A photo depicts ").score(PROMPTS, images)
    torch.testing.assert_close(hessel, 2.5 * hand_cos["hessel"].clamp_min(0), atol=1e-5, rtol=0)
    assert not torch.allclose(hand_cos["hessel"], hand_cos["plain"])  # the prefix reaches the text tower


def test_clip_score_protocol_and_presets(clip):
    s = CLIPScore(clip, scale=2.5, clamp=True)
    assert isinstance(s, Reward) and s.higher_is_better and s.value_range == (0.0, 2.5)
    assert CLIPScore(clip, scale=100, clamp=False).value_range == (-100.0, 100.0)
    hessel = CLIPScore.from_pretrained("tiny:clip", preset="hessel")
    assert (hessel.scale, hessel.clamp, hessel.prefix) == (2.5, True, "A photo depicts ")
    with pytest.raises(ValueError, match="scale must be one of"):
        CLIPScore(clip, scale=3)
    with pytest.raises(ValueError, match="unknown CLIP score preset"):
        CLIPScore.from_pretrained("tiny:clip", preset="nope")


def test_bad_pairs_and_long_prompt_warn(clip):
    s = CLIPScore(clip)
    images = _images(2)
    with pytest.raises(ValueError, match="got 1 prompt\\(s\\) for 2 image\\(s\\)"):
        s.score(["a cat"], images)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        s.score(["a cat", "   "], images)
    long = " ".join(["red circle"] * 60)
    with pytest.warns(UserWarning, match="over the 77-token window"):
        out = s.score([long, "a cat"], images)
    assert out.shape == (2,)


def test_load_images_names_bad_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    good = tmp_path / "ok.png"
    _images(1)[0].save(good)
    assert load_images([good])[0].mode == "RGB"
    with pytest.raises(ValueError, match="notes.png is not a readable image"):
        load_images([good, bad])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_images([tmp_path / "missing.png"])


def test_aesthetic_mlp_matches_official_key_layout():
    state = AestheticMLP(768).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "layers.0.weight": (1024, 768), "layers.0.bias": (1024,),
        "layers.2.weight": (128, 1024), "layers.2.bias": (128,),
        "layers.4.weight": (64, 128), "layers.4.bias": (64,),
        "layers.6.weight": (16, 64), "layers.6.bias": (16,),
        "layers.7.weight": (1, 16), "layers.7.bias": (1,),
    }
    assert list(state) == [f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias")]
    # no activations: the MLP is affine, so f(a) + f(b) - f(0) == f(a + b)
    mlp = AestheticMLP(768).eval()
    a, b, z = torch.randn(768), torch.randn(768), torch.zeros(768)
    torch.testing.assert_close(mlp(a) + mlp(b) - mlp(z), mlp(a + b), atol=1e-4, rtol=0)


def test_aesthetic_loads_official_pth_and_scores_normalised_embedding(clip, tmp_path):
    torch.manual_seed(1)
    mlp = AestheticMLP(clip.embed_dim)
    torch.save(mlp.state_dict(), tmp_path / "sac+logos+ava1-l14-linearMSE.pth")
    reward = AestheticReward.from_pretrained(str(tmp_path / "sac+logos+ava1-l14-linearMSE.pth"), clip=clip)
    images = _images(3)
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(str(resolve_model_path("tiny:clip")))
    with torch.no_grad():
        emb = clip.model.get_image_features(**proc(images=images, return_tensors="pt")).pooler_output
        expected = mlp.eval()(emb / emb.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(reward.score(["x"] * 3, images), expected, atol=1e-5, rtol=0)
    assert reward.higher_is_better and reward.value_range == (1.0, 10.0)


def test_aesthetic_refuses_code_pickles_and_wrong_layouts(clip, tmp_path):
    # a pickle needing a custom class is refused by weights_only=True
    torch.save({"layers.0.weight": torch.zeros(2, 2), "x": NotATensor()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="Refusing to load"):
        AestheticReward.from_pretrained(str(tmp_path / "evil.pth"), clip=clip)
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="missing"):
        AestheticReward.from_pretrained(str(tmp_path / "other.pth"), clip=clip)
    with pytest.raises(ValueError, match="expects 768-d embeddings"):
        AestheticReward(clip, AestheticMLP(768))


def test_quality_predictor_layout_round_trips(clip, tmp_path):
    torch.manual_seed(2)
    mlp = AestheticMLP(clip.embed_dim).eval()
    save_predictor(mlp, tmp_path / "quality", clip="tiny:clip")
    assert json.loads((tmp_path / "quality" / "config.json").read_text()) == {"embed_dim": 32, "clip": "tiny:clip"}
    reward = AestheticReward.from_pretrained(str(tmp_path / "quality"))
    assert reward.clip is CLIPEmbedder.shared("tiny:clip")  # the config's clip name, shared embedder
    emb = reward.clip.encode_images(_images(2))
    with torch.no_grad():
        torch.testing.assert_close(reward.score(["a", "b"], _images(2)), mlp(emb))


def _count_vision_calls(embedder, monkeypatch):
    calls = {"n": 0, "images": 0}
    original = embedder.model.vision_model.forward

    def counted(*args, **kwargs):
        calls["n"] += 1
        calls["images"] += kwargs["pixel_values"].shape[0]
        return original(*args, **kwargs)

    monkeypatch.setattr(embedder.model.vision_model, "forward", counted)
    return calls


def test_shared_embedding_runs_vision_tower_once(clip, monkeypatch):
    torch.manual_seed(3)
    mlp = AestheticMLP(clip.embed_dim).eval()
    images = _images(4)
    prompts = PROMPTS[:4]
    shared = CLIPEmbedder(clip.model, clip.tokenizer, clip.image_processor)
    calls = _count_vision_calls(shared, monkeypatch)
    composite = CompositeReward({"clip": (CLIPScore(shared, scale=2.5), 1.0), "aes": (AestheticReward(shared, mlp), 0.5)})
    terms = composite.score_terms(prompts, images)
    total = composite.score(prompts, images)
    assert calls == {"n": 1, "images": 4}  # one batched pass for both rewards, and the second score() hits the cache

    separate_a = CLIPEmbedder(clip.model, clip.tokenizer, clip.image_processor, cache_size=0)
    separate_b = CLIPEmbedder(clip.model, clip.tokenizer, clip.image_processor, cache_size=0)
    clip_sep = CLIPScore(separate_a, scale=2.5).score(prompts, images)
    aes_sep = AestheticReward(separate_b, mlp).score(prompts, images)
    assert calls["n"] == 3  # the uncached path runs the tower once per reward
    torch.testing.assert_close(terms["clip"], clip_sep, atol=1e-6, rtol=0)
    torch.testing.assert_close(terms["aes"], aes_sep, atol=1e-6, rtol=0)
    torch.testing.assert_close(total, clip_sep + 0.5 * aes_sep, atol=1e-6, rtol=0)
    # the cache is keyed by content: an equal copy of an image is a hit, an edited one is a miss
    shared.encode_images([images[0].copy()])
    assert calls["n"] == 3
    edited = images[0].copy()
    edited.putpixel((0, 0), (1, 2, 3))
    shared.encode_images([edited])
    assert calls["n"] == 4


def test_promptist_reward_matches_hand_formula(clip, hand_cos):
    torch.manual_seed(4)
    mlp = AestheticMLP(clip.embed_dim).eval()
    images = _images()
    refined, plain = images[:3], images[3:]
    reward = PromptistReward(CLIPScore(clip, scale=1, clamp=True), AestheticReward(clip, mlp))
    # the text is the plain prompt x; the images are those of the rewrite y
    x = PROMPTS[:3]
    plain_groups = [[plain[0], plain[1]], [plain[2]], [plain[0]]]
    terms = reward.score_terms(x, refined, plain_groups)
    cos = hand_cos["plain"][:3]
    rel = torch.minimum(20 * cos.clamp_min(0) - 5.6, torch.zeros(3))
    with torch.no_grad():
        g = mlp(clip.encode_images(images))
    baseline = torch.stack([(g[3] + g[4]) / 2, g[5], g[3]])
    torch.testing.assert_close(terms["rel"], rel, atol=1e-5, rtol=0)
    torch.testing.assert_close(terms["aes"], g[:3] - baseline, atol=1e-5, rtol=0)
    torch.testing.assert_close(reward.score(x, refined, plain_groups), rel + g[:3] - baseline, atol=1e-5, rtol=0)
    # saturation: relevance is exactly 0 once cos >= 0.28
    from t2i_prompt.rewards import promptist_relevance

    assert promptist_relevance(torch.tensor([0.5, 0.28, 0.1, -0.3])).tolist() == pytest.approx([0.0, 0.0, -3.6, -5.6])
    with pytest.raises(ValueError, match="raw cosine"):
        PromptistReward(CLIPScore(clip, scale=100), AestheticReward(clip, mlp))


def test_vp_score_imagereward_layout(tmp_path):
    src = resolve_model_path("tiny:blip")
    vp = VPScore.from_pretrained("tiny:blip")
    images = _images(3)
    prompts = ["a red circle", "a blue square", "a red circle"]
    s = vp.score(prompts, images)
    assert s.shape == (3,) and s.dtype == torch.float32
    assert vp.enc_token_id == vp.processor.tokenizer.convert_tokens_to_ids("[ENC]")
    torch.testing.assert_close(vp.score(prompts, images), s)  # deterministic (dropout off)
    assert not torch.allclose(vp.score(["a purple car"] * 3, images), s)  # the text is used
    # normalisation from score_head.json: (r - mean) / std
    copy = tmp_path / "vp"
    shutil.copytree(src, copy)
    meta = json.loads((copy / "score_head.json").read_text())
    meta.update(mean=1.0, std=2.0)
    (copy / "score_head.json").write_text(json.dumps(meta))
    torch.testing.assert_close(VPScore.from_pretrained(str(copy)).score(prompts, images), (s - 1.0) / 2.0)
    (copy / "score_head.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no score_head.safetensors"):
        VPScore.from_pretrained(str(copy))


@pytest.fixture(scope="module")
def minilm():
    return TextSimilarity.from_pretrained()


def test_minilm_ranks_paraphrase_above_unrelated(minilm):
    anchor = "a small cat sleeping on a sofa"
    sims = minilm.similarity([anchor, anchor], ["a kitten napping on a couch", "stock prices fell sharply on monday"])
    assert sims[0] > sims[1] + 0.3
    assert minilm.embed(["a"]).shape == (1, 384)
    torch.testing.assert_close(minilm.similarity([anchor], [anchor]), torch.ones(1), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="equal length"):
        minilm.similarity([anchor], [anchor, anchor])


def test_text_similarity_with_clip_text_tower(clip):
    sim = TextSimilarity.from_pretrained("tiny:clip")
    a, b = ["a red circle", "a blue square"], ["a red circle", "a green star"]
    expected = (clip.encode_texts(a) * clip.encode_texts(b)).sum(-1)
    torch.testing.assert_close(sim.similarity(a, b), expected)
    assert sim.similarity(a, b)[0].item() == pytest.approx(1.0, abs=1e-5)
