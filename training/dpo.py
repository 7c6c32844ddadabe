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



def main(argv: list[str] | None = None) -> None:
    from t2i_prompt.train.config import DPOTrainConfig, parse_config
    from t2i_prompt.train.dpo import run_dpo

    config = parse_config(DPOTrainConfig, argv)
    result = run_dpo(config)
    print(f"{config.loss} done: {result.global_step} steps, final loss {result.losses[-1]:.4f} -> {result.output_dir}")


def make_parser():
    from t2i_prompt.train.config import DPOTrainConfig, make_parser as config_parser

    return config_parser(DPOTrainConfig)


if __name__ == "__main__":
    main()
