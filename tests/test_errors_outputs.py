"""Issue class 6: outputs that reproduce: hooks recorded in generation.json regenerate the same pixels, a rerun
into the same --out removes what the earlier run wrote and no longer applies, files follow the user's umask."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from t2i_prompt.cli import main

PROMPT = "a red cat on the left and a blue dog on the right"


def test_hooked_image_regenerates_from_its_metadata(tmp_path):
    """generation.json records the hooks; rebuilding them from it gives the same pixels."""
    from t2i_prompt.attention.recipes import HookSpec
    from t2i_prompt.generate import ImageGenerator

    out = tmp_path / "gen"
    assert main(["generate", PROMPT, "--model", "tiny:pixel", "--steps", "2", "--no-progress", "--out", str(out),
                 "--region", "0,0,0.5,1:a red cat", "--lpa", "lpa_full", "--lpa-window", "0", "1000",
                 "--sr-delta", "0.5"]) == 0
    (record,) = json.loads((out / "generation.json").read_text())["images"]
    spec = HookSpec.from_dict(record["settings"]["hooks"])
    assert spec.lpa == "lpa_full" and spec.regions[0].prompt == "a red cat" and spec.sr_delta == 0.5
    s = record["settings"]
    again = ImageGenerator(record["model"], progress=False).generate(
        record["prompt"], [record["seed"]], num_inference_steps=s["num_inference_steps"],
        guidance_scale=s["guidance_scale"], height=s["height"], width=s["width"], hooks=spec.build(record["prompt"]))
    saved = np.asarray(Image.open(out / record["file"]))
    np.testing.assert_array_equal(np.asarray(again.images[0]), saved)
    plain = ImageGenerator(record["model"], progress=False).generate(record["prompt"], [record["seed"]],
                                                                     num_inference_steps=2)
    assert np.abs(np.asarray(plain.images[0]).astype(int) - saved).max() > 0


def test_written_files_follow_the_umask(tmp_path):
    from t2i_prompt.utils import _umask, atomic_write_text

    path = atomic_write_text(tmp_path / "a.json", "{}")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_rerun_into_the_same_out_clears_its_own_stale_files(tmp_path):
    out = tmp_path / "gen"
    (out).mkdir()
    (out / "mine.txt").write_text("keep")
    args = ["generate", "a red circle", "--model", "tiny:pixel", "--steps", "1", "--no-progress", "--out", str(out)]
    assert main([*args, "--seed", "1", "2", "3"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["000_seed1.png", "001_seed2.png", "002_seed3.png"]
    assert main([*args, "--seed", "7"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["000_seed7.png"]  # no image left from the earlier run
    records = json.loads((out / "generation.json").read_text())["images"]
    assert [r["seed"] for r in records] == [7] and (out / "mine.txt").read_text() == "keep"
