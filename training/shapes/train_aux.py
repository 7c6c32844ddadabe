"""Train the shapes world's smaller models and write them into the package's weights folder.

    python training/shapes/train_aux.py clip     --out t2i_prompt/shapes/weights/clip
    python training/shapes/train_aux.py quality  --out t2i_prompt/shapes/weights/quality --clip t2i_prompt/shapes/weights/clip
    python training/shapes/train_aux.py rewriter --out t2i_prompt/shapes/weights/rewriter --split train --copy_noise

Each is seeded and takes a few minutes on 2 CPU cores; outputs are written atomically (temp dir, rename).
"""

from __future__ import annotations

import argparse

from t2i_prompt.cli.boundary import OneLineParser


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["clip", "quality", "rewriter"])
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")
    parser.add_argument("--clip", default="t2i_prompt/shapes/weights/clip", help="CLIP dir (quality only)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the part's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--split", default="all", choices=["all", "train"],
                        help="rewriter only: casual generator split of the SFT pairs ('train' leaves out the grammar's "
                             "held-out templates and synonyms; the shipped rewriter uses it)")
    parser.add_argument("--copy_noise", action="store_true",
                        help="rewriter only: copy-bias pseudo-word noise (t2i_prompt/shapes/copy_noise.py)")
    return parser


def main(args: argparse.Namespace) -> None:
    import torch

    from t2i_prompt.shapes import train_scorers as auxiliary

    torch.set_num_threads(args.threads)
    kwargs = {"seed": args.seed} | ({"steps": args.steps} if args.steps else {})
    if args.part == "clip":
        path = auxiliary.train_clip(args.out, **kwargs)
    elif args.part == "quality":
        path = auxiliary.train_quality(args.out, args.clip, **kwargs)
    else:
        path = auxiliary.train_rewriter(args.out, split=args.split, copy_noise=args.copy_noise, **kwargs)
    print(f"wrote {path}")


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
