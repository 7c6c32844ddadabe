"""Train the shapes-world T2I model (pixel-space UNet + tiny CLIP text encoder) on 2 CPU cores.

    python training/shapes/train_t2i.py --run_dir runs/shapes_t2i --max_steps 6000
    python training/shapes/train_t2i.py --run_dir runs/shapes_t2i --export t2i_prompt/shapes/weights/t2i

Re-running the same command resumes from ``<run_dir>/checkpoint`` (exact: data is a function of the step).
``--export DIR`` writes the EMA weights in diffusers layout and exits.
"""

from __future__ import annotations

import argparse
import dataclasses

from t2i_prompt.cli.boundary import OneLineParser


def make_parser() -> argparse.ArgumentParser:
    from t2i_prompt.shapes.train_t2i import T2ITrainConfig

    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(T2ITrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, list):
            parser.add_argument(f"--{f.name}", type=int, nargs="+", default=default)
        else:
            parser.add_argument(f"--{f.name}", type=type(default), default=default)
    parser.add_argument("--export", default=None, help="write the EMA model to this directory and exit")
    return parser


def main(args: argparse.Namespace) -> None:
    from t2i_prompt.shapes.train_t2i import T2ITrainConfig, T2ITrainer

    cfg = T2ITrainConfig(**{k: v for k, v in vars(args).items() if k != "export"})
    trainer = T2ITrainer(cfg)
    if args.export:
        if not trainer.load_checkpoint():
            raise SystemExit(f"no checkpoint in {cfg.run_dir}; train first")
        print(f"exported step {trainer.step} to {trainer.export(args.export)}")
        return
    trainer.train()


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
