"""The whole rewriter recipe on the shapes world, one command: SFT -> preference data -> DPO and Sem-DPO (several
alphas, several training seeds) -> held-out evaluation with 95 % bootstrap intervals, a table and a
reward-vs-similarity plot.

    python training/shapes_pipeline.py --quick                  # minutes on 2 CPU cores (alpha 1, seed 0)
    python training/shapes_pipeline.py --threads 1              # the full size (alphas 0.5 1 2 4, seeds 0 1 2)
    accelerate launch --config_file training/accelerate/cpu.yaml training/shapes_pipeline.py --quick

Stages (each resumable: rerunning the command reuses every finished stage whose settings and input contents are
unchanged, the image/score cache of the preference engine and every finished held-out evaluation):
1. SFT of ``--sft_base`` (default ``shapes:rewriter``) on casual -> canonical caption pairs of the shapes grammar.
2. Preference data, built once: the SFT policy samples K rewrites of unseen casual prompts; ``--t2i_model`` renders
   them; the composite reward (shapes CLIP score + shapes quality by default) scores them against the original
   prompt. The quality predictor prefers one large, centred, filled object, which conflicts with faithfulness to
   two-object, counted or outlined prompts: the reward can be hacked by dropping objects.
3. DPO and Sem-DPO (every ``--semdpo_alpha``, MiniLM weights) from the SFT policy on the same pairs, once per
   ``--train_seeds`` seed (`<out>/dpo/seed0`, `<out>/semdpo_a0.5/seed1`, ...).
4. Evaluation of SFT and every run on held-out casual prompts (the shipped casual benchmark, plus fresh generator
   phrasings at full size, none of them in the SFT or preference data), per (prompt, image) row: composite reward,
   semantic similarity to the original, exact detector all-correct against the ORIGINAL prompt's scene and object
   drop -> ``<out>/results.{md,json}``, ``<out>/frontier.png`` (reward vs similarity) and
   ``<out>/frontier_all_correct.png`` (reward vs detector all-correct), pooled over seeds, plus per-seed spread.

Other models (for a smoke run): ``--sft_base tiny:gpt2 --t2i_model tiny:sd15 --rewards clip
--reward_models '{"clip": "tiny:clip"}' --num_inference_steps 2``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from t2i_prompt.cli.boundary import OneLineParser

SIZES = {  # quick / full
    "sft_pairs": (256, 4000), "sft_steps": (30, 400), "pref_prompts": (12, 160), "num_candidates": (4, 6),
    "images_per_candidate": (1, 1), "dpo_steps": (20, 200), "eval_prompts": (12, 48), "extra_eval_prompts": (0, 48),
    "eval_seeds": (1, 1),
}
GRID = {  # quick / full defaults of --semdpo_alpha and --train_seeds
    "semdpo_alpha": ([1.0], [0.5, 1.0, 2.0, 4.0]), "train_seeds": ([0], [0, 1, 2]),
}
METRICS = ("reward", "similarity", "all_correct", "object_drop")
LABELS = {"reward": "mean reward", "similarity": "similarity to original",
          "all_correct": "detector all-correct vs original", "object_drop": "object-drop rate"}


def make_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="outputs/shapes_pipeline", help="Output directory (stages write subfolders).")
    p.add_argument("--quick", action="store_true", help="Small sizes (minutes on CPU) instead of the full run.")
    p.add_argument("--sft_base", default="shapes:rewriter", help="Model the SFT stage starts from.")
    p.add_argument("--t2i_model", default="shapes", help="Text-to-image model for preferences and evaluation.")
    p.add_argument("--rewards", nargs="+", default=["clip", "quality"], help="Reward metrics of the composite.")
    p.add_argument("--reward_weights", nargs="+", type=float, default=None, help="One weight per reward.")
    p.add_argument("--reward_models", default=None, help='JSON, e.g. {"clip": "tiny:clip"} (default: shapes:*).')
    p.add_argument("--similarity_model", default="minilm", help="Embedder for similarity and Sem-DPO weights.")
    p.add_argument("--semdpo_alpha", type=float, nargs="+", default=None,
                   help="Sem-DPO alphas, each > 0 (default: 1 with --quick, else 0.5 1 2 4).")
    p.add_argument("--train_seeds", type=int, nargs="+", default=None,
                   help="Training seeds of every DPO / Sem-DPO run (default: 0 with --quick, else 0 1 2).")
    p.add_argument("--sample_temperature", type=float, default=2.5,
                   help="Policy sampling temperature for candidates (the SFT rewriter is near-deterministic: at 1.0 "
                        "its K samples are identical and no pair survives).")
    p.add_argument("--dpo_learning_rate", type=float, default=5e-4,
                   help="AdamW learning rate of every DPO / Sem-DPO run (at 1e-4 and 20 steps the quick run's "
                        "policies equal SFT's beam-search output; Sem-DPO's weights in (0, 1] scale it down further).")
    p.add_argument("--num_inference_steps", type=int, default=None, help="Denoising steps (default: the model's).")
    p.add_argument("--seed", type=int, default=0, help="Seed of data sampling and of SFT.")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared 2-core machine).")
    return p


def size(args, key: str) -> int:
    return SIZES[key][0 if args.quick else 1]


def grid_setting(args, key: str) -> list:
    value = getattr(args, key)
    return list(value) if value is not None else list(GRID[key][0 if args.quick else 1])


def write_jsonl(path: Path, rows) -> Path:
    from t2i_prompt.utils import atomic_write_text

    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def prepare_data(args, out: Path) -> dict[str, Path]:
    """Held-out prompts (the shipped casual benchmark, plus fresh generator phrasings at full size), SFT pairs and
    preference prompts; no held-out prompt appears in the SFT or preference data."""
    from t2i_prompt.shapes.evaluate import benchmark_file, read_prompt_file
    from t2i_prompt.shapes.world import caption_pairs

    held_out = read_prompt_file(benchmark_file("casual"))[: size(args, "eval_prompts")]
    extra = size(args, "extra_eval_prompts")
    if extra:
        fresh = [c for c, _, _ in caption_pairs(4 * extra, seed=args.seed + 2000) if c not in held_out]
        held_out += list(dict.fromkeys(fresh))[:extra]
    unseen = set(held_out)
    pairs = [p for p in caption_pairs(size(args, "sft_pairs"), seed=args.seed) if p[0] not in unseen]
    prompts = [c for c, _, _ in caption_pairs(size(args, "pref_prompts"), seed=args.seed + 1000) if c not in unseen]
    return {
        "pairs": write_jsonl(out / "data" / "sft_pairs.jsonl",
                             [{"prompt": casual, "refined": canonical} for casual, canonical, _ in pairs]),
        "prompts": write_jsonl(out / "data" / "preference_prompts.jsonl", [{"prompt": c} for c in prompts]),
        "held_out": write_jsonl(out / "data" / "held_out.jsonl", [{"prompt": p} for p in held_out]),
    }


def stage_key(config, inputs: list) -> str:
    """What a stage's output depends on: its whole config (but where it writes) and the content of its inputs."""
    from t2i_prompt.cache import cache_key, fingerprint_path

    settings = {k: v for k, v in config.to_dict().items() if k not in ("output_dir", "logging_dir")}
    return cache_key(settings, [fingerprint_path(p) for p in inputs])


