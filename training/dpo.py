"""DPO or Sem-DPO (``--loss semdpo``) of a prompt rewriter on preference pairs (prompt, chosen, rejected).

    accelerate launch --config_file training/accelerate/cpu.yaml training/dpo.py --config training/configs/dpo_tiny.yaml
    accelerate launch --config_file training/accelerate/cpu.yaml training/dpo.py \
        --config training/configs/semdpo_tiny.yaml --semdpo_alpha 2.0
    accelerate launch --config_file training/accelerate/multi_gpu.yaml training/dpo.py \
        --config training/configs/semdpo_tiny.yaml --use_lora true

Any config key can be overridden as ``--key value``; ``--help`` lists them all. Library code:
``t2i_prompt.train.dpo.run_dpo`` and ``t2i_prompt.train.semdpo.SemDPOTrainer``.
"""

from __future__ import annotations

from t2i_prompt.cli.boundary import config_script, run_script


def report(config, result) -> str:
    return result.summary(config.loss)


main, make_parser = config_script("t2i_prompt.train.config:DPOTrainConfig", "t2i_prompt.train.dpo:run_dpo", report)

if __name__ == "__main__":
    run_script(main)
