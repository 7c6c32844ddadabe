"""Iterative DPO: rounds of (sample candidates with the current policy -> pairs -> DPO/Sem-DPO); the policy trained
in round r samples the candidates of round r+1.

    accelerate launch --config_file training/accelerate/cpu.yaml training/loop.py --config training/configs/loop_tiny.yaml

Library code: ``t2i_prompt.train.loop.run_loop``.
"""

from __future__ import annotations



def main(argv: list[str] | None = None) -> None:
    from t2i_prompt.train.config import LoopConfig, parse_config
    from t2i_prompt.train.loop import run_loop

    rounds = run_loop(parse_config(LoopConfig, argv))
    for r in rounds:
        print(f"round {r.round}: policy {r.policy} -> {r.pairs} pairs -> {r.model_dir}")


def make_parser():
    from t2i_prompt.train.config import LoopConfig, make_parser as config_parser

    return config_parser(LoopConfig)


if __name__ == "__main__":
    main()