def stage_is_done(model_dir: Path, key: str) -> bool:
    """True when ``model_dir`` holds a model trained from exactly these inputs (``stage.json`` records them); a model
    from other settings or inputs is retrained, never reused silently."""
    record = model_dir / "stage.json"
    if not (model_dir / "model.safetensors").is_file() or not record.is_file():
        return False
    done = json.loads(record.read_text()).get("key") == key
    if not done:
        print(f"{model_dir}: trained with other settings or inputs; training it again")
    return done


def run_stage(model_dir: Path, config, inputs: list, train) -> None:
    from t2i_prompt.utils import atomic_write_json

    key = stage_key(config, inputs)
    if not stage_is_done(model_dir, key):
        train(config)
        atomic_write_json(model_dir / "stage.json", {"key": key, "inputs": [str(p) for p in inputs]})


def evaluate_run(model_dir: Path, out_file: Path, settings: dict, evaluate) -> list[dict]:
    """Held-out rows of the model in ``model_dir``, reused from ``out_file`` when the model (its ``stage.json``
    key) and the evaluation ``settings`` are unchanged."""
    from t2i_prompt.cache import cache_key
    from t2i_prompt.utils import atomic_write_json

    key = cache_key(json.loads((model_dir / "stage.json").read_text())["key"], settings)
    if out_file.is_file():
        saved = json.loads(out_file.read_text())
        if saved.get("key") == key:
            return saved["rows"]
    rows = evaluate(str(model_dir))
    atomic_write_json(out_file, {"key": key, "model": str(model_dir), "rows": rows})
    return rows


