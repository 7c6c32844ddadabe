"""Score ``<run>/<category>/samples/`` (whoever made the images) and write the official ``vqa_result.json`` files.

Each image's score is cached under ``<run>/.cache/scores/`` keyed by the metric, the evaluator's weights
fingerprint, the rules version, the prompt parser, the prompt and the image file's content: a rerun, a resumed
run or another process never scores an image twice, and a replaced image is scored again. After a barrier, rank 0
writes ``[{"question_id": <6-digit index>, "answer": score}]`` per metric into the official folders and
``details.jsonl`` with what each score came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import ContentCache, cache_key, fingerprint_path
from . import categories, layout, metrics, parsing, rules, shard

SCORE_CHUNK = 64  # images handed to a metric at once (the backend batches inside)


@dataclass
class ScoreJob:
    run_dir: Path
    backend: object
    prompt_set: str | Path = "compbench"  # complex weighting lists and numeracy nouns come from here
    progress: bool = True
    counts: dict = field(default_factory=lambda: {"scored": 0, "reused": 0})

    @property
    def cache(self) -> ContentCache:
        return ContentCache(self.run_dir / ".cache")


def needed_parts(names: list[str]) -> tuple[str, ...]:
    """Backend models the categories need (to check they exist before any loads)."""
    parts = []
    for name in names:
        metric = categories.CATEGORIES[name].metric
        ms = ("bvqa", "spatial_2d", "clip_complex") if metric == "three_in_one" else (metric,)
        for m in ms:
            parts += [p for p in metrics.METRICS[m][1] if p not in parts]
    return tuple(parts)


def _metric_scores(job: ScoreJob, metric: str, samples: list[layout.Sample]) -> list[dict]:
    """Per-sample results of one metric: cached ones read, this process's share of the rest computed."""
    from tqdm.auto import tqdm

    fn, parts = metrics.METRICS[metric]
    model_id = cache_key(*[job.backend.fingerprint(p) for p in parts])
    keys = [cache_key("compbench-score", metric, model_id, rules.RULES_VERSION, parsing.parser_name(), s.prompt,
                      fingerprint_path(s.path)) for s in samples]
    todo = [(s, k) for n, (s, k) in enumerate(zip(samples, keys))
            if shard.mine(n) and job.cache.load_json("scores", k) is None]
    job.counts["reused"] += sum(shard.mine(n) for n in range(len(samples))) - len(todo)
    vocabulary = categories.object_vocabulary(job.prompt_set) if metric == "numeracy" else None
    chunks = [todo[i : i + SCORE_CHUNK] for i in range(0, len(todo), SCORE_CHUNK)]
    for chunk in tqdm(chunks, desc=f"score {metric}", unit="batch", disable=not job.progress or not chunks):
        images = [layout.load_image(s.path) for s, _ in chunk]
        prompts = [s.prompt for s, _ in chunk]
        results = fn(job.backend, prompts, images, vocabulary) if vocabulary is not None else \
            fn(job.backend, prompts, images)
        for (_, key), result in zip(chunk, results):
            job.cache.save_json("scores", key, result)
            job.counts["scored"] += 1
    shard.barrier()
    return [job.cache.load_json("scores", k) for k in keys]


def _write_results(folder: Path, samples: list[layout.Sample], results: list[dict]) -> None:
    from ..utils import atomic_write_text

    if not shard.is_main():
        return
    answers = [{"question_id": s.index, "answer": r["score"]} for s, r in zip(samples, results)]
    atomic_write_text(folder / layout.RESULT_FILE, json.dumps(answers) + "\n")
    details = [{"question_id": s.index, "prompt": s.prompt, "file": s.path.name, **r} for s, r in zip(samples, results)]
    atomic_write_text(folder / "details.jsonl", "".join(json.dumps(d, sort_keys=True) + "\n" for d in details))
    mean = sum(r["score"] for r in results) / len(results)
    atomic_write_text(folder / "score.txt", f"{mean:.6f}\n")


def score_category(job: ScoreJob, name: str) -> dict:
    """Score one category; returns ``{"score", "n_images", "per_image": [{question_id, prompt, score}]}``."""
    category = categories.CATEGORIES[name]
    cat_dir = job.run_dir / name
    samples = layout.read_samples(cat_dir)
    if category.metric == "three_in_one":
        kinds = categories.complex_kinds(job.prompt_set)
        parts = {}
        for metric, folder in (("bvqa", "annotation_blip"), ("spatial_2d", "labels/annotation_obj_detection_2d"),
                               ("clip_complex", "annotation_clip")):
            parts[metric] = _metric_scores(job, metric, samples)
            _write_results(cat_dir / folder, samples, parts[metric])
        results = []
        for n, s in enumerate(samples):
            kind = kinds.get(categories.normalise_complex(s.prompt), "spatialaction")
            b, sp, c = (parts[m][n]["score"] for m in ("bvqa", "spatial_2d", "clip_complex"))
            results.append({"score": rules.three_in_one(kind, b, sp, c), "kind": kind, "bvqa": b, "spatial_2d": sp,
                            "clip": c})
    else:
        results = _metric_scores(job, category.metric, samples)
    _write_results(cat_dir / category.folder, samples, results)
    per_image = [{"question_id": s.index, "prompt": s.prompt, "score": r["score"]} for s, r in zip(samples, results)]
    return {"score": sum(r["score"] for r in results) / len(results), "n_images": len(results),
            "per_image": per_image}
