"""T2I-CompBench(++) evaluation: ``t2i-prompt compbench`` as a script (for ``torchrun`` / ``accelerate launch``).

    python eval/t2i_compbench.py run --model shapes --categories color spatial numeracy --images-per-prompt 2 --out DIR
    torchrun --nproc_per_node 8 eval/t2i_compbench.py run --preset compbench-sd2 --out runs/sd2
    python eval/t2i_compbench.py run $(python -c "import yaml,sys;print(' '.join(yaml.safe_load(open(sys.argv[1]))['args']))" eval/configs/compbench_sd2.yaml)

Each process takes prompts RANK, RANK+WORLD_SIZE, ...; rank 0 writes the merged files.
"""

from __future__ import annotations

import sys

from t2i_prompt.cli import main

if __name__ == "__main__":
    sys.exit(main(["compbench", *sys.argv[1:]]))
