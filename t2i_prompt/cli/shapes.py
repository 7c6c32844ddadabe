"""``t2i-prompt shapes``: the embedded shapes world (benchmark, ground-truth renders, detector).

    t2i-prompt shapes eval --prompts FILE --seeds 2 --json                 # vanilla
    t2i-prompt shapes eval --prompts FILE --seeds 2 --json --rewriter shapes:rewriter
    t2i-prompt shapes eval --prompts FILE --seeds 2 --json --auto-regions  # region binding from the planner
    t2i-prompt shapes eval --benchmark relation --lpa lpa_late_only --lpa-window 300 650
    t2i-prompt shapes eval --benchmark relation --auto-regions --hb-steps 2 --sr-delta 0.6

The hook flags are the same as ``generate``'s (``attention/recipes.py``); prompts the layout planner cannot place
run without region binding and are counted in ``unplanned_prompts``.
    t2i-prompt shapes render "a red circle above a blue square" --png gt.png
    t2i-prompt shapes detect IMAGE --prompt "a red circle above a blue square"
"""

from __future__ import annotations

import json
import sys

from . import options


def add_parser(sub) -> None:
    parser = options.subcommand(sub, "shapes", "the embedded shapes world: benchmark, renders, detector", __doc__)
    shapes_sub = parser.add_subparsers(dest="shapes_command", required=True, metavar="SUBCOMMAND")

    ev = shapes_sub.add_parser("eval", help="detector accuracy per category over a prompt file")
    src = ev.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompts", help="file with one prompt per line (casual or canonical)")
    src.add_argument("--benchmark", help="a shipped list: single, relation, count, casual")
    ev.add_argument("--seeds", type=options.int_in(1, 1000), default=1, metavar="N",
                    help="images per prompt, seeds 0..N-1 (default 1)")
    options.add_model_args(ev)
    options.add_device_args(ev)
    ev.add_argument("--rewriter", default=None, help="rewrite every prompt first (e.g. shapes:rewriter)")
    options.add_sampling_args(ev, sizes=False, negative=False)
    options.add_hook_args(ev)
    ev.add_argument("--items", action="store_true", help="include per-image results in the JSON")
    options.add_output_args(ev, None, progress=False)
    ev.set_defaults(func=run_eval)

    render = shapes_sub.add_parser("render", help="ground-truth render of a prompt")
    render.add_argument("prompt")
    render.add_argument("--png", required=True, metavar="PATH", help="where to write the PNG")
    render.add_argument("--scale", type=int, default=8, help="nearest-neighbour upscaling for viewing")
    render.set_defaults(func=run_render)

    detect = shapes_sub.add_parser("detect", help="objects in an image, and its score against a prompt")
    detect.add_argument("image")
    detect.add_argument("--prompt", default=None)
    detect.set_defaults(func=run_detect)


def run_eval(args) -> int:
    from ..generate import ImageGenerator
    from ..shapes.evaluate import benchmark_file, evaluate_prompts, read_prompt_file

    path = benchmark_file(args.benchmark) if args.benchmark else args.prompts
    prompts = read_prompt_file(path)
    spec = options.hook_spec(args)
    unplanned: list[str] = []
    report = evaluate_prompts(
        prompts, pipeline=ImageGenerator(args.model, progress=not args.json, **options.t2i_load_options(args)),
        seeds=range(args.seeds), rewriter=args.rewriter,
        hooks_for_prompt=spec.factory(unplanned),
        guidance_scale=args.guidance, num_inference_steps=args.steps, progress=not args.json,
    )
    report["unplanned_prompts"] = sorted(set(unplanned))
    for bad in report["unparsed"]:
        print(f"{path}:{bad['line']}: cannot parse {bad['prompt']!r}: {bad['error']}", file=sys.stderr)
    report["settings"] = {"prompts": str(path), "model": args.model or "shapes", "rewriter": args.rewriter,
                          "hooks": spec.to_dict(), "guidance": args.guidance, "steps": args.steps}
    if not args.items:
        report.pop("items")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['n_prompts']} prompts x {len(report['seeds'])} seeds ({len(report['unparsed'])} unparsed)")
        if report.get("object_drop_rate") is not None:
            print(f"rewrites that drop an object (drift): {report['object_drop_rate']:.3f}")
        for name, row in [("overall", report["overall"])] + list(report["by_kind"].items()):
            cells = "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
            print(f"{name:>9}: {cells}")
    return 0


def run_render(args) -> int:
    from PIL import Image

    from ..shapes.grammar import parse_prompt
    from ..shapes.render import render_scene
    from ..utils import atomic_save_image

    image = Image.fromarray(render_scene(parse_prompt(args.prompt)))
    if args.scale > 1:
        image = image.resize((image.width * args.scale, image.height * args.scale), Image.NEAREST)
    atomic_save_image(image, args.png)
    print(args.png)
    return 0


def run_detect(args) -> int:
    from ..rewards.base import load_images
    from ..shapes.detector import detect_objects, score_image
    from ..shapes.grammar import parse_prompt

    image = load_images([args.image])[0].resize((32, 32))
    out = {"objects": [o.to_dict() for o in detect_objects(image)]}
    if args.prompt:
        out["score"] = {k: v for k, v in score_image(parse_prompt(args.prompt), image).to_dict().items()
                        if k != "detected"}
    print(json.dumps(out, indent=2))
    return 0
