"""Held-out casual templates/synonyms of the shapes grammar, copy-bias noise, and the object-drop (drift) counter."""

import random

import pytest

from t2i_prompt.shapes import copy_noise, grammar, world
from t2i_prompt.shapes.copy_noise import _KNOWN, add_copy_noise, pseudo_word
from t2i_prompt.shapes.drift import object_drop, object_drop_rate
from t2i_prompt.shapes.evaluate import drops_objects
from t2i_prompt.shapes.grammar import HELDOUT_SYNONYMS, ObjectSpec, Scene, parse_prompt
from t2i_prompt.shapes.rewrite_eval import eval_prompts, exact_scene, heldout_pieces, score_rewrites
from t2i_prompt.shapes.train_scorers import rewriter_pairs


# ------------------------------------------------------------------------------------------------ drift
@pytest.mark.parametrize("original, rewrite, dropped", [
    ("a red circle left of a blue square", "a red circle", 1),
    ("a red circle left of a blue square", "a red circle to the left of a blue square", 0),
    ("a red circle left of a blue square", "", 2),
    ("three red squares", "a red square", 2),
    ("three red squares", "two red squares", 1),
    ("a red square", "three red squares", 0),  # adding objects is not a drop (max(0, ...))
    ("a pair of scarlet balls", "two red circles", 0),
    ("crimson dot and navy block, block on the left", "a red circle", 1),
    ("please draw a navy box with a crimson ball on its left", "a blue square", 1),
    ("a red circle beneath a blue square", "a red circle beneath", 1),
])
def test_object_drop_hand_cases(original, rewrite, dropped):
    assert object_drop(original, rewrite) == dropped
    assert drops_objects(original, rewrite) == (dropped > 0)


def test_object_drop_rate_is_the_fraction_of_rewrites_that_drop():
    originals = ["a red circle left of a blue square", "three red squares", "a red square", "two blue dots"]
    rewrites = ["a red circle", "three red squares", "a red square", "a blue circle"]
    assert object_drop_rate(originals, rewrites) == 0.5
    with pytest.raises(ValueError, match="one rewrite per original"):
        object_drop_rate(originals, rewrites[:2])
    with pytest.raises(ValueError, match="at least one"):
        object_drop_rate([], [])


# ----------------------------------------------------------------------------------------------- splits
def test_split_all_is_the_unchanged_generator():
    """Pinned outputs of the generator before the splits existed (same rng, same text)."""
    rng = random.Random(7)
    got = []
    for _ in range(4):
        scene = grammar.random_scene(rng)
        got.append(grammar.casual_caption(scene, rng))
    assert got == ["two navy circles, not filled in simple", "show me a red cube, outlined",
                   "draw a green dot, not filled in", "i want an emerald ball below a lemon square, solid for my kid"]
    with pytest.raises(ValueError, match="unknown split"):
        grammar.casual_caption(Scene((ObjectSpec("red", "circle"),)), rng, split="test")


@pytest.fixture(scope="module")
def train_pairs():
    return world.caption_pairs(4000, seed=0, split="train")


def test_heldout_pieces_never_occur_in_training_pairs(train_pairs):
    words = {w.strip(",") for casual, _, _ in train_pairs for w in casual.split()}
    for kind in ("shapes", "colors"):
        assert not words & set(HELDOUT_SYNONYMS[kind])
    for casual, canonical, _ in train_pairs:
        assert heldout_pieces(casual) == [], casual
        assert " on its " not in casual and not casual.endswith("for my kid")
        assert not casual.startswith(("can you make", "an image with"))
    # the same pairs through the SFT formatter and through copy noise stay free of held-out pieces
    assert all(heldout_pieces(p["prompt"]) == [] for p in rewriter_pairs(500, seed=0, split="train"))
    rng = random.Random(0)
    assert all(heldout_pieces(add_copy_noise(c, t, rng)[0]) == [] for c, t, _ in train_pairs[:1000])
    # ... while the full generator does produce them (the check above is not vacuous)
    assert sum(bool(heldout_pieces(c)) for c, _, _ in world.caption_pairs(500, seed=0)) > 100


@pytest.mark.parametrize("name, kinds", [
    ("heldout_templates", {"prefixes", "suffixes", "relation_frames"}),
    ("heldout_synonyms", {"shapes", "colors", "relations"}),
])
def test_heldout_sets_use_their_pieces_and_parse(name, kinds):
    rng = random.Random(3)
    split = name
    seen = set()
    for _ in range(600):
        scene = grammar.random_scene(rng)
        casual = grammar.casual_caption(scene, rng, split)
        assert parse_prompt(casual).equivalent(scene), casual
        pieces = {p.split(":")[0] for p in heldout_pieces(casual)}
        assert pieces and pieces <= kinds, casual  # at least one held-out piece, only of this set's kind
        seen |= pieces
    assert seen == kinds
    prompts = eval_prompts(name, 50)
    assert prompts == eval_prompts(name, 50) and len(set(prompts)) > 40  # fixed, seeded, varied


