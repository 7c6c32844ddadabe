"""``t2i-prompt generate PROMPT``: images for one prompt over one or more seeds, as PNGs + ``generation.json``.

Examples::

    t2i-prompt generate "a red circle above a blue square"                 # the shapes world, seed 0
    t2i-prompt generate "a cat" --model tiny:sd15 --seed 1 2 3 --steps 4 --out outputs/cat --json
    t2i-prompt generate "a cat" --model /path/to/sd15 --num-images 4 --seed 10   # seeds 10..13

Attention hooks come from the shared hook flags, built by ``attention/recipes.py`` (one place to extend);
``generation.json`` records them, so an image regenerates from its metadata.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import options


def add_parser(sub) -> None:
    parser = options.subcommand(sub, "generate", "generate images for a prompt (PNG files + metadata JSON)", __doc__)
    parser.add_argument("prompt", help="the text prompt")
    options.add_model_args(parser)
    options.add_seed_args(parser)
    parser.add_argument("--num-images", type=options.int_in(1, 10_000), default=None, metavar="K",
                        help="number of images (consecutive seeds from a single --seed)")
    options.add_sampling_args(parser)
    options.add_size_conditioning_args(parser)
    parser.add_argument("--batch-size", type=options.int_in(1, 256), default=4, help="images per pipeline call (default 4)")
    options.add_device_args(parser)
    options.add_output_args(parser, "outputs/generate")
    options.add_hook_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..attention.recipes import save_attention_maps
    from ..generate import ImageGenerator
    from ..generate.prompts import as_prompt_list

    as_prompt_list(args.prompt)  # an empty prompt fails before the model loads
    seeds = options.resolve_seeds(args.seed, args.num_images)
    spec = options.hook_spec(args)
    hooks = spec.build(args.prompt)  # before loading the model: bad hook flags fail fast
    out_dir = options.check_out_dir(args.out)
    generator = ImageGenerator(args.model, batch_size=args.batch_size, progress=not args.no_progress,
                               **options.t2i_load_options(args))
    output = generator.generate(args.prompt, seeds, negative_prompt=args.negative_prompt,
                                num_inference_steps=args.steps, guidance_scale=args.guidance, height=args.height,
                                width=args.width, hooks=hooks, hook_spec=spec,
                                size_conditioning=options.size_conditioning(args))
    paths = output.save(out_dir)
    paths += save_attention_maps(hooks, output.images, out_dir)
    if args.json:
        json.dump({"out_dir": str(out_dir), "images": output.records}, sys.stdout, indent=2)
        print()
    else:
        for path in paths:
            print(path)
    return 0
