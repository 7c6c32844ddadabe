"""Time and UNet forward/backward passes per real-image edit: DDIM, null-text inversion and DPL, side by side.

UNet: the SD1.5 architecture (block_out_channels (320, 640, 1280, 1280), layers_per_block 2, cross_attention_dim
768, attention_head_dim 8) with random weights, at a small latent; the tiny SD1.5 text tower (widened to 768) and
VAE complete the pipeline. Every method edits the same image with the same prompts in one run; the first row is
repeated at the end as a control (same variant timed twice). With random weights no early stop fires, so the pass
counts are each method's worst case (NTI: steps x inner steps; DPL: steps x (attention + null inner steps));
the shapes-world counts with early stopping are in ``eval/edit_leakage.py``.

    python benchmarks/edit.py --quick --threads 1                          # small channels, 8x8 latent
    python benchmarks/edit.py --latent 8 --steps 2 --presets fast --threads 1  # full SD1.5 UNet (860 M), 8x8 latent
    python benchmarks/edit.py --latent 16 --steps 5                           # full SD1.5 UNet, 16x16: long on CPU
"""

from __future__ import annotations

import argparse

from t2i_prompt.cli.boundary import OneLineParser, run_script
from t2i_prompt.cli.options import int_in

FULL = (320, 640, 1280, 1280)
QUICK = (32, 64, 64, 64)


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small channels instead of SD1.5's")
    parser.add_argument("--latent", type=int_in(8, 128), default=16, help="latent side (default 16)")
    parser.add_argument("--steps", type=int_in(1, 100), default=5, help="DDIM steps per edit (default 5)")
    parser.add_argument("--threads", type=int_in(1, 256), default=None, help="torch threads")
    parser.add_argument("--presets", nargs="+", default=["release", "fast"], help="DPL presets to time")
    parser.add_argument("--out", default=None, help="write the rows as JSON here (atomically)")
    return parser


def build_pipeline(channels, latent: int):
    """A T2IPipeline: SD1.5-layout UNet (random), the tiny SD1.5 tokenizer/VAE, a 768-wide 2-layer CLIP text tower."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    from t2i_prompt.generate.pipeline import T2IPipeline
    from t2i_prompt.models.tiny import _text_config_kwargs, tiny_unet

    tiny = T2IPipeline.from_pretrained("tiny:sd15", device="cpu", dtype=torch.float32)
    unet = tiny_unet(
        sample_size=latent, block_out_channels=channels, layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32)
    torch.manual_seed(0)
    text = CLIPTextModel(CLIPTextConfig(**_text_config_kwargs(len(tiny.tokenizer), hidden=768))).eval()
    return T2IPipeline(unet, tiny.scheduler, text, tiny.tokenizer, vae=tiny.vae, name="sd15-unet-random")


def main(args) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    from t2i_prompt.edit import EditConfig, edit_image
    from t2i_prompt.edit.dpl import preset
    from t2i_prompt.utils import save_run_results

    if args.threads:
        torch.set_num_threads(args.threads)
    latent = 8 if args.quick else args.latent
    pipe = build_pipeline(QUICK if args.quick else FULL, latent)
    size = latent * pipe.vae_scale_factor
    image = Image.fromarray((np.random.default_rng(0).random((size, size, 3)) * 255).astype("uint8"))
    source, target = "a red cat and a blue dog", "a red cat and a blue tree"
    variants = [("NTI (10 inner)", dict(method="nti"))]
    variants += [(f"DPL {p}", dict(method="dpl", dpl=preset(p))) for p in args.presets]
    variants += [("DDIM (no optimisation)", dict(method="ddim")), ("NTI (10 inner) again (control)", dict(method="nti"))]
    params = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
    print(f"UNet {params:.1f} M params, latent {latent}x{latent}, {args.steps} steps, guidance 7.5, nouns cat/dog")
    print("| variant | seconds | UNet forward | UNet backward | passes vs NTI | seconds vs NTI |")
    print("|---|---|---|---|---|---|")
    rows, base = [], None
    for name, kwargs in variants:
        config = EditConfig(num_inference_steps=args.steps, guidance_scale=7.5, nouns=("cat", "dog"), **kwargs)
        result = edit_image(pipe, image, source, target, config, height=size, width=size)
        seconds = result.timings["total"]
        passes = result.passes["unet_forward"] + result.passes["unet_backward"]
        base = base or (passes, seconds)
        rows.append({"variant": name, "seconds": seconds, **result.passes, "passes_vs_nti": passes / base[0],
                     "seconds_vs_nti": seconds / base[1]})
        print(f"| {name} | {seconds:.1f} | {result.passes['unet_forward']} | {result.passes['unet_backward']} | "
              f"{passes / base[0]:.2f} | {seconds / base[1]:.2f} |", flush=True)
    return save_run_results(args.out, args, {"unet_million_params": params, "latent": latent, "rows": rows})


if __name__ == "__main__":
    run_script(main, make_parser)
