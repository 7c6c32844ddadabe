"""Issue class 1: zero, negative, NaN, infinite and out-of-range values are one-line errors naming the option
and its range (never silently replaced by a default), before any model loads and with no output left behind."""

from __future__ import annotations

import pytest
from helpers import run_cli

PROMPT = "a red circle to the left of a blue square"


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
