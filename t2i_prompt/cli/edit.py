"""``t2i-prompt edit IMAGE --source PROMPT --target PROMPT``: edit a real image by a text change.

The image is inverted under the source prompt (``--method ddim``: plain DDIM inversion; ``nti``: null-text
inversion; ``dpl``: Dynamic Prompt Learning, per-step noun tokens against attention leakage, then null text), then
generated again from the inverted noise as a [source, target] pair with prompt-to-prompt: a word swap
(``--replace``, the default; equal token lengths), a refinement (``--refine``, words added or changed), optional
re-weighting (``--reweight WORD=SCALE``) and LocalBlend (``--local WORDS``: only their region changes).

Examples::

    t2i-prompt edit cat_dog.png --model tiny:sd15 --source "a cat and a dog" --target "a cat and a tiger" --method nti
    t2i-prompt edit photo.png --model PATH --source "a cat" --target "a fluffy cat" --refine --method dpl \\
        --dpl-preset fast --local cat
    t2i-prompt edit photo.png --model PATH --source "a cat" --target "a cat" --reweight cat=2 \\
        --embeddings outputs/edit/embeddings.safetensors   # re-edit without optimising again

Writes ``source.png``, ``reconstruction.png``, ``edit.png``, ``embeddings.safetensors`` (the learned per-step
embeddings, reusable with ``--embeddings``), ``attention_<noun>.png`` heatmaps and ``edit.json`` (settings,
reconstruction PSNR, timings, UNet forward/backward counts, losses) to ``--out``.
"""

from __future__ import annotations

import argparse

from . import options


def reweight_pair(text: str) -> tuple[str, float]:
    """``WORD=SCALE`` -> (word, scale); an argparse type error otherwise."""
    import math

    word, sep, scale = text.rpartition("=")
    try:
        value = float(scale)
    except ValueError:
        value = float("nan")
    if not sep or not word.strip() or not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"--reweight {text!r} must be WORD=SCALE with a scale >= 0, e.g. cat=2.")
    return word.strip(), value


# Mirrors of edit.image_edit.METHODS, edit.dpl.DPL_PRESETS / SOFTMAX_OVER and attention.prompt2prompt.BLEND_NORMALISE (importing
# those would load torch at --help; tests/test_edit.py checks they agree).
METHODS = ("ddim", "nti", "dpl")
DPL_PRESET_NAMES = ("argparse", "fast", "release")
DPL_SOFTMAX_OVER = ("prompt", "nouns", "none")
BLEND_NORMALISE = ("max", "minmax")


