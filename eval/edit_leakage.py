"""Shapes world: attention leakage and word-swap edits of DDIM+P2P, NTI+P2P and DPL+P2P, with exact ground truth.

    python eval/edit_leakage.py --scenes 12 --steps 10 --guidance 3 --dpl-lr 1e-2 --threads 1 --out eval/results/edit_leakage.json

``--local`` adds prompt-to-prompt's LocalBlend on the edited object's shape word, so the change outside it can be
compared with and without the blend on the same scenes.

Each seeded two-object scene (distinct shapes, filled) is rendered, so every object's mask is known. It is inverted
under its canonical caption and edited by a colour swap of its second object. Per method: IoU of each shape word's
attention mask (the source branch's map over all steps, resized, > 0.5 of its range) with the object's true mask,
the share of the word's attention outside its object (leakage), the reconstruction PSNR, and the exact detector's
verdict on the swap: the edited object has the new colour, same shape and place (target-internal), the other object
is unchanged in colour, shape and place (target-external), and the mean pixel change outside the edited object.
Every mean comes with a 95 % bootstrap interval over scenes, and DPL - NTI with a paired one (same scenes). DPL's
background rule is ``--dpl-background`` (``boundary`` by default here: the shapes model's words attend diffusely,
so the paper's cross-attention rule finds no background cluster; see ``t2i_prompt/edit/dpl.py``).
"""

from __future__ import annotations

import argparse

from t2i_prompt.cli.boundary import OneLineParser, run_script
from t2i_prompt.cli.edit import DPL_PRESET_NAMES, DPL_SOFTMAX_OVER
from t2i_prompt.cli.options import float_in, int_in

METHODS = ("ddim", "nti", "dpl")
PLACE_TOLERANCE = 3.0  # pixels a detected centroid may move and still be "the same place"


def add_scene_args(parser: argparse.ArgumentParser, scenes: int) -> None:
    """The flags of a run over ``two_object_scenes``: model, number of scenes, their seed, steps, guidance."""
    parser.add_argument("--model", default="shapes", help="T2I model (default: the shapes world)")
    parser.add_argument("--scenes", type=int_in(1, 500), default=scenes, help=f"two-object scenes (default {scenes})")
    parser.add_argument("--seed", type=int_in(0, 2**31), default=0, help="scene sampling seed (default 0)")
    parser.add_argument("--steps", type=int_in(1, 200), default=10, help="DDIM steps (default 10)")
    parser.add_argument("--guidance", type=float_in(1.0, 20.0), default=3.0, help="CFG scale, > 1 (default 3)")


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scene_args(parser, scenes=6)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--nti-steps", type=int_in(1, 100), default=10, help="null-text inner steps (default 10)")
    parser.add_argument("--dpl-attn-steps", type=int_in(0, 100), default=None,
                        help="DPL attention inner steps (default: the preset's; fast 10, release 21)")
    parser.add_argument("--dpl-null-steps", type=int_in(1, 100), default=None,
                        help="DPL null-text inner steps (default: the preset's; fast 10, release 51)")
    parser.add_argument("--dpl-preset", choices=DPL_PRESET_NAMES, default="fast", help="DPL preset (default fast)")
    parser.add_argument("--dpl-lr", type=float_in(1e-6, 10.0), default=None, help="DPL token lr (default: preset's)")
    parser.add_argument("--dpl-background", choices=("cross", "boundary"), default="boundary",
                        help="DPL background rule (default boundary)")
    parser.add_argument("--dpl-softmax-over", choices=DPL_SOFTMAX_OVER, default="prompt",
                        help="tokens DPL's map softmax runs over (default prompt, the paper's)")
    parser.add_argument("--local", action="store_true",
                        help="LocalBlend on the edited object's shape word (prompt-to-prompt's local edit)")
    parser.add_argument("--local-threshold", type=float_in(0.0, 1.0), default=None,
                        help="LocalBlend mask threshold on the normalised map (default: the model's, else 0.3)")
    parser.add_argument("--local-normalise", choices=("max", "minmax"), default=None,
                        help="LocalBlend map normalisation (default: the model's, else max, the reference's)")
    parser.add_argument("--threads", type=int_in(1, 256), default=None, help="torch threads")
    parser.add_argument("--out", default=None, help="write the full results JSON here (atomically)")
    parser.add_argument("--pool", nargs="+", default=None, metavar="RESULTS",
                        help="summarise these results files together (same settings, different --seed) instead of "
                             "running; the intervals are over all their scenes")
    return parser


