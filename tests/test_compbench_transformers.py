"""The transformers evaluators end to end on tiny same-architecture models (BLIP-VQA, OWLv2, DPT-hybrid, CLIP)
saved with save_pretrained and loaded through the real loader: numbers meaningless, plumbing exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from t2i_prompt.evaluate import categories, layout, rules

PARTS = {"vqa": "blip_vqa", "detector": "owlv2", "depth": "dpt", "clip": "clip"}


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_path):
    """Two noise images per category (first official val prompt), scored with ``compbench score``."""
    from t2i_prompt.cli import main

    run = tmp_path_factory.mktemp("tf") / "run"
    rng = np.random.default_rng(0)
    for name in categories.CATEGORIES:
        prompt = categories.category_prompts("compbench", name)[0]
        folder = run / name / layout.SAMPLES
        folder.mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
                folder / layout.sample_name(prompt, k))
    paths = {part: str(tiny_path(arch)) for part, arch in PARTS.items()}
    argv = ["compbench", "score", "--run", str(run), "--categories", *categories.CATEGORIES, "--no-progress",
            "--detector-threshold", "0.0", "--score-batch-size", "4"]
    for part, path in paths.items():
        argv += [f"--{part}-model", path]
    assert main(argv) == 0
    from t2i_prompt.evaluate.backends import build_backend

    single = build_backend("transformers", paths, tuple(PARTS), device="cpu", batch_size=1, detector_threshold=0.0)
    return run, paths, single


def details(run, name, folder=None):
    folder = folder or categories.CATEGORIES[name].folder
    return [json.loads(line) for line in (run / name / folder / "details.jsonl").read_text().splitlines()]


def image(run, name, row):
    return layout.load_image(run / name / layout.SAMPLES / row["file"])


def test_official_files_and_tier(scored):
    run, paths, _ = scored
    for name, cat in categories.CATEGORIES.items():
        answers = json.loads((run / name / cat.folder / "vqa_result.json").read_text())
        assert [a["question_id"] for a in answers] == [0, 1]
    for folder in categories.COMPLEX_PARTS.values():
        assert (run / "complex" / folder / "vqa_result.json").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["evaluator"].startswith("official-rules, transformers models (")
    assert all(p in summary["evaluator"] for p in paths.values())
    assert list(summary["categories"]) == list(categories.CATEGORIES)


def test_bvqa_batched_equals_one_at_a_time(scored):
    run, _, single = scored
    for row in details(run, "color"):
        alone = single.vqa([image(run, "color", row)], [row["questions"]])[0]
        assert row["answers"] == pytest.approx(alone, abs=1e-5)
        assert row["score"] == pytest.approx(float(np.prod(row["answers"])), abs=1e-6)
        assert row["questions"] == ["a green bench?", "a blue bowl?"]


def test_detection_rules_recomputed(scored):
    run, _, single = scored
    for row in details(run, "spatial"):
        d1, d2 = (rules.Detection(d["label"], tuple(d["box"]), d["score"]) if d else None for d in row["detections"])
        assert row["score"] == pytest.approx(rules.spatial_2d_score(d1, d2, row["objects"][1]), abs=1e-6)
        found = single.detect([image(run, "spatial", row)], [[row["objects"][0], row["objects"][2]]])[0]
        best = rules.best_detection(found, row["objects"][0], 0.0)
        assert row["detections"][0]["score"] == pytest.approx(best.score, abs=1e-5)
    for row in details(run, "3d_spatial"):
        im = image(run, "3d_spatial", row)
        depth = single.depth([im])[0]
        assert depth.shape == (400, 480)  # 48x40 image, scale min(479/40, 480/48) = 10
        d1, d2 = (rules.Detection(d["label"], tuple(d["box"]), d["score"]) if d else None for d in row["detections"])
        assert row["score"] == pytest.approx(rules.spatial_3d_score(d1, d2, depth, row["objects"][1]), abs=1e-4)


def test_clip_and_three_in_one(scored):
    run, _, single = scored
    for row in details(run, "non_spatial"):
        alone = single.clip([image(run, "non_spatial", row)], [row["text"]])[0]
        assert row["score"] == pytest.approx(alone, abs=1e-5)
    for row in details(run, "complex"):
        assert row["score"] == pytest.approx(rules.three_in_one(row["kind"], row["bvqa"], row["spatial_2d"],
                                                                row["clip"]))
    prompt = categories.category_prompts("compbench", "complex")[0]
    kind = categories.complex_kinds("compbench").get(categories.normalise_complex(prompt), "spatialaction")
    assert {row["kind"] for row in details(run, "complex")} == {kind}
