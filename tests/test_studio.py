"""The app's library side without Gradio: seed parsing, votes as DPO pairs, the region overlay, candidate picking and
the rewriter fallback of compare_rewrites, one loaded pipeline shared by threads."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image

from t2i_prompt.attention.masks import Region
from t2i_prompt.workflows.grid import REGION_COLORS, draw_regions
from t2i_prompt.workflows.inputs import parse_seeds, random_seed
from t2i_prompt.workflows.studio import Studio
from t2i_prompt.workflows.votes import append_vote, vote_row


@pytest.mark.parametrize("text, seeds", [("0, 1", [0, 1]), ("3", [3]), ("2-5", [2, 3, 4, 5]), (7, [7]),
                                         ([4, 1], [4, 1]), ("1 2", [1, 2])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [
    ("", "at least one seed"), ("a", "'a' is not an integer"), ("5-2", "'5-2' is not an integer or a range"),
    ("-3", r"seed -3 must be an integer in \[0"), (2**31, "must be an integer in"),
    ("0-40", "not an integer or a range"), (True, "must be integers")])
def test_parse_seeds_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_seeds(text)


def test_random_seed_in_range():
    import random

    assert random_seed(random.Random(0)) == random_seed(random.Random(0))
    assert all(0 <= random_seed() <= 2**31 - 1 for _ in range(20))


def test_vote_row_has_the_preference_engine_columns():
    row = vote_row("red circle", {"original": "red circle", "refined": "a red circle, outlined"}, "refined", [0, 1],
                   {"original": {"clip": 0.5, "aesthetic": 3.0}, "refined": {"clip": 0.75, "aesthetic": 2.0}},
                   t2i_model="shapes", rewriter="shapes:rewriter")
    assert row["prompt"] == "red circle"
    assert (row["chosen"], row["rejected"]) == ("a red circle, outlined", "red circle")
    assert (row["chosen_score"], row["rejected_score"], row["score_gap"]) == (0.75, 0.5, 0.25)
    assert (row["chosen_aesthetic"], row["rejected_aesthetic"]) == (2.0, 3.0)
    assert (row["seeds"], row["source"], row["chosen_side"]) == ([0, 1], "vote", "refined")
    flipped = vote_row("red circle", {"original": "red circle", "refined": "x"}, "original", [0])
    assert (flipped["chosen"], flipped["rejected"], flipped["score_gap"]) == ("red circle", "x", None)


@pytest.mark.parametrize("texts, preferred, message", [
    ({"original": "a", "refined": "a"}, "refined", "same text"),
    ({"original": "a", "refined": ""}, "refined", "refined text is empty"),
    ({"original": "a", "refined": "b"}, "left", "preferred must be one of"),
])
def test_vote_row_errors(texts, preferred, message):
    with pytest.raises(ValueError, match=message):
        vote_row("a", texts, preferred, [0])


def test_append_vote_counts_and_keeps_lines_whole(tmp_path):
    path = tmp_path / "votes.jsonl"
    rows = [vote_row("p", {"original": "p", "refined": f"r{i}"}, "refined", [i]) for i in range(12)]
    threads = [threading.Thread(target=append_vote, args=(path, r)) for r in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert sorted(json.loads(ln)["chosen"] for ln in lines) == sorted(f"r{i}" for i in range(12))
    assert append_vote(path, rows[0]) == 13
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ValueError, match="must end in .jsonl"):
        append_vote(tmp_path / "votes.csv", rows[0])


def test_draw_regions_outlines_each_box_in_its_colour():
    regions = [Region("a red circle", box=(0.0, 0.0, 0.5, 1.0)), Region("a blue square", box=(0.5, 0.25, 1.0, 0.75))]
    canvas = np.asarray(draw_regions(None, regions, size=200))
    assert canvas.shape == (200, 200, 3)
    first = tuple(int(REGION_COLORS[0][i:i + 2], 16) for i in (1, 3, 5))
    second = tuple(int(REGION_COLORS[1][i:i + 2], 16) for i in (1, 3, 5))
    assert tuple(canvas[100, 1]) == first  # left border of box 1
    assert tuple(canvas[120, 198]) == second  # right border of box 2, inside its rows
    assert tuple(canvas[10, 198]) == (255, 255, 255)  # above box 2: untouched
    mask = np.zeros((8, 8))
    mask[2:6, 4:8] = 1
    drawn = np.asarray(draw_regions(None, [Region("m", mask=mask)], size=80))
    assert tuple(drawn[40, 41]) == first and tuple(drawn[40, 30]) == (255, 255, 255)  # bbox of the mask: x in [40, 80)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    return Studio(votes_path=tmp_path_factory.mktemp("studio") / "votes.jsonl")


def test_compare_generates_the_picked_candidate(studio):
    prompt = "red circle left of blue square"
    cands = studio.rewriter().rewrite(prompt, k=3, seed=0)[0]
    result = studio.compare(prompt, seeds=[0], k=3, pick=2)
    assert result.refined == cands[2].text and result.settings["pick"] == 2
    assert [c["text"] for c in result.candidates] == [c.text for c in cands]
    assert all(0 <= c["similarity"] <= 1.0001 for c in result.candidates)
    with pytest.raises(ValueError, match=r"pick must be a candidate index in \[0, 2\]"):
        studio.compare(prompt, seeds=[0], k=3, pick=3)


def test_compare_falls_back_to_the_original_when_the_rewriter_fails(studio):
    from t2i_prompt.workflows.compare import compare_rewrite

    class BrokenRewriter(type(studio.rewriter())):
        def __init__(self):
            self.name = "broken"

        def rewrite(self, *args, **kwargs):
            raise RuntimeError("CUDA out of memory")

    with pytest.warns(UserWarning, match="generating the original prompt"):
        result = compare_rewrite("a red circle", model=studio.generator(), rewriter=BrokenRewriter(), seeds=[0], k=2,
                                 scorers=studio.scorers())
    assert result.refined == "a red circle" and result.candidates == []
    assert result.settings["rewrite_error"] == "RuntimeError: CUDA out of memory"
    assert result.settings["object_drop"] == 0  # the shapes world counts drift; the unchanged prompt drops nothing
    np.testing.assert_array_equal(np.asarray(result.images["original"][0]), np.asarray(result.images["refined"][0]))


def test_models_load_once_and_threads_share_them(studio):
    prompt = "a blue triangle"
    expected = [np.asarray(studio.generate(prompt, [s]).images[0]) for s in range(4)]
    results = [None] * 4

    def work(i):
        results[i] = np.asarray(studio.generate(prompt, [i]).images[0])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, exp in zip(results, expected):
        np.testing.assert_array_equal(got, exp)
    assert studio.loaded().count("t2i:shapes") == 1


def test_generate_checks_hooks_before_loading(tmp_path):
    fresh = Studio(model="no-such-org/no-such-model", votes_path=tmp_path / "v.jsonl")
    with pytest.raises(ValueError, match="'banana' does not occur"):
        fresh.generate("a red circle", [0], spec=fresh.hook_spec(capture="banana"))
    with pytest.raises(ValueError, match="the prompt is empty"):
        fresh.generate("  ", [0])
    assert fresh.loaded() == []


def test_edit_checks_local_blend_before_loading(tmp_path):
    fresh = Studio(model="no-such-org/no-such-model", votes_path=tmp_path / "v.jsonl")
    image = Image.new("RGB", (32, 32), "white")
    with pytest.raises(ValueError, match=r"LocalBlend threshold must be in \[0, 1\].*got 1.5"):
        fresh.edit(image, "a red circle", "a blue circle", local="circle", local_threshold=1.5)
    with pytest.raises(ValueError, match="LocalBlend normalise 'otsu' is not one of"):
        fresh.edit(image, "a red circle", "a blue circle", local="circle", local_normalise="otsu")
    assert fresh.loaded() == []


def test_evaluate_refuses_a_non_shapes_model(tmp_path):
    with pytest.raises(ValueError, match="runs on the shapes world"):
        Studio(model="tiny:sd15", votes_path=tmp_path / "v.jsonl").evaluate("relation", 1)
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        Studio(votes_path=tmp_path / "v.jsonl").evaluate("nope", 1)
    with pytest.raises(ValueError, match="methods"):
        Studio(votes_path=tmp_path / "v.jsonl").evaluate("relation", 1, methods=["magic"])


def test_a_typed_model_name_loads_and_is_scored_by_its_own_scorers(studio):
    result = studio.generate("a photo of a cat", [0, 1], model="tiny:sd15", num_inference_steps=2)
    assert len(result.images) == 2 and result.settings["model"] == "tiny:sd15"
    assert result.detector is None  # the exact detector is only for the shapes world
    assert studio.scorers("tiny:sd15").clip_name == "tiny:clip" and len(result.scores["clip"]) == 2
    assert "t2i:tiny:sd15" in studio.loaded() and "scorers:tiny:sd15" in studio.loaded()


def test_progress_is_reported_per_denoising_step(studio):
    calls = []
    studio.generate("a red circle", [0, 1], num_inference_steps=5, progress=lambda done, n: calls.append((done, n)))
    assert calls == [(i, 5) for i in range(1, 6)]  # one batch of both seeds: one report per step
    calls.clear()
    studio.compare("a red circle", seeds=[0], k=2, num_inference_steps=4, progress=lambda d, n: calls.append((d, n)))
    assert calls == [(i, 4) for i in range(1, 5)]
