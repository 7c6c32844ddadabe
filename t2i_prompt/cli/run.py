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

from . import options


def add_parser(sub) -> None:
    parser = options.subcommand(sub, "run", "rewrite -> generate original and refined -> score -> grid + result.json", __doc__)
    parser.add_argument("prompt", nargs="?", default=None, help="the prompt (or use --prompts-file)")
    options.add_prompts_file_arg(parser)
    options.add_model_args(parser)
    options.add_rewriter_args(parser, k_default=4)
    options.add_seed_args(parser, default=(0, 1))
    options.add_sampling_args(parser, negative=False)
    options.add_size_conditioning_args(parser)
    parser.add_argument("--clip", default=None, help="CLIP for scoring (default: the one that fits --model)")
    parser.add_argument("--quality", default=None, help="aesthetic predictor (default: the one that fits --model)")
    options.add_device_args(parser)
    options.add_output_args(parser, "outputs/run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..generate import ImageGenerator
    from ..rewrite import PromptRewriter
    from ..workflows.compare import compare_rewrites, save_comparisons

    prompts = options.read_prompts(args.prompt, args.prompts_file)
    out_dir = options.check_out_dir(args.out)
    rewrite_kwargs = options.rewriter_decoding(args)
    PromptRewriter.decoding_settings(args.k, **rewrite_kwargs)  # bad decoding flags fail before models load
    rewriter = args.rewriter
    if args.system_prompt is not None:
        rewriter = PromptRewriter.from_pretrained(args.rewriter, system_prompt=args.system_prompt, device=args.device)
    generator = ImageGenerator(args.model, progress=not args.no_progress, **options.t2i_load_options(args))
    results = compare_rewrites(
        prompts, model=generator, rewriter=rewriter, seeds=args.seed, k=args.k, clip=args.clip,
        quality=args.quality, num_inference_steps=args.steps, guidance_scale=args.guidance, height=args.height,
        width=args.width, device=args.device, progress=not args.no_progress, rewrite_kwargs=rewrite_kwargs,
        size_conditioning=options.size_conditioning(args),
    )
    summary = save_comparisons(results, out_dir)
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
