"""SFT of a prompt rewriter with trl's ``SFTTrainer`` (loss on the completion only), full or LoRA."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import SFTTrainConfig


@dataclass
class TrainResult:
    """What a training run produced: the final model directory and the logged losses (one per logging step)."""

    output_dir: Path
    global_step: int
    losses: list[float] = field(default_factory=list)
    log_history: list[dict] = field(default_factory=list)


def result_from_trainer(trainer, output_dir: Path) -> TrainResult:
    history = list(trainer.state.log_history)
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return TrainResult(output_dir=output_dir, global_step=trainer.state.global_step, losses=losses,
                       log_history=history)


def run_sft(config: SFTTrainConfig, callbacks=()) -> TrainResult:
    """Load the policy and the pairs, train, save the final model (LoRA merged) to ``config.output_dir``."""
    from trl import SFTTrainer

    from .data import load_records, to_sft_dataset
    from .policy import CheckpointMetadataCallback, load_policy, lora_config, model_fingerprint, resolve_resume, \
        save_final

    model, tokenizer = load_policy(config.model_name_or_path)
    if config.prompt_format == "chat" and tokenizer.chat_template is None:
        raise ValueError(f"prompt_format=chat but {config.model_name_or_path!r} has no chat template; use "
                         "prompt_format=rephrase or a chat model.")
    train_dataset = to_sft_dataset(load_records(config.dataset, config.dataset_split), config)
    checkpoint = resolve_resume(config, model)
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=lora_config(config),
        callbacks=[CheckpointMetadataCallback(config.model_name_or_path, model_fingerprint(model)), *callbacks],
    )
    trainer.train(resume_from_checkpoint=checkpoint)
    output_dir = save_final(trainer, config.output_dir, merge_lora=config.merge_lora_on_save)
    return result_from_trainer(trainer, output_dir)
