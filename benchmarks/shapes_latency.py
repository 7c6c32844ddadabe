"""Latency of the shapes world's main job for one prompt: rewrite + generate + score (goal <= 3 s on 2 cores).

    python benchmarks/shapes_latency.py [--repeats 5] [--threads 2]

Models are loaded once (not timed); each repeat times rewrite (beam search, k=1), generation of one image for the
original and one for the rewrite (same seed, one batch), and scoring both with the shapes CLIP score, the quality
predictor and the exact detector. Prints the median and every repeat.
"""

from __future__ import annotations

import argparse
import statistics
import time

from t2i_prompt.cli.boundary import OneLineParser


def main(args: argparse.Namespace) -> None:
    import torch

    from t2i_prompt.generate import ImageGenerator
    from t2i_prompt.rewards.aesthetic import AestheticReward
    from t2i_prompt.rewards.clip_score import CLIPScore
    from t2i_prompt.rewrite import PromptRewriter
    from t2i_prompt.shapes.detector import score_image
    from t2i_prompt.shapes.grammar import parse_prompt

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rewriter = PromptRewriter.from_pretrained(None)
    generator = ImageGenerator(None, progress=False)
    clip_score = CLIPScore.from_pretrained("shapes:clip")
    quality = AestheticReward.from_pretrained("shapes:quality")
    print(f"load (not timed): {time.perf_counter() - t0:.2f} s")
    prompt = args.prompt
    scene = parse_prompt(prompt)
    times = []
    for r in range(args.repeats + 1):  # repeat 0 warms up
        clip_score.clip.clear_cache()
        start = time.perf_counter()
        refined = rewriter.rewrite([prompt], k=1)[0][0].text
        images = generator.generate([prompt, refined], seeds=[r]).images
        clip_score.score([prompt, prompt], images)
        quality.score([prompt, prompt], images)
        det = [score_image(scene, im).all_correct for im in images]
        elapsed = time.perf_counter() - start
        if r:
            times.append(elapsed)
        print(f"repeat {r}{' (warm-up)' if r == 0 else ''}: {elapsed:.2f} s  refined={refined!r} all_correct={det}")
    median = statistics.median(times)
    print(f"median rewrite+generate+score: {median:.2f} s over {len(times)} repeats "
          f"({median / 3.0:.2f}x the 3 s goal)")


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", default="crimson ball on the left of a navy box")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    return parser


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
