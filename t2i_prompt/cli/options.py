"""The flags shared by subcommands, each declared once with one help text, and the value checks behind them.

Every numeric flag is checked by its argparse ``type``: zero, negative, NaN and infinite values are an error
naming the flag and its valid range before anything loads (never silently replaced by a default). ``None``
defaults mean "the model's own setting" and say so in ``--help``.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

SEED_LIMIT = 2**64  # torch.Generator.manual_seed takes [0, 2**64)
DEVICES = ("cpu", "cuda", "mps")
DTYPES = ("float32", "fp32", "float16", "fp16", "bfloat16", "bf16")


# ------------------------------------------------------------------------------------------- value types
def _in_range(parse, what: str, low, high):
    """argparse type: ``parse(text)`` must give a finite value in [low, high] (``high`` None: no upper bound)."""
    def fmt(v):
        return f"{v:g}" if isinstance(v, float) else str(v)

    interval = f"in [{fmt(low)}, {fmt(high)}]" if high is not None else f">= {fmt(low)}"

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} {interval}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what} {interval}, got {text}")
        return value

    return convert


def int_in(low: int, high: int | None = None, what: str = "an integer"):
    """argparse type: an integer in [low, high]."""
    return _in_range(int, what, low, high)


def float_in(low: float, high: float):
    """argparse type: a finite number in [low, high] (NaN and infinities are errors)."""
    return _in_range(float, "a finite number", low, high)


def seed(text: str) -> int:
    """argparse type: a seed in [0, 2**64)."""
    return int_in(0, SEED_LIMIT - 1, "an integer seed")(text)


def device(text: str) -> str:
    """argparse type: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    base, _, index = text.partition(":")
    if base not in DEVICES or (index and not (base == "cuda" and index.isdigit())):
        raise argparse.ArgumentTypeError(f"must be one of cpu, cuda, cuda:N, mps, got {text!r}")
    return text


positive_int = int_in(1)


# ------------------------------------------------------------------------------------------- flag groups
def subcommand(sub, name: str, help: str, doc: str) -> argparse.ArgumentParser:
    """A subcommand parser whose ``--help`` shows the module docstring (its examples) as written."""
    return sub.add_parser(name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_model_args(parser: argparse.ArgumentParser, help_suffix: str = "") -> None:
    """``--model`` and how it loads (``--variant``, ``--no-safety-checker``); with ``add_device_args`` (``--device
    --dtype``) they make ``t2i_load_options(args)``, the keyword arguments of ``T2IPipeline.from_pretrained``."""
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="T2I model: shapes (default), tiny:<arch>, a local diffusers directory or a cached hub id"
                             + help_suffix)
    group = parser.add_argument_group("loading the T2I model")
    group.add_argument("--variant", default=None, metavar="NAME",
                       help="weight variant to read, e.g. fp16 (*.fp16.safetensors: half the bytes; default: fp16 "
                            "files when --dtype is fp16 and the checkpoint has them, else the plain files)")
    group.add_argument("--config", default=None, metavar="DIR",
                       help="diffusers config folder for a single-file --model (.safetensors/.ckpt in the original "
                            "SD/SDXL layout); required offline")
    group.add_argument("--no-safety-checker", action="store_true",
                       help="drop the checkpoint's NSFW safety checker (by default it is kept as in diffusers: "
                            "flagged images come back black and are marked in the metadata)")


def t2i_load_options(args: argparse.Namespace) -> dict:
    """``T2IPipeline.from_pretrained`` keyword arguments of the model-loading flags (one copy for every command)."""
    return {"device": getattr(args, "device", None), "dtype": getattr(args, "dtype", None),
            "variant": args.variant, "safety_checker": not args.no_safety_checker, "config": args.config}


def _size_pair(text: str) -> int:
    return int_in(0, 65536, "a size in pixels")(text)


def add_size_conditioning_args(parser: argparse.ArgumentParser) -> None:
    """SDXL's micro-conditioning (diffusers' ``original_size``, ``crops_coords_top_left``, ``target_size`` and their
    ``negative_*``); ignored by models without it. Default: (height, width), (0, 0), (height, width)."""
    group = parser.add_argument_group("SDXL size conditioning (default: the image size, no crop)")
    for flag, names, what in (("original-size", ("H", "W"), "size the model is told the training image had"),
                              ("crops-top-left", ("TOP", "LEFT"), "crop offset the model is told"),
                              ("target-size", ("H", "W"), "size the model is told to aim for")):
        group.add_argument(f"--{flag}", nargs=2, type=_size_pair, default=None, metavar=names, help=what)
        group.add_argument(f"--negative-{flag}", nargs=2, type=_size_pair, default=None, metavar=names,
                           help="the same for the unconditional half (used when both negative sizes are given)")


