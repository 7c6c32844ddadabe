"""Rewrite a prompt, generate the original and the rewrite with the same seeds, score both against the original.

``compare_rewrite`` computes and returns a ``CompareResult`` (PIL images, scores, candidates, settings) and writes
nothing; ``save_comparison`` writes its PNGs, grid and ``result.json``. Scores: CLIP score of every image against
the *original* prompt (the user's intent, as in Promptist's relevance term), the aesthetic/quality predictor, and
for the refined images the Promptist reward ``min(20 cos - 5.6, 0) + aes(y) - mean aes(x)`` (Hao et al. 2023) with
the original images as the baseline. On the shapes world the exact detector's verdict against the original
prompt's scene is added.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from .inputs import is_shapes

RESULT_FILE = "result.json"
GRID_FILE = "grid.png"
SUMMARY_FILE = "summary.json"
DEFAULT_SEEDS = (0, 1)  # Promptist scores 2 images per prompt
WHICH = ("original", "refined")


@dataclass
class CompareResult:
    """One prompt's comparison. ``images[w]`` / ``scores[w][metric]`` are per seed for ``w`` in original/refined;
    ``scores["mean"][w]`` the means; ``detector[w]`` the shapes world's exact verdicts (None elsewhere)."""

    original: str
    refined: str
    candidates: list[dict]
    seeds: list[int]
    images: dict[str, list]
    scores: dict[str, dict]
    settings: dict[str, Any]
    detector: dict[str, list[dict] | None] | None = None
    records: dict[str, list[dict]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Everything but the images, JSON-ready (the content of ``result.json``)."""
        out = {"original": self.original, "refined": self.refined, "candidates": self.candidates,
               "seeds": self.seeds, "settings": self.settings, "scores": self.scores}
        if self.detector is not None:
            out["detector"] = self.detector
        return out


@dataclass
class Scorers:
    """CLIP score, aesthetic predictor (or None) and Promptist reward sharing one CLIP embedder."""

    clip: Any
    aesthetic: Any
    promptist: Any
    clip_name: str
    aesthetic_name: str | None
    notes: list[str]

    @classmethod
    def for_model(cls, t2i_model: str | None, clip: str | None = None, quality: str | None = None, device=None):
        """Scorers that fit ``t2i_model`` (``rewards.registry.default_models``) unless ``clip``/``quality`` are given;
        a default predictor that is missing is skipped with a note, a requested one is an error."""
        from ..models.loading import ModelNotFoundError
        from ..rewards import PromptistReward
        from ..rewards.registry import build_reward, default_models

        defaults = default_models(t2i_model)
        clip_name = clip or defaults["clip"]
        quality_name = quality or (defaults["aesthetic"] if clip is None else None)
        clip_score = build_reward("clip", clip_name, device=device)
        notes, aesthetic = [], None
        if quality_name is None:
            notes.append(f"aesthetic score skipped: no predictor paired with CLIP {clip_name!r}; pass quality=...")
        else:
            try:
                aesthetic = build_reward("aesthetic", quality_name, device=device, clip=clip_score.clip)
            except (ModelNotFoundError, FileNotFoundError) as e:
                if quality is not None:
                    raise
                notes.append(f"aesthetic score skipped: {e}")
                warnings.warn(notes[-1], stacklevel=3)
        promptist = PromptistReward(clip_score, aesthetic) if aesthetic is not None else None
        return cls(clip_score, aesthetic, promptist, clip_name, quality_name if aesthetic else None, notes)

    def score_pair(self, prompt: str, orig_images: Sequence, ref_images: Sequence) -> dict:
        """Per-seed and mean scores of both image sets; the text is always the original prompt."""
        per: dict[str, dict] = {w: {} for w in WHICH}
        for which, imgs in zip(WHICH, (orig_images, ref_images)):
            per[which]["clip"] = self.clip.score([prompt] * len(imgs), imgs)
            if self.aesthetic is not None:
                per[which]["aesthetic"] = self.aesthetic.score([prompt] * len(imgs), imgs)
        if self.promptist is not None:
            baseline = [list(orig_images)] * len(ref_images)
            per["refined"]["promptist"] = self.promptist.score([prompt] * len(ref_images), ref_images, baseline)
        out = {which: {k: [round(float(x), 6) for x in v] for k, v in d.items()} for which, d in per.items()}
        out["mean"] = {which: {k: round(float(torch.as_tensor(v).mean()), 6) for k, v in d.items()}
                       for which, d in per.items()}
        return out

    def describe(self) -> dict:
        return {"clip": {"model": self.clip_name, "scale": self.clip.scale, "clamp": self.clip.clamp,
                         "text": "original prompt"},
                "aesthetic": {"model": self.aesthetic_name} if self.aesthetic is not None else None,
                "notes": list(self.notes)}


def compare_rewrites(prompts: Sequence[str], model=None, rewriter=None, seeds: Sequence[int] = DEFAULT_SEEDS,
                     k: int = 4, clip: str | None = None, quality: str | None = None,
                     num_inference_steps: int | None = None, guidance_scale: float | None = None,
                     height: int | None = None, width: int | None = None, negative_prompt: str | None = None,
                     rewrite_kwargs: dict | None = None, device=None, progress: bool = True,
                     scorers: Scorers | None = None, hooks: Sequence = (), pick: int = 0,
                     size_conditioning: dict | None = None) -> list[CompareResult]:
    """Rewrite every prompt (k candidates; candidate ``pick``, the rewriter's best by default, is generated),
    generate original and refined with the same seeds in one batched call, score both against the original.
    ``model``: a T2I name or an ``ImageGenerator``; ``rewriter``: a name or a ``PromptRewriter``; ``scorers`` reuses
    loaded scorers (the app does)."""
    from ..generate import ImageGenerator
    from ..rewrite import PromptRewriter

    prompts = list(prompts)
    if not prompts:
        raise ValueError("give at least one prompt.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompt {i} is empty or whitespace ({p!r}); give a text that describes the image.")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("give at least one seed.")
    rewrite_kwargs = dict(rewrite_kwargs or {})
    decoding = PromptRewriter.decoding_settings(k, **rewrite_kwargs)  # validates before any model loads
    if isinstance(pick, bool) or not isinstance(pick, int) or not 0 <= pick < k:
        raise ValueError(f"pick must be a candidate index in [0, {k - 1}] (k={k}), got {pick!r}.")
    generator = model if isinstance(model, ImageGenerator) else ImageGenerator(model, device=device, progress=progress)
    if not isinstance(rewriter, PromptRewriter):
        rewriter = PromptRewriter.from_pretrained(rewriter, device=device)
    scorers = scorers or Scorers.for_model(generator.model_name, clip, quality, device)

    # 1. rewrite (k candidates; candidate `pick` is generated). A rewriter that fails at run time (out of memory, a
    # broken model) falls back to the original prompt, said in settings["rewrite_error"], as prompt tools do.
    rewrite_error = None
    try:
        candidates = rewriter.rewrite(prompts, k=k, seed=seeds[0], **rewrite_kwargs)
        refined = [c[pick].text for c in candidates]
    except RuntimeError as e:
        rewrite_error = f"{type(e).__name__}: {e}"
        warnings.warn(f"the rewriter failed ({rewrite_error}); generating the original prompt instead", stacklevel=2)
        candidates, refined = [[] for _ in prompts], list(prompts)
    # 2. generate originals and rewrites with the same seeds, in one batched call (prompt-major order)
    output = generator.generate(prompts + refined, seeds, num_inference_steps=num_inference_steps,
                                guidance_scale=guidance_scale, height=height, width=width,
                                negative_prompt=negative_prompt, hooks=hooks, size_conditioning=size_conditioning)
    n = len(seeds)

    def rows(row: int, items: list) -> list:
        return items[row * n:(row + 1) * n]

    # 3. score both against the original prompt
    results = []
    for i, prompt in enumerate(prompts):
        images = {"original": rows(i, output.images), "refined": rows(len(prompts) + i, output.images)}
        records = {"original": rows(i, output.records), "refined": rows(len(prompts) + i, output.records)}
        detector, drift = None, {}
        if is_shapes(generator.model_name):
            from ..shapes.drift import object_drop
            from ..shapes.evaluate import detector_scores

            detector = {w: detector_scores(prompt, images[w]) for w in WHICH}
            drift = {"object_drop": object_drop(prompt, refined[i])}  # objects the rewrite no longer names
        settings = {
            "model": generator.model_name, "rewriter": rewriter.name, "rewrite": decoding, "pick": pick,
            "generation": records["original"][0]["settings"], **scorers.describe(),
            "truncated": {w: records[w][0]["truncated"] for w in WHICH}, "rewrite_error": rewrite_error, **drift,
        }
        results.append(CompareResult(prompt, refined[i], [c.to_dict() for c in candidates[i]], seeds, images,
                                     scorers.score_pair(prompt, images["original"], images["refined"]), settings,
                                     detector, records))
    return results


def compare_rewrite(prompt: str, **kwargs) -> CompareResult:
    """``compare_rewrites`` for one prompt (same keyword arguments)."""
    if not isinstance(prompt, str):
        raise ValueError(f"compare_rewrite takes one prompt string, got {type(prompt).__name__}; "
                         "use compare_rewrites for a list.")
    return compare_rewrites([prompt], **kwargs)[0]


# ------------------------------------------------------------------------------------------------ saving
def _slug(text: str, n: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n] or "prompt"


def save_comparison(result: CompareResult, out_dir: str | os.PathLike) -> dict:
    """Write ``<which>_seed<s>.png``, ``grid.png`` and ``result.json`` (with the file names) into ``out_dir``;
    returns the written JSON."""
    from ..utils import atomic_save_image, atomic_write_json
    from .grid import comparison_grid

    out = Path(out_dir)
    files = {w: [] for w in WHICH}
    for which in WHICH:
        for seed, im in zip(result.seeds, result.images[which]):
            name = f"{which}_seed{seed}.png"
            atomic_save_image(im, out / name)
            files[which].append(name)
    atomic_save_image(comparison_grid(result), out / GRID_FILE)
    data = {**result.to_dict(), "files": {**files, "grid": GRID_FILE}}
    atomic_write_json(out / RESULT_FILE, data)
    return {**data, "out_dir": str(out)}


def _clear_previous_runs(root: Path) -> None:
    """Remove the per-prompt directories a previous ``save_comparisons`` into ``root`` listed in its summary (and the
    summary), so ``root`` never mixes two runs; files it did not write are left alone."""
    import shutil

    summary = root / SUMMARY_FILE
    if not summary.is_file():
        return
    try:
        dirs = [r["dir"] for r in json.loads(summary.read_text()).get("runs", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    for name in dirs:
        if isinstance(name, str) and "/" not in name and name not in ("", ".", "..") and (root / name).is_dir():
            shutil.rmtree(root / name)
    summary.unlink()


def save_comparisons(results: Sequence[CompareResult], out_dir: str | os.PathLike) -> dict:
    """One result: into ``out_dir``; several: ``out_dir/NNN-<slug>/`` each plus ``summary.json``.
    Returns ``{"out_dir", "runs": [written result.json dicts]}``."""
    from ..utils import atomic_write_json

    root = Path(out_dir)
    _clear_previous_runs(root)
    if len(results) == 1:
        return {"out_dir": str(root), "runs": [save_comparison(results[0], root)]}
    runs = [save_comparison(r, root / f"{i:03d}-{_slug(r.original)}") for i, r in enumerate(results)]
    atomic_write_json(root / SUMMARY_FILE, {
        "out_dir": str(root),
        "runs": [{"original": r["original"], "refined": r["refined"], "dir": Path(r["out_dir"]).name,
                  "mean": r["scores"]["mean"]} for r in runs],
    })
    return {"out_dir": str(root), "runs": runs}
