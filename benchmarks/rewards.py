"""Throughput of CLIP score + aesthetic with one shared image pass vs two separate passes.

The model is a CLIP with the real ViT-L/14 architecture (openai/clip-vit-large-patch14 config: vision 24 layers x
1024, patch 14, 224 px; text 12 x 768; projection 768) and random weights, built in code (no download). ``--size
base`` uses ViT-B/16 instead when the CPU is too slow. Runs are interleaved (the order alternates every repeat) and
the median per configuration is reported, both wall-clock and process CPU time (on a shared machine the wall
clock mostly measures how much CPU other jobs leave us; CPU time measures the work).

    python benchmarks/rewards.py                      # ViT-L/14, 4 images, 5 repeats
    python benchmarks/rewards.py --size base --images 8 --repeats 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from PIL import Image

from t2i_prompt.cli.boundary import OneLineParser, run_script
from t2i_prompt.models.tokenizers import make_clip_tokenizer
from t2i_prompt.rewards import AestheticMLP, AestheticReward, CLIPEmbedder, CLIPScore

SIZES = {
    # vision (hidden, layers, heads, mlp, patch), text (hidden, layers, heads, mlp), projection
    "large": ((1024, 24, 16, 4096, 14), (768, 12, 12, 3072), 768),
    "base": ((768, 12, 12, 3072, 16), (512, 12, 8, 2048), 512),
}


def build_clip(size: str):
    from transformers import CLIPConfig, CLIPModel

    (vh, vl, vn, vm, patch), (th, tl, tn, tm), proj = SIZES[size]
    config = CLIPConfig(
        text_config=dict(hidden_size=th, num_hidden_layers=tl, num_attention_heads=tn, intermediate_size=tm,
                         max_position_embeddings=77, vocab_size=49408, bos_token_id=49406, eos_token_id=49407,
                         pad_token_id=49407, projection_dim=proj),
        vision_config=dict(hidden_size=vh, num_hidden_layers=vl, num_attention_heads=vn, intermediate_size=vm,
                           patch_size=patch, image_size=224, projection_dim=proj),
        projection_dim=proj,
    )
    torch.manual_seed(0)
    return CLIPModel(config).eval()


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="large")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    model, tokenizer = build_clip(args.size), make_clip_tokenizer()
    torch.manual_seed(1)
    mlp = AestheticMLP(model.config.projection_dim).eval()
    print(f"built ViT-{'L/14' if args.size == 'large' else 'B/16'} CLIP ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
          f"params) in {time.perf_counter() - t0:.1f}s; {args.images} images of 512x512, {torch.get_num_threads()} threads")
    g = torch.Generator().manual_seed(0)
    images = [Image.fromarray((torch.rand(512, 512, 3, generator=g) * 255).to(torch.uint8).numpy())
              for _ in range(args.images)]
    prompts = [f"a photo of object number {i}, highly detailed" for i in range(args.images)]

    def shared_pass():
        clip = CLIPEmbedder(model, tokenizer)  # fresh cache: every image is new to it
        return CLIPScore(clip, scale=1).score(prompts, images), AestheticReward(clip, mlp).score(prompts, images)

    def separate_passes():
        a = CLIPEmbedder(model, tokenizer, cache_size=0)
        b = CLIPEmbedder(model, tokenizer, cache_size=0)
        return CLIPScore(a, scale=1).score(prompts, images), AestheticReward(b, mlp).score(prompts, images)

    runs = {"shared": shared_pass, "separate": separate_passes}
    times = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    outputs = {}
    with torch.inference_mode():
        shared_pass()  # warm-up (allocator, kernels)
        for r in range(args.repeats):
            order = ["shared", "separate"] if r % 2 == 0 else ["separate", "shared"]
            for name in order:
                t, c = time.perf_counter(), time.process_time()
                outputs[name] = runs[name]()
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
            print(f"repeat {r}: shared {times['shared'][-1]:.2f}s wall / {cpu['shared'][-1]:.2f}s cpu   "
                  f"separate {times['separate'][-1]:.2f}s wall / {cpu['separate'][-1]:.2f}s cpu")
    for a, b in zip(outputs["shared"], outputs["separate"]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)  # same numbers either way
    med = {name: statistics.median(v) for name, v in times.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    ratio, ratio_cpu = med["separate"] / med["shared"], med_cpu["separate"] / med_cpu["shared"]
    print(f"median wall: shared {med['shared']:.2f}s ({args.images / med['shared']:.2f} img/s), separate "
          f"{med['separate']:.2f}s ({args.images / med['separate']:.2f} img/s)")
    print(f"median cpu:  shared {med_cpu['shared']:.2f}s, separate {med_cpu['separate']:.2f}s")
    print(f"throughput ratio shared/separate: {ratio:.2f}x wall, {ratio_cpu:.2f}x cpu (goal >= 1.8x)")
    print(json.dumps({"size": args.size, "images": args.images, "repeats": args.repeats, "median_wall_s": med,
                      "median_cpu_s": med_cpu, "ratio_wall": round(ratio, 3), "ratio_cpu": round(ratio_cpu, 3)}))


if __name__ == "__main__":
    run_script(main)
