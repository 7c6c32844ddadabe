"""Shapes world: region binding's hard-binding steps x soft-refinement weight, all-correct with 95 % intervals.

Every cell generates the benchmark prompts with the same seeds (layout-planner boxes, ``--sr-source`` as given)
and is scored by the exact detector; vanilla is the first row. Prints a markdown table (all-correct with a 95 %
bootstrap interval over images, and the per-attribute accuracies).

    python eval/shapes_regions_sweep.py --hb-steps 0 2 --sr-delta 0.5 1 --sr-source base \
        --out eval/results/shapes_regions_sweep.json
"""

from __future__ import annotations

import argparse

from t2i_prompt.cli.boundary import OneLineParser
from t2i_prompt.cli.options import float_in, int_in

ATTRIBUTES = ("color", "shape", "relation", "count", "style")


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="relation", help="shipped list (default: relation)")
    parser.add_argument("--model", default=None, help="T2I model (default: the shapes world)")
    parser.add_argument("--seeds", type=int_in(0, 2**63), nargs="+", default=[0, 1])
    parser.add_argument("--hb-steps", type=int_in(0, 1000), nargs="+", default=[0, 2])
    parser.add_argument("--sr-delta", type=float_in(0.0, 1.0), nargs="+", default=[0.5, 1.0])
    parser.add_argument("--sr-source", default="base", choices=("region", "base"))
    parser.add_argument("--limit", type=int_in(1), default=None, help="first N prompts (quick runs)")
    parser.add_argument("--out", default=None, help="write the full results JSON here (atomically)")
    return parser


def main(args) -> dict:
    from shapes_guidance import (
        bootstrap_interval,  # eval/ is on sys.path when a script here runs
    )

    from t2i_prompt.attention.recipes import HookSpec
    from t2i_prompt.generate.pipeline import T2IPipeline
    from t2i_prompt.shapes.evaluate import (
        benchmark_file,
        evaluate_prompts,
        read_prompt_file,
    )
    from t2i_prompt.utils import save_run_results

    prompts = read_prompt_file(benchmark_file(args.benchmark))[: args.limit]
    cells = [("vanilla", HookSpec())] + [
        (f"hb_steps {hb}, sr_delta {d:g}", HookSpec(auto_regions=True, hb_steps=hb, sr_delta=d, sr_source=args.sr_source))
        for hb in args.hb_steps for d in args.sr_delta]
    pipeline = T2IPipeline.from_pretrained(args.model)
    results = {}
    print("| setting | images | " + " | ".join(ATTRIBUTES) + " | all-correct [95 % CI] |\n|---|---|"
          + "---|" * len(ATTRIBUTES) + "---|", flush=True)
    for name, spec in cells:
        report = evaluate_prompts(prompts, pipeline, seeds=args.seeds, hooks_for_prompt=spec.factory([]),
                                  progress=False)
        low, high = bootstrap_interval([float(i["all_correct"]) for i in report["items"]])
        row = {**report["overall"], "all_correct_ci95": [round(low, 3), round(high, 3)], "hooks": spec.to_dict()}
        results[name] = row
        print(f"| {name} | {row['n_images']} | " + " | ".join(f"{row[a]:.2f}" for a in ATTRIBUTES)
              + f" | {row['all_correct']:.2f} [{low:.2f}, {high:.2f}] |", flush=True)
    return save_run_results(args.out, args, results)


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
