"""Compare trained rewriters on held-out prompts: mean reward of the images of each rewrite (scored against the
ORIGINAL prompt, as during preference collection), mean semantic similarity cos(e(original), e(rewrite)) and, when
the caller can count objects (the shapes world's ``drift.object_drop``), the object-drop rate of the rewrites."""

from __future__ import annotations

import statistics
from typing import Any, Callable, Sequence


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
    from ..rewards.composite import weighted_sum
    from ..rewrite.rewriter import PromptRewriter

    model = PromptRewriter.from_pretrained(rewriter)
    rewrites = [cands[0].text.strip() for cands in model.rewrite(list(prompts), k=1, max_new_tokens=max_new_tokens)]
    # an empty rewrite leaves the prompt unchanged (what a user of the rewriter would then send); counted below
    texts = [text or prompt for text, prompt in zip(rewrites, prompts)]
    metric_values: dict[str, list[float]] = {name: [] for name in rewards}
    for prompt, text in zip(prompts, texts):
        images = [render_fn(text, seed) for seed in seeds]
        for name, reward in rewards.items():
            metric_values[name] += [float(v) for v in reward.score([prompt] * len(images), images).tolist()]
    similarity = [float(s) for s in similarity_fn(list(prompts), texts).tolist()]
    result = {name: statistics.fmean(values) for name, values in metric_values.items()}
    result["reward"] = float(weighted_sum(result, dict(zip(rewards, weights))))
    result["similarity"] = statistics.fmean(similarity)
    result["empty_rewrites"] = sum(not text for text in rewrites)
    if object_drop_fn is not None:
        result["object_drop_rate"] = statistics.fmean(object_drop_fn(p, t) > 0 for p, t in zip(prompts, texts))
    result["examples"] = [{"prompt": p, "rewrite": t} for p, t in list(zip(prompts, texts))[:5]]
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
