"""What the app adds to a compare request: ``gradio_client`` -> app -> ``Studio.compare`` vs calling it directly.

    python benchmarks/app_latency.py [--repeats 7] [--k 4] [--seeds "0, 1"] [--threads 2]

One process, one ``Studio`` (models loaded once, not timed), the app launched in-process on 127.0.0.1. Rows are
timed interleaved (direct, app, direct again = the control row), each the median over ``--repeats`` after a warm-up;
the app's time includes the queue, (de)serialisation and downloading the images. Goals: app / direct <= 1.10 and
the app's absolute time <= 3 s on 2 cores. Ratios are refused when the control row is off by more than ``--margin``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

from t2i_prompt.cli.boundary import OneLineParser

ROOT = Path(__file__).resolve().parents[1]


def main(args: argparse.Namespace) -> int:
    import torch
    from gradio_client import Client

    from t2i_prompt.workflows.inputs import parse_seeds
    from t2i_prompt.workflows.studio import Studio

    torch.set_num_threads(args.threads)
    spec = importlib.util.spec_from_file_location("t2i_app", ROOT / "app" / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    studio = Studio(votes_path=ROOT / "outputs" / "bench" / "votes.jsonl")
    demo = app.build_app(studio)
    _, url, _ = app.launch(demo, port=None, prevent_thread_lock=True, quiet=True)
    seeds = parse_seeds(args.seeds)
    try:
        client = Client(url, verbose=False)

        def direct():
            studio.compare(args.prompt, seeds=seeds, k=args.k)

        def through_app():
            client.predict(prompt=args.prompt, seeds=args.seeds, k=args.k, api_name="/compare")

        rows = {"direct": direct, "app": through_app, "direct (control)": direct}
        for fn in rows.values():  # warm-up: loads models, compiles nothing, fills the OS caches
            fn()
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.repeats):
            for name, fn in rows.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        demo.close()
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"compare {args.prompt!r}, k={args.k}, seeds={seeds}, {args.repeats} repeats, {args.threads} threads")
    for name, m in med.items():
        print(f"  {name:<18} median {m:.3f} s   (min {min(times[name]):.3f}, max {max(times[name]):.3f})")
    control = med["direct (control)"] / med["direct"]
    print(f"  control ratio direct (control) / direct: {control:.3f}")
    if abs(control - 1) > args.margin:
        print(f"  control off by more than {args.margin:.0%}: the machine is too noisy for a ratio; rerun.")
        return 1
    ratio = med["app"] / ((med["direct"] + med["direct (control)"]) / 2)
    print(f"  app / direct: {ratio:.3f} (goal <= 1.10); app absolute {med['app']:.2f} s (goal <= 3 s)")
    return 0


def make_parser() -> argparse.ArgumentParser:
    from t2i_prompt.cli.options import int_in

    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                           allow_abbrev=False)
    parser.add_argument("--prompt", default="crimson ball on the left of a navy box")
    parser.add_argument("--repeats", type=int_in(1, 100), default=7)
    parser.add_argument("--k", type=int_in(1, 16), default=4)
    parser.add_argument("--seeds", default="0, 1")
    parser.add_argument("--threads", type=int_in(1, 64), default=2)
    parser.add_argument("--margin", type=float, default=0.05, help="largest allowed control-row deviation")
    return parser


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
