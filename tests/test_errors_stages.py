"""Issue class 4: a pipeline stage is done only when its recorded inputs say so; missing tokenizer files are an
error at load."""

from __future__ import annotations

import pytest


def test_pipeline_stages_rerun_when_their_inputs_change(tmp_path):
    """training/shapes_pipeline.py: a stage is done only when its recorded config and input fingerprints match."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "shapes_pipeline", Path(__file__).parent.parent / "training" / "shapes_pipeline.py")
    pipeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline)

    class Config:
        def __init__(self, lr):
            self.lr = lr

        def to_dict(self):
            return {"lr": self.lr, "output_dir": "ignored"}

    data, model_dir, trained = tmp_path / "pairs.jsonl", tmp_path / "sft", []
    data.write_text('{"prompt": "a", "refined": "b"}\n')

    def train(config):
        trained.append(config.lr)
        model_dir.mkdir(exist_ok=True)
        (model_dir / "model.safetensors").write_bytes(b"weights")

    pipeline.run_stage(model_dir, Config(1e-3), [data], train)
    pipeline.run_stage(model_dir, Config(1e-3), [data], train)  # same settings and inputs: nothing to do
    assert trained == [1e-3]
    pipeline.run_stage(model_dir, Config(5e-4), [data], train)  # another learning rate: trained again
    data.write_text('{"prompt": "a", "refined": "c"}\n')
    pipeline.run_stage(model_dir, Config(5e-4), [data], train)  # other data under the same name: trained again
    assert trained == [1e-3, 5e-4, 5e-4]


def test_model_folder_without_tokenizer_is_an_error(tmp_path, tiny_path):
    import shutil

    from t2i_prompt.train.policy import load_policy

    folder = tmp_path / "policy"
    shutil.copytree(tiny_path("gpt2"), folder)
    for f in folder.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            f.unlink()
    with pytest.raises(FileNotFoundError, match="has no tokenizer files"):
        load_policy(str(folder))
