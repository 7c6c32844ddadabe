"""Generate a category's val prompts into the official layout, resumably and sharded.

Image k of prompt i is ``samples/<prompt>_<n*i+k:06d>.png`` from seed 42 + k (its own generator). The *original*
prompt names the file and is what gets scored; a rewriter's text (and hooks built from it) is what the model sees.
Every image's record (both prompts, seed, all settings, the settings key) goes to the run's content cache before
the PNG is written atomically, so after a kill a present PNG always has its record and is never rendered again;
``images.jsonl`` is written from the records once all processes are done. The settings key hashes the model's
weights, the sampling settings, the rewriter's weights and decoding and the hook spec: a folder whose images were
made with other settings is an error, not a silent mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..cache import ContentCache, cache_key
from . import layout, shard

PRESETS = {
    # GORS_finetune/inference_eval.py: SD-2-base, DDIM, 30 steps, default CFG 7.5, fp16.
    "compbench-sd2": {"model": "stabilityai/stable-diffusion-2-base", "scheduler": "DDIMScheduler",
                      "num_inference_steps": 30, "guidance_scale": 7.5},
}


@dataclass
class GenerationPlan:
    """What a generation run needs; ``make_generator()`` and ``make_rewriter()`` load models only when called."""

    run_dir: Path
    images_per_prompt: int
    make_generator: Callable
    settings: dict  # sampling settings passed to ImageGenerator.generate (None = the model's)
    settings_identity: dict  # everything that determines an image besides prompt and seed (hashed)
    make_rewriter: Callable | None = None
    hook_spec: object = None
    progress: bool = True
    counts: dict = field(default_factory=lambda: {"rendered": 0, "reused": 0})
    unplanned: list = field(default_factory=list)

    @property
    def settings_key(self) -> str:
        return cache_key("compbench-generation", self.settings_identity)

    @property
    def cache(self) -> ContentCache:
        return ContentCache(self.run_dir / ".cache")


def _record_key(category: str, name: str) -> str:
    return cache_key("compbench-record", category, name)


def expected_names(prompts: list[str], n: int) -> list[tuple[int, int, str]]:
    """(prompt number, image number, file name) of every image of the category, in index order."""
    for i, p in enumerate(prompts):
        layout.check_prompt(p, f" (line {i + 1})")
    return [(i, k, layout.sample_name(p, layout.sample_index(i, k, n))) for i, p in enumerate(prompts)
            for k in range(n)]


def check_existing(plan: GenerationPlan, category: str, names: list[tuple[int, int, str]]) -> None:
    """Every PNG already in ``samples/`` must be one this run writes, made with this run's settings."""
    folder = plan.run_dir / category / layout.SAMPLES
    if not folder.is_dir():
        return
    wanted = {name for _, _, name in names}
    fix = "use a new --out, or delete the folder to regenerate"
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        if path.name not in wanted:
            raise ValueError(f"{path} is not an image of this run (other prompts or --images-per-prompt); one folder "
                             f"holds one run — {fix}.")
        record = plan.cache.load_json("records", _record_key(category, path.name))
        if record is None or record.get("settings_key") != plan.settings_key:
            raise ValueError(f"{path} was made with other settings than this run (model, sampling, rewriter or "
                             f"hooks differ); mixing runs in one folder would mix their scores — {fix}.")


def _rewrites(plan: GenerationPlan, prompts: list[str]) -> dict[str, str]:
    """Original -> rewritten prompt (first candidate), cached by rewriter identity and prompt."""
    if plan.make_rewriter is None:
        return {p: p for p in prompts}
    identity = plan.settings_identity.get("rewriter")
    out, todo = {}, []
    for p in prompts:
        cached = plan.cache.load_json("rewrites", cache_key("rewrite", identity, p))
        if cached is None:
            todo.append(p)
        else:
            out[p] = cached["text"]
    if todo:
        rewriter, decoding = plan.make_rewriter()
        texts = [cands[0].text for cands in rewriter.rewrite(todo, k=1, **decoding)]
        for p, t in zip(todo, texts):
            plan.cache.save_json("rewrites", cache_key("rewrite", identity, p), {"prompt": p, "text": t})
            out[p] = t
    return out


def _groups(todo: dict[int, list], batched: bool, batch_size: int) -> list[list[int]]:
    """Prompt numbers per pipeline call: one prompt per call with hooks (they are built per prompt), else prompts
    missing the same images packed up to ``batch_size`` images a call. Every image keeps its own seed's generator,
    so grouping changes speed, not pixels beyond float rounding of batched kernels."""
    if not batched:
        return [[i] for i in todo]
    groups: dict[tuple, list[list[int]]] = {}
    for i, jobs in todo.items():
        lanes = groups.setdefault(tuple(k for k, _ in jobs), [[]])
        if lanes[-1] and (len(lanes[-1]) + 1) * len(jobs) > batch_size:
            lanes.append([])
        lanes[-1].append(i)
    return [g for lanes in groups.values() for g in lanes]


def generate_category(plan: GenerationPlan, category: str, prompts: list[str]) -> list[dict]:
    """Render this process's share of the category's missing images; returns every image's record (index order)."""
    from tqdm.auto import tqdm

    from ..utils import atomic_save_image, atomic_write_text

    names = expected_names(prompts, plan.images_per_prompt)
    check_existing(plan, category, names)
    folder = plan.run_dir / category / layout.SAMPLES
    todo: dict[int, list[tuple[int, str]]] = {}
    for i, k, name in names:
        if not shard.mine(i):
            continue
        if (folder / name).is_file():
            plan.counts["reused"] += 1
        else:
            todo.setdefault(i, []).append((k, name))
    if todo:
        texts = _rewrites(plan, [prompts[i] for i in todo])
        generator = plan.make_generator()
        factory = plan.hook_spec.factory(plan.unplanned) if plan.hook_spec is not None else None
        for group in tqdm(_groups(todo, factory is None, generator.batch_size), desc=f"generate {category}",
                          unit="call", disable=not plan.progress):
            group_texts = [texts[prompts[i]] for i in group]
            jobs = todo[group[0]]  # every prompt of a group misses the same images
            seeds = [layout.SEED_BASE + k for k, _ in jobs]
            hooks = factory(group_texts[0]) if factory else ()
            out = generator.generate(group_texts, seeds, hooks=hooks, hook_spec=plan.hook_spec if factory else None,
                                     progress=False, **plan.settings)
            cells = [(i, text, k, name) for i, text in zip(group, group_texts) for k, name in todo[i]]
            for (i, text, k, name), image, rec in zip(cells, out.images, out.records):
                record = {"index": layout.sample_index(i, k, plan.images_per_prompt), "file": name,
                          "prompt": prompts[i], "generated_prompt": text, "seed": rec["seed"], "model": rec["model"],
                          "settings": rec["settings"], "identity": plan.settings_identity,
                          "settings_key": plan.settings_key}
                plan.cache.save_json("records", _record_key(category, name), record)  # record first, then the PNG
                atomic_save_image(image, folder / name)
                plan.counts["rendered"] += 1
    shard.barrier()
    records = []
    for _, _, name in names:
        record = plan.cache.load_json("records", _record_key(category, name))
        if record is None or not (folder / name).is_file():
            raise RuntimeError(f"image {name} of {category} was not generated by any process")
        records.append(record)
    if shard.is_main():
        import json

        atomic_write_text(plan.run_dir / category / layout.IMAGES_LOG,
                          "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))
    return records
