"""Preference engine: pair selection rules, and an end-to-end run on tiny:gpt2 + tiny:sd15 + tiny CLIP score with a
kill-and-resume that re-renders nothing and yields the identical dataset."""

import json

import pytest
import torch

from t2i_prompt.train.config import PreferenceConfig
from t2i_prompt.train.preferences import Candidate, PreferenceEngine, select_pairs


def cand(text, score, clip=None, sim=0.9):
    clip = score if clip is None else clip
    return Candidate(text=text, metrics={"clip": clip}, per_image={"clip": [clip]}, score=score, similarity=sim)


CANDS = [cand("a", 0.30), cand("b", 0.10), cand("c", 0.25), cand("d", 0.05)]


def test_best_vs_worst():
    pairs, dropped = select_pairs("x", CANDS, PreferenceConfig(strategy="best_vs_worst"))
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("a", "d")]
    assert pairs[0]["score_gap"] == pytest.approx(0.25) and pairs[0]["chosen_clip"] == 0.30
    pairs, dropped = select_pairs("x", CANDS, PreferenceConfig(strategy="best_vs_worst", min_gap=0.3))
    assert pairs == [] and dropped == {"score_gap_not_above_min_gap": 1}


def test_all_pairs_above_gap():
    pairs, dropped = select_pairs("x", CANDS, PreferenceConfig(strategy="all_pairs", min_gap=0.1))
    assert sorted((p["chosen"], p["rejected"]) for p in pairs) == [("a", "b"), ("a", "d"), ("c", "b"), ("c", "d")]
    assert dropped == {"score_gap_not_above_min_gap": 2}  # a-c (0.05) and b-d (0.05)


def test_floors_prompt_a_video_style():
    cands = [cand("a", 0.9, clip=0.1), cand("b", 0.8, clip=0.3), cand("c", 0.5, clip=0.4), cand("d", 0.2, clip=0.5)]
    config = PreferenceConfig(strategy="floors", floors={"clip": 0.2}, floors_top_k=2, min_gap=0.4)
    pairs, dropped = select_pairs("x", cands, config)
    # "a" ranks first but fails the clip floor; "b" passes; rejected must be lower-ranked with gap > 0.4
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("b", "d")]
    assert dropped == {"chosen_below_floor:clip": 1, "score_gap_not_above_min_gap": 1}
    pairs, dropped = select_pairs("x", cands, PreferenceConfig(strategy="floors", floors={"clip": 0.6}))
    assert pairs == [] and dropped["no_chosen_passes_floors"] == 1


def test_single_distinct_candidate_gives_no_pair():
    pairs, dropped = select_pairs("x", [cand("a", 0.3)], PreferenceConfig())
    assert pairs == [] and dropped == {"fewer_than_2_distinct_candidates": 1}


# ------------------------------------------------------------------------------------------------ end to end
PROMPTS = ["a red circle above a green triangle", "a blue star next to a yellow square", "a pink cat"]


@pytest.fixture(scope="module")
def components():
    from t2i_prompt.generate.pipeline import T2IPipeline
    from t2i_prompt.rewards import CLIPScore
    from t2i_prompt.rewrite.rewriter import PromptRewriter

    rewriter = PromptRewriter.from_pretrained("tiny:gpt2")
    pipe = T2IPipeline.from_pretrained("tiny:sd15")

    def rewrite(prompt, k, seed):
        return [c.text for c in rewriter.rewrite([prompt], k=k, do_sample=True, max_new_tokens=8, seed=seed)[0]]

    def render(prompt, seed):
        return pipe(prompt, num_inference_steps=2, generator=torch.Generator().manual_seed(seed)).images[0]

    def similarity(a, b):  # a cheap deterministic stand-in for MiniLM: character-set Jaccard
        return torch.tensor([len(set(x) & set(y)) / len(set(x) | set(y)) for x, y in zip(a, b)])

    return {"rewrite_fn": rewrite, "render_fn": render, "rewards": {"clip": CLIPScore.from_pretrained("tiny:clip")},
            "similarity_fn": similarity}


