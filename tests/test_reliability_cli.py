"""Every bad input gets one clear line and exit status 2, before any model loads, and leaves no output behind:
invalid numbers (never silently replaced), unusable paths, corrupt or pickled weights, bad files, broken pipes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from t2i_prompt.cli import main

PROMPT = "a red circle to the left of a blue square"


def run_cli(argv, capsys):
    """(exit status, stderr lines) of one CLI call; argparse-level errors exit through SystemExit."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line or "Traceback" in line]
    return code, err


# ---- class 1: invalid values are errors naming the option and its range ----------------------------------------
@pytest.mark.parametrize("argv, needle", [
    (["generate", PROMPT, "--steps", "0"], "argument --steps: must be an integer in [1, 1000], got 0"),
    (["generate", PROMPT, "--height", "0"], "argument --height: must be an integer in [8, 8192], got 0"),
    (["generate", PROMPT, "--width", "-32"], "argument --width"),
    (["generate", PROMPT, "--guidance", "inf"], "argument --guidance: must be a finite number in [0, 100], got inf"),
    (["generate", PROMPT, "--guidance", "nan"], "got nan"),
    (["generate", PROMPT, "--guidance", "-1"], "argument --guidance"),
    (["generate", PROMPT, "--seed", "-1"], "argument --seed: must be an integer seed in [0, 18446744073709551615]"),
    (["generate", PROMPT, "--seed", str(2**64)], "argument --seed"),
    (["generate", PROMPT, "--seed", str(2**70)], "argument --seed"),
    (["generate", PROMPT, "--num-images", "0"], "argument --num-images"),
    (["generate", PROMPT, "--sr-delta", "nan", "--region", "0,0,1,1:a cat"], "argument --sr-delta"),
    (["generate", PROMPT, "--lpa-window", "0", "inf"], "argument --lpa-window"),
    (["generate", PROMPT, "--device", "tpu"], "argument --device: must be one of cpu, cuda, cuda:N, mps, got 'tpu'"),
    (["generate", PROMPT, "--dtype", "fp8"], "argument --dtype: invalid choice: 'fp8'"),
    (["generate", PROMPT, "--region", "0,0,nan,1:a cat"], "four finite numbers"),
    (["rewrite", PROMPT, "-k", "0"], "argument -k: must be an integer in [1, 64], got 0"),
    (["rewrite", PROMPT, "-k", "-1"], "argument -k"),
    (["run", PROMPT, "-k", "0"], "argument -k"),
    (["shapes", "eval", "--benchmark", "single", "--steps", "0"], "argument --steps"),
    (["shapes", "eval", "--benchmark", "single", "--seeds", "0"], "argument --seeds"),
    (["score", "--prompt", "a", "x.png", "--batch-size", "0"], "argument --batch-size"),
    (["score", "--prompt", "a", "x.png", "--reward", "clipp"], "cannot read it from character 0"),
    (["generate", PROMPT, "--stepz", "3"], "unrecognized arguments: --stepz"),
    (["generate", PROMPT, "--step", "3"], "unrecognized arguments: --step"),  # no prefix matching
])
def test_invalid_values_are_one_line_errors(argv, needle, capsys, tmp_path):
    code, err = run_cli([*argv, *(["--out", str(tmp_path / "out")] if argv[0] in ("generate", "run") else [])], capsys)
    assert code == 2
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out").exists()


