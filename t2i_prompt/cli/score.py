"""``t2i-prompt score --prompt P IMAGES...``: score images against prompts with one or more rewards.

Give ``--prompt`` once (it applies to every image) or once per image, in order. Rewards: ``clip`` (CLIP score;
``--clip-scale 1|2.5|100``, ``--no-clamp``, ``--clip-prefix``), ``aesthetic`` (LAION-style predictor),
``vp_score`` (ImageReward-style checkpoint given with ``--vp-model``).

Default scorers follow the same rule as ``run`` (``rewards.registry.default_models``) for the T2I model the
images came from: ``--model``, else the ``model`` their ``generation.json`` records, else real images (OpenAI CLIP
ViT-L/14; the aesthetic predictor only when ``--quality`` names one). The shapes world's scorers score only the
shapes world's images. ``--json`` names the models every reward used.

Examples::

    t2i-prompt score --prompt "a red circle" outputs/generate/000_seed0.png   # shapes images: shapes:clip + quality
    t2i-prompt score --prompt "a cat" cat.png --reward clip --clip openai/clip-vit-large-patch14 --clip-scale 100
    t2i-prompt score --prompt "a cat" cat.png --reward aesthetic --quality sac+logos+ava1-l14-linearMSE.pth \\
        --clip openai/clip-vit-large-patch14 --json
"""

from __future__ import annotations

import argparse
import json
import sys

from . import options


def add_parser(sub) -> None:
    parser = options.subcommand(sub, "score", "score images against prompts (CLIP score, aesthetic, VP-Score)", __doc__)
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG/JPEG)")
    parser.add_argument("--prompt", action="append", required=True,
                        help="prompt for all images, or repeat once per image")
    parser.add_argument("--reward", action="append", default=None, metavar="NAME",
                        help="reward(s) to compute, repeatable: clip, clip_cos, aesthetic, quality, vp_score, "
                             "promptist, or a composite like '1*clip+0.1*aesthetic' (default: clip and aesthetic)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="the T2I model the images came from, which picks the default scorers as `run` does "
                             "(default: the model in the images' generation.json, else real images)")
    parser.add_argument("--clip", default=None,
                        help="CLIP model for clip and aesthetic (default: the one that fits the images' model)")
    parser.add_argument("--quality", default=None,
                        help="aesthetic predictor: a dir or a LAION .pth/.safetensors file (then --clip must be the "
                             "CLIP it was trained on; default: the one that fits the images' model, if any)")
    parser.add_argument("--clip-scale", type=float, default=1.0, choices=(1.0, 2.5, 100.0),
                        help="1 = cosine, 2.5 = Hessel CLIPScore, 100 = torchmetrics")
    parser.add_argument("--no-clamp", action="store_true", help="keep negative cosines")
    parser.add_argument("--clip-prefix", default="", help='caption prefix, e.g. "A photo depicts " (Hessel)')
    parser.add_argument("--vp-model", default=None, help="VP-Score / ImageReward-layout checkpoint directory")
    options.add_device_args(parser, dtype=False)
    parser.add_argument("--batch-size", type=options.int_in(1, 4096), default=16, help="images per scoring batch (default 16)")
    options.add_output_args(parser, None, progress=False)
    parser.set_defaults(func=run)


def images_model(args: argparse.Namespace) -> str:
    """The T2I model the scored images came from: ``--model``, else the ``model`` the ``generation.json`` beside
    them records (``ImageGenerator.save``), else ``REAL_IMAGES``."""
    from pathlib import Path

    from ..generate.generator import METADATA_FILE
    from ..rewards.registry import REAL_IMAGES

    if args.model:
        return args.model
    found = set()
    for image in args.images:
        meta = Path(image).parent / METADATA_FILE
        try:
            records = json.loads(meta.read_text()).get("images", [])
        except (OSError, ValueError, AttributeError):
            return REAL_IMAGES
        models = [r.get("model") for r in records if isinstance(r, dict) and r.get("file") == Path(image).name]
        if not models or not isinstance(models[0], str):
            return REAL_IMAGES
        found.add(models[0])
    if len(found) > 1:
        raise ValueError(f"the images come from different T2I models ({', '.join(sorted(found))}); score each "
                         "model's images separately or pass --model to choose the scorers.")
    return found.pop() if found else REAL_IMAGES