class Killed(RuntimeError):
    pass


def counting(render, log, fail_after=None):
    """Wraps a render function: records (prompt, seed) of every render and raises after ``fail_after`` renders."""

    def wrapped(prompt, seed):
        if fail_after is not None and len(log) >= fail_after:
            raise Killed(f"simulated kill after {fail_after} renders")
        log.append((prompt, seed))
        return render(prompt, seed)

    return wrapped


def config(tmp_path, name, **kw):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    return PreferenceConfig(prompts=str(prompts), policy="tiny:gpt2", t2i_model="tiny:sd15", num_candidates=3,
                            images_per_candidate=2, num_inference_steps=2, rewards=["clip"],
                            reward_models={"clip": "tiny:clip"}, output_dir=str(tmp_path / name),
                            strategy="all_pairs", **kw)


def test_engine_builds_pairs_and_resumes_identically(tmp_path, components):
    # uninterrupted reference run
    full_log = []
    full = PreferenceEngine(config(tmp_path, "full"), **{**components, "render_fn": counting(
        components["render_fn"], full_log)}).run()
    distinct = sum(len(r["candidates"]) for r in full.records)
    assert len(full_log) == distinct * 2 == full.rendered  # every distinct candidate rendered with both seeds
    assert set(full.dataset.column_names) >= {"prompt", "chosen", "rejected", "chosen_score", "rejected_score",
                                              "chosen_clip", "rejected_clip", "chosen_similarity", "seeds"}
    assert len(full.dataset) > 0 and all(r["seeds"] == [0, 1] for r in full.dataset)
    assert all(r["chosen_score"] > r["rejected_score"] and r["chosen"] != r["rejected"] for r in full.dataset)
    assert set(full.dataset["prompt"]) <= set(PROMPTS)
    # seeds are shared: the same (text, seed) image is rendered once, and each seed is used by every candidate
    assert len(set(full_log)) == len(full_log)
    report = json.loads((tmp_path / "full" / "report.json").read_text())
    assert report["pairs_kept"] == len(full.dataset) and report["prompts"] == 3
    assert report["score_distributions"]["clip"]["count"] == distinct
    assert (tmp_path / "full" / "report.md").read_text().startswith("# Preference data report")

    # killed after 5 renders, then restarted
    first_log, second_log = [], []
    killed = config(tmp_path, "killed")
    with pytest.raises(Killed):
        PreferenceEngine(killed, **{**components, "render_fn": counting(components["render_fn"], first_log, 5)}).run()
    assert len(first_log) == 5
    resumed = PreferenceEngine(killed, **{**components, "render_fn": counting(
        components["render_fn"], second_log)}).run()
    assert not set(first_log) & set(second_log)  # zero re-rendered images
    assert len(first_log) + len(second_log) == len(full_log)
    assert resumed.reused >= 5
    assert resumed.dataset.to_list() == full.dataset.to_list()  # identical dataset

    # a third run renders and scores nothing: everything comes from the per-prompt result cache
    third_log = []
    again = PreferenceEngine(killed, rewrite_fn=None, render_fn=counting(components["render_fn"], third_log),
                             rewards=None, similarity_fn=None).run()
    assert third_log == [] and again.dataset.to_list() == full.dataset.to_list()

    from datasets import load_from_disk

    assert load_from_disk(str(tmp_path / "killed" / "dataset")).to_list() == full.dataset.to_list()


def test_engine_rejects_mismatched_rewards(tmp_path, components):
    with pytest.raises(ValueError, match=r"rewards objects \['clip'\] do not match config.rewards \['quality'\]"):
        PreferenceEngine(PreferenceConfig(rewards=["quality"]), rewards=components["rewards"])


