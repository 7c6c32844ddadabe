"""The Gradio app end to end through ``gradio_client``: every named endpoint's outputs checked against the library,
bad input answered with the library's message while the app keeps serving, 8 concurrent jobs through the queue."""

from __future__ import annotations

import importlib.util
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a red circle on the left of a blue square"


def load_app_module():
    spec = importlib.util.spec_from_file_location("t2i_app", ROOT / "app" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(studio, client, votes file, app module, url) for an app launched in-process on a free port."""
    from t2i_prompt.workflows.studio import Studio

    app = load_app_module()
    votes = tmp_path_factory.mktemp("app") / "votes.jsonl"
    studio = Studio(votes_path=votes)
    demo = app.build_app(studio)
    _, url, _ = app.launch(demo, port=None, prevent_thread_lock=True, quiet=True)
    try:
        yield studio, Client(url, verbose=False), votes, app, url
    finally:
        demo.close()


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def assert_same_image(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to one grey level (a batch of 4 and a batch of 1 may round the last float bit differently)."""
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def direct_images(studio, prompt, seeds):
    return [np.asarray(im.convert("RGB")) for im in studio.generator().generate([prompt], seeds, progress=False).images]


def test_launch_defaults_are_local_and_bounded(served):
    _, _, _, app, _ = served
    parser = app.make_parser()
    args = parser.parse_args([])
    assert (args.host, args.port, args.model, args.share) == ("127.0.0.1", 7860, "shapes", False)
    with pytest.raises(SystemExit):
        parser.parse_args(["--port", "70000"])


def test_named_endpoints_are_listed(served):
    _, client, _, _, _ = served
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/rewrite", "/generate", "/compare", "/score", "/attention_maps", "/vote", "/edit"} <= names
    assert "/restore" not in names and "/lambda" not in names  # internal events stay private


def test_compare_same_seeds_best_candidate_and_scores(served):
    studio, client, _, _, _ = served
    orig, ref, cands, refined, scores, result, history = client.predict(prompt=PROMPT, seeds="0, 1", k=4,
                                                                        api_name="/compare")
    assert len(orig) == len(ref) == 2  # 2 x N images
    best = studio.rewriter().rewrite(PROMPT, k=4, seed=0)[0]
    assert refined == best[0].text == result["refined"]
    assert [row[0] for row in cands["data"]] == [c.text for c in best]
    # the same seeds for both prompts: each image equals the library's generation of that prompt and seed
    for gallery, text in ((orig, PROMPT), (ref, refined)):
        expected = direct_images(studio, text, [0, 1])
        for item, exp in zip(gallery, expected):
            assert_same_image(png(item["image"]), exp)
    assert [item["caption"] for item in orig] == ["original · seed 0", "original · seed 1"]
    # scores are measured against the original prompt
    header, rows = scores["headers"], scores["data"]
    assert [r[:2] for r in rows] == [["original", 0], ["original", 1], ["refined", 0], ["refined", 1]]
    clip = studio.scorers().clip
    ref_images = [Image.open(i["image"]).convert("RGB") for i in ref]
    expected_clip = clip.score([PROMPT] * 2, ref_images)
    got = [r[header.index("clip")] for r in rows[2:]]
    np.testing.assert_allclose(got, expected_clip.numpy(), atol=1e-5)
    assert "detector_all_correct" in header and result["detector"] is not None
    # the history row restores these settings (steps/guidance: the model's defaults it ran with)
    row = dict(zip(history["headers"], history["data"][0]))
    assert (row["prompt"], row["refined"], row["seeds"], row["k"], row["steps"]) == (PROMPT, refined, "0, 1", 4, 20)


def test_rewrite_scores_each_candidate_against_the_original(served):
    studio, client, _, _, _ = served
    table, best = client.predict(prompt="red circle left of blue square", seeds="3", k=3, api_name="/rewrite")
    header, rows = table["headers"], table["data"]
    texts = [c.text for c in studio.rewriter().rewrite("red circle left of blue square", k=3, seed=3)[0]]
    assert [r[header.index("text")] for r in rows] == texts and best == texts[0]
    sims = studio.similarity().score(["red circle left of blue square"] * 3, texts)
    np.testing.assert_allclose([r[header.index("similarity")] for r in rows], sims.numpy(), atol=1e-5)
    images = studio.generator().generate(texts, [3], progress=False).images
    clip = studio.scorers().clip.score(["red circle left of blue square"] * 3, images)
    np.testing.assert_allclose([r[header.index("clip")] for r in rows], clip.numpy(), atol=1e-5)


def test_generate_with_regions_heatmaps_and_overlay(served):
    studio, client, _, _, _ = served
    regions = "0,0,0.5,1:a red circle\n0.5,0,1,1:a blue square"
    images, heat, overlay, scores, info = client.predict(
        prompt=PROMPT, seeds="0, 2", regions=regions, hb_steps=2, sr_delta=0.8, words="circle, square",
        sr_source="base", api_name="/generate")
    assert len(images) == 2 and len(heat) == 4  # 2 words x 2 seeds
    assert sorted(h["caption"] for h in heat) == ["circle · seed 0", "circle · seed 2", "square · seed 0",
                                                  "square · seed 2"]
    hooks = info["settings"]["hooks"]
    assert hooks["regions"] == ["0,0,0.5,1:a red circle", "0.5,0,1,1:a blue square"] and hooks["sr_delta"] == 0.8
    assert hooks["sr_source"] == "base"
    spec = studio.hook_spec(regions=regions, hb_steps=2, sr_delta=0.8, capture="circle, square", sr_source="base")
    expected = studio.generate(PROMPT, [0, 2], spec=spec)
    assert_same_image(png(images[1]["image"]), np.asarray(expected.images[1]))
    # overlay: the first region's box outline is drawn in the first region colour on the left border
    over = png(overlay)
    assert over.shape[1] == 256
    assert tuple(over[over.shape[0] // 2, 1]) == (0xE6, 0x19, 0x4B)
    assert len(scores["data"]) == 2


def test_attention_maps_endpoint(served):
    _, client, _, _, _ = served
    image, maps = client.predict(prompt=PROMPT, words="circle, square", seed="1", api_name="/attention_maps")
    assert [m["caption"] for m in maps] == ["circle", "square"]
    assert png(maps[0]["image"]).shape == png(image).shape


def test_score_uploaded_render(served, tmp_path):
    from t2i_prompt.shapes.grammar import parse_prompt
    from t2i_prompt.shapes.render import render_scene

    studio, client, _, _, _ = served
    path = tmp_path / "truth.png"
    Image.fromarray(render_scene(parse_prompt("a red circle"))).save(path)
    table, info = client.predict(prompt="a red circle", files=[handle_file(str(path))], api_name="/score")
    header, row = table["headers"], table["data"][0]
    assert row[header.index("detector_all_correct")] is True  # the rendered ground truth is exactly right
    expected = studio.scorers().clip.score(["a red circle"], [Image.open(path).convert("RGB")])
    assert row[header.index("clip")] == pytest.approx(float(expected[0]), abs=1e-5)
    assert info["scorers"]["clip"]["model"] == "shapes:clip"


def test_vote_appends_a_row_dpo_trains_on(served, tmp_path):
    from t2i_prompt.train.config import DPOTrainConfig
    from t2i_prompt.train.data import load_records
    from t2i_prompt.train.dpo import build_dpo_trainer

    studio, client, votes, _, _ = served
    before = len(votes.read_text().splitlines()) if votes.exists() else 0
    out = client.predict(prompt="red circle", original="red circle", refined="a red circle", preferred="refined",
                         seeds="0, 1", api_name="/vote")
    assert out["rows"] == before + 1 == len(votes.read_text().splitlines())
    row = json.loads(votes.read_text().splitlines()[-1])
    assert (row["prompt"], row["chosen"], row["rejected"], row["seeds"]) == ("red circle", "a red circle",
                                                                             "red circle", [0, 1])
    client.predict(prompt="blue square", original="blue square", refined="a square", preferred="original",
                   api_name="/vote")
    data = load_records(str(votes))
    assert {"prompt", "chosen", "rejected"} <= set(data.column_names) and len(data) == before + 2
    config = DPOTrainConfig(dataset=str(votes), model_name_or_path="tiny:gpt2", output_dir=str(tmp_path / "dpo"),
                            max_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
                            per_device_train_batch_size=2)
    trainer, _ = build_dpo_trainer(config)
    trainer.train()
    assert trainer.state.global_step == 1


@pytest.mark.parametrize("endpoint, kwargs, message", [
    ("/compare", {"prompt": "   "}, "the prompt is empty"),
    ("/generate", {"prompt": PROMPT, "regions": "0,0,2,1:a red circle"}, "is outside [0, 1]"),
    ("/generate", {"prompt": PROMPT, "regions": "left half:a red circle"}, "x0,y0,x1,y1"),
    ("/compare", {"prompt": PROMPT, "model": "no-such-org/no-such-model"}, "no-such-org/no-such-model"),
    ("/attention_maps", {"prompt": PROMPT, "words": "banana"}, "'banana' does not occur in the prompt"),
    ("/compare", {"prompt": PROMPT, "seeds": "zero"}, "'zero' is not an integer"),
])
def test_bad_input_is_a_clear_error_and_the_app_keeps_serving(served, endpoint, kwargs, message):
    _, client, _, _, _ = served
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(**kwargs, api_name=endpoint)
    image, _ = client.predict(prompt=PROMPT, words="circle", seed="0", api_name="/attention_maps")
    assert png(image).ndim == 3


def test_bad_uploads_are_refused(served, tmp_path):
    _, client, _, app, _ = served
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    with pytest.raises(AppError, match="not a readable image"):
        client.predict(prompt="a red circle", files=[handle_file(str(fake))], api_name="/score")
    big = tmp_path / "big.png"
    limit = int(app.MAX_FILE_SIZE.rstrip("mb")) * 1024 * 1024
    big.write_bytes(b"\x89PNG" + b"\0" * (limit + 1024))
    with pytest.raises(Exception, match="(?i)(too large|exceed|413|maximum)"):
        client.predict(prompt="a red circle", files=[handle_file(str(big))], api_name="/score")
    assert client.predict(prompt="a red circle", words="circle", seed="0", api_name="/attention_maps")


def test_eight_concurrent_jobs_all_complete_distinct_and_correct(served):
    studio, client, _, _, _ = served
    jobs = [client.submit(prompt=PROMPT, seeds=str(seed), api_name="/generate") for seed in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda job: job.result(timeout=600), jobs))
    images = [png(r[0][0]["image"]) for r in results]
    expected = direct_images(studio, PROMPT, list(range(8)))
    for got, exp in zip(images, expected):
        assert_same_image(got, exp)
    assert len({im.tobytes() for im in images}) == 8


def test_evaluate_endpoint_matches_the_benchmark(served):
    from t2i_prompt.attention.recipes import HookSpec
    from t2i_prompt.shapes.evaluate import benchmark_file, evaluate_prompts, read_prompt_file

    studio, client, _, _, _ = served
    table, plot = client.predict(benchmark="relation", n_prompts=2, seeds="0",
                                 methods=["vanilla", "regions", "regions_base"], api_name="/evaluate")
    header, rows = table["headers"], table["data"]
    assert [r[header.index("method")] for r in rows] == ["vanilla", "regions", "regions_base"]
    prompts = read_prompt_file(benchmark_file("relation"))[:2]
    vanilla = evaluate_prompts(prompts, pipeline=studio.generator(), seeds=[0], progress=False)
    regions = evaluate_prompts(prompts, pipeline=studio.generator(), seeds=[0], progress=False,
                               hooks_for_prompt=HookSpec(auto_regions=True, sr_source="region").factory([]))
    base = evaluate_prompts(prompts, pipeline=studio.generator(), seeds=[0], progress=False,
                            hooks_for_prompt=HookSpec(auto_regions=True, sr_source="base").factory([]))
    for row, report in zip(rows, (vanilla, regions, base)):
        assert row[header.index("all_correct")] == report["overall"]["all_correct"]
        assert row[header.index("relation")] == report["overall"]["relation"]


def test_browser_generate_and_steer(served, tmp_path):
    """Headless Chromium (Debian's, via Playwright): type a prompt, Rewrite & generate, see 2 + 2 images and the
    scores table; open Steer, type a region, see the overlay. Screenshots land in the test's tmp dir."""
    spec = importlib.util.spec_from_file_location("t2i_app_screenshot", ROOT / "app" / "screenshot.py")
    screenshot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshot)
    url = served[4]
    shown = screenshot.drive(url, tmp_path / "app.png")
    assert shown["original_images"] == shown["refined_images"] == 2
    assert shown["score_rows"] == 4 and "clip" in shown["scores_text"]
    assert shown["overlay_shown"]
    assert shown["restored_prompt"] == "a red circle on the left of a blue square"  # the history row restored it
    votes = served[2]
    assert "Vote saved: refined preferred" in shown["vote_status"]
    last = json.loads(votes.read_text().splitlines()[-1])
    assert last["prompt"] == "a red circle on the left of a blue square" and last["chosen_side"] == "refined"
    assert last["chosen_score"] is not None  # the UI vote carries the CLIP scores of the images shown
    for name in ("app.png", "app-steer.png"):
        with Image.open(tmp_path / name) as im:
            assert im.size == (1280, 1500)


def test_repaint_changes_only_the_region(served):
    studio, client, _, _, _ = served
    before, after, info = client.predict(prompt=PROMPT, region="0.5,0,1,1:a green triangle", seed=0, new_seed=-1,
                                         api_name="/repaint")
    a, b = png(before), png(after)
    assert info["new_seed"] == 1 and info["region"] == "0.5,0,1,1:a green triangle"
    assert_same_image(a, direct_images(studio, PROMPT, [0])[0])  # the original is the plain generation
    half = a.shape[1] // 2
    np.testing.assert_array_equal(a[:, : half - 1], b[:, : half - 1])  # outside the (dilated) box: unchanged
    assert np.abs(a[:, half + 1:].astype(int) - b[:, half + 1:]).mean() > 1.0  # inside: repainted


def test_script_serves_on_the_given_local_port(tmp_path):
    """``python app/app.py --port P`` (what ``make app`` runs, on 7860) serves the app on 127.0.0.1:P."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(ROOT / "app" / "app.py"), "--port", str(port), "--votes",
                             str(tmp_path / "votes.jsonl")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        deadline, page = time.monotonic() + 180, None
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(0.5)  # polling for the server to come up, not a fixed wait
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        assert page is not None and "t2i-prompt" in page
        config = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10).read())
        names = {d.get("api_name") for d in config["dependencies"]}
        assert {"rewrite", "compare", "generate", "score", "attention_maps", "vote"} <= names
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_edit_endpoint_recolours_one_object(served, tmp_path):
    from t2i_prompt.shapes.grammar import parse_prompt
    from t2i_prompt.shapes.render import render_scene

    _, client, _, _, _ = served
    source = "a red circle on the left of a blue square"
    path = tmp_path / "scene.png"
    Image.fromarray(render_scene(parse_prompt(source))).save(path)
    target = "a red circle on the left of a green square"

    def right_over_left(recon, edited):
        change = np.abs(png(recon).astype(int) - png(edited).astype(int)).sum(-1)
        half = change.shape[1] // 2
        return change[:, half:].mean() / change[:, :half].mean()  # the square (right) should change, the circle not

    # Plain DDIM inversion is exact only without CFG (guidance 1)...
    recon, edited, maps, info = client.predict(image=handle_file(str(path)), source=source, target=target,
                                               method="ddim", steps=10, guidance=1, api_name="/edit")
    assert right_over_left(recon, edited) > 10
    assert info["passes"] == {"unet_forward": 20, "unet_backward": 0}  # DDIM: 10 inversion + 10 paired edit passes
    # LocalBlend with the shapes world's default mask (min-max, 0.5; no mask settings sent) keeps the circle's half
    # much closer to the reconstruction than the plain edit
    _, blended, _, blend_info = client.predict(image=handle_file(str(path)), source=source, target=target,
                                               method="ddim", steps=10, guidance=1, local="square", api_name="/edit")
    settings = blend_info["settings"]
    assert (settings["local"], settings["local_normalise"], settings["local_threshold"]) == (["square"], "minmax", 0.5)
    left = png(edited).shape[1] // 2
    change_left = [np.abs(png(recon).astype(int) - png(im).astype(int))[:, :left].mean() for im in (edited, blended)]
    assert change_left[1] < 0.5 * change_left[0]  # measured 0.09 vs 0.38
    # ... at the model's default guidance (3) null-text inversion undoes CFG's drift.
    recon, edited, maps, info = client.predict(image=handle_file(str(path)), source=source, target=target,
                                               method="nti", steps=10, api_name="/edit")
    assert right_over_left(recon, edited) > 10 and info["settings"]["guidance_scale"] == 3.0
    assert info["passes"]["unet_backward"] > 0
    assert info["metrics"]["reconstruction_psnr"] > 25
    assert {m["caption"] for m in maps} >= {"circle", "square"}
    with pytest.raises(AppError, match="needs guidance > 1"):
        client.predict(image=handle_file(str(path)), source=source, target="a red circle on the left of a green "
                       "square", method="nti", steps=4, guidance=1, api_name="/edit")
    with pytest.raises(AppError, match="upload the image"):
        client.predict(image=None, source=source, target=source, method="ddim", api_name="/edit")
    with pytest.raises(AppError, match="greater than maximum value 1"):  # the field's bound (the studio checks too)
        client.predict(image=handle_file(str(path)), source=source, target=source, method="ddim", local="square",
                       local_threshold=1.5, api_name="/edit")