def add_parser(sub) -> None:
    parser = options.subcommand(sub, "edit", "edit a real image by a text change (DDIM/null-text/DPL + prompt-to-prompt)",
                                __doc__)
    parser.add_argument("image", help="the image to edit (PNG/JPEG); resized to the model's size with a warning")
    parser.add_argument("--source", required=True, help="a prompt describing the image")
    parser.add_argument("--target", required=True, help="the same prompt with the edit")
    parser.add_argument("--method", choices=METHODS, default="nti", help="inversion method (default nti)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--replace", dest="edit", action="store_const", const="replace",
                      help="word swap (default): prompts of equal token length")
    kind.add_argument("--refine", dest="edit", action="store_const", const="refine",
                      help="refinement: align the prompts' tokens, new words get their own attention")
    parser.set_defaults(edit="replace")
    parser.add_argument("--reweight", type=reweight_pair, action="append", default=[], metavar="WORD=SCALE",
                        help="scale a target word's attention (repeatable)")
    parser.add_argument("--local", nargs="+", default=[], metavar="WORD",
                        help="LocalBlend: only the region of these words (from either prompt) changes")
    parser.add_argument("--local-threshold", type=options.float_in(0.0, 1.0), default=None, metavar="F",
                        help="LocalBlend mask threshold on the normalised map (default: the model's, else 0.3)")
    parser.add_argument("--local-normalise", choices=BLEND_NORMALISE, default=None,
                        help="LocalBlend map normalisation: max (the reference's) or minmax (from the map's minimum; "
                             "for words that attend diffusely, with --local-threshold 0.5); default: the model's "
                             "(t2i_sampling.json; minmax 0.5 in the shapes world), else max")
    parser.add_argument("--nouns", nargs="+", default=None, metavar="WORD",
                        help="DPL's nouns of the source (default: its words without articles/prepositions)")
    parser.add_argument("--dpl-preset", choices=DPL_PRESET_NAMES, default="release",
                        help="DPL hyperparameters: release (DPL.sh), argparse (its script defaults), fast (release "
                             "losses, <= 10 attention steps, null phase as null-text inversion's); default release")
    parser.add_argument("--dpl-background", choices=("cross", "boundary"), default="cross",
                        help="DPL's background clusters: cross (the paper's cross-attention rule) or boundary "
                             "(clusters touching the image border; for models whose words attend diffusely); "
                             "default cross")
    parser.add_argument("--nti-steps", type=options.int_in(1, 1000), default=10, metavar="N",
                        help="null-text inner steps per timestep (default 10)")
    parser.add_argument("--cross-replace", type=options.float_in(0.0, 1.0), default=0.8, metavar="F",
                        help="share of steps with cross-attention injection (default 0.8)")
    parser.add_argument("--self-replace", type=options.float_in(0.0, 1.0), default=0.4, metavar="F",
                        help="share of steps with self-attention injection (default 0.4)")
    parser.add_argument("--embeddings", default=None, metavar="FILE",
                        help="learned embeddings of an earlier edit of this image (skips the optimisation)")
    options.add_model_args(parser)
    options.add_sampling_args(parser, negative=False)
    options.add_device_args(parser)
    options.add_output_args(parser, "outputs/edit", json=False)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace, steps: int, guidance: float):
    """The ``EditConfig`` of a command line (raises ValueError on bad combinations)."""
    from ..edit.dpl import preset
    from ..edit.image_edit import EditConfig

    return EditConfig(method=args.method, edit=args.edit, num_inference_steps=steps, guidance_scale=guidance,
                      cross_replace_steps=args.cross_replace, self_replace_steps=args.self_replace,
                      reweight=dict(args.reweight), local=tuple(args.local), local_threshold=args.local_threshold,
                      local_normalise=args.local_normalise,
                      nouns=tuple(args.nouns) if args.nouns else None, nti_inner_steps=args.nti_steps,
                      dpl=preset(args.dpl_preset, bg_method=args.dpl_background))


def run(args: argparse.Namespace) -> int:
    from ..edit.image_edit import (
        check_words,
        edit_image,
        load_learned,
        save_edit,
        save_learned,
    )
    from ..edit.inversion import OptimisationDiverged
    from ..generate.pipeline import T2IPipeline
    from ..rewards.base import load_images

    out = options.check_out_dir(args.out)
    (image,) = load_images([args.image], what="IMAGE")
    learned = load_learned(args.embeddings)[0] if args.embeddings else None
    check_words(args.source, [args.target], dict(args.reweight), args.local, args.nouns)
    pipeline = T2IPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    settings = pipeline.resolve_settings(args.steps, args.guidance, args.height, args.width)
    config = config_from_args(args, settings["num_inference_steps"], settings["guidance_scale"])
    try:
        result = edit_image(pipeline, image, args.source, args.target, config, height=settings["height"],
                            width=settings["width"], learned=learned, progress=not args.no_progress)
    except OptimisationDiverged as e:
        if e.learned:
            out.mkdir(parents=True, exist_ok=True)
            kept = save_learned(out / "embeddings.partial.safetensors", e.learned, {"partial": True})
            raise OptimisationDiverged(f"{e} Learned steps saved to {kept}.") from e
        raise
    for path in save_edit(result, out):
        print(path)
    return 0