def common_train_args(seed: int) -> dict:
    return {"seed": seed, "per_device_train_batch_size": 8, "logging_steps": 5, "report_to": "none",
            "save_strategy": "no", "disable_tqdm": True}


def main(args: argparse.Namespace) -> dict:
    import torch
    from datasets import load_from_disk

    from t2i_prompt.models.loading import resolve_model_path
    from t2i_prompt.shapes.drift import object_drop
    from t2i_prompt.shapes.rewrite_faithfulness import correct_against_original
    from t2i_prompt.train.config import DPOTrainConfig, PreferenceConfig, SFTTrainConfig
    from t2i_prompt.train.data import read_jsonl
    from t2i_prompt.train.dpo import run_dpo
    from t2i_prompt.train.evaluate import evaluate_rewriter_items
    from t2i_prompt.train.grid import difference_table, frontier_plot, grid_table, summarize_grid, training_grid
    from t2i_prompt.train.preferences import PreferenceEngine, process_state
    from t2i_prompt.train.sft import run_sft
    from t2i_prompt.utils import atomic_write_json, atomic_write_text

    torch.set_num_threads(args.threads)
    started, timings = time.time(), {}
    out = Path(args.out)
    alphas, train_seeds = grid_setting(args, "semdpo_alpha"), grid_setting(args, "train_seeds")
    grid = training_grid(alphas, train_seeds)
    data = prepare_data(args, out)
    sft_dir = out / "sft"

    # 1. SFT (every stage reruns when its config or the content of its inputs changed)
    sft = SFTTrainConfig(model_name_or_path=args.sft_base, dataset=str(data["pairs"]), output_dir=str(sft_dir),
                         max_steps=size(args, "sft_steps"), learning_rate=5e-4, **common_train_args(args.seed))
    run_stage(sft_dir, sft, [resolve_model_path(args.sft_base), data["pairs"]], run_sft)
    timings["sft"] = time.time() - started
    # 2. preferences, built once for every seed and alpha (cached per image/score; reruns are free)
    pref = PreferenceConfig(prompts=str(data["prompts"]), policy=str(sft_dir), t2i_model=args.t2i_model,
                            num_candidates=size(args, "num_candidates"),
                            images_per_candidate=size(args, "images_per_candidate"), seed=args.seed,
                            num_inference_steps=args.num_inference_steps, rewards=args.rewards,
                            reward_weights=args.reward_weights, reward_models=args.reward_models,
                            similarity_model=args.similarity_model, sample_temperature=args.sample_temperature,
                            output_dir=str(out / "preferences"))
    engine = PreferenceEngine(pref)
    engine.run()  # every process renders its share; the main process writes the dataset
    state = process_state()
    state.wait_for_everyone()
    pairs_dir = out / "preferences" / "dataset"
    preferences = load_from_disk(str(pairs_dir))
    if len(preferences) == 0:
        raise ValueError(f"No preference pairs were kept; see {out / 'preferences' / 'report.md'}.")
    timings["preferences"] = time.time() - started - sum(timings.values())
    # 3. DPO and Sem-DPO from the SFT policy on the same pairs: every alpha x training seed
    for run in grid:
        dpo = DPOTrainConfig(model_name_or_path=str(sft_dir), dataset=str(pairs_dir), output_dir=str(out / run.dirname),
                             loss=run.loss, semdpo_alpha=run.alpha if run.alpha is not None else 1.0,
                             semdpo_embedding_model=args.similarity_model, max_steps=size(args, "dpo_steps"),
                             learning_rate=args.dpo_learning_rate, **common_train_args(run.seed))
        # the pairs' content is fingerprinted from pairs.jsonl: `datasets` writes cache-*.arrow files into the
        # dataset folder on every run, so that folder's fingerprint would change and retrain every later run
        run_stage(out / run.dirname, dpo, [sft_dir, out / "preferences" / "pairs.jsonl"], run_dpo)
        print(f"trained {run.method} seed {run.seed} ({time.time() - started:.0f} s)")
    timings["dpo"] = time.time() - started - sum(timings.values())
    if not state.is_main_process:
        return {}
    # 4. held-out evaluation: rows per (prompt, image seed); images cached by (text, seed) across rewriters
    held_out = [r["prompt"] for r in read_jsonl(data["held_out"])]
    seeds = list(range(1000, 1000 + size(args, "eval_seeds")))  # not the preference seeds
    render = engine.component("render")

    def cached_render(text: str, seed: int):
        return engine.cache.image(engine.image_key(text, seed), lambda: render(text, seed))

    checks = {"all_correct": lambda original, rewrite, image: correct_against_original(original, image),
              "object_drop": lambda original, rewrite, image: object_drop(original, rewrite) > 0}

    def evaluate(model_dir: str) -> list[dict]:
        return evaluate_rewriter_items(model_dir, held_out, cached_render, engine.component("rewards"),
                                       pref.weights, engine.component("similarity"), seeds=seeds,
                                       faithfulness=checks)

    settings = {"prompts": held_out, "seeds": seeds, "rewards": args.rewards, "weights": pref.weights,
                "t2i": engine.render_identity(), "similarity": args.similarity_model}
    rows_by_run = {("SFT", args.seed): evaluate_run(sft_dir, out / "eval" / "sft.json", settings, evaluate)}
    for run in grid:
        rows_by_run[(run.method, run.seed)] = evaluate_run(
            out / run.dirname, out / "eval" / f"{run.dirname.replace('/', '_')}.json", settings, evaluate)
    timings["evaluation"] = time.time() - started - sum(timings.values())
    summary = summarize_grid(rows_by_run, METRICS)
    table = grid_table(summary, METRICS, LABELS)
    methods = list(dict.fromkeys(run.method for run in grid))
    differences = difference_table(rows_by_run, [(m, "SFT") for m in methods] + [(m, "DPO") for m in methods[1:]],
                                   METRICS, LABELS)
    frontier_plot(summary, out / "frontier.png")
    frontier_plot(summary, out / "frontier_all_correct.png", x="all_correct",
                  title="reward vs detector all-correct against the original (95 % bootstrap intervals)")
    report = json.loads((out / "preferences" / "report.json").read_text())
    sampling = _sampling_settings(args.t2i_model)
    timings["total"] = time.time() - started
    summary_json = {"table": table, "differences": differences, "summary": summary, "pairs": len(preferences),
                    "preference_report": report,
                    "quick": args.quick, "alphas": alphas, "train_seeds": train_seeds, "eval_seeds": seeds,
                    "held_out_prompts": len(held_out), "t2i_sampling": sampling, "wall_time_s": timings,
                    "sizes": {k: size(args, k) for k in SIZES}}
    atomic_write_json(out / "results.json", summary_json)
    atomic_write_text(out / "results.md", results_markdown(summary_json, args))
    print(table)
    return summary_json


