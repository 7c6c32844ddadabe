"""SFT of a prompt rewriter with trl's ``SFTTrainer`` (loss on the completion only), full or LoRA."""

from __future__ import annotations

from .config import SFTTrainConfig
from .policy import TrainResult, result_from_trainer


def run_sft(config: SFTTrainConfig, callbacks=()) -> TrainResult:
    """Load the policy and the pairs, train, save the final model (LoRA merged) to ``config.output_dir``."""
    from trl import SFTTrainer

    from .data import load_records, to_sft_dataset
    from .policy import load_policy, resolve_resume, save_final, trainer_kwargs

    model, tokenizer = load_policy(config.model_name_or_path)
    if config.prompt_format == "chat" and tokenizer.chat_template is None:
        raise ValueError(f"prompt_format=chat but {config.model_name_or_path!r} has no chat template; use "
                         "prompt_format=rephrase or a chat model.")
    train_dataset = to_sft_dataset(load_records(config.dataset, config.dataset_split), config)
    checkpoint = resolve_resume(config, model)
    trainer = SFTTrainer(**trainer_kwargs(config, model, tokenizer, train_dataset, callbacks))
    trainer.train(resume_from_checkpoint=checkpoint)
    output_dir = save_final(trainer, config.output_dir, merge_lora=config.merge_lora_on_save)
    return result_from_trainer(trainer, output_dir)
