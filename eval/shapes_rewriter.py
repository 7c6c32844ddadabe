"""Shapes world: does the rewriter generalise beyond the generator's templates? Exact-scene accuracy and object drop.

    python eval/shapes_rewriter.py --rewriter shapes:rewriter --n 200 --out eval/results/shapes_rewriter.json

Three fixed seeded sets of casual prompts (``t2i_prompt.shapes.rewrite_eval.EVAL_SETS``): in-distribution (training
templates and synonyms, new draws), held-out templates, held-out synonyms (``grammar.HELDOUT_TEMPLATES`` /
``HELDOUT_SYNONYMS``, never in the rewriter's ``--split train`` SFT pairs). Each prompt is rewritten once with the
rewriter's default decoding; exact-scene accuracy (``parse_prompt(rewrite)`` == the original's scene) and the
object-drop rate (rewrites naming fewer objects than the original mentions) get 95 % bootstrap intervals over
prompts (1000 resamples, seed 0). No images are generated: the grammar is the ground truth.

``--copy-bias`` decodes with that bonus on the prompt's own tokens (``t2i_prompt/rewrite/copy_bias.py``). Choose it
on the ``pseudo_words`` row (training-split prompts with made-up words; exact copy of the noisy target), never on
the held-out rows it is meant to help.
"""

from __future__ import annotations

import argparse

from t2i_prompt.cli.boundary import OneLineParser
from t2i_prompt.cli.options import float_in, int_in


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rewriter", default="shapes:rewriter", help="rewriter model (name or directory)")
    parser.add_argument("--n", type=int_in(1, 100000), default=200, help="prompts per set")
    parser.add_argument("--threads", type=int_in(1, 256), default=1)
    parser.add_argument("--copy-bias", type=float_in(0.0, 100.0), default=0.0, metavar="NATS",
                        help="decoding bonus on the prompt's own tokens (default 0 = off)")
    parser.add_argument("--examples", type=int_in(0, 1000), default=5, help="failures printed per set")
    parser.add_argument("--out", default=None, help="write the full results JSON here (atomically)")
    return parser


def bootstrap_interval(values, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of ``values``."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(resamples, len(values))).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarize(items: list[dict]) -> dict:
    """Exact-scene accuracy and object_drop_rate with 95 % bootstrap intervals over the prompts of ``items``."""
    exact = [float(i["exact_scene"]) for i in items]
    drop = [float(i["object_drop"] > 0) for i in items]
    return {"n_prompts": len(items),
            "exact_scene": round(sum(exact) / len(exact), 4),
            "exact_scene_ci95": [round(v, 4) for v in bootstrap_interval(exact)],
            "object_drop_rate": round(sum(drop) / len(drop), 4),
            "object_drop_rate_ci95": [round(v, 4) for v in bootstrap_interval(drop)]}


def main(args) -> dict:
    import torch

    from t2i_prompt.rewrite import PromptRewriter
    from t2i_prompt.shapes.rewrite_eval import EVAL_SETS, eval_prompts, pseudo_word_pairs, score_rewrites
    from t2i_prompt.utils import save_run_results

    torch.set_num_threads(args.threads)
    rewriter = PromptRewriter.from_pretrained(args.rewriter)
    decoding = {"copy_bias": args.copy_bias} if args.copy_bias else {}
    pairs = pseudo_word_pairs(args.n)
    rewrites = [cands[0].text.strip() for cands in rewriter.rewrite([c for c, _ in pairs], k=1, **decoding)]
    copied = [float(r == target) for r, (_, target) in zip(rewrites, pairs)]
    results = {"pseudo_words": {"n_prompts": len(pairs), "exact_copy": round(sum(copied) / len(copied), 4),
                                "exact_copy_ci95": [round(v, 4) for v in bootstrap_interval(copied)],
                                "items": [{"prompt": c, "target": t, "rewrite": r}
                                          for (c, t), r in zip(pairs, rewrites)]}}
    lo, hi = results["pseudo_words"]["exact_copy_ci95"]
    print(f"{'pseudo_words':18s} prompts {len(pairs):4d}  exact-copy  {results['pseudo_words']['exact_copy']:.3f} "
          f"[{lo:.3f}, {hi:.3f}]  (validation: choose --copy-bias here)", flush=True)
    for name in EVAL_SETS:
        prompts = eval_prompts(name, args.n)
        rewrites = [cands[0].text.strip() for cands in rewriter.rewrite(prompts, k=1, **decoding)]
        items = score_rewrites(prompts, rewrites)
        row = summarize(items)
        pieces = sorted({p for i in items for p in i["heldout_pieces"]})
        kinds = sorted({p.split(":")[0] for p in pieces})
        row["by_heldout_kind"] = {k: summarize([i for i in items if any(p.startswith(k + ":")
                                                                        for p in i["heldout_pieces"])]) for k in kinds}
        row["by_heldout_piece"] = {p: summarize([i for i in items if p in i["heldout_pieces"]]) for p in pieces}
        row["items"] = items
        results[name] = row
        lo, hi = row["exact_scene_ci95"]
        dlo, dhi = row["object_drop_rate_ci95"]
        print(f"{name:18s} prompts {row['n_prompts']:4d}  exact-scene {row['exact_scene']:.3f} [{lo:.3f}, {hi:.3f}]"
              f"  object_drop_rate {row['object_drop_rate']:.3f} [{dlo:.3f}, {dhi:.3f}]", flush=True)
        for piece, sub in [*row["by_heldout_kind"].items(), *row["by_heldout_piece"].items()]:
            print(f"    {piece:32s} n {sub['n_prompts']:3d}  exact-scene {sub['exact_scene']:.3f}"
                  f"  object_drop_rate {sub['object_drop_rate']:.3f}")
        for item in [i for i in items if not i["exact_scene"]][:args.examples]:
            print(f"    FAIL {item['prompt']!r} -> {item['rewrite']!r}")
    return save_run_results(args.out, args, results)


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
