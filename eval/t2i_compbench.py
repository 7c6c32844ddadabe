"""T2I-CompBench(++) evaluation: ``t2i-prompt compbench`` as a script (for ``torchrun`` / ``accelerate launch``).

    python eval/t2i_compbench.py --config eval/configs/compbench_shapes.yaml
    python eval/t2i_compbench.py run --model shapes --categories color spatial numeracy --images-per-prompt 2 --out DIR
    torchrun --nproc_per_node 8 eval/t2i_compbench.py --config eval/configs/compbench_sd2.yaml

Each process takes prompts RANK, RANK+WORLD_SIZE, ...; rank 0 writes the merged files. ``--config FILE`` expands a
YAML file into flags (``t2i_prompt.cli.compbench.config_argv``); flags after it override.
"""

from __future__ import annotations

import sys

from t2i_prompt.cli import main
from t2i_prompt.cli.boundary import run_with_boundary


def argv_of(args: list[str]) -> list[str]:
    if args[:1] == ["--config"] and len(args) > 1:
        from t2i_prompt.cli.compbench import config_argv

        return ["compbench", *config_argv(args[1]), *args[2:]]
    return ["compbench", *args]


if __name__ == "__main__":
    holder: list[list[str]] = []
    status = run_with_boundary(lambda: holder.append(argv_of(sys.argv[1:])), "t2i_compbench.py")
    sys.exit(status if status else main(holder[0]))
