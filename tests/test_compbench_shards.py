"""A 2-process ``torchrun`` CompBench run (prompts split by RANK / WORLD_SIZE, merged by rank 0) writes exactly the
files of a 1-process run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_compbench_run import PROMPTS, tree, write_prompt_dir

ROOT = Path(__file__).resolve().parent.parent


def args(prompt_dir, out):
    return ["run", "--model", "shapes", "--prompts", str(prompt_dir), "--categories", "color", "spatial",
            "--images-per-prompt", "2", "--out", str(out), "--no-progress"]


def test_torchrun_two_processes_equal_one(tmp_path):
    from t2i_prompt.cli import main

    prompt_dir = write_prompt_dir(tmp_path / "prompts", {k: PROMPTS[k] + PROMPTS[k][:1] for k in ("color", "spatial")})
    one = tmp_path / "one" / "run"
    assert main(["compbench", *args(prompt_dir, one)]) == 0
    two = tmp_path / "two" / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(ROOT / "eval" / "t2i_compbench.py"),
                           *args(prompt_dir, two)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert tree(two) == tree(one)
    rendered = sorted(int(line.split("(")[1].split()[0]) for line in proc.stdout.splitlines()
                      if "images rendered" in line)
    assert rendered == [4, 8]  # rank 0: prompts 0 and 2 of each list, rank 1: prompt 1
    assert len([p for p in tree(one) if "/samples/" in p]) == 12
