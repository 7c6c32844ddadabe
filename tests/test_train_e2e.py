"""End-to-end training on tiny:gpt2 (CPU, seconds each): SFT lowers the loss, DPO/Sem-DPO raise the margin,
resume continues exactly, and resuming with another model is refused."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from t2i_prompt.models.tiny import tiny_corpus
from t2i_prompt.train.config import DPOTrainConfig, SFTTrainConfig
from t2i_prompt.train.dpo import build_dpo_trainer, run_dpo
from t2i_prompt.train.sft import run_sft

COMMON = {"report_to": "none", "disable_tqdm": True, "per_device_train_batch_size": 8, "logging_steps": 1,
          "seed": 0}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    corpus = tiny_corpus()
    pairs = [{"prompt": corpus[i], "refined": corpus[i + 1]} for i in range(0, len(corpus), 2)][:48]
    prefs = [{"prompt": corpus[i], "chosen": corpus[i + 1], "rejected": corpus[i].upper()}
             for i in range(0, len(corpus), 2)][:32]
    (root / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in pairs))
    (root / "prefs.jsonl").write_text("\n".join(json.dumps(r) for r in prefs))
    return root


def test_sft_lowers_training_loss_and_saves_rewriter(data, tmp_path):
    config = SFTTrainConfig(dataset=str(data / "pairs.jsonl"), output_dir=str(tmp_path / "sft"), max_steps=12,
                            learning_rate=3e-3, save_strategy="no", **COMMON)
    result = run_sft(config)
    assert result.global_step == 12 and len(result.losses) == 12
    first, last = sum(result.losses[:3]) / 3, sum(result.losses[-3:]) / 3
    assert last < first - 0.3, result.losses
    assert (tmp_path / "sft" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "sft" / "t2i_rewriter.json").read_text()) == {"chat": False,
                                                                                 "template": "{prompt} Rephrase:"}


def test_sft_lora_merges_on_save(data, tmp_path):
    config = SFTTrainConfig(dataset=str(data / "pairs.jsonl"), output_dir=str(tmp_path / "lora"), max_steps=3,
                            learning_rate=3e-3, save_strategy="no", use_lora=True,
                            lora_target_modules=["c_attn"], **COMMON)
    result = run_sft(config)
    saved = load_file(str(tmp_path / "lora" / "model.safetensors"))
    assert not any("lora" in k for k in saved)  # merged: a plain GPT-2 checkpoint
    assert result.losses[-1] < result.losses[0]


class StopAt(TrainerCallback):
    """Simulates a kill: raises once training reaches ``step``."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"killed at step {self.step}")


def test_sft_resume_matches_uninterrupted_run(data, tmp_path):
    def config(out, **kw):
        return SFTTrainConfig(dataset=str(data / "pairs.jsonl"), output_dir=str(out), max_steps=6, save_steps=3,
                              learning_rate=3e-3, **COMMON, **kw)

    full = run_sft(config(tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        run_sft(config(tmp_path / "killed"), callbacks=[StopAt(4)])
    assert (tmp_path / "killed" / "checkpoint-3").is_dir() and not (tmp_path / "killed" / "model.safetensors").exists()
    resumed = run_sft(config(tmp_path / "killed", resume_from_checkpoint="true"))
    assert resumed.global_step == 6
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    # the resumed run logs steps 4..6 with the uninterrupted run's losses
    assert resumed.losses[-3:] == pytest.approx(full.losses[-3:], abs=1e-5)

    with pytest.raises(ValueError, match=r"trained from model 'tiny:gpt2'.*model_name_or_path is 'tiny:chat'"):
        run_sft(config(tmp_path / "killed", resume_from_checkpoint="true", model_name_or_path="tiny:chat"))


def test_resume_without_checkpoint_is_clear(data, tmp_path):
    config = SFTTrainConfig(dataset=str(data / "pairs.jsonl"), output_dir=str(tmp_path / "empty"), max_steps=1,
                            resume_from_checkpoint="true", **COMMON)
    with pytest.raises(FileNotFoundError, match="holds no checkpoint-<step> directory"):
        run_sft(config)


def _margin(trainer) -> float:
    return trainer.evaluate(eval_dataset=trainer.train_dataset)["eval_rewards/margins"]


@pytest.mark.parametrize("loss, use_lora", [("dpo", False), ("semdpo", False), ("semdpo", True)])
def test_dpo_raises_chosen_minus_rejected_margin(data, tmp_path, loss, use_lora):
    config = DPOTrainConfig(dataset=str(data / "prefs.jsonl"), output_dir=str(tmp_path / loss), max_steps=8,
                            learning_rate=3e-3 if use_lora else 1e-3, save_strategy="no", loss=loss,
                            semdpo_alpha=2.0, use_lora=use_lora, lora_target_modules=["c_attn", "c_proj"], **COMMON)
    similarity = lambda a, b: torch.linspace(0.2, 1.0, len(a))  # noqa: E731  (fixed, so the test needs no MiniLM)
    trainer, checkpoint = build_dpo_trainer(config, similarity_fn=similarity)
    assert checkpoint is None
    before = _margin(trainer)
    trainer.train()
    after = _margin(trainer)
    assert abs(before) < 1e-6  # policy == reference before training
    assert after > before + 0.05, (before, after)
    if loss == "semdpo":
        logged = [h for h in trainer.state.log_history if "semdpo/weight_mean" in h]
        assert logged and all(0 < h["semdpo/weight_min"] <= h["semdpo/weight_mean"] <= 1 for h in logged)


def test_dpo_resume_refuses_other_model(data, tmp_path):
    config = DPOTrainConfig(dataset=str(data / "prefs.jsonl"), output_dir=str(tmp_path / "dpo"), max_steps=2,
                            save_steps=2, **COMMON)
    result = run_dpo(config)
    assert (tmp_path / "dpo" / "checkpoint-2" / "t2i_prompt_checkpoint.json").is_file()
    assert result.global_step == 2
    other = DPOTrainConfig(dataset=str(data / "prefs.jsonl"), output_dir=str(tmp_path / "dpo"), max_steps=4,
                           resume_from_checkpoint=str(tmp_path / "dpo" / "checkpoint-2"),
                           model_name_or_path="tiny:chat", **COMMON)
    with pytest.raises(ValueError, match="Resume with model_name_or_path='tiny:gpt2'"):
        run_dpo(other)
