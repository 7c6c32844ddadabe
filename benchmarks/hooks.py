"""Overhead of the attention hooks vs diffusers' plain SDPA processors, measured side by side in one run.

UNet: the SD1.5 architecture (block_out_channels (320, 640, 1280, 1280), layers_per_block 2, cross_attention_dim
768, attention_head_dim 8; 859.5 M params) with random weights, 64x64 latents, CFG batch 2, timestep 500 — the
setup of docs/hook-speed-anchors.md. One UNet forward is timed per variant (no scheduler/VAE/text encoder); the
variants run round-robin on the same UNet object, round 0 is warm-up, the median over ``--rounds`` is reported, with
the per-round paired ratio. Goals: capture of 4 tokens <= 1.02, LPA <= 1.01, soft refinement <= 1.01 (2 regions)
and <= 1.05 (4 regions). Hard binding runs one extra UNet pass (CFG batch) per region on the region's crop during
its first ``hb_steps`` steps only, so it is reported per step: (global pass + region passes) / global pass.

    python benchmarks/hooks.py            # full SD1.5 size: ~11 s per forward, several minutes in total
    python benchmarks/hooks.py --quick    # small channels, 32x32 latents: seconds
    python benchmarks/hooks.py --quick --threads 1 --clock cpu   # on a busy machine: process CPU time

On a machine shared with other jobs, wall time mostly measures the scheduler; ``--clock cpu`` times the process's
CPU seconds instead (use it with ``--threads 1``, so idle spinning of OpenMP threads is not counted).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch

from t2i_prompt.attention import (
    AttentionController,
    AttentionStore,
    LPAHook,
    Region,
    RegionHook,
)
from t2i_prompt.cli.boundary import OneLineParser, run_script

CONTROL = "vanilla SDPA again (control)"
FULL = dict(block_out_channels=(320, 640, 1280, 1280), latent=64)
QUICK = dict(block_out_channels=(64, 128, 256, 256), latent=32)


def build_unet(block_out_channels):
    """SD1.5's UNet layout (random weights) through the project's one UNet builder."""
    from t2i_prompt.models.tiny import tiny_unet

    return tiny_unet(
        sample_size=64, block_out_channels=block_out_channels, layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
    )


def halves(n):
    """n side-by-side column boxes."""
    return [Region(f"region {k}", box=(k / n, 0.0, (k + 1) / n, 1.0)) for k in range(n)]


def make_variants(latent: int, dim: int):
    """name -> factory of the variant's hook list (None: no controller, diffusers' processors)."""
    g = torch.Generator().manual_seed(0)

    def capture():
        store = AttentionStore(resolution=16)
        store.set_token_ids([[[2], [3], [5], [6]]])  # 4 tokens, all cross-attention layers
        return [store]

    def lpa():
        hook = LPAHook("lpa_late_only", window=(0, 1000))
        hook.set_token_ids([[2, 3, 4]], [[7, 8]])
        return [hook]

    def regions(n):
        def factory():
            hook = RegionHook(halves(n), hb_steps=0)
            hook.set_latent_size(latent, latent)
            hook.set_region_states(torch.randn(n, 77, dim, generator=g))
            return [hook]
        return factory

    return {"vanilla SDPA": lambda: None, CONTROL: lambda: None, "capture 4 tokens": capture, "LPA lpa_late_only": lpa,
            "soft refinement 2 regions": regions(2), "soft refinement 4 regions": regions(4)}


def time_call(unet, inputs, hooks, clock=time.perf_counter):
    """Wall time of one UNet forward with ``hooks`` installed (None: no controller at all)."""
    x, t, e = inputs
    gc.collect()
    if hooks is None:
        start = clock()
        unet(x, t, encoder_hidden_states=e)
        return clock() - start
    controller = AttentionController(hooks)
    controller.set_latent_size(x.shape[-2], x.shape[-1])
    controller.on_step_begin(0, t)
    with controller.installed(unet):
        start = clock()
        unet(x, t, encoder_hidden_states=e)
        return clock() - start


def time_hard_binding(unet, inputs, n, clock=time.perf_counter):
    """Region passes of one hard-binding step: one CFG-batch forward per region on its crop, hooks suspended."""
    x, t, e = inputs
    controller = AttentionController([])
    total = 0.0
    with controller.installed(unet), controller.suspended():
        for region in halves(n):
            mask = region.mask_at(x.shape[-2], x.shape[-1])
            cols = mask.any(0).nonzero().flatten()
            crop = x[..., int(cols.min()) : int(cols.max()) + 1]
            gc.collect()
            start = clock()
            unet(crop, t, encoder_hidden_states=e)
            total += clock() - start
    return total


def main(argv=None):
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small channels and 32x32 latents (development)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up round (>= 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time (default, as in hook-speed-anchors.md) or process CPU time (busy machines)")
    parser.add_argument("--margin", type=float, default=0.02,
                        help="refuse to print ratios when the control row is off 1.000 by more than this (default 0.02)")
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch.set_num_threads(args.threads)
    cfg = QUICK if args.quick else FULL
    unet = build_unet(cfg["block_out_channels"])
    latent = cfg["latent"]
    g = torch.Generator().manual_seed(1)
    inputs = (torch.randn(2, 4, latent, latent, generator=g), torch.tensor(500),
              torch.randn(2, 77, 768, generator=g))
    variants = make_variants(latent, 768)
    hb = {"hard binding 2 regions (per HB step)": 2, "hard binding 4 regions (per HB step)": 4}
    # one hook set per variant, reused across rounds: as in a generation, where per-layer region keys/values and
    # biases are computed at the first step and reused by every later step
    hook_sets = {name: factory() for name, factory in variants.items()}
    times = {name: [] for name in [*variants, *hb]}
    params = sum(p.numel() for p in unet.parameters()) / 1e6
    print(f"UNet {cfg['block_out_channels']} ({params:.1f} M params), latents (2, 4, {latent}, {latent}), "
          f"text (2, 77, 768), {args.threads} threads, {args.clock} clock, {args.rounds} timed rounds + 1 warm-up, "
          "interleaved")
    with torch.no_grad():
        for round_ in range(args.rounds + 1):
            timers = [(name, lambda h=hooks: time_call(unet, inputs, h, clock)) for name, hooks in hook_sets.items()]
            timers += [(name, lambda n=n: time_hard_binding(unet, inputs, n, clock)) for name, n in hb.items()]
            for name, timer in timers:
                elapsed = timer()
                if round_:
                    times[name].append(elapsed)
            print(f"  round {round_}{' (warm-up)' if not round_ else ''}: vanilla {times['vanilla SDPA'][-1] if round_ else elapsed:.3f} s",
                  flush=True)
    base = times["vanilla SDPA"]
    rows = []
    for name, ts in times.items():
        extra = base if name in hb else [0.0] * len(ts)  # hard binding: the global pass runs too
        total = [a + b for a, b in zip(ts, extra)]
        rows.append((name, total, statistics.median(total) / statistics.median(base),
                     statistics.median(a / b for a, b in zip(total, base))))
    control = next(paired for name, _, _, paired in rows if name == CONTROL)
    print(f"\n{'variant':40s} {'median ms':>10s} {'min-max ms':>17s} {'ratio':>7s} {'paired':>7s}")
    trusted = abs(control - 1.0) <= args.margin
    for name, total, ratio, paired in rows:
        cells = f"{ratio:7.3f} {paired:7.3f}" if trusted or name == CONTROL else f"{'-':>7s} {'-':>7s}"
        print(f"{name:40s} {statistics.median(total) * 1e3:10.0f} {min(total) * 1e3:8.0f}-{max(total) * 1e3:<8.0f} "
              + cells)
    if not trusted:
        print(f"\nThe control (vanilla timed against vanilla) reads {control:.3f}, off 1.000 by more than "
              f"{args.margin}: the machine is too noisy for ratios at this margin. Rerun on a quiet machine, with "
              "more --rounds, or with --clock cpu.")
        return 1
    return 0


if __name__ == "__main__":
    run_script(main)
