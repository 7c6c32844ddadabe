"""CLI: generate's attention-hook flags (LPA, regions, auto regions, heatmaps) and ``t2i-prompt repaint``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from t2i_prompt.cli import main  # noqa: E402

PROMPT = "a red cat on the left and a blue dog on the right"


def test_generate_with_hook_flags_writes_heatmaps(tmp_path):
    code = main(["generate", PROMPT, "--model", "tiny:pixel", "--steps", "2", "--seed", "0", "1", "--no-progress",
                 "--auto-regions", "--lpa", "lpa_full", "--lpa-window", "0", "1000",
                 "--attention-maps", "cat", "blue dog", "--out", str(tmp_path)])
    assert code == 0
    names = sorted(p.name for p in tmp_path.glob("attn_*.png"))
    assert names == ["attn_000_blue_dog.png", "attn_000_cat.png", "attn_001_blue_dog.png", "attn_001_cat.png"]
    assert Image.open(tmp_path / "attn_000_cat.png").size == Image.open(tmp_path / "000_seed0.png").size


def test_region_flags_change_the_image(tmp_path):
    args = ["generate", PROMPT, "--model", "tiny:pixel", "--steps", "2", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--region", "0,0,0.5,1:a red cat", "--region", "0.5,0,1,1:a blue dog",
                        "--out", str(tmp_path / "b")]) == 0
    a = np.asarray(Image.open(tmp_path / "a" / "000_seed0.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "b" / "000_seed0.png"), dtype=np.int16)
    assert np.abs(a - b).max() > 0


@pytest.mark.parametrize("flags, message", [
    (["--lpa", "late"], "Unknown LPA preset 'late'; valid presets: lpa_late_only"),
    (["--lpa-window", "700", "300"], "start 700 > end 300"),
    (["--region", "1.2,0,1,1:a cat"], "outside [0, 1]"),
    (["--region", "0.5,0,0.2,1:a cat"], "empty or inverted"),
    (["--region", "0,0,1,1"], "must look like 'x0,y0,x1,y1:prompt'"),
    (["--attention-maps", "zebra"], f"'zebra' does not occur in the prompt '{PROMPT}'"),
    (["--sr-delta", "2"], "argument --sr-delta: must be a finite number in [0, 1], got 2"),
])
def test_generate_bad_hook_flags(tmp_path, capsys, flags, message):
    extra = ["--region", "0,0,1,1:a cat"] if "--sr-delta" in flags else []
    try:
        code = main(["generate", PROMPT, "--model", "tiny:pixel", "--steps", "1", "--no-progress",
                     "--out", str(tmp_path), *flags, *extra])
    except SystemExit as e:  # argparse-level checks
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_auto_regions_without_layout_phrase_is_an_error(tmp_path, capsys):
    code = main(["generate", "a cat", "--model", "tiny:pixel", "--steps", "1", "--auto-regions", "--out", str(tmp_path)])
    assert code == 2 and "No layout rule matches 'a cat'" in capsys.readouterr().err


def test_repaint_cli(tmp_path):
    code = main(["repaint", "a red circle", "--model", "tiny:pixel", "--region", "0.5,0.5,1,1:a blue square",
                 "--steps", "2", "--dilate", "0", "--out", str(tmp_path)])
    assert code == 0
    record = json.loads((tmp_path / "repaint.json").read_text())
    assert record["files"] == ["original.png", "repainted.png"] and record["mask_fraction"] == 0.25
    original = np.asarray(Image.open(tmp_path / "original.png"), dtype=np.int16)
    new = np.asarray(Image.open(tmp_path / "repainted.png"), dtype=np.int16)
    h, w = original.shape[:2]
    outside = np.ones((h, w), dtype=bool)
    outside[h // 2 :, w // 2 :] = False
    assert np.array_equal(original[outside], new[outside])
    assert np.abs(original[~outside] - new[~outside]).max() > 0


def test_repaint_cli_needs_one_region(tmp_path, capsys):
    assert main(["repaint", "a red circle", "--model", "tiny:pixel", "--out", str(tmp_path)]) == 2
    assert "exactly one of --region" in capsys.readouterr().err


def test_shapes_eval_takes_the_generate_hook_flags(tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle to the left of a blue square\na green triangle\n")
    code = main(["shapes", "eval", "--prompts", str(prompts), "--auto-regions", "--hb-steps", "2", "--sr-delta", "0.6",
                 "--steps", "4", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["hooks"]["auto_regions"] is True and report["settings"]["hooks"]["sr_delta"] == 0.6
    assert report["settings"]["hooks"]["hb_steps"] == 2 and report["n_prompts"] == 2
    assert report["unplanned_prompts"] == ["a green triangle"]  # no layout phrase: run without region binding