def test_loop_with_default_components(tmp_path):
    """Two rounds with the config's own components (PromptRewriter, ImageGenerator, CLIP score, MiniLM): round 1 samples
    with round 0's trained policy."""
    from datasets import load_from_disk

    from t2i_prompt.train.config import LoopConfig
    from t2i_prompt.train.loop import run_loop

    (tmp_path / "prompts.txt").write_text("a red circle\na blue square above a green star\n")
    (tmp_path / "pref.yaml").write_text(
        f"prompts: {tmp_path / 'prompts.txt'}\nt2i_model: tiny:sd15\nnum_candidates: 3\nimages_per_candidate: 1\n"
        "num_inference_steps: 2\nrewards: [clip_cos]\nreward_models: {clip_cos: tiny:clip}\nmax_new_tokens: 8\n"
        "strategy: all_pairs\n")
    (tmp_path / "dpo.yaml").write_text(
        "loss: semdpo\nuse_lora: true\nlora_target_modules: [c_attn]\nmax_steps: 2\nper_device_train_batch_size: 2\n"
        "save_strategy: 'no'\nreport_to: none\ndisable_tqdm: true\n")
    rounds = run_loop(LoopConfig(rounds=2, policy="tiny:gpt2", preference_config=str(tmp_path / "pref.yaml"),
                                 dpo_config=str(tmp_path / "dpo.yaml"), output_dir=str(tmp_path / "loop")))
    assert [r.policy for r in rounds] == ["tiny:gpt2", str(tmp_path / "loop" / "round_0" / "dpo")]
    for r in rounds:
        pairs = load_from_disk(str(tmp_path / "loop" / f"round_{r.round}" / "preferences" / "dataset"))
        assert len(pairs) == r.pairs > 0 and set(pairs["policy"]) == {r.policy}
        assert (r.model_dir / "model.safetensors").is_file()


def test_evaluate_rewriter_scores_images_against_the_original(components):
    from t2i_prompt.train.evaluate import evaluate_rewriter, results_table

    class PromptLength:  # a fake reward that only sees the prompt it is given: proves scoring uses the original
        def score(self, prompts, images):
            return torch.tensor([float(len(p)) for p in prompts])

    prompts = PROMPTS[:2]
    result = evaluate_rewriter("tiny:gpt2", prompts, components["render_fn"], {"length": PromptLength()}, [2.0],
                               components["similarity_fn"], seeds=[0, 1], max_new_tokens=8,
                               object_drop_fn=lambda original, rewrite: int(original == prompts[0]))
    expected = sum(len(p) for p in prompts) / len(prompts)
    assert result["length"] == pytest.approx(expected) and result["reward"] == pytest.approx(2 * expected)
    assert 0 <= result["empty_rewrites"] <= 2 and -1 <= result["similarity"] <= 1
    assert [e["prompt"] for e in result["examples"]] == prompts
    table = results_table({"SFT": result}, ["length"])
    assert table.splitlines()[2].startswith(f"| SFT | {2 * expected:.4f} | {expected:.4f} |")
    assert result["object_drop_rate"] == 0.5  # one of the two rewrites "dropped" an object
    assert table.splitlines()[0].endswith("| object_drop_rate |") and table.splitlines()[2].endswith("| 0.5000 |")


def test_cache_is_keyed_by_weights_not_by_name(tmp_path, components):
    """New weights behind the same policy path are sampled again (the stale-cache defect: keys used the name)."""
    import shutil

    from t2i_prompt.models.loading import resolve_model_path

    policy = tmp_path / "policy"
    shutil.copytree(resolve_model_path("tiny:gpt2"), policy)
    calls = []

    def rewrite(prompt, k, seed):
        calls.append(prompt)
        return components["rewrite_fn"](prompt, k, seed)

    def run():
        cfg = config(tmp_path, "out", cache_dir=str(tmp_path / "cache"))
        cfg.policy = str(policy)
        return PreferenceEngine(cfg, **{**components, "rewrite_fn": rewrite}).run()

    run()
    assert len(calls) == len(PROMPTS)
    run()  # same weights: everything comes from the cache
    assert len(calls) == len(PROMPTS)
    weights = policy / "model.safetensors"
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    save_file({k: v + 0.01 for k, v in state.items()}, str(weights))  # "trained with another learning rate"
    run()
    assert len(calls) == 2 * len(PROMPTS)
