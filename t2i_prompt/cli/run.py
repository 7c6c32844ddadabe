"""``t2i-prompt run PROMPT``: rewrite the prompt, generate original and rewrite with the same seeds, score both,
and write a side-by-side grid (``grid.png``) and ``result.json``.

Examples::

    t2i-prompt run "a red circle to the left of a blue square"            # the shapes world end to end
    t2i-prompt run "a cat" --model tiny:sd15 --rewriter tiny:gpt2 --out outputs/run --json
    t2i-prompt run --prompts-file prompts.txt --seed 0 1 2 --out outputs/runs   # one sub-directory per prompt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .rewrite import add_rewriter_arguments


def add_parser(sub) -> None:
    parser = sub.add_parser("run", help="rewrite -> generate original and refined -> score -> grid + result.json",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", nargs="?", default=None, help="the prompt (or use --prompts-file)")
    parser.add_argument("--prompts-file", default=None, help="file with one prompt per line (blank lines skipped)")
    parser.add_argument("--model", default=None, help="T2I model: shapes (default), tiny:sd15, a dir, a hub id")
    add_rewriter_arguments(parser)
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1], metavar="N",
                        help="seeds, one image each for the original and the rewrite (default 0 1)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None, help="CFG scale (default: the model's)")
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--clip", default=None, help="CLIP for scoring (default: matches --model)")
    parser.add_argument("--quality", default=None, help="aesthetic predictor (default: matches --model)")
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda if present)")
    parser.add_argument("--out", default="outputs/run", help="output directory (default outputs/run)")
    parser.add_argument("--json", action="store_true", help="print result.json (or the summary) to stdout")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def read_prompts(prompt: str | None, prompts_file: str | None) -> list[str]:
    """The prompt argument and/or the lines of ``--prompts-file``; at least one is required."""
    prompts = [prompt] if prompt is not None else []
    if prompts_file:
        path = Path(prompts_file)
        if not path.is_file():
            raise FileNotFoundError(f"--prompts-file {path} does not exist.")
        prompts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(prompts) == (prompt is not None):
            raise ValueError(f"--prompts-file {path} holds no prompts (one per line).")
    if not prompts:
        raise ValueError("give a PROMPT or --prompts-file FILE.")
    return prompts


def run(args: argparse.Namespace) -> int:
    from ..refine import refine_and_compare
    from ..rewrite import PromptRewriter

    prompts = read_prompts(args.prompt, args.prompts_file)
    rewriter = args.rewriter
    if args.system_prompt is not None:
        rewriter = PromptRewriter.from_pretrained(args.rewriter, system_prompt=args.system_prompt, device=args.device)
    summary = refine_and_compare(
        prompts, model=args.model, rewriter=rewriter, seeds=args.seed, out_dir=args.out, k=args.k or 4,
        clip=args.clip, quality=args.quality, num_inference_steps=args.steps, guidance_scale=args.guidance,
        height=args.height, width=args.width, device=args.device, progress=not args.no_progress,
        rewrite_kwargs={"do_sample": args.sample, "max_new_tokens": args.max_new_tokens},
    )
    runs = summary["runs"]
    if args.json:
        json.dump(runs[0] if len(runs) == 1 else summary, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    for r in runs:
        print(f"original: {r['original']}\nrefined:  {r['refined']}")
        for which in ("original", "refined"):
            means = "  ".join(f"{k} {v:.4f}" for k, v in r["scores"]["mean"][which].items())
            print(f"  {which:8s} mean {means}")
        print(f"  -> {Path(r['out_dir']) / 'grid.png'}")
    return 0
