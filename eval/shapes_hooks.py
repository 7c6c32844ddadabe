"""Shapes world: vanilla generation vs region binding (layout planner -> RAG hooks) vs LPA, scored by the exact detector.

Each method generates every benchmark prompt with the same seeds on the embedded shapes T2I model; region binding
plans boxes from the prompt's spatial phrase (``plan_layout``; prompts without one run without hooks and are counted),
LPA routes content/style tokens (``lpa_late_only``, window [300, 650] unless changed).

    python eval/shapes_hooks.py                                   # relation benchmark, seeds 0 1, all methods
    python eval/shapes_hooks.py --benchmark relation single --seeds 0 1 2 --out outputs/shapes_hooks.json
    python eval/shapes_hooks.py --methods vanilla regions --hb-steps 3 --sr-delta 0.5 --limit 10
"""

from __future__ import annotations

import argparse

from t2i_prompt.cli.boundary import OneLineParser

METHODS = ("vanilla", "regions", "lpa")


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", nargs="+", default=["relation"], help="shipped lists: single relation count casual")
    parser.add_argument("--model", default=None, help="T2I model (default: the shapes world)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--limit", type=int, default=None, help="first N prompts of each list (quick runs)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    parser.add_argument("--hb-steps", type=int, default=2)
    parser.add_argument("--sr-delta", type=float, default=1.0)
    parser.add_argument("--sr-source", default="region", choices=("region", "base"),
                        help="what soft refinement attends to: the region prompts (RAG) or the masked base prompt")
    parser.add_argument("--lpa-preset", default="lpa_late_only")
    parser.add_argument("--lpa-window", type=float, nargs=2, default=(300.0, 650.0))
    parser.add_argument("--out", default=None, help="write the full results JSON here (atomically)")
    return parser


def method_spec(method: str, args):
    """The ``HookSpec`` of one method (the same recipes ``t2i-prompt generate`` and ``shapes eval`` use)."""
    from t2i_prompt.attention.recipes import HookSpec

    if method == "lpa":
        return HookSpec(lpa=args.lpa_preset, lpa_window=tuple(args.lpa_window))
    if method == "regions":
        return HookSpec(auto_regions=True, hb_steps=args.hb_steps, sr_delta=args.sr_delta, sr_source=args.sr_source)
    return HookSpec()


def main(args) -> dict:
    from t2i_prompt.generate.pipeline import T2IPipeline
    from t2i_prompt.shapes.evaluate import (
        benchmark_file,
        evaluate_prompts,
        read_prompt_file,
    )
    from t2i_prompt.utils import save_run_results

    pipeline = T2IPipeline.from_pretrained(args.model)
    prompts = []
    for name in args.benchmark:
        prompts += read_prompt_file(benchmark_file(name))[: args.limit]
    results = {}
    for method in args.methods:
        unplanned: list[str] = []
        spec = method_spec(method, args)
        result = evaluate_prompts(prompts, pipeline, seeds=args.seeds, hooks_for_prompt=spec.factory(unplanned),
                                  num_inference_steps=args.steps, progress=False)
        result["unplanned_prompts"] = sorted(set(unplanned))
        result["hooks"] = spec.to_dict()
        results[method] = result
        overall = result["overall"]
        print(f"{method:8s} " + " ".join(f"{k}={v}" for k, v in overall.items())
              + (f" (no layout for {len(unplanned)} prompts)" if method == "regions" else ""), flush=True)
    return save_run_results(args.out, args, results)


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