def two_object_scenes(n: int, seed: int):
    """``n`` seeded filled relation scenes whose two objects have different shapes (so each shape word is one object)."""
    import random

    from t2i_prompt.shapes.grammar import Scene, random_scene

    rng, scenes = random.Random(seed), []
    while len(scenes) < n:
        s = random_scene(rng, p_single=0.0, p_relation=1.0)
        if s.objects[0].shape != s.objects[1].shape:
            scenes.append(Scene(s.objects, s.relation, "filled", "relation"))
    return scenes


def dpl_config(args):
    """The ``--dpl-preset`` with the flags that were given (an omitted step count or lr is the preset's own)."""
    from t2i_prompt.edit.dpl import preset

    settings = {"bg_method": args.dpl_background, "softmax_over": args.dpl_softmax_over}
    for key, value in (("attn_inner_steps", args.dpl_attn_steps), ("null_inner_steps", args.dpl_null_steps),
                       ("lr", args.dpl_lr)):
        if value is not None:
            settings[key] = value
    return preset(args.dpl_preset, **settings)


def object_masks(scene):
    """Each object's filled mask in the unjittered render (the image the edit starts from)."""
    from t2i_prompt.shapes.render import render_scene_with_masks

    return render_scene_with_masks(scene)[1]


def swap_verdict(scene, new_color: str, edited) -> dict:
    """Detector verdict of a colour swap of object 1: internal (asked change done), external (object 0 kept)."""
    from t2i_prompt.shapes.detector import detect_objects
    from t2i_prompt.shapes.render import IMAGE_SIZE, layout_slots

    found = detect_objects(edited)
    slots = [(fx * IMAGE_SIZE, fy * IMAGE_SIZE) for fx, fy, _ in layout_slots(scene)]

    def present(color, shape, place):
        return any(o.color == color and o.shape == shape and abs(o.x - place[0]) <= PLACE_TOLERANCE
                   and abs(o.y - place[1]) <= PLACE_TOLERANCE for o in found)

    kept, target = scene.objects
    return {"internal_ok": present(new_color, target.shape, slots[1]),
            "external_ok": present(kept.color, kept.shape, slots[0]), "objects_found": len(found)}


def background_iou(background, masks) -> float | None:
    """IoU of DPL's background map (resized to the image) with the true background (no object); None if no map."""
    import numpy as np

    from t2i_prompt.edit.leakage import mask_iou

    if background is None:
        return None
    true_bg = ~np.logical_or.reduce(masks)
    size = true_bg.shape[0] // background.shape[0]
    bg = np.kron(np.asarray(background) > 0.5, np.ones((size, size), dtype=bool))
    return mask_iou(bg, true_bg)


METRICS = ("iou", "leakage", "psnr", "internal_ok", "external_ok", "change_outside", "unet_forward",
           "unet_backward", "seconds")


def per_scene(row: dict, metric: str) -> float:
    """One number per scene and metric (IoU and leakage: mean over the two shape words)."""
    import numpy as np

    if metric in ("iou", "leakage"):
        return float(np.mean(row[metric]))
    if metric.startswith("unet_"):
        return float(row["passes"][metric])
    return float(row[metric])


