"""The policy LM around a trainer: loading (full or LoRA checkpoints), LoRA config, final save, safe resume.

Resume safety: every checkpoint gets ``t2i_prompt_checkpoint.json`` naming the model it was trained from and a
fingerprint of that model's architecture; resuming with another model is refused with both names in the message
(HF ``Trainer`` would otherwise load mismatching weights or fail deep inside ``load_state_dict``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

CHECKPOINT_META = "t2i_prompt_checkpoint.json"
_VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "architectures",
                         "pad_token_id", "use_cache"}


def load_policy(name: str):
    """``(model, tokenizer)`` for training: a full checkpoint, or base + LoRA adapter merged (fp32, train mode).

    A tokenizer without a pad token gets ``pad = eos`` (GPT-2 convention, as in Promptist).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models.loading import ensure_pad_token, require_tokenizer_files, resolve_model_path

    path = resolve_model_path(name)
    if (path / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(str(path)).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path))
    tokenizer = ensure_pad_token(AutoTokenizer.from_pretrained(str(require_tokenizer_files(path))))
    return model.float().train(), tokenizer


@dataclass
class TrainResult:
    """What a training run produced: the final model directory and the logged losses (one per logging step)."""

    output_dir: Path
    global_step: int
    losses: list[float] = field(default_factory=list)
    log_history: list[dict] = field(default_factory=list)

    def summary(self, what: str) -> str:
        return f"{what} done: {self.global_step} steps, final loss {self.losses[-1]:.4f} -> {self.output_dir}"


def result_from_trainer(trainer, output_dir: Path) -> TrainResult:
    history = list(trainer.state.log_history)
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return TrainResult(output_dir=output_dir, global_step=trainer.state.global_step, losses=losses,
                       log_history=history)


def trainer_kwargs(config, model, tokenizer, train_dataset, callbacks=()) -> dict[str, Any]:
    """The keyword arguments every trl trainer of the policy gets (SFT and DPO/Sem-DPO build the same way)."""
    return dict(model=model, args=config, train_dataset=train_dataset, processing_class=tokenizer,
                peft_config=lora_config(config),
                callbacks=[CheckpointMetadataCallback(config.model_name_or_path, model_fingerprint(model)),
                           *callbacks])


def lora_config(config) -> Any:
    """peft ``LoraConfig`` from the ``lora_*`` fields, or ``None`` for full fine-tuning."""
    if not config.use_lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.lora_target_modules, task_type="CAUSAL_LM")


def model_fingerprint(model) -> str:
    """A short hash of the architecture config (ignoring paths/versions), equal for the same model family+size."""
    config = {k: v for k, v in model.config.to_dict().items() if k not in _VOLATILE_CONFIG_KEYS}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class CheckpointMetadataCallback(TrainerCallback):
    """Writes ``t2i_prompt_checkpoint.json`` (model name + fingerprint) into every checkpoint directory."""

    def __init__(self, model_name: str, fingerprint: str):
        self.meta = {"model_name_or_path": model_name, "model_fingerprint": fingerprint}

    def on_save(self, args, state, control, **kwargs):
        from ..utils import atomic_write_json

        if state.is_world_process_zero:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if checkpoint.is_dir():
                atomic_write_json(checkpoint / CHECKPOINT_META, self.meta)
        return control


def resolve_resume(config, model) -> str | None:
    """The checkpoint to resume from (``resume_from_checkpoint``: a path, or ``true``/``last`` = newest in
    ``output_dir``), after checking it was trained from the same model; ``None`` starts fresh."""
    from transformers.trainer_utils import get_last_checkpoint

    value = config.resume_from_checkpoint
    if value in (None, "", "false", "False"):
        return None
    if str(value).lower() in ("true", "last"):
        out = Path(config.output_dir)
        checkpoint = get_last_checkpoint(str(out)) if out.is_dir() else None
        if checkpoint is None:
            raise FileNotFoundError(
                f"resume_from_checkpoint={value!r} but {out} holds no checkpoint-<step> directory; train without "
                "resume first, or pass a checkpoint path."
            )
    else:
        checkpoint = str(value)
        if not Path(checkpoint).is_dir():
            raise FileNotFoundError(f"resume_from_checkpoint={checkpoint!r} is not a directory.")
    check_checkpoint_model(Path(checkpoint), config.model_name_or_path, model_fingerprint(model))
    return checkpoint


def check_checkpoint_model(checkpoint: Path, model_name: str, fingerprint: str) -> None:
    """Refuse a checkpoint written while training a different model (name or architecture)."""
    meta_path = checkpoint / CHECKPOINT_META
    if not meta_path.is_file():
        raise ValueError(
            f"{checkpoint} has no {CHECKPOINT_META}, so it was not written by t2i-prompt training; cannot check "
            "it belongs to this model. Start a fresh run (unset resume_from_checkpoint)."
        )
    meta = json.loads(meta_path.read_text())
    if meta["model_name_or_path"] != model_name or meta["model_fingerprint"] != fingerprint:
        raise ValueError(
            f"Checkpoint {checkpoint} was trained from model {meta['model_name_or_path']!r} "
            f"(fingerprint {meta['model_fingerprint']}), but this run's model_name_or_path is {model_name!r} "
            f"(fingerprint {fingerprint}). Resume with model_name_or_path={meta['model_name_or_path']!r}, or use a "
            "new output_dir for a new model."
        )


def rewriter_settings(config) -> dict[str, Any]:
    """``t2i_rewriter.json`` content, so ``PromptRewriter.from_pretrained`` formats inputs as training did."""
    if config.prompt_format == "chat":
        return {"chat": True, "template": "{prompt}", "system_prompt": config.system_prompt}
    return {"chat": False, "template": config.template}


def save_final(trainer, output_dir: str | Path, merge_lora: bool = True) -> Path:
    """Save the trained policy (LoRA merged when asked), tokenizer and ``t2i_rewriter.json`` to ``output_dir``,
    loadable as a full model by ``PromptRewriter``."""
    from ..rewrite.rewriter import REWRITER_CONFIG
    from ..utils import atomic_write_json

    from peft import PeftModel

    output_dir = Path(output_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if trainer.accelerator.is_main_process:
        if isinstance(model, PeftModel) and merge_lora:
            import copy

            # merge a copy: the trainer's model keeps its adapter (e.g. for a later evaluate call)
            copy.deepcopy(model).merge_and_unload().save_pretrained(str(output_dir), safe_serialization=True)
        else:
            model.save_pretrained(str(output_dir), safe_serialization=True)
        trainer.processing_class.save_pretrained(str(output_dir))
        atomic_write_json(output_dir / REWRITER_CONFIG, rewriter_settings(trainer.args))
    trainer.accelerator.wait_for_everyone()
    return output_dir
