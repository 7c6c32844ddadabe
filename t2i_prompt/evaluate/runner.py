"""CompBench runs end to end: a generation plan from settings, then generate -> score -> summary for categories.

Everything a user can get wrong (categories, prompt folder and files, prompts with ``_``, mixed settings, missing
evaluator models) is checked before the T2I model or any evaluator loads.
"""

from __future__ import annotations

from pathlib import Path

from . import categories, generation, report, scoring, shard


def default_categories(prompt_set) -> list[str]:
    return list(categories.SHAPES_CATEGORIES) if str(prompt_set) == "shapes" else list(categories.CATEGORIES)


def make_plan(out: str | Path, model: str | None = None, images_per_prompt: int = 10, preset: str | None = None,
              steps: int | None = None, guidance: float | None = None, height: int | None = None,
              width: int | None = None, device=None, dtype=None, batch_size: int = 10, rewriter: str | None = None,
              decoding: dict | None = None, hook_spec=None, progress: bool = True) -> generation.GenerationPlan:
    """A plan whose settings key hashes the model's weights, sampling settings, rewriter and hooks."""
    from ..cache import fingerprint
    from ..models.loading import resolve_model_path

    if preset and preset not in generation.PRESETS:
        raise ValueError(f"unknown --preset {preset!r}; choose one of {', '.join(generation.PRESETS)}.")
    chosen = dict(generation.PRESETS[preset]) if preset else {}
    model = model or chosen.get("model")
    settings = {"num_inference_steps": steps if steps is not None else chosen.get("num_inference_steps"),
                "guidance_scale": guidance if guidance is not None else chosen.get("guidance_scale"),
                "height": height, "width": width}
    scheduler = chosen.get("scheduler")
    decoding = dict(decoding or {})
    identity = {"model": fingerprint(resolve_model_path(model)), "settings": settings, "scheduler": scheduler,
                "dtype": dtype, "rewriter": None, "hooks": None}
    if rewriter is not None:
        identity["rewriter"] = {"weights": fingerprint(resolve_model_path(rewriter)), "decoding": decoding}
    if hook_spec is not None and hook_spec.active:
        identity["hooks"] = hook_spec.to_dict()
    else:
        hook_spec = None

    def make_generator():
        from ..generate import ImageGenerator

        gen = ImageGenerator(model, device=device, dtype=dtype, batch_size=batch_size, progress=False)
        if scheduler and type(gen.pipeline.scheduler).__name__ != scheduler:
            import diffusers

            gen.pipeline.scheduler = getattr(diffusers, scheduler).from_config(gen.pipeline.scheduler.config)
        return gen

    def make_rewriter():
        from ..rewrite import PromptRewriter

        options = {k: v for k, v in decoding.items() if k != "system_prompt"}
        return PromptRewriter.from_pretrained(rewriter, system_prompt=decoding.get("system_prompt"),
                                              device=device), options

    return generation.GenerationPlan(Path(out), images_per_prompt, make_generator, settings, identity,
                                     make_rewriter if rewriter is not None else None, hook_spec, progress)


def generate(plan: generation.GenerationPlan, names: list[str], prompt_set) -> dict:
    """Generate every category (prompt lists and prompts checked for all categories first)."""
    lists = {n: categories.category_prompts(prompt_set, n) for n in names}
    for n, prompts in lists.items():
        generation.check_existing(plan, n, generation.expected_names(prompts, plan.images_per_prompt))
    for n, prompts in lists.items():
        generation.generate_category(plan, n, prompts)
    return dict(plan.counts, unplanned_prompts=sorted(set(plan.unplanned)))


def score(run_dir: str | Path, names: list[str], backend, prompt_set="compbench", progress: bool = True) -> dict:
    """Score categories of a run and write ``summary.*``; returns the summary (plus the cache counts)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"--run {run}: no such folder (it should hold <category>/samples/).")
    from . import layout

    for n in names:  # layout errors and unreadable images before any model loads
        for sample in layout.read_samples(run / n):
            layout.check_image(sample.path)
    if any(categories.CATEGORIES[n].metric == "three_in_one" for n in names):
        categories.complex_kinds(prompt_set)
    if "numeracy" in names:
        categories.object_vocabulary(prompt_set)
    job = scoring.ScoreJob(run, backend, prompt_set, progress)
    scores = {n: scoring.score_category(job, n) for n in names}
    summary = None
    if shard.is_main():
        from .parsing import parser_name
        from .rules import RULES_VERSION

        summary = report.write_summary(run, scores, backend.tier(), {
            "models": backend.models(), "noun_parser": parser_name(), "rules_version": RULES_VERSION,
            "code": "T2I-CompBench(++) current scripts (np_num 8, chunk filtering; commit 1b70949)",
            "prompt_set": str(prompt_set)})
    shard.barrier()
    return {"summary": summary, "counts": job.counts, "scores": {n: s["score"] for n, s in scores.items()}}
