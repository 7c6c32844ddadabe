"""The shapes T2I trainer's export: the weights' provenance comes from the run that trained them."""

import json

import pytest

from t2i_prompt.shapes.train_t2i import T2ITrainConfig, T2ITrainer


def _cfg(tmp_path, **kw):
    return T2ITrainConfig(run_dir=str(tmp_path / "run"), max_steps=1, batch_size=2, checkpoint_every=1,
                          eval_every=10**6, eval_guidances=[], threads=1, warmup_steps=1,
                          block_out_channels=[8, 16, 16], **kw)


def test_export_records_the_checkpoints_seed_and_guidance_not_the_exporting_command(tmp_path):
    T2ITrainer(_cfg(tmp_path, seed=7, eval_guidance=2.0)).train(log=lambda *_: None)
    exporter = T2ITrainer(_cfg(tmp_path))  # the export command's own flags: seed 0, guidance 3
    assert exporter.load_checkpoint()
    out = exporter.export(tmp_path / "exported")
    defaults = json.loads((out / "t2i_sampling.json").read_text())
    assert (defaults["seed"], defaults["guidance_scale"], defaults["trained_steps"]) == (7, 2.0, 1)
    assert defaults["init_from"] is None


def test_export_names_the_warm_start_weights_by_content(tmp_path):
    import hashlib

    first = T2ITrainer(_cfg(tmp_path / "a"))
    first.train(log=lambda *_: None)
    init = first.export(tmp_path / "init")
    T2ITrainer(_cfg(tmp_path / "b", init_from=str(init))).train(log=lambda *_: None)
    exporter = T2ITrainer(_cfg(tmp_path / "b"))  # no --init_from on the export command: it comes from the checkpoint
    assert exporter.load_checkpoint()
    defaults = json.loads((exporter.export(tmp_path / "out") / "t2i_sampling.json").read_text())
    def folder_sha256(folder):  # every file's relative name and content, as an independent recomputation
        h = hashlib.sha256()
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(folder).as_posix()}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
        return h.hexdigest()

    expected = {name: folder_sha256(init / name) for name in ("unet", "text_encoder")}
    assert defaults["init_from"] == str(init) and defaults["init_weights_sha256"] == expected
    assert json.loads((tmp_path / "out" / "t2i_sampling.json").read_text()) == defaults
    assert sorted(p.name for p in (init / "unet").iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]


def test_warm_start_refuses_a_part_with_several_weight_files(tmp_path):
    import shutil

    first = T2ITrainer(_cfg(tmp_path / "a"))
    init = first.export(tmp_path / "init")
    weights = next((init / "unet").glob("*.safetensors"))
    shutil.copy(weights, weights.with_name("extra.safetensors"))
    with pytest.raises(FileNotFoundError, match=r"expected one unet/\*\.safetensors \(found .*extra\.safetensors"):
        T2ITrainer(_cfg(tmp_path / "b", init_from=str(init)))