# ---- class 2: paths and files ------------------------------------------------------------------------------------
def test_out_that_is_a_file_or_under_a_file(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, err = run_cli(["generate", PROMPT, "--out", str(blocker)], capsys)
    assert code == 2 and "is a file; give a directory" in err[0]
    code, err = run_cli(["generate", PROMPT, "--out", str(blocker / "sub")], capsys)
    assert code == 2 and f"lies under the file {blocker}" in err[0]
    assert blocker.read_text() == "x"


@pytest.fixture()
def model_copy(tmp_path, tiny_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_path("pixel"), target)
    return target


@pytest.mark.parametrize("how", ["zero", "half"])
def test_corrupt_safetensors_name_the_file(model_copy, how, capsys, tmp_path):
    weights = model_copy / "unet" / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(b"" if how == "zero" else data[: len(data) // 2])
    code, err = run_cli(["generate", "a cat", "--model", str(model_copy), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and f"corrupt or truncated file: {weights}" in err[0]
    assert not (tmp_path / "out").exists()


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_in_a_model_folder_is_refused_without_suggesting_unsafe_loading(model_copy, capsys, tmp_path):
    unet = model_copy / "unet"
    (unet / "diffusion_pytorch_model.safetensors").unlink()
    torch.save({"x": _Evil()}, unet / "diffusion_pytorch_model.bin")
    code, err = run_cli(["generate", "a cat", "--model", str(model_copy), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "Refusing to load" in err[0] and "weights_only=False" not in err[0]


def test_bad_images_masks_and_prompt_files(tmp_path, capsys, monkeypatch):
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    code, err = run_cli(["score", "--prompt", "a", str(not_image), "--clip", "tiny:clip"], capsys)
    assert code == 2 and f"image {not_image} is not a readable image file" in err[0]
    code, err = run_cli(["repaint", PROMPT, "--mask", str(not_image), "--region-prompt", "a cat",
                         "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and f"--mask {not_image} is not a readable image file" in err[0]
    import t2i_prompt.rewards.base as base

    big = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(big)
    monkeypatch.setattr(base, "MAX_IMAGE_PIXELS", 1000)  # stands in for a decompression bomb
    code, err = run_cli(["score", "--prompt", "a", str(big), "--clip", "tiny:clip"], capsys)
    assert code == 2 and "over the limit of 1000 (a decompression bomb?)" in err[0]
    binary = tmp_path / "prompts.txt"
    binary.write_bytes(b"a red circle\n\x89PNG\x00\x01\n")
    code, err = run_cli(["run", "--prompts-file", str(binary), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"--prompts-file {binary}, line 2" in err[0]


def test_yaml_syntax_error_names_the_file(tmp_path):
    from t2i_prompt.config import parse_config
    from t2i_prompt.train.config import PreferenceConfig

    bad = tmp_path / "p.yaml"
    bad.write_text("rewards: [clip\nnum_candidates: 4\n")
    with pytest.raises(ValueError, match=f"Config file {bad} is not valid YAML at line"):
        parse_config(PreferenceConfig, ["--config", str(bad)])


def test_debug_shows_the_traceback(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"`prompt\[0\]` is empty"):
        main(["--debug", "generate", " ", "--out", str(tmp_path / "o")])
    assert main(["generate", " ", "--out", str(tmp_path / "o")]) == 2


def test_output_into_a_closed_pipe_is_not_a_traceback():
    """``... --json | head``: the reader leaves early; exit 0, nothing on stderr (the pipe's real BrokenPipeError)."""
    script = ("from t2i_prompt.cli.boundary import run_with_boundary; import sys; "
              "sys.exit(run_with_boundary(lambda: print('x' * 2_000_000), 't2i-prompt'))")
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -c \"{script}\" | head -c 1"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "x" and proc.stderr == ""


# ---- class 3: training configs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, needle", [
    ({"reward_models": {"clipp": "tiny:clip"}}, "reward_models names ['clipp'], which are not in rewards"),
    ({"rewards": ["clip", "qualty"]}, "reward 'qualty': cannot read it"),
    ({"max_prompts": 0}, "max_prompts=0 must be >= 1"),
    ({"max_prompts": -1}, "max_prompts=-1 must be >= 1"),
    ({"sample_temperature": float("nan")}, "sample_temperature=nan must be a finite number > 0"),
])
def test_preference_config_errors(overrides, needle):
    from t2i_prompt.train.config import PreferenceConfig

    with pytest.raises(ValueError) as err:
        PreferenceConfig(**overrides)
    assert needle in str(err.value)


@pytest.mark.parametrize("overrides, needle", [
    ({"template": "{prompt} {style} Rephrase:"}, "uses unknown field(s) ['style']"),
    ({"max_length": 0}, "max_length=0 must be >= 1"),
])
def test_policy_config_errors(overrides, needle):
    from t2i_prompt.train.config import SFTTrainConfig

    with pytest.raises(ValueError) as err:
        SFTTrainConfig(output_dir="unused", **overrides)
    assert needle in str(err.value)


def test_numeric_chosen_is_an_error_naming_the_row():
    import datasets

    from t2i_prompt.train.data import validate_preferences

    ds = datasets.Dataset.from_dict({"prompt": ["a", "a"], "chosen": [1, 3], "rejected": ["c", "c"]})
    with pytest.raises(ValueError, match="row 0: column 'chosen' holds int 1, not text"):
        validate_preferences(ds)
