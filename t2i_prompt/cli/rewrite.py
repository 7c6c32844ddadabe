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


def add_rewriter_arguments(parser: argparse.ArgumentParser) -> None:
    """Rewriter flags shared by ``rewrite`` and ``run``."""
    parser.add_argument("--rewriter", default=None,
                        help="causal LM: shapes:rewriter (default), tiny:gpt2, tiny:chat, a local dir, a cached hub id")
    parser.add_argument("-k", type=int, default=None, help="number of rewrite candidates")
    parser.add_argument("--sample", action="store_true",
                        help="sample (top-k 50, top-p 0.95) instead of Promptist beam search (8 beams)")
    parser.add_argument("--max-new-tokens", type=int, default=75, help="longest rewrite in LM tokens (default 75)")
    parser.add_argument("--system-prompt", default=None, help="system message for chat-template rewriters")


def add_parser(sub) -> None:
    parser = sub.add_parser("rewrite", help="rewrite a prompt with an LLM prompt rewriter",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", help="the prompt to rewrite")
    add_rewriter_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="random seed (matters with --sample)")
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda if present)")
    parser.add_argument("--json", action="store_true", help="print the candidates as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..rewrite import PromptRewriter

    rewriter = PromptRewriter.from_pretrained(args.rewriter, system_prompt=args.system_prompt, device=args.device)
    (cands,) = rewriter.rewrite([args.prompt], k=args.k or 1, do_sample=args.sample, seed=args.seed,
                                max_new_tokens=args.max_new_tokens)
    if args.json:
        json.dump({"prompt": args.prompt, "rewriter": rewriter.name, "seed": args.seed,
                   "candidates": [c.to_dict() for c in cands]}, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    for i, c in enumerate(cands):
        flag = f"  [{c.clip_tokens} CLIP tokens > 77: encoder reads only the start]" if c.exceeds_clip_window else ""
        print(f"{i}: {c.text}    (mean logprob {c.mean_logprob:.3f}, {c.num_tokens} tokens){flag}")
    return 0
