"""Issue class 2: one error boundary: unusable paths, corrupt or pickled weights, bad images, masks and prompt
files, YAML syntax errors and closed pipes end in one line (exit 2 or 0), never a traceback; --debug shows it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from helpers import run_cli
from PIL import Image

from t2i_prompt.cli import main

PROMPT = "a red circle to the left of a blue square"


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
