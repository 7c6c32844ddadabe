"""Shapes world: attention leakage and word-swap edits of DDIM+P2P, NTI+P2P and DPL+P2P, with exact ground truth.

    python eval/edit_leakage.py --scenes 6 --steps 10 --guidance 2 --out eval/results/edit_leakage.json

Each seeded two-object scene (distinct shapes, filled) is rendered, so every object's mask is known. It is inverted
under its canonical caption and edited by a colour swap of its second object. Per method: IoU of each shape word's
attention mask (the source branch's map over all steps, resized, > 0.5 of its range) with the object's true mask,
the share of the word's attention outside its object (leakage), the reconstruction PSNR, and the exact detector's
verdict on the swap: the edited object has the new colour, same shape and place (target-internal), the other object
is unchanged in colour, shape and place (target-external), and the mean pixel change outside the edited object.
"""

from __future__ import annotations

import argparse

from t2i_prompt.cli.boundary import OneLineParser, run_script
from t2i_prompt.cli.options import float_in, int_in

METHODS = ("ddim", "nti", "dpl")
PLACE_TOLERANCE = 3.0  # pixels a detected centroid may move and still be "the same place"


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes", help="T2I model (default: the shapes world)")
    parser.add_argument("--scenes", type=int_in(1, 500), default=6, help="two-object scenes (default 6)")
    parser.add_argument("--seed", type=int_in(0, 2**31), default=0, help="scene sampling seed (default 0)")
    parser.add_argument("--steps", type=int_in(1, 200), default=10, help="DDIM steps (default 10)")
    parser.add_argument("--guidance", type=float_in(1.0, 20.0), default=2.0, help="CFG scale, > 1 (default 2)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--nti-steps", type=int_in(1, 100), default=10, help="null-text inner steps (default 10)")
    parser.add_argument("--dpl-attn-steps", type=int_in(0, 100), default=5, help="DPL attention steps (default 5)")
    parser.add_argument("--dpl-null-steps", type=int_in(1, 100), default=10, help="DPL null steps (default 10)")
    parser.add_argument("--out", default=None, help="write the full results JSON here (atomically)")
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


def object_masks(scene):
    from t2i_prompt.shapes.render import IMAGE_SIZE, layout_slots, shape_mask

    return [shape_mask(o.shape, fx * IMAGE_SIZE, fy * IMAGE_SIZE, fh * IMAGE_SIZE)
            for o, (fx, fy, fh) in zip(scene.objects, layout_slots(scene))]


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


def main(args) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    from t2i_prompt.edit import EditConfig, edit_image
    from t2i_prompt.edit.dpl import preset
    from t2i_prompt.edit.leakage import attention_mask, leakage_share, mask_iou
    from t2i_prompt.generate.pipeline import T2IPipeline
    from t2i_prompt.shapes.grammar import COLORS, canonical_caption
    from t2i_prompt.shapes.render import render_scene
    from t2i_prompt.utils import save_run_results

    pipeline = T2IPipeline.from_pretrained(args.model, device="cpu", dtype=torch.float32)
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
                                dpl=preset("fast", attn_inner_steps=args.dpl_attn_steps,
                                           null_inner_steps=args.dpl_null_steps))
            result = edit_image(pipeline, image, source, target, config)
            maps = [result.word_maps[n] for n in nouns]
            iou = [mask_iou(attention_mask(a, m.shape), m) for a, m in zip(maps, masks)]
            leak = [leakage_share(a, m) for a, m in zip(maps, masks)]
            change = np.abs(np.asarray(result.edits[0], float) - np.asarray(result.reconstruction, float)).mean(-1)
            row = {"scene": source, "target": target, "iou": iou, "leakage": leak,
                   "psnr": result.metrics["reconstruction_psnr"], **swap_verdict(scene, new_color, result.edits[0]),
                   "change_outside": float(change[~masks[1]].mean()), "change_inside": float(change[masks[1]].mean()),
                   "passes": result.passes, "seconds": result.timings["total"],
                   "background_found": result.background is not None}
            rows[method].append(row)
            print(f"{k:3d} {method:4s} iou {np.mean(iou):.3f} leak {np.mean(leak):.3f} psnr {row['psnr']:.1f} "
                  f"int {row['internal_ok']} ext {row['external_ok']} {row['seconds']:.1f}s  {source!r}", flush=True)
    summary = {}
    for method, items in rows.items():
        summary[method] = {
            "iou": float(np.mean([v for r in items for v in r["iou"]])),
            "leakage": float(np.mean([v for r in items for v in r["leakage"]])),
            "psnr": float(np.mean([r["psnr"] for r in items])),
            "internal_ok": float(np.mean([r["internal_ok"] for r in items])),
            "external_ok": float(np.mean([r["external_ok"] for r in items])),
            "change_outside": float(np.mean([r["change_outside"] for r in items])),
            "unet_forward": float(np.mean([r["passes"]["unet_forward"] for r in items])),
            "unet_backward": float(np.mean([r["passes"]["unet_backward"] for r in items])),
            "seconds": float(np.mean([r["seconds"] for r in items])),
        }
    print("| method | mask IoU | leakage | PSNR dB | swap done | other kept | change outside | fwd | bwd | s/edit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method, s in summary.items():
        print(f"| {method} | {s['iou']:.3f} | {s['leakage']:.3f} | {s['psnr']:.1f} | {s['internal_ok']:.2f} | "
              f"{s['external_ok']:.2f} | {s['change_outside']:.2f} | {s['unet_forward']:.0f} | "
              f"{s['unet_backward']:.0f} | {s['seconds']:.1f} |")
    return save_run_results(args.out, args, {"summary": summary, "rows": rows})


if __name__ == "__main__":
    run_script(main, make_parser)
