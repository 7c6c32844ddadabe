"""Prompts split across processes launched by ``torchrun`` or ``accelerate launch`` (RANK / WORLD_SIZE env).

Rank r takes prompts r, r + W, r + 2W, ...; every unit of work lands in the run's content-keyed cache, and after a
barrier rank 0 writes the merged files from that cache, so W processes write exactly what one process writes.
"""

from __future__ import annotations

import os


def rank_and_world() -> tuple[int, int]:
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} WORLD_SIZE={world} is not a valid process layout.")
    return rank, world


def mine(number: int) -> bool:
    rank, world = rank_and_world()
    return number % world == rank


def barrier() -> None:
    """Wait for every process (a gloo process group, created on first use); a no-op for one process."""
    _, world = rank_and_world()
    if world == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def is_main() -> bool:
    return rank_and_world()[0] == 0
