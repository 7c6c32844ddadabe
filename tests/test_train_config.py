"""Training configs: YAML + CLI parsing, CPU-safe defaults, help text, and clear errors on bad input."""

import dataclasses

import datasets
import pytest

from t2i_prompt.train.config import (DPOTrainConfig, LoopConfig, PolicyModelFields, PreferenceConfig, SFTTrainConfig,
                                     parse_config)
from t2i_prompt.train.data import to_preference_dataset, validate_pairs, validate_preferences


def test_yaml_then_cli_overrides(tmp_path):
    cfg = tmp_path / "sft.yaml"
    cfg.write_text("model_name_or_path: tiny:gpt2\nlearning_rate: 1e-3\nmax_steps: 3\nlora_target_modules: [c_attn]\n")
    c = parse_config(SFTTrainConfig, ["--config", str(cfg), "--max_steps", "7", "--use_lora", "true"])
    assert (c.model_name_or_path, c.learning_rate, c.max_steps, c.use_lora) == ("tiny:gpt2", 1e-3, 7, True)
    assert c.lora_target_modules == ["c_attn"]


def test_cpu_safe_defaults():
    import torch

    c = parse_config(DPOTrainConfig, [])
    if not torch.cuda.is_available():
        assert c.use_cpu is True and c.bf16 is False and c.gradient_checkpointing is False


@pytest.mark.parametrize("argv, where", [(["--semdpo_alpa", "2"], "the command line")])
def test_unknown_cli_key_lists_valid_keys(argv, where):
    with pytest.raises(ValueError) as err:
        parse_config(DPOTrainConfig, argv)
    msg = str(err.value)
    assert "'semdpo_alpa'" in msg and where in msg and "did you mean semdpo_alpha" in msg
    assert "Valid keys:" in msg and "listed by --help" in msg and "\n" not in msg  # trl's 150 keys: one line


def test_argparse_prefix_matching_is_off():
    """``--learning_rat`` is not taken as ``learning_rate`` (as YAML rejects it too)."""
    with pytest.raises(ValueError, match="'learning_rat' \\(did you mean learning_rate"):
        parse_config(DPOTrainConfig, ["--learning_rat", "1e-3"])


def test_unknown_yaml_key_lists_valid_keys(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("num_candidate: 4\n")
    with pytest.raises(ValueError, match=r"Unknown PreferenceConfig key\(s\) in .*p.yaml: 'num_candidate' "
                                         r"\(did you mean num_candidates"):
        parse_config(PreferenceConfig, ["--config", str(cfg)])


def test_negative_alpha_rejected():
    with pytest.raises(ValueError, match="semdpo_alpha=-1.0 must be >= 0"):
        parse_config(DPOTrainConfig, ["--loss", "semdpo", "--semdpo_alpha", "-1"])


def test_bad_values_rejected():
    with pytest.raises(ValueError, match="prompt_format='xml'"):
        SFTTrainConfig(prompt_format="xml")
    with pytest.raises(ValueError, match="must contain"):
        SFTTrainConfig(template="Rephrase:")
    with pytest.raises(ValueError, match="floors name metrics \\['aes'\\]"):
        PreferenceConfig(strategy="floors", floors={"aes": 1.0})
    with pytest.raises(ValueError, match="reward_weights has 1 values for 2 rewards"):
        PreferenceConfig(rewards=["clip", "quality"], reward_weights=[1.0])
    with pytest.raises(ValueError, match="dpo_config is required"):
        LoopConfig(preference_config="p.yaml")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_config(SFTTrainConfig, ["--config", "/nonexistent.yaml"])


def test_floors_parsed_from_cli_json():
    c = parse_config(PreferenceConfig, ["--strategy", "floors", "--floors", '{"clip": 0.2}', "--rewards", "clip"])
    assert c.floors == {"clip": 0.2}


@pytest.mark.parametrize("cls", [PolicyModelFields, SFTTrainConfig, DPOTrainConfig, PreferenceConfig, LoopConfig])
def test_every_field_has_help(cls):
    missing = [f.name for f in dataclasses.fields(cls) if f.init and not f.metadata.get("help")]
    assert missing == []


# ------------------------------------------------------------------------------------------------ data errors
def test_missing_columns_named():
    ds = datasets.Dataset.from_list([{"prompt": "a cat", "good": "x", "rejected": "y"}])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['chosen'\]; it has \['prompt', 'good', 'rejected'\]"):
        validate_preferences(ds)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['refined'\]"):
        validate_pairs(ds, "prompt", "refined")


def test_empty_and_identical_pairs_rejected():
    empty = datasets.Dataset.from_list([{"prompt": "a cat", "chosen": "a cat, 8k", "rejected": "a dog"},
                                        {"prompt": "a dog", "chosen": "  ", "rejected": "a dog"}])
    with pytest.raises(ValueError, match="row 1: 'chosen' is empty"):
        validate_preferences(empty)
    same = datasets.Dataset.from_list([{"prompt": "a cat", "chosen": "a cat, 8k", "rejected": "a cat, 8k "}])
    with pytest.raises(ValueError, match=r"rows \[0\] have chosen == rejected"):
        validate_preferences(same)
    pairs = datasets.Dataset.from_list([{"prompt": "a cat", "refined": ""}])
    with pytest.raises(ValueError, match="row 0: column 'refined' is empty"):
        validate_pairs(pairs, "prompt", "refined")


def test_preference_formatting_rephrase_and_chat():
    ds = datasets.Dataset.from_list([{"prompt": "a cat", "chosen": "a cat, 8k", "rejected": "a dog"}])
    rephrase = to_preference_dataset(ds, DPOTrainConfig())[0]
    assert rephrase == {"original": "a cat", "prompt": "a cat Rephrase:", "chosen": " a cat, 8k",
                        "rejected": " a dog"}
    chat = to_preference_dataset(ds, DPOTrainConfig(prompt_format="chat", system_prompt="Be vivid."))[0]
    assert chat["prompt"] == [{"role": "system", "content": "Be vivid."}, {"role": "user", "content": "a cat"}]
    assert chat["chosen"] == [{"role": "assistant", "content": "a cat, 8k"}]
