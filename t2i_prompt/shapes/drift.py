"""Semantic drift of a rewrite, counted: objects the original prompt mentions that the rewrite no longer names.

Sem-DPO (Mohamed et al., arXiv 2507.20133) is about rewrites that raise a reward by drifting away from the user's prompt; the
plainest drift in the shapes world is a rewrite that drops an object ("a red circle left of a blue square" ->
"a red circle"). Objects are counted with the world's grammar (``count_mentioned_objects``: every
"<colour> <shape>" mention times its number word), so the count works for casual and canonical text alike.
"""

from __future__ import annotations

from typing import Sequence

from .grammar import count_mentioned_objects


def object_drop(original: str, rewrite: str) -> int:
    """``max(0, objects mentioned in original - objects named in rewrite)``; 0 when nothing was dropped."""
    return max(0, count_mentioned_objects(original) - count_mentioned_objects(rewrite))


def object_drop_rate(originals: Sequence[str], rewrites: Sequence[str]) -> float:
    """Fraction of rewrites that drop at least one object (the ``object_drop_rate`` column of every evaluation)."""
    if len(originals) != len(rewrites):
        raise ValueError(f"{len(originals)} originals but {len(rewrites)} rewrites; pass one rewrite per original")
    if not originals:
        raise ValueError("no prompts given; object_drop_rate needs at least one (original, rewrite) pair")
    return sum(object_drop(o, r) > 0 for o, r in zip(originals, rewrites)) / len(originals)
