"""Supervised fine-tuning of a prompt rewriter on (plain prompt -> refined prompt) pairs.

    accelerate launch --config_file training/accelerate/cpu.yaml training/sft.py --config training/configs/sft_tiny.yaml
    accelerate launch --config_file training/accelerate/single_gpu.yaml training/sft.py \
        --config training/configs/sft_tiny.yaml --use_lora true --max_steps 200

Any config key can be overridden as ``--key value``; ``--help`` lists them all. Library code:
``t2i_prompt.train.sft.run_sft``.
"""

from __future__ import annotations



def main(argv: list[str] | None = None) -> None:
    from t2i_prompt.train.config import SFTTrainConfig, parse_config
    from t2i_prompt.train.sft import run_sft

    result = run_sft(parse_config(SFTTrainConfig, argv))
    print(f"SFT done: {result.global_step} steps, final loss {result.losses[-1]:.4f} -> {result.output_dir}")


def make_parser():
    from t2i_prompt.train.config import SFTTrainConfig, make_parser as config_parser

    return config_parser(SFTTrainConfig)


if __name__ == "__main__":
    main()
