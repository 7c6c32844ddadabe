"""Iterative DPO: rounds of (sample candidates with the current policy -> pairs -> DPO/Sem-DPO); the policy trained
in round r samples the candidates of round r+1.

    accelerate launch --config_file training/accelerate/cpu.yaml training/loop.py --config training/configs/loop_tiny.yaml

Library code: ``t2i_prompt.train.loop.run_loop``.
"""

from __future__ import annotations

from t2i_prompt.cli.boundary import config_script, run_script


def report(config, rounds) -> str:
    return "\n".join(f"round {r.round}: policy {r.policy} -> {r.pairs} pairs -> {r.model_dir}" for r in rounds)


main, make_parser = config_script("t2i_prompt.train.config:LoopConfig", "t2i_prompt.train.loop:run_loop", report)

if __name__ == "__main__":
    run_script(main)
