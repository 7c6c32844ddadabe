"""Issue class 5: no crash loses work: a kill at any rename of a checkpoint or dataset swap leaves one complete copy that the
restart finds (``os.replace`` raising once at each call stands in for the kill)."""

from __future__ import annotations

import os

import pytest

from t2i_prompt.cache import StepCheckpoints, atomic_dir, recover_dir, replace_dir, save_dataset


class Killed(BaseException):
    """Not an Exception: cleanup handlers that catch Exception do not swallow it (as with SIGKILL)."""


def kill_at(monkeypatch, n: int) -> list:
    """Make the n-th ``os.replace`` call (0-based) raise ``Killed``; returns the call log."""
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append((str(src), str(dst)))
        if len(calls) - 1 == n:
            raise Killed(f"killed at rename {n}")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def _count_renames(monkeypatch, action) -> int:
    calls = kill_at(monkeypatch, -1)
    action()
    monkeypatch.undo()
    return len(calls)


def test_step_checkpoints_keep_one_complete_copy_at_every_kill(tmp_path, monkeypatch):
    def write(step):
        return lambda d: (d / "state.txt").write_text(str(step))

    ckpts = StepCheckpoints(tmp_path / "run")
    ckpts.save(1, write(1))
    n = _count_renames(monkeypatch, lambda: StepCheckpoints(tmp_path / "probe").save(1, write(1)))
    assert n >= 2  # the directory rename and the pointer rename
    for k in range(n):
        kill_at(monkeypatch, k)
        with pytest.raises(Killed):
            ckpts.save(2, write(2))
        monkeypatch.undo()
        latest = StepCheckpoints(tmp_path / "run").latest()
        assert latest is not None and (latest / "state.txt").read_text() in ("1", "2")
        assert (tmp_path / "run" / "checkpoint-00000001" / "state.txt").is_file()  # the only copy is never deleted
    ckpts.save(2, write(2))
    assert (ckpts.latest() / "state.txt").read_text() == "2"
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.is_dir()) == ["checkpoint-00000002"]


def test_t2i_trainer_resumes_from_the_last_complete_checkpoint(tmp_path, monkeypatch):
    from t2i_prompt.shapes.train_t2i import T2ITrainConfig, T2ITrainer

    def trainer(max_steps):
        cfg = T2ITrainConfig(run_dir=str(tmp_path / "run"), max_steps=max_steps, batch_size=2, checkpoint_every=1,
                             eval_every=10**6, eval_guidances=[], threads=1, warmup_steps=1,
                             block_out_channels=[8, 16, 16])
        return T2ITrainer(cfg)

    trainer(1).train(log=lambda *_: None)
    for k in range(2):  # both renames of the step-2 save
        kill_at(monkeypatch, k)
        with pytest.raises(Killed):
            trainer(2).train(log=lambda *_: None)
        monkeypatch.undo()
        restarted = trainer(2)
        assert restarted.load_checkpoint() and restarted.step == 1  # the step-1 checkpoint, complete
    restarted = trainer(2)
    restarted.train(log=lambda *_: None)
    again = trainer(2)
    assert again.load_checkpoint() and again.step == 2


def test_dataset_swap_keeps_a_readable_dataset_at_every_kill(tmp_path, monkeypatch):
    import datasets

    from t2i_prompt.train.data import load_records

    target = tmp_path / "dataset"
    old = datasets.Dataset.from_list([{"prompt": "a", "chosen": "b", "rejected": "c"}])
    new = datasets.Dataset.from_list([{"prompt": "x", "chosen": "y", "rejected": "z"}] * 2)
    save_dataset(old, target)
    for k in range(2):
        kill_at(monkeypatch, k)
        with pytest.raises(Killed):
            save_dataset(new, target)
        monkeypatch.undo()
        assert len(load_records(str(target))) in (1, 2)
    # a real kill between the two renames of replace_dir leaves the old copy aside; readers put it back
    src = tmp_path / "src"
    save_dataset(new, src)
    aside = target.with_name(f".{target.name}.old-deadbeef")
    os.replace(target, aside)
    assert not target.exists()
    assert len(load_records(str(target))) == 1 and not aside.exists()
    replace_dir(src, target)
    assert len(load_records(str(target))) == 2
    assert recover_dir(tmp_path / "never") is None


def test_atomic_dir_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("crash while writing")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_fingerprints_follow_weights_not_names(tmp_path):
    """Cache keys see the content: a module's fingerprint moves with its weights, a folder's with its files."""
    import torch

    from t2i_prompt.cache import fingerprint

    layer = torch.nn.Linear(3, 2)
    before = fingerprint(layer)
    assert fingerprint(layer) == before
    with torch.no_grad():
        layer.weight[0, 0] += 1e-3
    assert fingerprint(layer) != before
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    first = fingerprint(folder)
    (folder / "config.json").write_text('{"a": 1}')
    assert fingerprint(folder) != first and fingerprint(str(folder)) == fingerprint(folder)
