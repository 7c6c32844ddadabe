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
    group = parser.add_argument_group("attention hooks")
    group.add_argument("--lpa", metavar="PRESET", default=None,
                       help="Local Prompt Adaptation preset: lpa_late_only (paper's best), lpa_early_style_late, "
                            "lpa_mid_only, lpa_full, vanilla")
    group.add_argument("--lpa-window", nargs=2, type=float, metavar=("START", "END"), default=None,
                       help="LPA timestep window in scheduler units (default 300 650)")
    group.add_argument("--region", action="append", default=None, metavar="X0,Y0,X1,Y1:PROMPT",
                       help="bind PROMPT to a box given as image fractions (repeatable; later regions win overlaps)")
    group.add_argument("--auto-regions", action="store_true",
                       help="plan regions from spatial phrases in the prompt ('A on the left and B on the right')")
    group.add_argument("--hb-steps", type=int, default=2, help="region hard-binding steps (RAG HB_replace; default 2)")
    group.add_argument("--sr-delta", type=float, default=1.0, help="region soft-refinement weight in [0, 1] (default 1)")
    group.add_argument("--sr-steps", default="all", choices=["all", "after_hb", "none"],
                       help="steps with soft refinement: all (RAG code), after_hb (RAG paper), none")
    group.add_argument("--attention-maps", nargs="+", default=None, metavar="WORD",
                       help="write a cross-attention heatmap PNG per word and image (attn_NNN_<word>.png)")


def parse_region(spec: str):
    """``"x0,y0,x1,y1:prompt"`` -> ``Region`` (a clear ValueError for anything else)."""
    from ..attention import Region

    box, sep, prompt = spec.partition(":")
    if not sep or not prompt.strip():
        raise ValueError(f"--region {spec!r} must look like 'x0,y0,x1,y1:prompt', e.g. '0,0,0.5,1:a red cat'.")
    try:
        coords = [float(v) for v in box.split(",")]
    except ValueError as e:
        raise ValueError(f"--region {spec!r}: the box must be four numbers x0,y0,x1,y1 (image fractions).") from e
    return Region(prompt.strip(), box=coords)


def build_hooks(args: argparse.Namespace) -> list:
    """The list of ``AttentionHook``s requested by ``args`` (LPA, regions, attention-map capture)."""
    from ..attention import AttentionStore, LPAHook, RegionHook, plan_layout
    from ..attention.lpa import DEFAULT_WINDOW

    hooks = []
    if getattr(args, "lpa", None) or getattr(args, "lpa_window", None):
        hooks.append(LPAHook(args.lpa or "lpa_late_only", window=args.lpa_window or DEFAULT_WINDOW))
    regions = [parse_region(spec) for spec in (getattr(args, "region", None) or [])]
    if getattr(args, "auto_regions", False):
        regions = plan_layout(args.prompt).regions + regions
    if regions:
        hooks.append(RegionHook(regions, hb_steps=args.hb_steps, sr_delta=args.sr_delta, sr_steps=args.sr_steps))
    if getattr(args, "attention_maps", None):
        hooks.append(AttentionStore(args.attention_maps))
    return hooks


def save_hook_outputs(hooks: list, output, out_dir) -> list:
    """Files hooks produce after generation: heatmap PNGs of an ``AttentionStore`` (one per image and word)."""
    from ..attention import AttentionStore, save_heatmaps

    paths = []
    for hook in hooks:
        if isinstance(hook, AttentionStore):
            for i, image in enumerate(output.images):
                paths += save_heatmaps(image, hook.word_maps(i), out_dir, prefix=f"attn_{i:03d}")
    return paths


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
    hooks = build_hooks(args)  # before loading the model: bad hook flags fail fast
    generator = Generator(args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                          progress=not args.no_progress)
    output = generator.generate(args.prompt, seeds, negative_prompt=args.negative_prompt,
                                num_inference_steps=args.steps, guidance_scale=args.guidance, height=args.height,
                                width=args.width, hooks=hooks)
    paths = output.save(args.out)
    paths += save_hook_outputs(hooks, output, args.out)
    if args.json:
        json.dump({"out_dir": str(args.out), "images": output.records}, sys.stdout, indent=2)
        print()
    else:
        for path in paths:
            print(path)
    return 0
