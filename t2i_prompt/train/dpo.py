"""DPO (trl's ``DPOTrainer``) or Sem-DPO (``SemDPOTrainer``) on preference pairs, full or LoRA."""

from __future__ import annotations

from .config import DPOTrainConfig
from .policy import TrainResult, result_from_trainer


def build_dpo_trainer(config: DPOTrainConfig, train_dataset=None, callbacks=(), similarity_fn=None):
    """The trainer of ``config`` (not yet trained) plus the checkpoint to resume from, as ``(trainer, checkpoint)``.

    Reference model (docs/environment.md gotcha 5): LoRA uses the base model with adapters disabled
    (``ref_model=None``); full fine-tuning loads a second, frozen copy of the policy checkpoint.
    ``train_dataset`` (already in trl format) overrides ``config.dataset``; ``similarity_fn(a, b) -> cos`` overrides
    ``config.semdpo_embedding_model`` (tests inject a fixed one).
    """
    from trl import DPOTrainer

    from .data import completion_text, load_records, to_preference_dataset
    from .policy import load_policy, resolve_resume, trainer_kwargs
    from .semdpo import SemDPOTrainer, add_semdpo_columns, text_similarity_fn

    model, tokenizer = load_policy(config.model_name_or_path)
    ref_model = None if config.use_lora else load_policy(config.model_name_or_path)[0].eval()
    if train_dataset is None:
        train_dataset = to_preference_dataset(load_records(config.dataset, config.dataset_split), config)
    kwargs = {}
    trainer_cls = DPOTrainer
    if config.loss == "semdpo":
        similarity_fn = similarity_fn or text_similarity_fn(config.semdpo_embedding_model)
        train_dataset = add_semdpo_columns(train_dataset, similarity_fn, config.semdpo_alpha,
                                           original_column="original", chosen_text=completion_text)
        trainer_cls, kwargs = SemDPOTrainer, {"normalize_weights": config.semdpo_normalize_weights}
    train_dataset = train_dataset.remove_columns([c for c in ("original",) if c in train_dataset.column_names])
    checkpoint = resolve_resume(config, model)
    trainer = trainer_cls(ref_model=ref_model, **trainer_kwargs(config, model, tokenizer, train_dataset, callbacks),
                          **kwargs)
    return trainer, checkpoint


def run_dpo(config: DPOTrainConfig, train_dataset=None, callbacks=(), similarity_fn=None) -> TrainResult:
    """Train DPO/Sem-DPO and save the final policy (LoRA merged) to ``config.output_dir``."""
    from .policy import save_final

    trainer, checkpoint = build_dpo_trainer(config, train_dataset, callbacks, similarity_fn)
    trainer.train(resume_from_checkpoint=checkpoint)
    output_dir = save_final(trainer, config.output_dir, merge_lora=config.merge_lora_on_save)
    return result_from_trainer(trainer, output_dir)
