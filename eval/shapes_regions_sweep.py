"""Shapes world: region binding's hard-binding steps x soft-refinement weight, all-correct with 95 % intervals.

Every cell generates the benchmark prompts with the same seeds (layout-planner boxes, ``--sr-source`` as given)
and is scored by the exact detector; vanilla is the first row. Prints a markdown table (all-correct with a 95 %
bootstrap interval over images, and the per-attribute accuracies), then every cell's paired difference from vanilla
per attribute over the same images (prompt x seed), with its 95 % bootstrap interval: the issue's "no attribute
lower than vanilla's by more than 2 points" read with its uncertainty.

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


def paired_differences(vanilla: list[dict], cell: list[dict]) -> dict:
    """Per attribute and all-correct: mean of ``cell - vanilla`` over the images scored in both (matched by prompt
    line and seed; a relation that is N/A in either image is left out), with its 95 % paired bootstrap interval."""
    from t2i_prompt.evaluate.report import paired_bootstrap

    base = {(i["line"], i["seed"]): i for i in vanilla}
    out = {}
    for name in ATTRIBUTES + ("all_correct",):
        pairs = [(float(base[key][name]), float(i[name])) for i in cell
                 if (key := (i["line"], i["seed"])) in base and i[name] is not None and base[key][name] is not None]
        if not pairs:
            raise ValueError(f"no image is scored for {name!r} in both vanilla and the cell; check the benchmark.")
        mean, low, high = paired_bootstrap([a for a, _ in pairs], [b for _, b in pairs])
        out[name] = {"mean": round(mean, 4), "ci95": [round(low, 4), round(high, 4)], "n": len(pairs)}
    return out


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
    results, items = {}, {}
    print("| setting | images | " + " | ".join(ATTRIBUTES) + " | all-correct [95 % CI] |\n|---|---|"
          + "---|" * len(ATTRIBUTES) + "---|", flush=True)
    for name, spec in cells:
        report = evaluate_prompts(prompts, pipeline, seeds=args.seeds, hooks_for_prompt=spec.factory([]),
                                  progress=False)
        low, high = bootstrap_interval([float(i["all_correct"]) for i in report["items"]])
        row = {**report["overall"], "all_correct_ci95": [round(low, 3), round(high, 3)], "hooks": spec.to_dict()}
        results[name] = row
        items[name] = report["items"]
        print(f"| {name} | {row['n_images']} | " + " | ".join(f"{row[a]:.2f}" for a in ATTRIBUTES)
              + f" | {row['all_correct']:.2f} [{low:.2f}, {high:.2f}] |", flush=True)
    print("\n| paired difference from vanilla, points [95 % CI] | " + " | ".join(ATTRIBUTES + ("all-correct",))
          + " |\n|---|" + "---|" * (len(ATTRIBUTES) + 1), flush=True)
    for name, _ in cells[1:]:
        diff = results[name]["minus_vanilla"] = paired_differences(items["vanilla"], items[name])
        print(f"| {name} | " + " | ".join(
            f"{100 * d['mean']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]" for d in diff.values())
            + " |", flush=True)
    return save_run_results(args.out, args, results)


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
