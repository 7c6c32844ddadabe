"""The shapes rewriter's SFT resumes a killed run on the same trajectory (StepCheckpoints under ``<out>.run``)."""

import pytest
from safetensors.torch import load_file

from t2i_prompt.shapes.train_scorers import train_rewriter


class Killed(Exception):
    pass


def test_killed_rewriter_run_resumes_to_the_same_weights(tmp_path):
    settings = dict(steps=4, batch=4, split="train", copy_noise=True, checkpoint_every=2)
    train_rewriter(tmp_path / "whole", log=lambda msg: None, **settings)

    def kill_at_last_step(msg):
        if msg.startswith("rewriter step 3"):
            raise Killed

    with pytest.raises(Killed):
        train_rewriter(tmp_path / "killed", log=kill_at_last_step, **settings)
    run_dir = tmp_path / "killed.run"
    assert (run_dir / "LATEST").read_text() == "checkpoint-00000002" and not (tmp_path / "killed").exists()
    messages = []
    train_rewriter(tmp_path / "killed", log=messages.append, **settings)
    assert messages[0].startswith(f"resumed from {run_dir / 'checkpoint-00000002'} at step 2")
    assert not run_dir.exists()  # removed once the weights are written
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert whole.keys() == resumed.keys() and all((whole[k] == resumed[k]).all() for k in whole)

    # different settings never resume someone else's run
    with pytest.raises(Killed):
        train_rewriter(tmp_path / "other", log=kill_at_last_step, **settings)
    with pytest.raises(ValueError, match="pass the same settings to resume"):
        train_rewriter(tmp_path / "other", log=lambda msg: None, **(settings | {"lr": 1e-3}))


def test_noisy_pairs_longer_than_the_context_train_clean(tmp_path, monkeypatch):
    import t2i_prompt.shapes.copy_noise as copy_noise

    settings = dict(steps=1, batch=4, split="train", checkpoint_every=10, log=lambda msg: None)
    train_rewriter(tmp_path / "clean", copy_noise=False, **settings)
    monkeypatch.setattr(copy_noise, "add_copy_noise", lambda casual, canonical, rng: (casual + " zq" * 200, canonical))
    train_rewriter(tmp_path / "long", copy_noise=True, **settings)
    clean = load_file(str(tmp_path / "clean" / "model.safetensors"))
    long = load_file(str(tmp_path / "long" / "model.safetensors"))
    assert all((clean[k] == long[k]).all() for k in clean)  # every over-long row fell back to its clean pair
