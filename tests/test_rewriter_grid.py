"""Full-size rewriter experiment (issue 12, item 3): the alpha x seed training grid, its table and frontier plot,
the bootstrap interval, and the shapes faithfulness checks against the ORIGINAL prompt. No model is trained here."""

from __future__ import annotations

import pytest
import torch


# --------------------------------------------------------------------------------------------- bootstrap
def test_bootstrap_interval_of_two_values_is_their_range():
    """Means of 2 resampled values are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: both 2.5 % tails sit on 0 and 1."""
    from t2i_prompt.train.evaluate import bootstrap_interval

    assert bootstrap_interval([0.0, 1.0], resamples=20000) == (0.0, 1.0)


def test_bootstrap_interval_of_one_in_four_by_hand():
    """[0, 0, 0, 1]: P(mean = 0) = (3/4)^4 = 0.32 > 2.5 %, so low = 0; P(mean >= 0.75) = 13/256 = 5.1 % but
    P(mean = 1) = 1/256 = 0.4 %, so the 97.5th percentile is 0.75."""
    from t2i_prompt.train.evaluate import bootstrap_interval

    assert bootstrap_interval([0.0, 0.0, 0.0, 1.0], resamples=20000) == (0.0, 0.75)
    assert bootstrap_interval([0.3] * 5) == pytest.approx((0.3, 0.3))
    with pytest.raises(ValueError, match="no values"):
        bootstrap_interval([])


def test_summarize_items_leaves_out_not_applicable_values():
    from t2i_prompt.train.evaluate import summarize_items

    rows = [{"a": 1.0, "b": None}, {"a": 3.0, "b": 1.0}]
    s = summarize_items(rows, ["a", "b", "c"])
    assert s["a"]["mean"] == 2.0 and s["a"]["n"] == 2 and s["a"]["ci95"][0] <= 2.0 <= s["a"]["ci95"][1]
    assert s["b"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 1}
    assert s["c"] == {"mean": None, "ci95": [None, None], "n": 0}


# --------------------------------------------------------------------------------------------- grid
def test_training_grid_runs_dpo_and_every_alpha_for_every_seed():
    from t2i_prompt.train.grid import training_grid

    grid = training_grid([0.5, 2.0], [0, 1])
    assert [(r.method, r.seed, r.dirname) for r in grid] == [
        ("DPO", 0, "dpo/seed0"), ("DPO", 1, "dpo/seed1"),
        ("Sem-DPO a=0.5", 0, "semdpo_a0.5/seed0"), ("Sem-DPO a=0.5", 1, "semdpo_a0.5/seed1"),
        ("Sem-DPO a=2", 0, "semdpo_a2/seed0"), ("Sem-DPO a=2", 1, "semdpo_a2/seed1")]
    assert {r.loss for r in grid[2:]} == {"semdpo"} and grid[0].alpha is None
    with pytest.raises(ValueError, match="alpha 0 is exactly DPO"):
        training_grid([0.0, 1.0], [0])
    with pytest.raises(ValueError, match="duplicates"):
        training_grid([1.0], [0, 0])
    with pytest.raises(ValueError, match="train_seeds is empty"):
        training_grid([1.0], [])


