"""``t2i-prompt score --prompt P IMAGES...``: score images against prompts with one or more rewards.

Give ``--prompt`` once (it applies to every image) or once per image, in order. Rewards: ``clip`` (CLIP score;
``--clip-scale 1|2.5|100``, ``--no-clamp``, ``--clip-prefix``), ``aesthetic`` (LAION-style predictor),
``vp_score`` (ImageReward-style checkpoint given with ``--vp-model``).

Examples::

    t2i-prompt score --prompt "a red circle" img0.png img1.png                # shapes:clip + shapes:quality
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
    parser.add_argument("--clip", default="shapes:clip", help="CLIP model for clip and aesthetic (default shapes:clip)")
    parser.add_argument("--quality", default=None,
                        help="aesthetic predictor: shapes:quality (default), a dir, or a LAION .pth/.safetensors "
                             "file (then --clip must be the CLIP it was trained on)")
    parser.add_argument("--clip-scale", type=float, default=1.0, choices=(1.0, 2.5, 100.0),
                        help="1 = cosine, 2.5 = Hessel CLIPScore, 100 = torchmetrics")
    parser.add_argument("--no-clamp", action="store_true", help="keep negative cosines")
    parser.add_argument("--clip-prefix", default="", help='caption prefix, e.g. "A photo depicts " (Hessel)')
    parser.add_argument("--vp-model", default=None, help="VP-Score / ImageReward-layout checkpoint directory")
    options.add_device_args(parser, dtype=False)
    parser.add_argument("--batch-size", type=options.int_in(1, 4096), default=16, help="images per scoring batch (default 16)")
    options.add_output_args(parser, None, progress=False)
    parser.set_defaults(func=run)


def build_rewards(args: argparse.Namespace) -> dict:
    """name -> reward for the requested ``--reward`` list, through the reward registry (CLIP-based rewards built
    on the same ``--clip`` share one image pass)."""
    from ..rewards.registry import build_reward, check_reward_name

    names = list(dict.fromkeys(check_reward_name(n) for n in (args.reward or ["clip", "aesthetic"])))
    if "similarity" in names:
        raise ValueError("--reward similarity compares two texts, not an image; use `t2i-prompt rewrite` or the "
                         "Python TextSimilarity for text similarity.")
    if "vp_score" in names and not args.vp_model:
        raise ValueError("--reward vp_score needs --vp-model DIR (a VP-Score/ImageReward-layout checkpoint).")
    models = {"clip": args.clip, "clip_cos": args.clip, "promptist": args.clip, "aesthetic": args.quality,
              "quality": args.quality, "vp_score": args.vp_model}
    options = {"clip": args.clip, "scale": args.clip_scale, "clamp": not args.no_clamp, "prefix": args.clip_prefix,
               "aesthetic": args.quality}
    if any(n in ("aesthetic", "quality", "promptist") for n in names) and not args.quality:
        options["aesthetic"] = models["aesthetic"] = models["quality"] = "shapes:quality"
    return {name: build_reward(name, models.get(name), device=args.device, **options) for name in names}


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
    rewards = build_rewards(args)
    scores: dict[str, list[float]] = {name: [] for name in rewards}
    starts = range(0, len(images), args.batch_size)
    for start in tqdm(starts, desc="score", unit="batch", disable=len(starts) < 2):
        chunk_p, chunk_i = prompts[start:start + args.batch_size], images[start:start + args.batch_size]
        for name, reward in rewards.items():
            scores[name] += [float(x) for x in reward.score(chunk_p, chunk_i)]
    rows = [{"image": str(path), "prompt": p, **{n: scores[n][i] for n in rewards}}
            for i, (path, p) in enumerate(zip(args.images, prompts))]
    if args.json:
        meta = {n: {"value_range": list(r.value_range), "higher_is_better": r.higher_is_better} for n, r in rewards.items()}
        if "clip" in rewards:
            meta["clip"].update(model=args.clip, scale=args.clip_scale, clamp=not args.no_clamp, prefix=args.clip_prefix)
        json.dump({"rewards": meta, "images": rows}, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    for row in rows:
        values = "  ".join(f"{n} {row[n]:.4f}" for n in rewards)
        print(f"{row['image']}: {values}  ({row['prompt'][:60]})")
    return 0