def summarise(rows: dict[str, list[dict]]) -> dict:
    """Per method and metric: mean and 95 % bootstrap interval over scenes; DPL - NTI paired on the scenes."""
    import numpy as np

    from t2i_prompt.evaluate.report import paired_bootstrap

    summary = {}
    for method, items in rows.items():
        summary[method] = {}
        for metric in METRICS:
            values = np.array([per_scene(r, metric) for r in items])
            mean, low, high = paired_bootstrap(np.zeros_like(values), values)
            summary[method][metric] = {"mean": mean, "ci95": [low, high]}
        found = [r["background_iou"] for r in items if r["background_iou"] is not None]
        summary[method]["background_found"] = len(found) / len(items) if method == "dpl" else None
        summary[method]["background_iou"] = float(np.mean(found)) if found else None
    if "dpl" in rows and "nti" in rows:
        summary["dpl_minus_nti"] = {}
        for metric in ("iou", "leakage", "psnr", "internal_ok", "external_ok"):
            a = np.array([per_scene(r, metric) for r in rows["nti"]])
            b = np.array([per_scene(r, metric) for r in rows["dpl"]])
            mean, low, high = paired_bootstrap(a, b)
            summary["dpl_minus_nti"][metric] = {"mean": mean, "ci95": [low, high]}
    return summary


