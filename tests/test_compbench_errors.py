"""Bad input to ``t2i-prompt compbench``: one-line errors naming the bad value, before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from t2i_prompt.cli import main

SHAPES_ARGS = ["--model", "shapes", "--images-per-prompt", "1", "--no-progress", "--steps", "2"]


def fails(argv, capsys) -> str:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and "Traceback" not in err[0]
    return err[0]


def prompt_dir(root: Path, **lists) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, lines in lists.items():
        (root / f"{name}_val.txt").write_text("\n".join(lines) + "\n")
    return root


def test_missing_prompt_folder_and_category_file(tmp_path, capsys):
    err = fails(["compbench", "generate", "--prompts", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                capsys)
    assert "nope" in err and "no such folder" in err
    folder = prompt_dir(tmp_path / "p", color=["a red circle and a blue square"])
    err = fails(["compbench", "generate", "--prompts", str(folder), "--categories", "color", "spatial",
                 "--out", str(tmp_path / "o")] + SHAPES_ARGS, capsys)
    assert "spatial_val.txt" in err


def test_rewrite_candidates_other_than_one(tmp_path, capsys):
    err = fails(["compbench", "generate", "--rewriter", "shapes:rewriter", "-k", "3", "--out", str(tmp_path / "o")],
                capsys)
    assert "-k 3" in err


def test_unknown_category(tmp_path, capsys):
    err = fails(["compbench", "generate", "--categories", "colour", "--out", str(tmp_path / "o")], capsys)
    assert "'colour'" in err and "color" in err


def test_prompt_with_underscore(tmp_path, capsys):
    folder = prompt_dir(tmp_path / "p", color=["a red circle", "a red_circle and a blue square"])
    err = fails(["compbench", "generate", "--prompts", str(folder), "--categories", "color",
                 "--out", str(tmp_path / "o")] + SHAPES_ARGS, capsys)
    assert "'a red_circle and a blue square'" in err and "line 2" in err
    assert not (tmp_path / "o").exists()


def test_samples_folder_off_the_layout(tmp_path, capsys):
    samples = tmp_path / "run" / "color" / "samples"
    samples.mkdir(parents=True)
    (samples / "a red circle_000000.png").write_bytes(b"")
    (samples / "a red circle_1.png").write_bytes(b"")
    (samples / "b.png").write_bytes(b"")
    err = fails(["compbench", "score", "--run", str(tmp_path / "run"), "--categories", "color", "--backend",
                 "shapes"], capsys)
    assert "a red circle_1.png" in err and "<prompt>_<NNNNNN>.png" in err


def test_image_that_is_not_an_image(tmp_path, capsys):
    samples = tmp_path / "run" / "color" / "samples"
    samples.mkdir(parents=True)
    (samples / "a red circle and a blue square_000000.png").write_bytes(b"not a png")
    err = fails(["compbench", "score", "--run", str(tmp_path / "run"), "--categories", "color", "--backend",
                 "shapes", "--no-progress"], capsys)
    assert "a red circle and a blue square_000000.png is not a readable image" in err


def test_missing_evaluator_model(tmp_path, capsys):
    samples = tmp_path / "run" / "spatial" / "samples"
    samples.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(samples / "a dog on the left of a cat_000000.png")
    err = fails(["compbench", "score", "--run", str(tmp_path / "run"), "--categories", "spatial",
                 "--detector-model", "nobody/missing-owl"], capsys)
    assert "'nobody/missing-owl'" in err and "--detector-model /path/to/model" in err


def test_mixing_runs_of_different_settings(tmp_path, capsys):
    folder = prompt_dir(tmp_path / "p", color=["a red circle and a blue square"])
    base = ["compbench", "generate", "--prompts", str(folder), "--categories", "color", "--out", str(tmp_path / "o"),
            "--model", "shapes", "--images-per-prompt", "1", "--no-progress"]
    assert main(base + ["--steps", "2"]) == 0
    capsys.readouterr()
    err = fails(base + ["--steps", "3"], capsys)
    assert "made with other settings" in err and "a red circle and a blue square_000000.png" in err
    (tmp_path / "o" / "color" / "samples" / "a green square_000007.png").write_bytes(b"")
    err = fails(base + ["--steps", "2"], capsys)
    assert "a green square_000007.png is not an image of this run" in err


@pytest.mark.parametrize("argv, words", [
    (["compbench", "compare", "only-one"], "at least two"),
    (["compbench", "report", "--run", "nowhere"], "summary.json"),
])
def test_compare_and_report_inputs(argv, words, capsys):
    assert words in fails(argv, capsys)


def test_yaml_config_expands_to_flags(tmp_path):
    from t2i_prompt.cli.compbench import config_argv

    assert config_argv("eval/configs/compbench_shapes.yaml") == [
        "run", "--model", "shapes", "--prompts", "shapes", "--categories", "color", "shape", "spatial", "numeracy",
        "complex", "--images-per-prompt", "2", "--out", "outputs/compbench/shapes-vanilla"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("command: run\nmodel: shapes\n")
    with pytest.raises(ValueError, match="'command' and 'args'"):
        config_argv(str(bad))
