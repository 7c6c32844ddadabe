"""benchmarks/gpu_check.py --quick: the GPU check's code path on CPU, with its printed and JSON fields."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gpu_check  # noqa: E402


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "result.json"
    args = gpu_check.make_parser().parse_args(["--quick", "--steps", "2", "--json", str(out)])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert gpu_check.main(args) == 0
    return json.loads(out.read_text()), printed.getvalue()


def test_quick_check_compares_with_diffusers_on_both_models(quick_run):
    report, printed = quick_run
    results = {r["arch"]: r for r in report["results"]}
    assert report["quick"] and set(results) == {"sd15", "sdxl"}
    expected = [gpu_check.DIFFUSERS, gpu_check.CONTROL, *gpu_check.OURS]
    for arch, result in results.items():
        rows = {r["variant"]: r for r in result["rows"]}
        assert list(rows) == expected and result["size"] == 64 and result["steps"] == 2
        assert rows[gpu_check.DIFFUSERS]["ratio_vs_diffusers"] == 1.0
        for row in rows.values():
            assert row["s_per_step"] > 0 and row["image_finite"] and row["peak_call_gib"] is None  # CPU: no peak
            assert row["ratio_vs_diffusers"] == pytest.approx(row["s_per_step"] / rows["diffusers"]["s_per_step"])
        # without hooks the toolkit's image is diffusers' (fp32 on CPU); the control is diffusers itself
        assert rows["t2i-prompt"]["max_abs_diff_vs_diffusers"] < 1e-5
        assert rows[gpu_check.CONTROL]["max_abs_diff_vs_diffusers"] == 0
        assert rows["t2i-prompt + regions (2, hb 2 steps)"]["max_abs_diff_vs_diffusers"] > 1e-3  # hooks act
        assert result["weights_gib"]["t2i-prompt"] == pytest.approx(result["weights_gib"]["diffusers"], rel=1e-6)
    header = next(line for line in printed.splitlines() if line.startswith("variant"))
    assert header.split() == ["variant", "s/step", "ratio", "peak+", "GiB", "max|diff|"]
    assert json.loads(printed.strip().splitlines()[-1]) == {
        arch: {row["variant"]: round(row["ratio_vs_diffusers"], 3) for row in r["rows"]} for arch, r in results.items()}


def test_full_configs_are_the_real_models():
    """The full-size builders give the hub models' parameter counts (built on the meta device: no memory)."""
    sd15 = gpu_check.build_components("sd15", gpu_check.FULL, device="meta")
    sdxl = gpu_check.build_components("sdxl", gpu_check.FULL, device="meta")
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in
              [("sd15_unet", sd15["unet"]), ("sdxl_unet", sdxl["unet"]), ("clip_l", sd15["text_encoder"]),
               ("bigg", sdxl["text_encoder_2"]), ("vae", sd15["vae"])]}
    assert counts == {"sd15_unet": 859_520_964, "sdxl_unet": 2_567_463_684, "clip_l": 123_060_480,
                      "bigg": 694_659_840, "vae": 83_653_863}