def format_table(summary: dict) -> str:
    """The README table: mean [95 % interval] per method."""
    def cell(s, digits):
        return f"{s['mean']:.{digits}f} [{s['ci95'][0]:.{digits}f}, {s['ci95'][1]:.{digits}f}]"

    lines = ["| method | mask IoU | leakage | PSNR dB | swap done | other kept | change outside | fwd | bwd | s/edit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method, s in summary.items():
        if method == "dpl_minus_nti":
            continue
        lines.append(f"| {method} | {cell(s['iou'], 3)} | {cell(s['leakage'], 3)} | {cell(s['psnr'], 1)} | "
                     f"{cell(s['internal_ok'], 2)} | {cell(s['external_ok'], 2)} | {cell(s['change_outside'], 2)} | "
                     f"{s['unet_forward']['mean']:.0f} | {s['unet_backward']['mean']:.0f} | "
                     f"{s['seconds']['mean']:.1f} |")
    if "dpl_minus_nti" in summary:
        d = summary["dpl_minus_nti"]
        lines.append(f"| DPL - NTI (paired) | {cell(d['iou'], 3)} | {cell(d['leakage'], 3)} | {cell(d['psnr'], 1)} | "
                     f"{cell(d['internal_ok'], 2)} | {cell(d['external_ok'], 2)} | | | | |")
    return "\n".join(lines)


# settings that may differ between pooled files: which and how many scenes, where the file went, how fast it ran
POOL_FREE_ARGS = ("seed", "scenes", "out", "threads", "pool")


def pool_results(paths) -> dict:
    """One summary over the scenes of several results files run with the same settings on different scene seeds."""
    import json
    from pathlib import Path

    loaded = []
    for path in paths:
        try:
            loaded.append(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not JSON ({err}); pass files written by --out of a run") from None
    for path, item in zip(paths, loaded):
        if not isinstance(item, dict) or "rows" not in item.get("results", {}) or "seed" not in item.get("args", {}):
            raise ValueError(f"{path}: not an edit_leakage results file (no args/results.rows); pass files written by "
                             f"--out of a run")
    ref = {k: v for k, v in loaded[0]["args"].items() if k not in POOL_FREE_ARGS}
    seeds = []
    for path, item in zip(paths, loaded):
        settings = {k: v for k, v in item["args"].items() if k not in POOL_FREE_ARGS}
        differ = sorted(k for k in ref.keys() | settings.keys() if ref.get(k) != settings.get(k))
        if differ:
            raise ValueError(f"{path}: settings {', '.join(differ)} differ from {paths[0]}'s; pool only files that "
                             f"differ in --seed")
        if item["args"]["seed"] in seeds:
            raise ValueError(f"{path}: scene seed {item['args']['seed']} is already pooled; each seed once")
        seeds.append(item["args"]["seed"])
    rows = {m: [r for item in loaded for r in item["results"]["rows"][m]] for m in ref["methods"]}
    return {"summary": summarise(rows), "seeds": seeds, "scenes": len(rows[ref["methods"][0]])}


def main(args) -> dict:
    from t2i_prompt.utils import save_run_results

    if args.pool:
        defaults = vars(make_parser().parse_args([]))
        given = sorted(k for k, v in vars(args).items() if k not in ("out", "threads", "pool") and v != defaults.get(k))
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ValueError(f"--pool reports the pooled files' own settings; drop {flags} (only --out and "
                             f"--threads go with --pool)")
        pooled = pool_results(args.pool)
        print(f"{pooled['scenes']} scenes, seeds {pooled['seeds']}")
        print(format_table(pooled["summary"]))
        return save_run_results(args.out, args, pooled)
    import numpy as np
    import torch
    from PIL import Image

    from t2i_prompt.edit import EditConfig, edit_image
    from t2i_prompt.edit.leakage import attention_mask, leakage_share, mask_iou
    from t2i_prompt.attention.prompt2prompt import model_blend_mask
    from t2i_prompt.generate.pipeline import T2IPipeline
    from t2i_prompt.shapes.grammar import COLORS, canonical_caption
    from t2i_prompt.shapes.render import render_scene

    if args.threads:
        torch.set_num_threads(args.threads)
    dpl = dpl_config(args)
    pipeline = T2IPipeline.from_pretrained(args.model, device="cpu", dtype=torch.float32)
    # the results file records the mask that ran, not "the model's"
    args.local_normalise, args.local_threshold = model_blend_mask(pipeline, args.local_normalise, args.local_threshold)
    rows = {m: [] for m in args.methods}
    for k, scene in enumerate(two_object_scenes(args.scenes, args.seed)):
        source = canonical_caption(scene)
        target_obj = scene.objects[1]
        new_color = next(c for c in COLORS if c not in (target_obj.color, scene.objects[0].color))
        target = source.replace(target_obj.words(), f"{new_color} {target_obj.shape}")
        image = Image.fromarray(render_scene(scene))
        masks = object_masks(scene)
        nouns = tuple(o.shape for o in scene.objects)
        for method in args.methods:
            config = EditConfig(method=method, num_inference_steps=args.steps, guidance_scale=args.guidance,
                                nti_inner_steps=args.nti_steps, nouns=nouns,
                                local=(target_obj.shape,) if args.local else (), local_threshold=args.local_threshold,
                                local_normalise=args.local_normalise,
                                dpl=dpl)
            result = edit_image(pipeline, image, source, target, config)
            maps = [result.word_maps[n] for n in nouns]
            iou = [mask_iou(attention_mask(a, m.shape), m) for a, m in zip(maps, masks)]
            leak = [leakage_share(a, m) for a, m in zip(maps, masks)]
            change = np.abs(np.asarray(result.edits[0], float) - np.asarray(result.reconstruction, float)).mean(-1)
            row = {"scene": source, "target": target, "iou": iou, "leakage": leak,
                   "psnr": result.metrics["reconstruction_psnr"], **swap_verdict(scene, new_color, result.edits[0]),
                   "change_outside": float(change[~masks[1]].mean()), "change_inside": float(change[masks[1]].mean()),
                   "passes": result.passes, "seconds": result.timings["total"],
                   "background_found": result.background is not None,
                   "background_iou": background_iou(result.background, masks)}
            rows[method].append(row)
            print(f"{k:3d} {method:4s} iou {np.mean(iou):.3f} leak {np.mean(leak):.3f} psnr {row['psnr']:.1f} "
                  f"int {row['internal_ok']} ext {row['external_ok']} {row['seconds']:.1f}s  {source!r}", flush=True)
    summary = summarise(rows)
    print(format_table(summary))
    return save_run_results(args.out, args, {"summary": summary, "rows": rows})


if __name__ == "__main__":
    run_script(main, make_parser)