_SIZE_FLAGS = {"original_size": "original_size", "crops_top_left": "crops_coords_top_left",
               "target_size": "target_size"}


def size_conditioning(args: argparse.Namespace) -> dict:
    """The size-conditioning flags as ``T2IPipeline.__call__`` keyword arguments (only the given ones)."""
    out = {}
    for flag, name in _SIZE_FLAGS.items():
        for prefix in ("", "negative_"):
            value = getattr(args, prefix + flag, None)
            if value is not None:
                out[prefix + name] = tuple(value)
    return out


def add_sampling_args(parser: argparse.ArgumentParser, sizes: bool = True, negative: bool = True) -> None:
    """``--steps --guidance`` (+ ``--height --width``, ``--negative-prompt``); None = the model's default."""
    group = parser.add_argument_group("sampling (default: the model's own settings)")
    group.add_argument("--steps", type=int_in(1, 1000), default=None, metavar="N",
                       help="denoising steps, 1..1000 (default: the model's)")
    group.add_argument("--guidance", type=float_in(0.0, 100.0), default=None, metavar="W",
                       help="classifier-free guidance scale in [0, 100]; <= 1 turns guidance off (default: the model's)")
    for side in ("height", "width") if sizes else ():
        group.add_argument(f"--{side}", type=int_in(8, 8192), default=None, metavar="PX",
                           help=f"image {side} in pixels, a multiple the model supports (default: the model's)")
    if negative:
        group.add_argument("--negative-prompt", default=None, help="what the image should not show")


def add_seed_args(parser: argparse.ArgumentParser, default=(0,), many: bool = True) -> None:
    if many:
        parser.add_argument("--seed", type=seed, nargs="+", default=list(default), metavar="N",
                            help=f"seeds in [0, 2^64), one image each (default {' '.join(map(str, default))})")
    else:
        parser.add_argument("--seed", type=seed, default=default[0], metavar="N",
                            help=f"random seed in [0, 2^64) (default {default[0]})")


def add_device_args(parser: argparse.ArgumentParser, dtype: bool = True) -> None:
    parser.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:N or mps (default: cuda if present)")
    if dtype:
        parser.add_argument("--dtype", default=None, choices=DTYPES, help="weights dtype (default: fp16 on CUDA, else fp32)")


def add_output_args(parser: argparse.ArgumentParser, default_out: str | None, json: bool = True,
                    progress: bool = True) -> None:
    if default_out is not None:
        parser.add_argument("--out", default=default_out,
                            help=f"output directory, created if needed; what an earlier run of this command wrote "
                                 f"there is replaced and its stale images or run folders removed, other files are "
                                 f"kept (default {default_out})")
    if json:
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON to stdout")
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_rewriter_args(parser: argparse.ArgumentParser, k_default: int) -> None:
    parser.add_argument("--rewriter", default=None, metavar="NAME",
                        help="causal LM: shapes:rewriter (default), tiny:gpt2, tiny:chat, a local dir, a cached hub id")
    parser.add_argument("-k", type=int_in(1, 64), default=k_default, metavar="K",
                        help=f"number of rewrite candidates, 1..64 (default {k_default})")
    parser.add_argument("--sample", action="store_true",
                        help="sample (top-k 50, top-p 0.95) instead of Promptist beam search (8 beams)")
    parser.add_argument("--max-new-tokens", type=int_in(1, 1024), default=75, metavar="N",
                        help="longest rewrite in LM tokens (default 75)")
    parser.add_argument("--copy-bias", type=float_in(0.0, 100.0), default=0.0, metavar="NATS",
                        help="add NATS to the scores of the prompt's own tokens while decoding, so unknown words are "
                             "copied whole rather than garbled or dropped (default 0 = off)")
    parser.add_argument("--system-prompt", default=None, help="system message for chat-template rewriters")


def rewriter_decoding(args: argparse.Namespace) -> dict:
    """The ``PromptRewriter.rewrite`` decoding keywords of the ``add_rewriter_args`` flags."""
    decoding = {"do_sample": args.sample, "max_new_tokens": args.max_new_tokens}
    if args.copy_bias:
        decoding["copy_bias"] = args.copy_bias
    return decoding


