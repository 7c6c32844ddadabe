"""Report of a preference run: how many pairs survived, why the others were dropped, score distributions."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any, Sequence

from .config import PreferenceConfig


def describe(values: Sequence[float]) -> dict[str, float]:
    """count/mean/std/min/quartiles/max of a list of floats."""
    values = sorted(values)
    if not values:
        return {"count": 0}
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return {"count": len(values), "mean": statistics.fmean(values),
            "std": statistics.pstdev(values), "min": values[0], "p25": q[0], "median": q[1], "p75": q[2],
            "max": values[-1]}


def build_report(records, rows, dropped: Counter, config: PreferenceConfig) -> dict[str, Any]:
    candidates = [c for r in records for c in r["candidates"]]
    distributions = {name: describe([c["metrics"][name] for c in candidates]) for name in config.rewards}
    distributions["composite"] = describe([c["score"] for c in candidates])
    distributions["similarity"] = describe([c["similarity"] for c in candidates])
    prompts_with_pairs = len({row["prompt_index"] for row in rows})
    return {
        "prompts": len(records),
        "candidates": len(candidates),
        "strategy": config.strategy,
        "min_gap": config.min_gap,
        "floors": config.floors,
        "pairs_kept": len(rows),
        "prompts_with_pairs": prompts_with_pairs,
        "prompts_without_pairs": len(records) - prompts_with_pairs,
        "dropped": dict(sorted(dropped.items())),
        "score_distributions": distributions,
        "chosen_similarity": describe([row["chosen_similarity"] for row in rows]),
        "rejected_similarity": describe([row["rejected_similarity"] for row in rows]),
    }


def report_markdown(report: dict[str, Any]) -> str:
    lines = ["# Preference data report", "",
             f"- prompts: {report['prompts']}, candidates: {report['candidates']}, strategy: {report['strategy']} "
             f"(min_gap {report['min_gap']}, floors {report['floors'] or 'none'})",
             f"- pairs kept: {report['pairs_kept']} from {report['prompts_with_pairs']} prompts; "
             f"{report['prompts_without_pairs']} prompts gave no pair",
             f"- images rendered this run: {report['images']['rendered_this_run']}, reused from cache: "
             f"{report['images']['reused_from_cache']}", "", "## Dropped", ""]
    lines += [f"- {reason}: {count}" for reason, count in report["dropped"].items()] or ["- nothing"]
    lines += ["", "## Score distributions (per candidate, mean over its images)", "",
              "| metric | n | mean | std | min | median | max |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, d in {**report["score_distributions"], "chosen_similarity": report["chosen_similarity"],
                    "rejected_similarity": report["rejected_similarity"]}.items():
        if d["count"]:
            lines.append(f"| {name} | {d['count']} | {d['mean']:.4f} | {d['std']:.4f} | {d['min']:.4f} | "
                         f"{d['median']:.4f} | {d['max']:.4f} |")
    return "\n".join(lines) + "\n"
