"""Human votes as preference pairs: one row per vote, appended to a JSONL file that ``training/dpo.py`` reads as is.

A row has the columns the preference engine writes to ``pairs.jsonl`` (``prompt``, ``chosen``, ``rejected``, their
scores, ``score_gap``, ``seeds``) plus ``source: "vote"``. The scores are the measured ones (CLIP score against the
original prompt, aesthetic/quality) of the images the voter saw; the vote itself is the label, so ``chosen_score`` /
``rejected_score`` are the CLIP scores, not a made-up margin.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

SIDES = ("original", "refined")
_THREAD_LOCK = threading.Lock()


def vote_row(prompt: str, texts: dict[str, str], preferred: str, seeds: Sequence[int],
             scores: dict[str, dict[str, float]] | None = None, t2i_model: str | None = None,
             rewriter: str | None = None) -> dict[str, Any]:
    """The pair a vote makes: ``texts[preferred]`` chosen over the other side's text, for ``prompt``.

    ``texts``: ``{"original": prompt text, "refined": rewrite}``; ``scores``: per side, the mean metric values of the
    images shown (``{"original": {"clip": .., "aesthetic": ..}, ...}``)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("vote: the prompt is empty; vote on a generated comparison.")
    if preferred not in SIDES:
        raise ValueError(f"vote: preferred must be one of {SIDES}, got {preferred!r}.")
    missing = [s for s in SIDES if not isinstance(texts.get(s), str) or not texts[s].strip()]
    if missing:
        raise ValueError(f"vote: the {' and '.join(missing)} text is empty; generate a comparison before voting.")
    if texts["original"].strip() == texts["refined"].strip():
        raise ValueError("vote: both sides have the same text, so the vote carries no preference; pick another "
                         "candidate or rewrite again.")
    rejected = SIDES[1 - SIDES.index(preferred)]
    scores = scores or {}
    chosen_scores, rejected_scores = dict(scores.get(preferred) or {}), dict(scores.get(rejected) or {})
    row: dict[str, Any] = {"prompt": prompt, "chosen": texts[preferred], "rejected": texts[rejected]}
    chosen_clip, rejected_clip = chosen_scores.get("clip"), rejected_scores.get("clip")
    row["chosen_score"] = None if chosen_clip is None else float(chosen_clip)
    row["rejected_score"] = None if rejected_clip is None else float(rejected_clip)
    row["score_gap"] = (None if chosen_clip is None or rejected_clip is None
                        else float(chosen_clip) - float(rejected_clip))
    for name in sorted(set(chosen_scores) | set(rejected_scores)):
        row[f"chosen_{name}"] = chosen_scores.get(name)
        row[f"rejected_{name}"] = rejected_scores.get(name)
    row.update(seeds=[int(s) for s in seeds], chosen_side=preferred, source="vote", t2i_model=t2i_model,
               policy=rewriter)
    return row


def append_vote(path: str | os.PathLike, row: dict[str, Any]) -> int:
    """Append ``row`` to the JSONL file at ``path``; returns the number of rows now in it.

    The new file is written beside the old one and renamed over it (a crash leaves the old or the new file, never
    half a line), under a thread lock and an ``fcntl`` lock on ``<path>.lock`` (several app processes may vote)."""
    path = Path(path)
    if path.suffix != ".jsonl":
        raise ValueError(f"votes file {path} must end in .jsonl (one JSON object per line, as training/dpo.py reads).")
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..utils import atomic_write_text

    line = json.dumps(row, ensure_ascii=False) + "\n"
    with _THREAD_LOCK, open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            old = path.read_text(encoding="utf-8") if path.is_file() else ""
            if old and not old.endswith("\n"):
                old += "\n"
            atomic_write_text(path, old + line)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return sum(1 for ln in (old + line).splitlines() if ln.strip())
