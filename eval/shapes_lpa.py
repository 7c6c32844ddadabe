"""Shapes world: does LPA keep one style across objects when the style phrase sits next to one object?

A fixed seeded set of outlined two-object relation scenes, each captioned three ways ("in outline style" at the
end, right after the first object, at the start; ``shapes.style_placement``), generated with the same seeds by
vanilla sampling and by every LPA preset (window [300, 650] unless changed), scored by the exact detector:
first / second object's style, style consistency (both objects share one style), content (colour, shape,
relation, count) and all-correct, each a mean over images with a 95 % bootstrap interval.

    python eval/shapes_lpa.py --scenes 16 --seeds 0 1 --out eval/results/shapes_lpa.json
"""

from __future__ import annotations

import argparse

from t2i_prompt.cli.boundary import OneLineParser
from t2i_prompt.cli.options import int_in

METRICS = ("first_style", "second_style", "consistent", "content", "all_correct")


def make_parser() -> argparse.ArgumentParser:
    from t2i_prompt.attention.lpa import PRESETS

    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="T2I model (default: the shapes world)")
    parser.add_argument("--scenes", type=int_in(1, 1000), default=16, help="outlined relation scenes (seeded)")
    parser.add_argument("--scene-seed", type=int, default=2026)
    parser.add_argument("--seeds", type=int_in(0, 2**63), nargs="+", default=[0, 1])
    parser.add_argument("--presets", nargs="+", default=[p for p in PRESETS if p != "vanilla"],
                        choices=[p for p in PRESETS if p != "vanilla"])
    parser.add_argument("--lpa-window", type=float, nargs=2, default=(300.0, 650.0))
    parser.add_argument("--out", default=None, help="write the full results JSON here (atomically)")
    return parser


def summarize(rows: list[dict]) -> dict:
    """Mean and 95 % bootstrap interval of every metric over ``rows`` (one per image)."""
    from shapes_guidance import (
        bootstrap_interval,  # eval/ is on sys.path when a script here runs
    )

    out = {"n_images": len(rows)}
    for m in METRICS:
        values = [float(r[m]) for r in rows]
        out[m] = round(sum(values) / len(values), 3)
        out[m + "_ci95"] = [round(v, 3) for v in bootstrap_interval(values)]
    return out


def main(args) -> dict:
    from t2i_prompt.attention.recipes import HookSpec
    from t2i_prompt.generate.pipeline import T2IPipeline
    from t2i_prompt.shapes.detector import DetectedObject
    from t2i_prompt.shapes.evaluate import evaluate_prompts
    from t2i_prompt.shapes.style_placement import (
        PLACEMENTS,
        placed_caption,
        placement_scenes,
        placement_scores,
    )
    from t2i_prompt.utils import save_run_results

    spec_window = HookSpec(lpa_window=tuple(args.lpa_window)).lpa_window  # checked before the model loads
    pipeline = T2IPipeline.from_pretrained(args.model)
    scenes = placement_scenes(args.scenes, args.scene_seed)
    prompts = [(placement, scene, placed_caption(scene, placement)) for placement in PLACEMENTS for scene in scenes]
    results = {}
    for method in ["vanilla"] + list(args.presets):
        spec = HookSpec() if method == "vanilla" else HookSpec(lpa=method, lpa_window=spec_window)
        report = evaluate_prompts([p for _, _, p in prompts], pipeline, seeds=args.seeds,
                                  hooks_for_prompt=spec.factory(), progress=False)
        rows = []
        for item in report["items"]:
            placement, scene, _ = prompts[item["line"] - 1]
            detected = [DetectedObject(**d) for d in item["detected"]]
            rows.append({"placement": placement, **placement_scores(scene, detected)})
        results[method] = {"overall": summarize(rows),
                           "by_placement": {p: summarize([r for r in rows if r["placement"] == p]) for p in PLACEMENTS}}
        for name, row in [("all", results[method]["overall"])] + list(results[method]["by_placement"].items()):
            print(f"{method:21s} {name:11s} " + "  ".join(f"{m} {row[m]:.2f} [{row[m + '_ci95'][0]:.2f}, "
                                                         f"{row[m + '_ci95'][1]:.2f}]" for m in METRICS), flush=True)
    return save_run_results(args.out, args, results)


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
