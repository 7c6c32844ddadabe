"""The whole rewriter recipe on the shapes world, one command: SFT -> preference data -> DPO and Sem-DPO -> a results
table (mean reward and mean semantic similarity to the original prompt, on held-out casual prompts).

    python training/shapes_pipeline.py --quick                  # minutes on 2 CPU cores
    python training/shapes_pipeline.py                          # the full size
    accelerate launch --config_file training/accelerate/cpu.yaml training/shapes_pipeline.py --quick

Stages (each resumable: the preference cache and finished stage outputs are reused when the command is rerun):
1. SFT of ``--sft_base`` (default ``shapes:rewriter``) on casual -> canonical caption pairs of the shapes grammar.
2. Preference data: the SFT policy samples K rewrites of unseen casual prompts; ``--t2i_model`` renders them; the
   composite reward (shapes CLIP score + shapes quality by default) scores them against the original prompt.
3. DPO and Sem-DPO (alpha ``--semdpo_alpha``, MiniLM weights) from the SFT policy on the same pairs.
4. Evaluation of SFT, DPO and Sem-DPO on the shipped held-out casual benchmark -> ``<out>/results.{md,json}``.

Other models (for a smoke run): ``--sft_base tiny:gpt2 --t2i_model tiny:sd15 --rewards clip
--reward_models '{"clip": "tiny:clip"}' --num_inference_steps 2``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from t2i_prompt.cli.boundary import OneLineParser

SIZES = {  # quick / full
    "sft_pairs": (256, 4000), "sft_steps": (30, 400), "pref_prompts": (12, 96), "num_candidates": (4, 6),
    "images_per_candidate": (1, 2), "dpo_steps": (20, 200), "eval_prompts": (12, 48), "eval_seeds": (1, 2),
}


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
    p.add_argument("--semdpo_alpha", type=float, default=1.0, help="Sem-DPO alpha.")
    p.add_argument("--sample_temperature", type=float, default=2.5,
                   help="Policy sampling temperature for candidates (the SFT rewriter is near-deterministic: at 1.0 "
                        "its K samples are identical and no pair survives).")
    p.add_argument("--num_inference_steps", type=int, default=None, help="Denoising steps (default: the model's).")
    p.add_argument("--seed", type=int, default=0, help="Seed of data sampling and training.")
    return p


def size(args, key: str) -> int:
    return SIZES[key][0 if args.quick else 1]


def write_jsonl(path: Path, rows) -> Path:
    from t2i_prompt.utils import atomic_write_text

    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def prepare_data(args, out: Path) -> dict[str, Path]:
    """SFT pairs, preference prompts (unseen casual phrasings) and held-out prompts (the shipped benchmark)."""
    from t2i_prompt.shapes.evaluate import benchmark_file, read_prompt_file
    from t2i_prompt.shapes.world import caption_pairs

    pairs = caption_pairs(size(args, "sft_pairs"), seed=args.seed)
    prompts = caption_pairs(size(args, "pref_prompts"), seed=args.seed + 1000)
    held_out = read_prompt_file(benchmark_file("casual"))[: size(args, "eval_prompts")]
    return {
        "pairs": write_jsonl(out / "data" / "sft_pairs.jsonl",
                             [{"prompt": casual, "refined": canonical} for casual, canonical, _ in pairs]),
        "prompts": write_jsonl(out / "data" / "preference_prompts.jsonl", [{"prompt": c} for c, _, _ in prompts]),
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


def common_train_args(args) -> dict:
    return {"seed": args.seed, "per_device_train_batch_size": 8, "logging_steps": 5, "report_to": "none",
            "save_strategy": "no", "disable_tqdm": True}


def main(args: argparse.Namespace) -> dict:
    from datasets import load_from_disk

    from t2i_prompt.train.config import DPOTrainConfig, PreferenceConfig, SFTTrainConfig
    from t2i_prompt.train.data import read_jsonl
    from t2i_prompt.train.dpo import run_dpo
    from t2i_prompt.train.evaluate import evaluate_rewriter, results_table
    from t2i_prompt.train.preferences import PreferenceEngine, process_state
    from t2i_prompt.train.sft import run_sft
    from t2i_prompt.utils import atomic_write_json, atomic_write_text

    out = Path(args.out)
    data = prepare_data(args, out)
    models = {"SFT": out / "sft", "DPO": out / "dpo", "Sem-DPO": out / "semdpo"}

    from t2i_prompt.models.loading import resolve_model_path
    from t2i_prompt.shapes.drift import object_drop

    # 1. SFT (every stage reruns when its config or the content of its inputs changed)
    sft = SFTTrainConfig(model_name_or_path=args.sft_base, dataset=str(data["pairs"]), output_dir=str(models["SFT"]),
                         max_steps=size(args, "sft_steps"), learning_rate=5e-4, **common_train_args(args))
    run_stage(models["SFT"], sft, [resolve_model_path(args.sft_base), data["pairs"]], run_sft)
    # 2. preferences (cached per image/score; reruns are free)
    pref = PreferenceConfig(prompts=str(data["prompts"]), policy=str(models["SFT"]), t2i_model=args.t2i_model,
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
    preferences = load_from_disk(str(out / "preferences" / "dataset"))
    if len(preferences) == 0:
        raise ValueError(f"No preference pairs were kept; see {out / 'preferences' / 'report.md'}.")
    # 3. DPO and Sem-DPO from the SFT policy on the same pairs
    for name, loss in (("DPO", "dpo"), ("Sem-DPO", "semdpo")):
        dpo = DPOTrainConfig(model_name_or_path=str(models["SFT"]), dataset=str(out / "preferences" / "dataset"),
                             output_dir=str(models[name]), loss=loss, semdpo_alpha=args.semdpo_alpha,
                             semdpo_embedding_model=args.similarity_model, max_steps=size(args, "dpo_steps"),
                             learning_rate=1e-4, **common_train_args(args))
        run_stage(models[name], dpo, [models["SFT"], out / "preferences" / "dataset"], run_dpo)
    if not state.is_main_process:
        return {}
    # 4. evaluation on held-out prompts, with the engine's renderer, rewards and embedder
    held_out = [r["prompt"] for r in read_jsonl(data["held_out"])]
    seeds = list(range(1000, 1000 + size(args, "eval_seeds")))  # not the preference seeds
    results = {name: evaluate_rewriter(str(path), held_out, engine.component("render"),
                                       engine.component("rewards"), pref.weights, engine.component("similarity"),
                                       seeds=seeds, object_drop_fn=object_drop)
               for name, path in models.items()}
    table = results_table(results, args.rewards)
    report = json.loads((out / "preferences" / "report.json").read_text())
    summary = {"table": table, "results": results, "pairs": len(preferences), "preference_report": report,
               "quick": args.quick}
    atomic_write_json(out / "results.json", summary)
    atomic_write_text(out / "results.md", f"# Shapes-world rewriter results ({'quick' if args.quick else 'full'})\n\n"
                      f"{len(held_out)} held-out casual prompts x {len(seeds)} seeds; {len(preferences)} "
                      f"preference pairs; rewards {args.rewards} against the original prompt.\n\n{table}")
    print(table)
    return summary


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