def scoring_models(args: argparse.Namespace) -> tuple[str, str, str | None, list[str]]:
    """(images' T2I model, CLIP, aesthetic predictor or None, notes): the flags, else what fits the images' model
    (a given --clip has no default predictor paired with it, as in ``run``)."""
    from ..rewards.registry import default_models

    source = images_model(args)
    defaults = default_models(source)
    clip = args.clip or defaults["clip"]
    quality = args.quality or (defaults["aesthetic"] if args.clip is None else None)
    notes = [] if quality else [f"aesthetic skipped: no predictor paired with CLIP {clip!r}; pass --quality"]
    return source, clip, quality, notes


def build_rewards(args: argparse.Namespace) -> tuple[dict, dict, list[str]]:
    """(name -> reward, name -> the models it uses, notes) for the requested ``--reward`` list, through the reward
    registry (CLIP-based rewards built on the same CLIP share one image pass)."""
    from ..rewards.registry import build_reward, check_reward_name, parse_composite

    source, clip, quality, notes = scoring_models(args)
    requested = args.reward or (["clip", "aesthetic"] if quality else ["clip"])
    names = list(dict.fromkeys(check_reward_name(n) for n in requested))
    if "similarity" in names:
        raise ValueError("--reward similarity compares two texts, not an image; use `t2i-prompt rewrite` or the "
                         "Python TextSimilarity for text similarity.")
    if "vp_score" in names and not args.vp_model:
        raise ValueError("--reward vp_score needs --vp-model DIR (a VP-Score/ImageReward-layout checkpoint).")
    models = {"clip": clip, "clip_cos": clip, "promptist": clip, "aesthetic": quality, "quality": quality,
              "vp_score": args.vp_model}
    options = {"clip": clip, "scale": args.clip_scale, "clamp": not args.no_clamp, "prefix": args.clip_prefix,
               "aesthetic": quality}

    def used(name: str) -> dict:
        if name in ("aesthetic", "quality"):
            return {"model": quality, "clip": clip}
        if name == "promptist":
            return {"model": clip, "aesthetic": quality}
        if name in models:
            return {"model": models[name]}
        return {term: used(term) for _, term in parse_composite(name)}

    def build(name: str):
        if name in models:
            return build_reward(name, models[name], device=args.device, t2i_model=source, **options)
        from ..rewards import CompositeReward

        # a composite: its terms get the same models
        return CompositeReward({term: (build(term), weight) for weight, term in parse_composite(name)})

    return ({name: build(name) for name in names}, {name: used(name) for name in names},
            notes if not args.reward else [])


def pair_prompts(prompts: list[str], n_images: int) -> list[str]:
    """One prompt per image: a single ``--prompt`` is repeated; otherwise the counts must match."""
    if len(prompts) == 1:
        return prompts * n_images
    if len(prompts) != n_images:
        raise ValueError(f"got {len(prompts)} --prompt values for {n_images} images; give one --prompt for all "
                         "images or exactly one per image, in order.")
    return prompts


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..rewards import check_pairs, load_images
    from ..rewards.registry import check_reward_name

    for name in args.reward or ():
        check_reward_name(name)  # before reading any image
    prompts = pair_prompts(args.prompt, len(args.images))
    images = load_images(args.images)
    check_pairs(prompts, images)
    rewards, used, notes = build_rewards(args)
    scores: dict[str, list[float]] = {name: [] for name in rewards}
    starts = range(0, len(images), args.batch_size)
    for start in tqdm(starts, desc="score", unit="batch", disable=len(starts) < 2):
        chunk_p, chunk_i = prompts[start:start + args.batch_size], images[start:start + args.batch_size]
        for name, reward in rewards.items():
            scores[name] += [float(x) for x in reward.score(chunk_p, chunk_i)]
    rows = [{"image": str(path), "prompt": p, **{n: scores[n][i] for n in rewards}}
            for i, (path, p) in enumerate(zip(args.images, prompts))]
    if args.json:
        meta = {n: {"value_range": list(r.value_range), "higher_is_better": r.higher_is_better, "models": used[n]}
                for n, r in rewards.items()}
        if "clip" in rewards:
            meta["clip"].update(model=used["clip"]["model"], scale=args.clip_scale, clamp=not args.no_clamp,
                                prefix=args.clip_prefix)
        json.dump({"rewards": meta, "images": rows, "notes": notes}, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    for row in rows:
        values = "  ".join(f"{n} {row[n]:.4f}" for n in rewards)
        print(f"{row['image']}: {values}  ({row['prompt'][:60]})")
    return 0