def test_parse_reads_specific_heldout_phrasings():
    red_circle, blue_square = ObjectSpec("red", "circle"), ObjectSpec("blue", "square")
    expected = Scene((red_circle, blue_square), "below", "filled", "relation")
    assert parse_prompt("can you make a scarlet disc beneath an azure tile for my kid") == expected
    assert parse_prompt("an image with azure tile with scarlet disc on its left").equivalent(
        Scene((red_circle, blue_square), "left", "filled", "relation"))
    assert parse_prompt("three lemon wedges").objects == (ObjectSpec("yellow", "triangle"),) * 3


# ------------------------------------------------------------------------------------------ copy noise
def test_copy_noise_copies_slots_and_drops_fillers(train_pairs):
    rng = random.Random(1)
    changed = 0
    for casual, canonical, _ in train_pairs[:800]:
        noisy, target = add_copy_noise(casual, canonical, rng)
        changed += (noisy, target) != (casual, canonical)
        new_words = [w for w in target.split() if w not in canonical.split()]
        assert all(w in noisy.replace(",", " ").split() for w in new_words), (noisy, target)  # copied, not invented
        assert len(target.split()) - len(canonical.split()) in range(-3, 5)  # only the relation (1-4 words -> 1-5) changes length
    assert 0.5 < changed / 800 < 0.9
    words = [pseudo_word(rng) for _ in range(400)]
    assert not set(words) & _KNOWN and not any(h in w for w in words for h in ("scarlet", "azure", "disc", "tile"))
    assert len(set(words)) > 300


def test_copy_noise_hand_case():
    class Always(random.Random):  # every noise kind fires; choices take the first option
        def random(self):
            return 0.0

    class PhraseNotFrame(Always):  # as Always, except the second draw (frame or phrase?) picks the phrase
        calls = 0

        def random(self):
            self.calls += 1
            return 0.99 if self.calls == 2 else 0.0

    noisy, target = add_copy_noise("a red ball left of a navy box", "a red circle to the left of a blue square",
                                   PhraseNotFrame(0))
    words, t = noisy.split(), target.split()
    # relation phrase -> one pseudo-word in both; a colour and a shape pseudo-word copied; fillers only in the input
    assert t[0] == "a" and len(t) == 7 and t[3] not in _KNOWN and t[3] in words
    assert sum(w not in _KNOWN for w in t) == 3 and all(w in words for w in t if w not in _KNOWN)
    assert len(words) > 7  # prefix and suffix fillers were added to the input only


def test_copy_noise_frame_hand_case():
    class Always(random.Random):  # every noise kind fires, the relation as a frame around the second object
        def random(self):
            return 0.0

    noisy, target = add_copy_noise("a red ball left of a navy box, hollow",
                                   "a red circle to the left of a blue square in outline style", Always(0))
    t = target.split()
    # object 1 (both slots pseudo), the frame's words "with with", object 2 canonical, the frame's tail, the style
    assert t[0] == "a" and t[3:8] == ["with", "with", "a", "blue", "square"] and t[-3:] == ["in", "outline", "style"]
    assert t[8:-3] == ["at", "its", "left"]  # a side tail, copied ("on its left" would be the held-out frame)
    assert "with with a navy box at its left, hollow" in noisy  # the comma moved behind the tail
    assert not heldout_pieces(noisy)


def test_copy_noise_frame_tails(monkeypatch):
    rng = random.Random(2)
    with monkeypatch.context() as m:
        m.setattr(copy_noise, "P_SIDE_TAIL", 0.0)
        tails = [copy_noise._frame(rng)[1] for _ in range(200)]
    assert all(1 <= len(t) <= 3 and t[-1] not in _KNOWN for t in tails)  # without side tails: ends on a pseudo-word
    rng = random.Random(3)
    tails = [copy_noise._frame(rng)[1] for _ in range(2000)]
    sides = [t for t in tails if len(t) == 3 and t[1] == "its" and t[2] in copy_noise._SIDES]
    assert 0.4 < len(sides) / len(tails) < 0.6
    assert {t[0] for t in sides} == {"at", "to", "by", "on"}
    assert not [t for t in sides if t[0] == "on" and t[2] in ("left", "right")]  # never the held-out frame


# ------------------------------------------------------------------------------------------ scoring
def test_exact_scene_and_score_rewrites():
    assert exact_scene("navy box with a crimson ball on its left", "a red circle to the left of a blue square")
    assert exact_scene("a red ball under a navy box", "a blue square above a red circle")
    assert not exact_scene("a red ball left of a navy box", "a red circle to the left of a red square")  # colour copy
    assert not exact_scene("a red ball left of a navy box", "a red circle and a blue square")  # unparseable
    items = score_rewrites(["a scarlet disc beneath an azure tile"], ["a red circle"])
    assert items[0]["exact_scene"] is False and items[0]["object_drop"] == 1
    assert set(items[0]["heldout_pieces"]) == {"colors:scarlet", "colors:azure", "shapes:disc", "shapes:tile",
                                               "relations:beneath"}