def _sampling_settings(t2i_model: str) -> dict:
    """The T2I model's default sampling settings (``t2i_sampling.json``), so the table says which guidance it used."""
    from t2i_prompt.models.loading import resolve_model_path

    path = Path(resolve_model_path(t2i_model)) / "t2i_sampling.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def results_markdown(s: dict, args) -> str:
    seconds = s["wall_time_s"]
    stages = ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
    sampling = s["t2i_sampling"]
    return (f"# Shapes-world rewriter results ({'quick' if s['quick'] else 'full'})\n\n"
            f"{s['held_out_prompts']} held-out casual prompts x {len(s['eval_seeds'])} image seeds per run; DPO and "
            f"Sem-DPO alphas {s['alphas']} x training seeds {s['train_seeds']} (pooled over seeds: 95 % bootstrap "
            f"over prompts x images x seeds); {s['pairs']} preference pairs; reward = {' + '.join(args.rewards)} "
            f"against the original prompt; T2I guidance {sampling.get('guidance_scale')}, "
            f"{sampling.get('num_inference_steps')} steps. Wall time: {stages}.\n\n{s['table']}\n"
            "Paired differences (per held-out item, each side averaged over its training seeds; 95 % paired "
            f"bootstrap over items):\n\n{s['differences']}\n"
            "![reward vs similarity](frontier.png) ![reward vs all-correct](frontier_all_correct.png)\n")


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
