"""Sem-DPO vs DPO training-step time, measured in one run: steps are interleaved (DPO, Sem-DPO, DPO, ...) on the
same batch so machine load hits both alike; the ratio of the medians is printed (goal <= 1.02).

    python benchmarks/train.py                      # tiny:gpt2, 40 interleaved steps each
    python benchmarks/train.py --model tiny:chat --steps 60 --batch_size 8

Each step is policy forward, reference forward, loss (with its logged metrics) and backward; the optimizer update
is left out (the same for both). Sem-DPO's weights are
precomputed once before training (not part of the step), as in the paper.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from t2i_prompt.cli.boundary import OneLineParser


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny:gpt2", help="Policy model name (tiny:gpt2, a local dir, ...).")
    parser.add_argument("--steps", type=int, default=40, help="Timed steps per trainer (after 3 warm-up steps).")
    parser.add_argument("--batch_size", type=int, default=8, help="Pairs per step.")
    parser.add_argument("--use_lora", action="store_true", help="LoRA (reference = adapters disabled).")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: unchanged).")
    return parser


def build_trainers(model: str, batch_size: int, use_lora: bool, out_dir: str):
    import datasets
    import torch

    from t2i_prompt.models.tiny import tiny_corpus
    from t2i_prompt.train.config import DPOTrainConfig
    from t2i_prompt.train.data import to_preference_dataset
    from t2i_prompt.train.dpo import build_dpo_trainer

    corpus = tiny_corpus()
    rows = [{"prompt": corpus[i], "chosen": corpus[i + 1], "rejected": corpus[i].upper()}
            for i in range(0, 2 * batch_size, 2)]
    trainers = {}
    for loss in ("dpo", "semdpo"):
        config = DPOTrainConfig(model_name_or_path=model, output_dir=f"{out_dir}/{loss}", loss=loss, semdpo_alpha=1.0,
                                per_device_train_batch_size=batch_size, max_steps=1, report_to="none",
                                save_strategy="no", disable_tqdm=True, use_lora=use_lora)
        dataset = to_preference_dataset(datasets.Dataset.from_list(rows), config)
        fixed_similarity = lambda a, b: torch.full((len(a),), 0.8)  # noqa: E731
        trainer, _ = build_dpo_trainer(config, dataset, similarity_fn=fixed_similarity)
        batch = next(iter(trainer.get_train_dataloader()))
        trainers[loss] = (trainer, batch)
    return trainers


def time_step(trainer, batch) -> float:
    """One step without the optimizer update (identical for both): forward, reference forward, loss, backward."""
    trainer.model.train()
    start = time.perf_counter()
    loss = trainer.compute_loss(trainer.model, dict(batch))
    loss.backward()
    elapsed = time.perf_counter() - start
    trainer.model.zero_grad(set_to_none=True)
    return elapsed


def main(args: argparse.Namespace) -> dict[str, float]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as out_dir:
        trainers = build_trainers(args.model, args.batch_size, args.use_lora, out_dir)
        times = {"dpo": [], "semdpo": []}
        for i in range(args.steps + 3):
            order = ("dpo", "semdpo") if i % 2 == 0 else ("semdpo", "dpo")  # alternate who goes first
            for loss in order:
                elapsed = time_step(*trainers[loss])
                if i >= 3:  # warm-up
                    times[loss].append(elapsed)
    dpo, semdpo = statistics.median(times["dpo"]), statistics.median(times["semdpo"])
    result = {"dpo_ms": 1e3 * dpo, "semdpo_ms": 1e3 * semdpo, "ratio": semdpo / dpo}
    print(f"model {args.model}, batch {args.batch_size} pairs, {args.steps} interleaved steps each, "
          f"{'LoRA' if args.use_lora else 'full'}")
    print(f"median step: DPO {result['dpo_ms']:.2f} ms, Sem-DPO {result['semdpo_ms']:.2f} ms")
    print(f"Sem-DPO / DPO step-time ratio: {result['ratio']:.3f} (goal <= 1.02)")
    return result


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
