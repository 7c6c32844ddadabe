"""Shapes world: which prompt token holds the most cross-attention at each pixel (why DPL's softmax saturates).

    python eval/attention_tokens.py --scenes 12 --steps 10 --guidance 3 --threads 1 --out eval/results/attention_tokens_v3.json

For each seeded two-object scene (the scenes of ``eval/edit_leakage.py``) the canonical caption is generated and the
16x16 cross-attention of every prompt token (BOS excluded, as Attend-and-Excite and DPL do) is captured over all
steps. Per token: its mean and peak raw attention and the share of pixels where it wins DPL's x100 softmax over the
prompt's tokens. Summary: the share of pixels won by the nouns (shape words) vs by the other words.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from t2i_prompt.cli.boundary import OneLineParser, run_script
from t2i_prompt.cli.options import int_in

sys.path.insert(0, str(Path(__file__).parent))
from edit_leakage import add_scene_args, two_object_scenes  # noqa: E402  (a sibling script)


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scene_args(parser, scenes=12)
    parser.add_argument("--threads", type=int_in(1, 256), default=None, help="torch threads")
    parser.add_argument("--out", default=None, help="write the results JSON here (atomically)")
    return parser


def pixel_winners(maps, scale: float = 100.0):
    """Share of pixels at which each token's map (tokens, h, w) is the largest after a x``scale`` softmax over the
    tokens (the argmax of the softmax is the argmax of the raw maps; the scale only matters for the losses)."""
    import torch

    win = torch.softmax(maps.flatten(1) * scale, dim=0).argmax(0)
    return [float((win == k).float().mean()) for k in range(maps.shape[0])]


def main(args) -> dict:
    import numpy as np
    import torch

    from t2i_prompt.attention.store import AttentionStore
    from t2i_prompt.edit.dpl import noun_positions_for
    from t2i_prompt.generate.pipeline import T2IPipeline
    from t2i_prompt.shapes.grammar import canonical_caption
    from t2i_prompt.utils import save_run_results

    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = T2IPipeline.from_pretrained(args.model, device="cpu", dtype=torch.float32)
    rows, noun_share, top_share = [], [], []
    for k, scene in enumerate(two_object_scenes(args.scenes, args.seed)):
        prompt = canonical_caption(scene)
        ids = pipe.tokenizer(prompt).input_ids
        tokens = pipe.tokenizer.convert_ids_to_tokens(ids)[1:]  # BOS excluded; EOS kept (it is a prompt token)
        store = AttentionStore(resolution=16)
        store.set_token_ids([[[p] for p in range(1, len(ids))]])
        pipe([prompt], num_inference_steps=args.steps, guidance_scale=args.guidance, hooks=[store], output_type="pt",
             generator=torch.Generator().manual_seed(k))
        maps = store.maps()[0]
        won = pixel_winners(maps)
        nouns = {p - 1 for ps in noun_positions_for([pipe.tokenizer], prompt,
                                                    sorted({o.shape for o in scene.objects})).values() for p in ps}
        is_noun = [i in nouns for i in range(len(tokens))]  # DPL's noun tokens (BPE pieces included)
        noun_share.append(sum(w for w, n in zip(won, is_noun) if n))
        top = int(np.argmax(won))
        top_share.append(won[top])
        rows.append({"prompt": prompt, "tokens": tokens, "noun": is_noun, "pixels_won": won,
                     "mean": [float(m.mean()) for m in maps], "peak": [float(m.max()) for m in maps],
                     "top_token": tokens[top]})
        print(f"{k:3d} nouns win {noun_share[-1]:.2f} of the pixels; top {tokens[top]!r} {won[top]:.2f}  {prompt!r}",
              flush=True)
    summary = {"nouns_pixel_share": float(np.mean(noun_share)), "top_token_pixel_share": float(np.mean(top_share)),
               "top_tokens": sorted({r["top_token"] for r in rows})}
    print(summary)
    return save_run_results(args.out, args, {"summary": summary, "rows": rows})


if __name__ == "__main__":
    run_script(main, make_parser)
