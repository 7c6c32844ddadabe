"""``t2i-prompt compbench run --model shapes`` end to end: official layout, records, scores, summary, resume."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2i_prompt.evaluate import categories, report

PROMPTS = {
    "color": ["a red circle and a blue square", "a green triangle and a yellow circle"],
    "spatial": ["a red circle on the left of a blue square", "a green triangle on the top of a yellow circle"],
    "numeracy": ["two red circles", "one blue square"],
}


def write_prompt_dir(root: Path, prompts=PROMPTS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, lines in prompts.items():
        (root / f"{name}_val.txt").write_text("\n".join(lines) + "\n")
    (root / "new_objects.txt").write_bytes((categories.DATA_DIR / "shapes" / "new_objects.txt").read_bytes())
    return root


def run_args(prompt_dir, out, *extra):
    return ["compbench", "run", "--model", "shapes", "--prompts", str(prompt_dir), "--categories", "color",
            "spatial", "numeracy", "--images-per-prompt", "2", "--out", str(out), "--no-progress", "--json", *extra]


def cli(argv, capsys):
    """(exit status, stdout, stderr) of one ``t2i-prompt`` call."""
    from t2i_prompt.cli import main

    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def prompt_dir(tmp_path_factory):
    return write_prompt_dir(tmp_path_factory.mktemp("prompts"))


@pytest.fixture(scope="module")
def clean_run(prompt_dir, tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("runs") / "clean"
    stdout = io.StringIO()
    from t2i_prompt.cli import main

    with contextlib.redirect_stdout(stdout):
        assert main(run_args(prompt_dir, out)) == 0
    return out, json.loads(stdout.getvalue())


def test_official_layout_and_records(clean_run):
    out, result = clean_run
    assert result["generation"]["rendered"] == 12 and result["counts"]["scored"] == 12
    for name, prompts in PROMPTS.items():
        names = sorted(p.name for p in (out / name / "samples").iterdir())
        assert names == sorted(f"{p}_{2 * i + k:06d}.png" for i, p in enumerate(prompts) for k in range(2))
        records = [json.loads(line) for line in (out / name / "images.jsonl").read_text().splitlines()]
        assert [r["index"] for r in records] == [0, 1, 2, 3]
        assert [r["seed"] for r in records] == [42, 43, 42, 43]
        assert all(r["prompt"] == r["generated_prompt"] for r in records)
        assert {r["settings"]["num_inference_steps"] for r in records} == {20}
        with Image.open(out / name / "samples" / records[0]["file"]) as im:
            assert im.size == (32, 32)


def test_scores_match_the_detector(clean_run):
    """color: B-VQA is 1 exactly when the shapes detector finds both named objects (an independent path)."""
    from t2i_prompt.shapes.detector import detect_objects

    out, _ = clean_run
    answers = json.loads((out / "color" / "annotation_blip" / "vqa_result.json").read_text())
    assert [a["question_id"] for a in answers] == [0, 1, 2, 3]
    for a in answers:
        prompt = PROMPTS["color"][a["question_id"] // 2]
        with Image.open(out / "color" / "samples" / f"{prompt}_{a['question_id']:06d}.png") as im:
            found = {(o.color, o.shape) for o in detect_objects(im.convert("RGB"))}
        words = prompt.split()
        wanted = {(words[1], words[2]), (words[5], words[6])}
        assert a["answer"] == float(wanted <= found)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluator"].startswith("official-rules, shapes-world models")
    for name in PROMPTS:
        values = list(report.read_results(out, name).values())
        assert summary["categories"][name] == {"score": round(float(np.mean(values)), 6), "n_images": 4}
    assert (out / "summary.md").read_text().count("|") > 10
    with Image.open(out / "summary.png") as chart:
        assert chart.format == "PNG"


def test_killed_and_restarted_runs_end_byte_identical(clean_run, prompt_dir, tmp_path, monkeypatch, capsys):
    """Killed twice at random file writes, the run resumes; it never re-renders or re-scores what is on disk and
    ends with exactly the clean run's bytes (every write is atomic, so a kill between writes is the general case)."""
    import t2i_prompt.utils as utils

    clean, _ = clean_run
    out = tmp_path / clean.name  # the summary title names the folder
    real = utils.atomic_write_bytes
    total = len(tree(clean))
    rng = random.Random(9)
    for limit in (rng.randrange(3, total // 2), rng.randrange(3, total // 2)):
        calls = {"n": 0}

        def flaky(path, data, calls=calls, limit=limit):
            calls["n"] += 1
            if calls["n"] > limit:
                raise KeyboardInterrupt
            return real(path, data)

        monkeypatch.setattr(utils, "atomic_write_bytes", flaky)
        code, _, _ = cli(run_args(prompt_dir, out), capsys)
        assert code == 130
    monkeypatch.setattr(utils, "atomic_write_bytes", real)
    before = tree(out)
    pngs_before = sum(k.endswith(".png") and "/samples/" in k for k in before)
    scores_before = sum(k.startswith(".cache/scores/") for k in before)
    code, stdout, _ = cli(run_args(prompt_dir, out), capsys)
    assert code == 0
    result = json.loads(stdout)
    assert result["generation"]["rendered"] == 12 - pngs_before  # nothing already on disk rendered again
    assert result["generation"]["reused"] == pngs_before
    assert result["counts"]["scored"] == 12 - scores_before  # nor re-scored
    assert tree(out) == tree(clean)
    code, stdout, _ = cli(run_args(prompt_dir, out), capsys)
    again = json.loads(stdout)
    assert (again["generation"]["rendered"], again["counts"]["scored"]) == (0, 0)
    assert tree(out) == tree(clean)


def test_compare_identical_runs_and_known_difference(clean_run, tmp_path, capsys):
    out, _ = clean_run
    code, stdout, _ = cli(["compbench", "compare", str(out), str(out), "--json"], capsys)
    assert code == 0
    same = json.loads(stdout)
    assert all(row["differences"][0] == {"diff": 0.0, "low": 0.0, "high": 0.0, "n_pairs": 4}
               for row in same["categories"].values())
    other = tmp_path / "other" / "color" / "annotation_blip"
    other.mkdir(parents=True)
    base = report.read_results(out, "color")
    (other / "vqa_result.json").write_text(json.dumps([{"question_id": q, "answer": v + 0.25}
                                                       for q, v in base.items()]))
    result = report.compare([out, tmp_path / "other"])
    diff = result["categories"]["color"]["differences"][0]
    assert diff["diff"] == pytest.approx(0.25) and diff["low"] == pytest.approx(0.25)
    assert list(result["categories"]) == ["color"]


def test_paired_bootstrap_interval_matches_numpy():
    a, b = np.array([0.0, 1.0, 0.0, 1.0, 1.0]), np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    diff, low, high = report.paired_bootstrap(a, b, samples=500, seed=3)
    rng = np.random.default_rng(3)
    means = (b - a)[rng.integers(0, 5, size=(500, 5))].mean(axis=1)
    assert (diff, low, high) == (0.0, float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def test_score_any_samples_folder(clean_run, tmp_path, capsys):
    """A folder made elsewhere (no images.jsonl) is scored from its file names alone."""
    out, _ = clean_run
    foreign = tmp_path / "foreign" / "spatial" / "samples"
    foreign.mkdir(parents=True)
    for p in (out / "spatial" / "samples").iterdir():
        (foreign / p.name).write_bytes(p.read_bytes())
    code, _, _ = cli(["compbench", "score", "--run", str(tmp_path / "foreign"), "--categories", "spatial",
                       "--prompts", "shapes", "--no-progress", "--json"], capsys)
    assert code == 0
    assert report.read_results(tmp_path / "foreign", "spatial") == report.read_results(out, "spatial")


def test_report_rewrites_the_same_summary(clean_run, tmp_path, capsys):
    import shutil

    out, _ = clean_run
    copy = tmp_path / out.name
    shutil.copytree(out, copy)
    (copy / "summary.json").write_text(json.dumps({**json.loads((out / "summary.json").read_text()),
                                                   "categories": {}}))
    (copy / "summary.md").unlink()
    code, stdout, _ = cli(["compbench", "report", "--run", str(copy)], capsys)
    assert code == 0 and "| spatial |" in stdout
    assert tree(copy) == tree(out)