def test_grid_summary_table_and_plot_have_one_row_per_method(tmp_path):
    """SFT (one model) + DPO and one alpha over 2 seeds: pooled means over every seed's rows, per-seed means."""
    from PIL import Image

    from t2i_prompt.train.grid import frontier_plot, grid_table, summarize_grid, training_grid

    def rows(reward, similarity, correct):
        return [{"reward": reward, "similarity": similarity, "all_correct": c} for c in correct]

    rows_by_run = {("SFT", 0): rows(5.0, 0.8, [1.0, 1.0])}
    values = {("DPO", 0): (6.0, 0.5), ("DPO", 1): (8.0, 0.3),
              ("Sem-DPO a=1", 0): (5.5, 0.7), ("Sem-DPO a=1", 1): (6.5, 0.7)}
    for run in training_grid([1.0], [0, 1]):
        reward, similarity = values[(run.method, run.seed)]
        rows_by_run[(run.method, run.seed)] = rows(reward, similarity, [0.0, 1.0])
    metrics = ["reward", "similarity", "all_correct"]
    summary = summarize_grid(rows_by_run, metrics)
    assert list(summary) == ["SFT", "DPO", "Sem-DPO a=1"]
    assert summary["DPO"]["pooled"]["reward"]["mean"] == 7.0 and summary["DPO"]["pooled"]["reward"]["n"] == 4
    assert summary["DPO"]["per_seed"] == {0: {"reward": 6.0, "similarity": 0.5, "all_correct": 0.5},
                                          1: {"reward": 8.0, "similarity": 0.3, "all_correct": 0.5}}
    assert summary["DPO"]["seed_range"]["reward"] == [6.0, 8.0] and summary["DPO"]["n_seeds"] == 2
    assert summary["Sem-DPO a=1"]["pooled"]["similarity"]["mean"] == pytest.approx(0.7)
    lines = grid_table(summary, metrics, {"reward": "mean reward"}).splitlines()
    assert lines[0] == "| rewriter | seeds | mean reward | similarity | all_correct | per-seed range |"
    assert lines[2].startswith("| SFT | 1 | 5.000 [5.000, 5.000] | 0.800 [0.800, 0.800] | 1.000 [1.000, 1.000] | - |")
    assert lines[3].startswith("| DPO | 2 | 7.000 [") and "mean reward 6.000-8.000" in lines[3]
    assert len(lines) == 5
    path = frontier_plot(summary, tmp_path / "frontier.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (720, 520)


# --------------------------------------------------------------------------------------------- evaluation rows
def test_evaluate_rewriter_items_scores_every_image_against_the_original():
    from t2i_prompt.train.evaluate import evaluate_rewriter_items

    class Rewriter:  # drops everything after the first word ("" for the empty prompt -> prompt kept)
        def rewrite(self, prompts, k=1, max_new_tokens=48):
            class C:
                def __init__(self, text):
                    self.text = text
            return [[C(p.split()[0] if p.startswith("a ") else "")] for p in prompts]

    class PromptLength:
        def score(self, prompts, images):
            return torch.tensor([float(len(p)) for p in prompts])

    prompts = ["a red circle", "blue box"]
    rendered = []
    rows = evaluate_rewriter_items(
        Rewriter(), prompts, lambda text, seed: rendered.append((text, seed)) or (text, seed),
        {"length": PromptLength()}, [2.0], lambda a, b: torch.tensor([1.0 if x == y else 0.5 for x, y in zip(a, b)]),
        seeds=[3, 4], faithfulness={"same_text": lambda o, r, im: o == r, "na": lambda o, r, im: None,
                                    "image_seed": lambda o, r, im: im[1]})
    assert rendered == [("a", 3), ("a", 4), ("blue box", 3), ("blue box", 4)]
    assert [(r["prompt"], r["rewrite"], r["seed"], r["empty"]) for r in rows] == [
        ("a red circle", "a", 3, False), ("a red circle", "a", 4, False),
        ("blue box", "blue box", 3, True), ("blue box", "blue box", 4, True)]
    assert [r["length"] for r in rows] == [12.0, 12.0, 8.0, 8.0] and [r["reward"] for r in rows] == [24, 24, 16, 16]
    assert [r["similarity"] for r in rows] == [0.5, 0.5, 1.0, 1.0]
    assert [r["same_text"] for r in rows] == [0.0, 0.0, 1.0, 1.0] and {r["na"] for r in rows} == {None}
    assert [r["image_seed"] for r in rows] == [3.0, 4.0, 3.0, 4.0]


# --------------------------------------------------------------------------------------------- faithfulness
def test_detector_is_scored_against_the_original_scene_not_the_rewrite():
    """A rewrite that drops the second object gets a perfect image of ITS scene, which is wrong for the original."""
    from t2i_prompt.shapes.grammar import parse_prompt
    from t2i_prompt.shapes.render import render_scene
    from t2i_prompt.shapes.rewrite_faithfulness import correct_against_original, drops_objects

    original = "a red circle to the left of a blue square"
    hacked = "a red circle"
    faithful_image = render_scene(parse_prompt(original))
    hacked_image = render_scene(parse_prompt(hacked))
    assert correct_against_original(original, faithful_image) is True
    assert correct_against_original(original, hacked_image) is False
    assert correct_against_original(hacked, hacked_image) is True
    assert correct_against_original("a dragon", hacked_image) is None  # not in the grammar: left out
    assert drops_objects(original, hacked) and not drops_objects(original, "a blue square below a red circle")
    assert drops_objects("two green triangles", "a green triangle")


# --------------------------------------------------------------------------------------------- resume
def test_held_out_evaluation_is_reused_only_for_the_same_model_and_settings(tmp_path):
    """training/shapes_pipeline.py: a finished evaluation is read back; a retrained model or new settings rerun it."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "shapes_pipeline", Path(__file__).parent.parent / "training" / "shapes_pipeline.py")
    pipeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline)
    model, out, calls = tmp_path / "dpo" / "seed0", tmp_path / "eval" / "dpo_seed0.json", []
    model.mkdir(parents=True)
    (model / "stage.json").write_text(json.dumps({"key": "k1"}))

    def evaluate(path):
        calls.append(path)
        return [{"reward": float(len(calls))}]

    assert pipeline.evaluate_run(model, out, {"seeds": [0]}, evaluate) == [{"reward": 1.0}]
    assert pipeline.evaluate_run(model, out, {"seeds": [0]}, evaluate) == [{"reward": 1.0}]  # reused
    assert pipeline.evaluate_run(model, out, {"seeds": [0, 1]}, evaluate) == [{"reward": 2.0}]  # new settings
    (model / "stage.json").write_text(json.dumps({"key": "k2"}))  # retrained
    assert pipeline.evaluate_run(model, out, {"seeds": [0, 1]}, evaluate) == [{"reward": 3.0}]
    assert calls == [str(model)] * 3


def test_paired_difference_averages_training_seeds_then_pairs_by_item():
    """DPO seeds 0/1 give 1.0/0.0 on prompt p (mean 0.5) and 1.0/1.0 on q; SFT gives 0 and 1: differences +0.5, 0."""
    from t2i_prompt.train.grid import difference_table, paired_difference

    def row(prompt, value):
        return {"prompt": prompt, "seed": 1000, "all_correct": value}

    rows_by_run = {("SFT", 0): [row("p", 0.0), row("q", 1.0)],
                   ("DPO", 0): [row("p", 1.0), row("q", 1.0)], ("DPO", 1): [row("p", 0.0), row("q", 1.0)],
                   ("Other", 0): [row("r", 1.0)]}
    d = paired_difference(rows_by_run, "DPO", "SFT", "all_correct")
    assert d["diff"] == 0.25 and d["n"] == 2 and d["ci95"] == [0.0, 0.5]  # 2 items: resampled means 0, .25, .5
    assert paired_difference(rows_by_run, "Other", "SFT", "all_correct") is None  # no shared item
    lines = difference_table(rows_by_run, [("DPO", "SFT"), ("Other", "SFT")], ["all_correct"]).splitlines()
    assert lines[2] == "| DPO - SFT | +0.250 [+0.000, +0.500] |" and lines[3] == "| Other - SFT | n/a |"
