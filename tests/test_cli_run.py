"""CLI: ``run`` end to end on tiny models (grid + result.json), ``score`` and ``rewrite``, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from t2i_prompt.cli import main
from t2i_prompt.rewards import AestheticReward, CLIPScore, PromptistReward

PROMPT = "a red circle to the left of a blue square"
FAST = ["--steps", "2", "--max-new-tokens", "8", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(["run", PROMPT, "--model", "tiny:sd15", "--rewriter", "tiny:gpt2", "--out", str(out), "--json", *FAST])
    assert code == 0
    return out


def test_run_writes_result_and_grid(run_dir):
    result = json.loads((run_dir / "result.json").read_text())
    assert {"original", "refined", "candidates", "seeds", "settings", "scores"} <= set(result)
    assert result["original"] == PROMPT and result["seeds"] == [0, 1]
    assert result["refined"] == result["candidates"][0]["text"] and len(result["candidates"]) == 4
    assert result["settings"]["model"] == "tiny:sd15" and result["settings"]["rewriter"] == "tiny:gpt2"
    assert result["settings"]["generation"]["num_inference_steps"] == 2
    assert set(result["scores"]["original"]) == {"clip", "aesthetic"}
    assert set(result["scores"]["refined"]) == {"clip", "aesthetic", "promptist"}
    files = result["files"]
    assert files["original"] == ["original_seed0.png", "original_seed1.png"]
    grid = Image.open(run_dir / files["grid"])
    tile = Image.open(run_dir / files["original"][0])
    assert grid.format == "PNG" and grid.width >= 2 * max(192, tile.width) and grid.height >= 2 * max(192, tile.height)


def test_run_scores_match_rescoring_the_saved_images(run_dir):
    """Re-score the written PNGs by hand: CLIP vs the original prompt, aesthetic, Promptist vs the originals."""
    result = json.loads((run_dir / "result.json").read_text())
    orig = [Image.open(run_dir / f).convert("RGB") for f in result["files"]["original"]]
    ref = [Image.open(run_dir / f).convert("RGB") for f in result["files"]["refined"]]
    clip = CLIPScore.from_pretrained("tiny:clip", preset="promptist")
    aes = AestheticReward.from_pretrained("tiny:quality", clip=clip.clip)
    x = [PROMPT, PROMPT]
    for which, imgs in (("original", orig), ("refined", ref)):
        assert result["scores"][which]["clip"] == pytest.approx(clip.score(x, imgs).tolist(), abs=1e-5)
        assert result["scores"][which]["aesthetic"] == pytest.approx(aes.score(x, imgs).tolist(), abs=1e-5)
    baseline = aes.score(x, orig).mean()
    cos = clip.score(x, ref)
    expected = torch.minimum(20 * cos - 5.6, torch.zeros(2)) + aes.score(x, ref) - baseline
    assert result["scores"]["refined"]["promptist"] == pytest.approx(expected.tolist(), abs=1e-5)
    assert result["scores"]["mean"]["original"]["clip"] == pytest.approx(sum(result["scores"]["original"]["clip"]) / 2)
    assert isinstance(PromptistReward(clip, aes), PromptistReward)


def test_run_several_prompts_from_file(tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n\n  a green star  \n")
    out = tmp_path / "out"
    code = main(["run", "--prompts-file", str(prompts), "--model", "tiny:sd15", "--rewriter", "tiny:gpt2",
                 "--out", str(out), "--seed", "3", "-k", "1", "--json", *FAST])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["original"] for r in summary["runs"]] == ["a cat", "a green star"]
    for r in summary["runs"]:
        result = json.loads((out / r["dir"] / "result.json").read_text())
        assert result["seeds"] == [3] and len(result["candidates"]) == 1
        assert (out / r["dir"] / "grid.png").is_file()
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["runs"]) == 2


def test_run_bad_input(tmp_path, capsys):
    assert main(["run", "   ", "--model", "tiny:sd15", "--rewriter", "tiny:gpt2", "--out", str(tmp_path)]) == 2
    assert "prompt 0 is empty or whitespace" in capsys.readouterr().err
    assert main(["run", "--model", "tiny:sd15"]) == 2
    assert "give a PROMPT or --prompts-file" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    assert main(["run", "--prompts-file", str(empty)]) == 2
    assert "holds no prompts" in capsys.readouterr().err


def _write_images(tmp_path, n=3):
    paths = []
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        arr = (torch.rand(40, 40, 3, generator=g) * 255).to(torch.uint8).numpy()
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(arr).save(paths[-1])
    return paths


def test_score_cli_matches_rewards(tmp_path, capsys):
    paths = _write_images(tmp_path)
    code = main(["score", "--prompt", "a red circle", *map(str, paths), "--clip", "tiny:clip", "--quality",
                 "tiny:quality", "--clip-scale", "2.5", "--no-clamp", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    images = [Image.open(p).convert("RGB") for p in paths]
    clip = CLIPScore.from_pretrained("tiny:clip", scale=2.5, clamp=False)
    aes = AestheticReward.from_pretrained("tiny:quality")
    assert [r["clip"] for r in out["images"]] == pytest.approx(clip.score(["a red circle"] * 3, images).tolist(), abs=1e-6)
    assert [r["aesthetic"] for r in out["images"]] == pytest.approx(aes.score(["x"] * 3, images).tolist(), abs=1e-6)
    assert out["rewards"]["clip"]["value_range"] == [-2.5, 2.5] and out["rewards"]["clip"]["higher_is_better"]
    # one prompt per image, in order
    code = main(["score", "--prompt", "a", "--prompt", "b", "--prompt", "c", *map(str, paths), "--reward", "clip",
                 "--clip", "tiny:clip", "--json"])
    assert code == 0 and [r["prompt"] for r in json.loads(capsys.readouterr().out)["images"]] == ["a", "b", "c"]


def test_score_cli_bad_input(tmp_path, capsys):
    paths = _write_images(tmp_path, 2)
    text = tmp_path / "readme.png"
    text.write_text("hello")
    assert main(["score", "--prompt", "a cat", str(paths[0]), str(text), "--reward", "clip", "--clip", "tiny:clip"]) == 2
    assert "readme.png is not a readable image" in capsys.readouterr().err
    assert main(["score", "--prompt", "a", "--prompt", "b", "--prompt", "c", *map(str, paths), "--clip", "tiny:clip"]) == 2
    assert "got 3 --prompt values for 2 images" in capsys.readouterr().err
    assert main(["score", "--prompt", " ", str(paths[0]), "--reward", "clip", "--clip", "tiny:clip"]) == 2
    assert "prompt 0 is empty" in capsys.readouterr().err
    assert main(["score", "--prompt", "a", str(paths[0]), "--reward", "vp_score"]) == 2
    assert "needs --vp-model" in capsys.readouterr().err


def test_rewrite_cli(capsys):
    code = main(["rewrite", "a cat", "--rewriter", "tiny:gpt2", "-k", "2", "--max-new-tokens", "6", "--sample",
                 "--seed", "5", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prompt"] == "a cat" and out["seed"] == 5 and len(out["candidates"]) == 2
    from t2i_prompt.rewrite import PromptRewriter

    lib = PromptRewriter.from_pretrained("tiny:gpt2").rewrite(["a cat"], k=2, do_sample=True, seed=5, max_new_tokens=6)
    assert [c["text"] for c in out["candidates"]] == [c.text for c in lib[0]]
    assert main(["rewrite", "\t", "--rewriter", "tiny:gpt2"]) == 2
    assert "empty or whitespace" in capsys.readouterr().err
    # --copy-bias reaches the library and is recorded in the decoding settings
    assert main(["rewrite", "a cat", "--rewriter", "tiny:gpt2", "--max-new-tokens", "6", "--copy-bias", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lib = PromptRewriter.from_pretrained("tiny:gpt2").rewrite(["a cat"], k=1, max_new_tokens=6, copy_bias=3.0)
    assert out["decoding"]["copy_bias"] == 3.0 and out["candidates"][0]["text"] == lib[0][0].text


def test_score_defaults_follow_the_images_model(tmp_path, capsys, sd15_pipeline):
    """Real images (no generation.json) get the real CLIP, never the shapes world's; images that
    ImageGenerator saved get the scorers of the model their generation.json records, named in the JSON."""
    from t2i_prompt.generate import ImageGenerator
    from t2i_prompt.rewards.registry import REAL_CLIP

    paths = _write_images(tmp_path, 1)
    code = main(["score", "--prompt", "a cat", str(paths[0]), "--json"])
    err = capsys.readouterr().err
    assert code == 2 and REAL_CLIP in err and "hf download" in err and "shapes:" not in err
    out_dir = tmp_path / "generated"
    ImageGenerator(sd15_pipeline, progress=False).generate("a cat", [0, 1], num_inference_steps=1).save(out_dir)
    files = sorted(str(p) for p in out_dir.glob("*.png"))
    assert main(["score", "--prompt", "a cat", *files, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rewards"]["clip"]["model"] == "tiny:clip" and out["rewards"]["clip"]["models"] == {"model": "tiny:clip"}
    assert out["rewards"]["aesthetic"]["models"] == {"model": "tiny:quality", "clip": "tiny:clip"}
    images = [Image.open(p).convert("RGB") for p in files]
    expected = CLIPScore.from_pretrained("tiny:clip").score(["a cat"] * 2, images).tolist()
    assert [r["clip"] for r in out["images"]] == pytest.approx(expected, abs=1e-6)
    # --model names the source for images without metadata; a given --clip has no default predictor paired
    assert main(["score", "--prompt", "a cat", str(paths[0]), "--model", "tiny:sd15", "--clip", "tiny:clip",
                 "--reward", "0.5*clip+1*clip_cos", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rewards"]["0.5*clip+1*clip_cos"]["models"] == {"clip": {"model": "tiny:clip"},
                                                               "clip_cos": {"model": "tiny:clip"}}
    assert main(["score", "--prompt", "a cat", str(paths[0]), "--model", "tiny:sd15", "--clip", "tiny:clip",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["rewards"]) == {"clip"} and "aesthetic skipped" in out["notes"][0]
