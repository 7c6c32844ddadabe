"""Run summaries (``summary.json``, ``summary.md``, ``summary.png`` bar chart) and paired comparisons of runs.

The category score is the plain mean over its images (the official rule). ``compare`` pairs images by question_id
(= prompt x seed in the official layout) and reports each run's difference from the first run with a paired
bootstrap 95 % interval (resampling the paired images; fixed seed, so a report is reproducible).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import categories, layout

SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG = "summary.json", "summary.md", "summary.png"
BOOTSTRAP_SAMPLES = 2000


def read_results(run_dir: str | Path, name: str) -> dict[int, float]:
    """{question_id: score} of one scored category of a run."""
    path = Path(run_dir) / name / categories.CATEGORIES[name].folder / layout.RESULT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; score the run first (t2i-prompt compbench score --run "
                                f"{run_dir} --categories {name}).")
    return {int(r["question_id"]): float(r["answer"]) for r in json.loads(path.read_text())}


def scored_categories(run_dir: str | Path) -> list[str]:
    run = Path(run_dir)
    return [n for n, c in categories.CATEGORIES.items() if (run / n / c.folder / layout.RESULT_FILE).is_file()]


def generation_settings(run_dir: Path, name: str) -> dict | None:
    """The settings identity of a generated category (first record of images.jsonl), None for foreign images."""
    log = run_dir / name / layout.IMAGES_LOG
    if not log.is_file():
        return None
    first = log.read_text(encoding="utf-8").splitlines()[:1]
    return json.loads(first[0]).get("identity") if first else None


def write_summary(run_dir: str | Path, scores: dict[str, dict], tier: str, extra: dict | None = None) -> dict:
    """``summary.json`` / ``summary.md`` / ``summary.png`` of the scored categories (all on disk, not just now)."""
    from ..utils import atomic_save_image, atomic_write_json, atomic_write_text

    run = Path(run_dir)
    rows = {}
    for name in scored_categories(run):
        results = read_results(run, name)
        rows[name] = {"score": round(float(np.mean(list(results.values()))), 6), "n_images": len(results)}
    for name, s in scores.items():  # this call's categories are always present
        rows.setdefault(name, {"score": round(s["score"], 6), "n_images": s["n_images"]})
    rows = {n: rows[n] for n in categories.CATEGORIES if n in rows}
    summary = {"evaluator": tier, **(extra or {}), "categories": rows,
               "generation": {n: generation_settings(run, n) for n in rows}}
    atomic_write_json(run / SUMMARY_JSON, summary)
    lines = [f"# T2I-CompBench results: {run.name}", "", f"Evaluator: {tier}", "",
             "| category | score | images |", "|---|---|---|"]
    lines += [f"| {n} | {r['score']:.4f} | {r['n_images']} |" for n, r in rows.items()]
    atomic_write_text(run / SUMMARY_MD, "\n".join(lines) + "\n")
    atomic_save_image(bar_chart(rows), run / SUMMARY_PNG)
    return summary


def bar_chart(rows: dict[str, dict], width: int = 640, height: int = 320):
    """A PIL bar chart of the 8 categories (absent ones left empty), scores on a 0-1 axis."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, bottom, top = 40, height - 40, 20
    slot = (width - left - 10) / len(categories.CATEGORIES)
    draw.line([(left, top), (left, bottom), (width - 10, bottom)], fill="black")
    for tick in (0.0, 0.5, 1.0):
        y = bottom - tick * (bottom - top)
        draw.text((5, y - 6), f"{tick:.1f}", fill="black")
    for i, name in enumerate(categories.CATEGORIES):
        x0 = left + i * slot + slot * 0.15
        if name in rows:
            y = bottom - min(1.0, max(0.0, rows[name]["score"])) * (bottom - top)
            draw.rectangle([x0, y, x0 + slot * 0.7, bottom], fill=(70, 110, 200))
            draw.text((x0, y - 14), f"{rows[name]['score']:.3f}", fill="black")
        draw.text((x0, bottom + 8), name, fill="black")
    return image


def paired_bootstrap(a: np.ndarray, b: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0):
    """(mean(b - a), low, high): the 95 % percentile interval of the mean paired difference."""
    diff = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def compare(run_dirs: list[str | Path]) -> dict:
    """Per category scored in every run: each run's mean and, for runs after the first, the paired difference."""
    if len(run_dirs) < 2:
        raise ValueError("compare needs at least two run folders (RUN_A RUN_B ...).")
    common = [n for n in scored_categories(run_dirs[0]) if all(n in scored_categories(r) for r in run_dirs[1:])]
    if not common:
        raise ValueError(f"no category is scored in all of {', '.join(map(str, run_dirs))}; score them first.")
    table = {}
    for name in common:
        base = read_results(run_dirs[0], name)
        row = {"runs": [float(np.mean(list(base.values())))], "differences": []}
        for other in run_dirs[1:]:
            results = read_results(other, name)
            ids = sorted(set(base) & set(results))
            if not ids:
                raise ValueError(f"{name}: {run_dirs[0]} and {other} share no question_id; compare runs of the "
                                 "same prompt list and images per prompt.")
            diff, low, high = paired_bootstrap(np.array([base[i] for i in ids]), np.array([results[i] for i in ids]))
            row["runs"].append(float(np.mean(list(results.values()))))
            row["differences"].append({"diff": diff, "low": low, "high": high, "n_pairs": len(ids)})
        table[name] = row
    return {"runs": [str(r) for r in run_dirs], "categories": table}


def format_comparison(result: dict) -> str:
    runs = result["runs"]
    head = ["category"] + [Path(r).name for r in runs] + [f"{Path(r).name} - {Path(runs[0]).name} [95% CI]"
                                                          for r in runs[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in result["categories"].items():
        cells = [name] + [f"{v:.4f}" for v in row["runs"]]
        cells += [f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]" for d in row["differences"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
