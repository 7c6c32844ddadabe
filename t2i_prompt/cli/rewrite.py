"""``t2i-prompt rewrite PROMPT``: rewrite a prompt with a causal-LM prompt rewriter.

Examples::

    t2i-prompt rewrite "a cat next to a dog"                          # shapes:rewriter, Promptist beam search
    t2i-prompt rewrite "a cat" --rewriter tiny:chat -k 4 --sample --seed 3 --json
    t2i-prompt rewrite "a cat" --rewriter /path/to/promptist          # any HF causal LM directory
"""

from __future__ import annotations

import argparse
import json
import sys

from . import options


def add_parser(sub) -> None:
    parser = options.subcommand(sub, "rewrite", "rewrite a prompt with an LLM prompt rewriter", __doc__)
    parser.add_argument("prompt", help="the prompt to rewrite")
    options.add_rewriter_args(parser, k_default=1)
    options.add_seed_args(parser, many=False)
    options.add_device_args(parser, dtype=False)
    options.add_output_args(parser, None, progress=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..rewrite import PromptRewriter

    decoding = options.rewriter_decoding(args)
    settings = PromptRewriter.decoding_settings(args.k, **decoding)
    rewriter = PromptRewriter.from_pretrained(args.rewriter, system_prompt=args.system_prompt, device=args.device)
    (cands,) = rewriter.rewrite([args.prompt], k=args.k, seed=args.seed, **decoding)
    if args.json:
        json.dump({"prompt": args.prompt, "rewriter": rewriter.name, "seed": args.seed, "decoding": settings,
                   "candidates": [c.to_dict() for c in cands]}, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    for i, c in enumerate(cands):
        flag = f"  [{c.clip_tokens} CLIP tokens > 77: encoder reads only the start]" if c.exceeds_clip_window else ""
        print(f"{i}: {c.text}    (mean logprob {c.mean_logprob:.3f}, {c.num_tokens} tokens){flag}")
    return 0
