"""The DPO / Sem-DPO training grid of a rewriter experiment: which runs (method x alpha x training seed), where
each one writes, and how their held-out rows become one table and one reward-vs-similarity plot.

Sem-DPO's claim (Mohamed et al., arXiv 2507.20133) is a frontier claim: at comparable reward, the Sem-DPO policy
stays closer to the original prompt than DPO's. So every method is summarised by its pooled mean over all training
seeds (95 % bootstrap over prompts x images x seeds) plus the spread of the per-seed means, and plotted as one point
with both intervals in the (similarity, reward) plane.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .evaluate import summarize_items


@dataclass(frozen=True)
class GridRun:
    """One training run: ``loss`` ``dpo`` or ``semdpo`` (with ``alpha``), trained with ``seed``."""

    loss: str
    alpha: float | None
    seed: int

    @property
    def method(self) -> str:
        return "DPO" if self.loss == "dpo" else f"Sem-DPO a={self.alpha:g}"

    @property
    def dirname(self) -> str:
        """Output folder relative to the experiment (``dpo/seed0``, ``semdpo_a0.5/seed1``)."""
        group = "dpo" if self.loss == "dpo" else f"semdpo_a{self.alpha:g}"
        return f"{group}/seed{self.seed}"


def training_grid(alphas: Sequence[float], seeds: Sequence[int]) -> list[GridRun]:
    """DPO for every seed, then Sem-DPO for every alpha and seed (in that order)."""
    if not seeds:
        raise ValueError("train_seeds is empty; give at least one training seed, e.g. --train_seeds 0 1 2.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"train_seeds {list(seeds)} has duplicates; give each seed once.")
    if len(set(alphas)) != len(alphas):
        raise ValueError(f"semdpo_alpha {list(alphas)} has duplicates; give each alpha once.")
    bad = [a for a in alphas if not a > 0]
    if bad:
        raise ValueError(f"semdpo_alpha {bad} must be > 0 (alpha 0 is exactly DPO, which the grid always runs).")
    return ([GridRun("dpo", None, s) for s in seeds]
            + [GridRun("semdpo", float(a), s) for a in alphas for s in seeds])


def summarize_grid(rows_by_run: dict[tuple[str, int], list[dict[str, Any]]], metrics: Sequence[str]
                   ) -> dict[str, dict[str, Any]]:
    """Per method (in first-seen order): ``pooled`` (``summarize_items`` over every seed's rows), ``per_seed``
    (``{seed: {metric: mean}}``), ``seed_range`` (``{metric: [min, max]}`` of the per-seed means) and ``n_seeds``.

    ``rows_by_run`` maps (method, training seed) to that run's held-out rows.
    """
    methods: dict[str, dict[int, list[dict]]] = {}
    for (method, seed), rows in rows_by_run.items():
        methods.setdefault(method, {})[seed] = rows
    summary = {}
    for method, runs in methods.items():
        pooled = summarize_items([r for rows in runs.values() for r in rows], metrics)
        per_seed = {seed: {m: _mean([r.get(m) for r in rows]) for m in metrics} for seed, rows in runs.items()}
        seed_range = {m: [min(v) if v else None, max(v) if v else None]
                      for m in metrics for v in [[s[m] for s in per_seed.values() if s[m] is not None]]}
        summary[method] = {"pooled": pooled, "per_seed": per_seed, "seed_range": seed_range, "n_seeds": len(runs)}
    return summary


def paired_difference(rows_by_run: dict[tuple[str, int], list[dict[str, Any]]], method: str, reference: str,
                      metric: str, seed: int = 0) -> dict[str, Any] | None:
    """``method`` minus ``reference`` on ``metric``, paired by held-out item (prompt, image seed): each side is first
    averaged over its training seeds, then the mean difference gets a 95 % paired bootstrap interval over items
    (``t2i_prompt.evaluate.report.paired_bootstrap``). ``None`` when the two share no item with a value."""
    from ..evaluate.report import paired_bootstrap

    def per_item(name):
        values: dict[tuple, list[float]] = {}
        for (m, _), rows in rows_by_run.items():
            if m == name:
                for r in rows:
                    if r.get(metric) is not None:
                        values.setdefault((r["prompt"], r["seed"]), []).append(float(r[metric]))
        return {k: statistics.fmean(v) for k, v in values.items()}

    a, b = per_item(reference), per_item(method)
    items = [k for k in a if k in b]
    if not items:
        return None
    diff, low, high = paired_bootstrap([a[k] for k in items], [b[k] for k in items], seed=seed)
    return {"diff": diff, "ci95": [low, high], "n": len(items)}


def difference_table(rows_by_run, pairs: Sequence[tuple[str, str]], metrics: Sequence[str],
                     labels: dict[str, str] | None = None) -> str:
    """Markdown: one row per (method, reference) pair, ``diff [low, high]`` per metric (``paired_difference``)."""
    labels = labels or {}
    header = ["comparison", *[labels.get(m, m) for m in metrics]]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for method, reference in pairs:
        cells = [f"{method} - {reference}"]
        for m in metrics:
            d = paired_difference(rows_by_run, method, reference, m)
            cells.append("n/a" if d is None else f"{d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None]
    return statistics.fmean(values) if values else None


def grid_table(summary: dict[str, dict[str, Any]], metrics: Sequence[str], labels: dict[str, str] | None = None
               ) -> str:
    """Markdown: one row per method, ``mean [low, high]`` per metric, then the per-seed range of each metric."""
    labels = labels or {}
    header = ["rewriter", "seeds", *[labels.get(m, m) for m in metrics], "per-seed range"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for method, s in summary.items():
        cells = [method, str(s["n_seeds"])]
        for m in metrics:
            p = s["pooled"][m]
            cells.append("n/a" if p["mean"] is None else f"{p['mean']:.3f} [{p['ci95'][0]:.3f}, {p['ci95'][1]:.3f}]")
        spread = "; ".join(f"{labels.get(m, m)} {lo:.3f}-{hi:.3f}" for m in metrics
                           for lo, hi in [s["seed_range"][m]] if lo is not None) if s["n_seeds"] > 1 else "-"
        lines.append("| " + " | ".join([*cells, spread]) + " |")
    return "\n".join(lines) + "\n"


def frontier_plot(summary: dict[str, dict[str, Any]], path: str | Path, x: str = "similarity", y: str = "reward",
                  title: str = "reward vs similarity to the original (95 % bootstrap intervals)", size=(720, 520)
                  ) -> Path:
    """PNG scatter of every method's pooled (x, y) mean with both 95 % intervals as error bars, its per-seed means
    as small dots, and a label; drawn with PIL (no plotting dependency). Written atomically."""
    from PIL import Image, ImageDraw

    from ..utils import atomic_save_image

    points = {m: s for m, s in summary.items() if s["pooled"][x]["mean"] is not None
              and s["pooled"][y]["mean"] is not None}
    if not points:
        raise ValueError(f"frontier_plot: no method has both {x!r} and {y!r}; evaluate the rewriters first.")
    values_x = [v for s in points.values() for v in (*s["pooled"][x]["ci95"], *(p[x] for p in s["per_seed"].values()))]
    values_y = [v for s in points.values() for v in (*s["pooled"][y]["ci95"], *(p[y] for p in s["per_seed"].values()))]
    (x_lo, x_hi), (y_lo, y_hi) = _padded(values_x), _padded(values_y)
    width, height = size
    left, right, top, bottom = 70, width - 20, 40, height - 50
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)

    def to_px(vx, vy):
        return (left + (vx - x_lo) / (x_hi - x_lo) * (right - left),
                bottom - (vy - y_lo) / (y_hi - y_lo) * (bottom - top))

    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text((left, 12), title, fill="black")
    for i in range(5):  # ticks
        vx, vy = x_lo + i * (x_hi - x_lo) / 4, y_lo + i * (y_hi - y_lo) / 4
        px, _ = to_px(vx, y_lo)
        _, py = to_px(x_lo, vy)
        draw.line([(px, bottom), (px, bottom + 4)], fill="black")
        draw.text((px - 14, bottom + 8), f"{vx:.3f}", fill="black")
        draw.line([(left - 4, py), (left, py)], fill="black")
        draw.text((8, py - 6), f"{vy:.3f}", fill="black")
    draw.text(((left + right) // 2 - 60, height - 22), f"{x} (higher = more faithful to the original)", fill="black")
    draw.text((8, top - 16), y, fill="black")
    colors = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75),
              (227, 119, 194), (127, 127, 127)]
    for i, (method, s) in enumerate(points.items()):
        color = colors[i % len(colors)]
        mx, my = s["pooled"][x]["mean"], s["pooled"][y]["mean"]
        (cx0, cx1), (cy0, cy1) = s["pooled"][x]["ci95"], s["pooled"][y]["ci95"]
        px, py = to_px(mx, my)
        draw.line([to_px(cx0, my), to_px(cx1, my)], fill=color, width=2)
        draw.line([to_px(mx, cy0), to_px(mx, cy1)], fill=color, width=2)
        for p in s["per_seed"].values():
            sx, sy = to_px(p[x], p[y])
            draw.ellipse([sx - 2, sy - 2, sx + 2, sy + 2], outline=color)
        draw.ellipse([px - 5, py - 5, px + 5, py + 5], fill=color)
        draw.text((px + 7, py - 14 - 10 * (i % 2)), method, fill=color)
    return atomic_save_image(image, path)


def _padded(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or max(abs(lo) * 0.05, 1e-3)
    return lo - pad, hi + pad
