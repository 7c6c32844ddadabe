"""``t2i-prompt generate PROMPT``: images for one prompt over one or more seeds, as PNGs + ``generation.json``.

Examples::

    t2i-prompt generate "a red circle above a blue square"                 # the shapes world, seed 0
    t2i-prompt generate "a cat" --model tiny:sd15 --seed 1 2 3 --steps 4 --out outputs/cat --json
    t2i-prompt generate "a cat" --model /path/to/sd15 --num-images 4 --seed 10   # seeds 10..13

Attention hooks get their flags from ``add_hook_arguments`` and are built by ``build_hooks`` (one place to extend).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_hook_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of attention hooks (LPA, regions, ...). Add new hook flags here and build them in ``build_hooks``."""
    parser.add_argument_group("attention hooks")  # filled in by the attention work


def build_hooks(args: argparse.Namespace) -> list:
    """The list of ``AttentionHook``s requested by ``args`` (none yet)."""
    return []


def add_parser(sub) -> None:
    parser = sub.add_parser("generate", help="generate images for a prompt (PNG files + metadata JSON)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", help="the text prompt")
    parser.add_argument("--model", default=None,
                        help="shapes (default), tiny:<arch>, a local diffusers directory, or a cached hub id")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], metavar="N",
                        help="one or more seeds (one image each); with --num-images K and one seed S: S..S+K-1")
    parser.add_argument("--num-images", type=int, default=None, help="number of images (consecutive seeds)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None, help="CFG scale; <= 1 disables guidance")
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument("--batch-size", type=int, default=4, help="images per pipeline call")
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda if present)")
    parser.add_argument("--dtype", default=None, help="float32 / float16 / bfloat16 (default: fp16 on CUDA)")
    parser.add_argument("--out", default="outputs/generate", help="output directory (created)")
    parser.add_argument("--json", action="store_true", help="print the metadata JSON to stdout")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_hook_arguments(parser)
    parser.set_defaults(func=run)


def resolve_seeds(seeds: list[int], num_images: int | None) -> list[int]:
    """``--seed`` and ``--num-images`` -> the seed list; a clear error when they disagree."""
    if num_images is None:
        return list(seeds)
    if num_images < 1:
        raise ValueError(f"--num-images must be >= 1, got {num_images}.")
    if len(seeds) == 1:
        return [seeds[0] + k for k in range(num_images)]
    if len(seeds) != num_images:
        raise ValueError(f"--num-images {num_images} disagrees with {len(seeds)} --seed values; give one seed "
                         "(consecutive seeds are used) or exactly --num-images seeds.")
    return list(seeds)


def run(args: argparse.Namespace) -> int:
    from ..generate import Generator

    seeds = resolve_seeds(args.seed, args.num_images)
    generator = Generator(args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                          progress=not args.no_progress)
    output = generator.generate(args.prompt, seeds, negative_prompt=args.negative_prompt,
                                num_inference_steps=args.steps, guidance_scale=args.guidance, height=args.height,
                                width=args.width, hooks=build_hooks(args))
    paths = output.save(args.out)
    if args.json:
        json.dump({"out_dir": str(args.out), "images": output.records}, sys.stdout, indent=2)
        print()
    else:
        for path in paths:
            print(path)
    return 0
