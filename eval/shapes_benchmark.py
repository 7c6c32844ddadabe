"""The shapes-world benchmark table of the README: canonical single / relation / count prompts, and casual prompts
without vs with the shipped rewriter, all scored by the exact detector.

    python eval/shapes_benchmark.py --seeds 2 --out eval/results/shapes_benchmark.json

Each row is one `t2i-prompt shapes eval` run (same seeds, shipped models); prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

from t2i_prompt.cli.boundary import OneLineParser

ROWS = [  # (row name, benchmark list, rewriter)
    ("canonical single-object", "single", None),
    ("canonical two-object relation", "relation", None),
    ("canonical count (2-3 objects)", "count", None),
    ("casual, no rewriter", "casual", None),
    ("casual, SFT rewriter (shapes:rewriter)", "casual", "shapes:rewriter"),
]
COLUMNS = ("color", "shape", "relation", "count", "style", "all_correct")


def markdown_table(rows: list[dict]) -> str:
    head = ("| prompts | images | " + " | ".join(COLUMNS) + " | object_drop_rate |\n|---|---|"
            + "---|" * (len(COLUMNS) + 1) + "\n")
    body = ""
    for r in rows:
        o = r["overall"]
        cells = " | ".join("–" if o[c] is None else f"{o[c]:.2f}" for c in COLUMNS)
        drop = "–" if r.get("object_drop_rate") is None else f"{r['object_drop_rate']:.3f}"
        body += f"| {r['name']} | {o['n_images']} | {cells} | {drop} |\n"
    return head + body


def main(args: argparse.Namespace) -> None:
    import torch

    from t2i_prompt.generate import ImageGenerator
    from t2i_prompt.rewrite import PromptRewriter
    from t2i_prompt.shapes.evaluate import (
        benchmark_file,
        evaluate_prompts,
        read_prompt_file,
    )

    torch.set_num_threads(args.threads)
    generator = ImageGenerator(args.model, progress=False)
    rewriters = {}
    rows = []
    for name, bench, rewriter in ROWS:
        if rewriter and rewriter not in rewriters:
            rewriters[rewriter] = PromptRewriter.from_pretrained(rewriter)
        start = time.perf_counter()
        report = evaluate_prompts(read_prompt_file(benchmark_file(bench)), pipeline=generator,
                                  seeds=range(args.seeds), rewriter=rewriters.get(rewriter), progress=False)
        rows.append({"name": name, "benchmark": bench, "rewriter": rewriter, "overall": report["overall"],
                     "by_kind": report["by_kind"], "object_drop_rate": report["object_drop_rate"],
                     "seconds": round(time.perf_counter() - start, 1)})
        print(f"{name}: all_correct {report['overall']['all_correct']:.3f} ({rows[-1]['seconds']} s)", flush=True)
    table = markdown_table(rows)
    print(table)
    if args.out:
        from t2i_prompt.utils import atomic_write_json

        atomic_write_json(args.out, {"seeds": args.seeds, "model": args.model or "shapes", "rows": rows,
                                     "markdown": table})


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2, help="images per prompt (seeds 0..N-1)")
    parser.add_argument("--model", default=None, help="T2I model (default: the shapes world)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the rows and the table as JSON")
    return parser


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
