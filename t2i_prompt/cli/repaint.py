"""``t2i-prompt repaint PROMPT``: regenerate one region with a new prompt and seed, keeping the rest of the image.

The original image is regenerated from ``--seed`` while its latents are recorded; the repaint run starts from the
same noise with fresh noise inside the region, binds ``--region``'s prompt there (RAG hard binding + soft
refinement) and restores the recorded latents outside the (dilated) region at every step (RAG repainting).

Examples::

    t2i-prompt repaint "a red circle to the left of a blue square" --region "0.5,0,1,1:a green triangle"
    t2i-prompt repaint "a cat on a sofa" --model tiny:sd15 --mask mask.png --region-prompt "a dog" --new-seed 7

Writes ``original.png``, ``repainted.png`` and ``repaint.json`` to ``--out``.
"""

from __future__ import annotations

import argparse

from . import options


def add_parser(sub) -> None:
    parser = options.subcommand(sub, "repaint", "regenerate one region of a generated image with a new prompt/seed", __doc__)
    parser.add_argument("prompt", help="the prompt of the original image")
    parser.add_argument("--region", default=None, metavar="X0,Y0,X1,Y1:PROMPT",
                        help="the box to repaint (image fractions) and what to put there")
    parser.add_argument("--mask", default=None, help="a mask image (white = repaint) instead of a box")
    parser.add_argument("--region-prompt", default=None, help="what to put in the --mask region")
    parser.add_argument("--repaint-prompt", default=None, help="whole-image prompt of the repaint (default: PROMPT)")
    options.add_model_args(parser)
    parser.add_argument("--seed", type=options.seed, default=0, help="seed of the original image (default 0)")
    parser.add_argument("--new-seed", type=options.seed, default=None,
                        help="seed of the new region's noise (default seed+1)")
    parser.add_argument("--dilate", type=options.int_in(0, 64), default=1,
                        help="grow the mask by this many latent pixels (default 1)")
    parser.add_argument("--hb-steps", type=options.int_in(0, 1000), default=2,
                        help="hard-binding steps of the region (default 2)")
    parser.add_argument("--sr-delta", type=options.float_in(0.0, 1.0), default=1.0,
                        help="soft-refinement weight of the region in [0, 1] (default 1)")
    options.add_sampling_args(parser)
    options.add_device_args(parser)
    options.add_output_args(parser, "outputs/repaint", json=False, progress=False)
    parser.set_defaults(func=run)


def region_from_args(args: argparse.Namespace):
    """The ``Region`` to repaint from ``--region`` or ``--mask`` + ``--region-prompt``."""
    from ..attention import Region
    from ..attention.recipes import parse_region

    if (args.region is None) == (args.mask is None):
        raise ValueError("Give exactly one of --region 'x0,y0,x1,y1:prompt' or --mask FILE (with --region-prompt).")
    if args.region is not None:
        return parse_region(args.region)
    if not args.region_prompt:
        raise ValueError("--mask needs --region-prompt (what to paint inside the mask).")
    import numpy as np

    from ..rewards.base import load_images

    (mask,) = load_images([args.mask], what="--mask", mode="L")
    return Region(args.region_prompt, mask=np.asarray(mask, dtype=np.float32))


def run(args: argparse.Namespace) -> int:
    from ..edit import repaint
    from ..generate.pipeline import T2IPipeline
    from ..utils import atomic_save_image, atomic_write_json

    region = region_from_args(args)
    out = options.check_out_dir(args.out)
    pipeline = T2IPipeline.from_pretrained(args.model, **options.t2i_load_options(args))
    result = repaint(pipeline, args.prompt, region, seed=args.seed, new_seed=args.new_seed,
                     repaint_prompt=args.repaint_prompt, dilate=args.dilate, hb_steps=args.hb_steps,
                     sr_delta=args.sr_delta, num_inference_steps=args.steps, guidance_scale=args.guidance,
                     height=args.height, width=args.width, negative_prompt=args.negative_prompt)
    paths = [atomic_save_image(result.original[0], out / "original.png"),
             atomic_save_image(result.image[0], out / "repainted.png")]
    atomic_write_json(out / "repaint.json", {
        "prompt": args.prompt, "region_prompt": region.prompt, "box": region.box, "seed": args.seed,
        "new_seed": args.seed + 1 if args.new_seed is None else args.new_seed, "dilate": args.dilate,
        "model": args.model or "shapes", "mask_fraction": float(result.mask.float().mean()),
        "files": [p.name for p in paths]})
    for path in paths:
        print(path)
    return 0
