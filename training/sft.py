"""Supervised fine-tuning of a prompt rewriter on (plain prompt -> refined prompt) pairs.

    accelerate launch --config_file training/accelerate/cpu.yaml training/sft.py --config training/configs/sft_tiny.yaml
    accelerate launch --config_file training/accelerate/single_gpu.yaml training/sft.py \
        --config training/configs/sft_tiny.yaml --use_lora true --max_steps 200

Any config key can be overridden as ``--key value``; ``--help`` lists them all. Library code:
``t2i_prompt.train.sft.run_sft``.
"""

from __future__ import annotations

from t2i_prompt.cli.boundary import config_script, run_script


def report(config, result) -> str:
    return result.summary("SFT")


main, make_parser = config_script("t2i_prompt.train.config:SFTTrainConfig", "t2i_prompt.train.sft:run_sft", report)

if __name__ == "__main__":
    run_script(main)
