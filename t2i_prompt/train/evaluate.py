"""Compare trained rewriters on held-out prompts: the reward of the images of each rewrite (scored against the
ORIGINAL prompt, as during preference collection), semantic similarity cos(e(original), e(rewrite)), the object-drop
rate when the caller can count objects (the shapes world's ``drift.object_drop``) and any faithfulness checks of the
caller (e.g. the shapes detector against the original's scene).

``evaluate_rewriter_items`` gives one row per (prompt, image seed); ``summarize_items`` turns rows into means with
95 % percentile-bootstrap intervals over those rows (Efron & Tibshirani 1993, ch. 13); ``evaluate_rewriter`` is the
one-dict summary.
"""

from __future__ import annotations

import statistics
from typing import Any, Callable, Sequence

# (original prompt, rewrite, image) -> a number, a bool or None (None = not applicable, left out of the mean)
FaithfulnessFn = Callable[[str, str, Any], Any]
BOOTSTRAP_RESAMPLES = 2000


def rewrite_prompts(rewriter, prompts: Sequence[str], max_new_tokens: int = 48) -> tuple[list[str], list[str]]:
    """(texts sent to the T2I model, raw rewrites) with the rewriter's default decoding (beam search, first beam).

    An empty rewrite leaves the prompt unchanged (what a user of the rewriter would then send); ``raw`` keeps it
    empty so that it can be counted.
    """
    from ..rewrite.rewriter import PromptRewriter

    model = rewriter if hasattr(rewriter, "rewrite") else PromptRewriter.from_pretrained(rewriter)
    raw = [cands[0].text.strip() for cands in model.rewrite(list(prompts), k=1, max_new_tokens=max_new_tokens)]
    return [text or prompt for text, prompt in zip(raw, prompts)], raw


def evaluate_rewriter_items(rewriter, prompts: Sequence[str], render_fn: Callable[[str, int], Any],
                            rewards: dict[str, Any], weights: Sequence[float],
                            similarity_fn: Callable[[Sequence[str], Sequence[str]], Any], seeds: Sequence[int] = (0,),
                            max_new_tokens: int = 48, faithfulness: dict[str, FaithfulnessFn] | None = None
                            ) -> list[dict[str, Any]]:
    """One row per (prompt, seed): ``prompt``, ``rewrite``, ``empty``, ``seed``, each reward metric, ``reward``
    (the weighted composite), ``similarity`` (per prompt, repeated on its rows) and one key per ``faithfulness``
    check. Rewards and checks always see the ORIGINAL prompt."""
    from ..rewards.composite import weighted_sum

    texts, raw = rewrite_prompts(rewriter, prompts, max_new_tokens)
    similarity = similarity_fn(list(prompts), texts)
    similarity = [float(s) for s in (similarity.tolist() if hasattr(similarity, "tolist") else similarity)]
    rows = []
    for prompt, text, rewrite, sim in zip(prompts, texts, raw, similarity):
        images = [render_fn(text, seed) for seed in seeds]
        scores = {name: [float(v) for v in reward.score([prompt] * len(images), images).tolist()]
                  for name, reward in rewards.items()}
        for j, (seed, image) in enumerate(zip(seeds, images)):
            row = {"prompt": prompt, "rewrite": text, "empty": not rewrite, "seed": seed}
            row.update({name: values[j] for name, values in scores.items()})
            row["reward"] = float(weighted_sum({n: row[n] for n in rewards}, dict(zip(rewards, weights))))
            row["similarity"] = sim
            for name, check in (faithfulness or {}).items():
                value = check(prompt, text, image)
                row[name] = None if value is None else float(value)
            rows.append(row)
    return rows


def bootstrap_interval(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
                       ) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean: resample ``values`` with replacement ``resamples`` times,
    take the 2.5th and 97.5th percentiles of the resampled means (Efron & Tibshirani 1993, Eq. 13.5)."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("bootstrap_interval got no values; evaluate at least one prompt x image.")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarize_items(rows: Sequence[dict[str, Any]], metrics: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """``{metric: {"mean", "ci95": [low, high], "n"}}`` over ``rows`` (``None`` values left out)."""
    summary = {}
    for metric in metrics:
        values = [float(r[metric]) for r in rows if r.get(metric) is not None]
        if not values:
            summary[metric] = {"mean": None, "ci95": [None, None], "n": 0}
            continue
        summary[metric] = {"mean": statistics.fmean(values), "ci95": list(bootstrap_interval(values, seed=seed)),
                           "n": len(values)}
    return summary


def evaluate_rewriter(rewriter: str, prompts: Sequence[str], render_fn: Callable[[str, int], Any],
                      rewards: dict[str, Any], weights: Sequence[float],
                      similarity_fn: Callable[[Sequence[str], Sequence[str]], Any], seeds: Sequence[int] = (0,),
                      max_new_tokens: int = 48,
                      object_drop_fn: Callable[[str, str], int] | None = None) -> dict[str, Any]:
    """Rewrite every prompt once (the rewriter's default decoding), render ``seeds``, score, embed.

    Returns ``{"reward", "<metric>"..., "similarity", "empty_rewrites", "examples"}`` (means over prompts x seeds
    / prompts; ``empty_rewrites`` counts prompts whose rewrite was empty and which were used unchanged), plus
    ``"object_drop_rate"`` (fraction of rewrites with ``object_drop_fn(original, rewrite) > 0``, i.e. drift) when
    ``object_drop_fn`` is given.
    """
    rows = evaluate_rewriter_items(rewriter, prompts, render_fn, rewards, weights, similarity_fn, seeds,
                                   max_new_tokens)
    result = {name: statistics.fmean(r[name] for r in rows) for name in rewards}
    result["reward"] = statistics.fmean(r["reward"] for r in rows)
    first = rows[:: len(seeds)]  # one row per prompt
    result["similarity"] = statistics.fmean(r["similarity"] for r in first)
    result["empty_rewrites"] = sum(r["empty"] for r in first)
    result["examples"] = [{"prompt": r["prompt"], "rewrite": r["rewrite"]} for r in first[:5]]
    if object_drop_fn is not None:
        result["object_drop_rate"] = statistics.fmean(object_drop_fn(r["prompt"], r["rewrite"]) > 0 for r in first)
    return result


def results_table(results: dict[str, dict[str, Any]], metrics: Sequence[str]) -> str:
    """Markdown table, one row per rewriter: reward, each metric, similarity (and object_drop_rate when measured)."""
    drift = all("object_drop_rate" in r for r in results.values()) and bool(results)
    header = ["rewriter", "mean reward", *[f"mean {m}" for m in metrics], "mean similarity to original",
              "empty rewrites", *(["object_drop_rate"] if drift else [])]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for name, r in results.items():
        cells = [name, f"{r['reward']:.4f}", *[f"{r[m]:.4f}" for m in metrics], f"{r['similarity']:.4f}",
                 str(r["empty_rewrites"]), *([f"{r['object_drop_rate']:.4f}"] if drift else [])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