def add_hook_args(parser: argparse.ArgumentParser) -> None:
    """Attention-hook flags; ``hook_spec(args)`` turns them into a ``HookSpec`` (attention/recipes.py)."""
    group = parser.add_argument_group("attention hooks")
    group.add_argument("--lpa", metavar="PRESET", default=None,
                       help="Local Prompt Adaptation preset: lpa_late_only (paper's best), lpa_early_style_late, "
                            "lpa_mid_only, lpa_full, vanilla")
    group.add_argument("--lpa-window", nargs=2, type=float_in(0.0, 1000.0), metavar=("START", "END"), default=None,
                       help="LPA timestep window in scheduler units, within [0, 1000] (default 300 650)")
    group.add_argument("--region", action="append", default=None, metavar="X0,Y0,X1,Y1:PROMPT",
                       help="bind PROMPT to a box given as image fractions (repeatable; later regions win overlaps)")
    group.add_argument("--auto-regions", action="store_true",
                       help="plan regions from spatial phrases in the prompt ('A on the left and B on the right')")
    group.add_argument("--hb-steps", type=int_in(0, 1000), default=2, metavar="N",
                       help="region hard-binding steps (RAG HB_replace; default 2)")
    group.add_argument("--sr-delta", type=float_in(0.0, 1.0), default=1.0, metavar="D",
                       help="region soft-refinement weight in [0, 1] (default 1)")
    group.add_argument("--sr-steps", default="all", choices=["all", "after_hb", "none"],
                       help="steps with soft refinement: all (RAG code, default), after_hb (RAG paper), none")
    group.add_argument("--sr-source", default=None, choices=["region", "base"],
                       help="what soft refinement attends to: region (RAG: the region prompts) or base (the base "
                            "prompt with the other regions' words masked; keeps the scene's layout); default: the "
                            "model's (base for the shapes world, region otherwise)")
    group.add_argument("--attention-maps", nargs="+", default=None, metavar="WORD",
                       help="write a cross-attention heatmap PNG per word and image (attn_NNN_<word>.png)")


def hook_spec(args: argparse.Namespace):
    """The ``HookSpec`` of the hook flags (validated; no model is loaded)."""
    from ..attention.recipes import HookSpec

    return HookSpec(lpa=args.lpa, lpa_window=args.lpa_window, regions=args.region or [],
                    auto_regions=args.auto_regions, hb_steps=args.hb_steps, sr_delta=args.sr_delta,
                    sr_steps=args.sr_steps, sr_source=args.sr_source, capture=args.attention_maps or [])


def add_prompts_file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompts-file", default=None, metavar="FILE",
                        help="UTF-8 text file with one prompt per line (blank lines and '#' comments skipped)")


# ------------------------------------------------------------------------------------------- readers and checks
def read_prompts(prompt: str | None, prompts_file: str | None) -> list[str]:
    """The prompt argument and/or the lines of ``--prompts-file``; at least one prompt is required."""
    from ..utils import read_prompt_lines  # utils imports torch: keep `--help` fast

    prompts = [prompt] if prompt is not None else []
    if prompts_file:
        lines = read_prompt_lines(prompts_file, "--prompts-file")
        if not lines:
            raise ValueError(f"--prompts-file {prompts_file} holds no prompts (one per line).")
        prompts += lines
    if not prompts:
        raise ValueError("give a PROMPT or --prompts-file FILE.")
    return prompts


def resolve_seeds(seeds: list[int], num_images: int | None) -> list[int]:
    """``--seed`` and ``--num-images`` -> the seed list; a clear error when they disagree."""
    if num_images is None:
        return list(seeds)
    if len(seeds) == 1:
        if seeds[0] + num_images > SEED_LIMIT:
            raise ValueError(f"--seed {seeds[0]} with --num-images {num_images} runs past the largest seed 2^64-1.")
        return [seeds[0] + k for k in range(num_images)]
    if len(seeds) != num_images:
        raise ValueError(f"--num-images {num_images} disagrees with {len(seeds)} --seed values; give one seed "
                         "(consecutive seeds are used) or exactly --num-images seeds.")
    return list(seeds)


def check_out_dir(out: str | os.PathLike, flag: str = "--out") -> Path:
    """``out`` as a directory this process can write: not a file, not under a file, writable where it exists."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file; give a directory (it is created if missing).")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {path} lies under the file {parent}; give a directory path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: {parent} is not writable; choose a directory you can write to.")
    return path
