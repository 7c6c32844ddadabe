"""Shapes world: detector accuracy of a T2I model over classifier-free guidance scales, with bootstrap intervals.

    python eval/shapes_guidance.py --model shapes --guidance 1 1.5 2 3 5 --seeds 0 1 --out eval/results/guidance.json

Every (benchmark, guidance) cell generates each shipped prompt with the same seeds; all-correct is reported with a
95 % bootstrap interval over images (1000 resamples, seed 0).
"""

from __future__ import annotations

import argparse

from t2i_prompt.cli.boundary import OneLineParser
from t2i_prompt.cli.options import float_in, int_in


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes", help="T2I model (default: the shapes world)")
    parser.add_argument("--benchmark", nargs="+", default=["single", "relation", "count"])
    parser.add_argument("--guidance", type=float_in(0.0, 100.0), nargs="+", default=[1.0, 1.5, 2.0, 3.0, 5.0])
    parser.add_argument("--seeds", type=int_in(0, 2**63), nargs="+", default=[0, 1])
    parser.add_argument("--out", default=None, help="write the full results JSON here (atomically)")
    return parser


def bootstrap_interval(values, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of ``values``."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(resamples, len(values))).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main(args) -> dict:
    from t2i_prompt.generate.pipeline import T2IPipeline
    from t2i_prompt.shapes.evaluate import (
        benchmark_file,
        evaluate_prompts,
        read_prompt_file,
    )
    from t2i_prompt.utils import save_run_results

    pipeline = T2IPipeline.from_pretrained(args.model)
    results = {}
    for name in args.benchmark:
        prompts = read_prompt_file(benchmark_file(name))
        for g in args.guidance:
            report = evaluate_prompts(prompts, pipeline, seeds=args.seeds, guidance_scale=g, progress=False)
            correct = [float(item["all_correct"]) for item in report["items"]]
            low, high = bootstrap_interval(correct)
            row = {**report["overall"], "all_correct_ci95": [round(low, 3), round(high, 3)]}
            results[f"{name}@{g:g}"] = row
            print(f"{name:9s} guidance {g:<4g} images {row['n_images']:4d}  all-correct {row['all_correct']:.3f} "
                  f"[{low:.3f}, {high:.3f}]  color {row['color']}  shape {row['shape']}  relation {row['relation']}"
                  f"  count {row['count']}", flush=True)
    return save_run_results(args.out, args, results)


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
