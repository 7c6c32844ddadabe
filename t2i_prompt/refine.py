"""Rewrite a prompt, generate the original and the rewrite with the same seeds, score both, draw a grid.

``refine_and_compare`` is the library side of ``t2i-prompt run`` (and of the shapes world's ``demo``). Scores:
CLIP score of every image against the *original* prompt (the user's intent, as in Promptist's relevance term),
the aesthetic/quality predictor, and for the refined images the Promptist reward
``min(20 cos - 5.6, 0) + aes(y) - mean aes(x)`` (Hao et al. 2023) with the original images as the baseline.
"""

from __future__ import annotations

import os
import re
import textwrap
import warnings
from pathlib import Path
from typing import Sequence

import torch

RESULT_FILE = "result.json"
GRID_FILE = "grid.png"
SUMMARY_FILE = "summary.json"
DEFAULT_SEEDS = (0, 1)  # Promptist scores 2 images per prompt


def default_scorer_names(model: str | None) -> tuple[str, str | None]:
    """(CLIP, aesthetic) names that fit a T2I model: the shapes world's own, tiny ones for ``tiny:*`` models,
    OpenAI ViT-L/14 for real models (the LAION predictor is not bundled: pass ``quality=`` to use it)."""
    name = str(model or "shapes")
    if name == "shapes" or name.startswith("shapes:"):
        return "shapes:clip", "shapes:quality"
    if name.startswith("tiny:"):
        return "tiny:clip", "tiny:quality"
    return "openai/clip-vit-large-patch14", None


def _load_scorers(clip_name: str, quality_name: str | None, quality_is_default: bool, device=None):
    """CLIP score, aesthetic (or None) and Promptist rewards sharing one CLIP embedder, plus notes on skips."""
    from t2i_prompt.models.loading import ModelNotFoundError
    from t2i_prompt.rewards import AestheticReward, CLIPScore, PromptistReward

    clip_score = CLIPScore.from_pretrained(clip_name, preset="promptist", device=device)
    notes = []
    aesthetic = None
    if quality_name is not None:
        try:
            aesthetic = AestheticReward.from_pretrained(quality_name, clip=clip_score.clip)
        except (ModelNotFoundError, FileNotFoundError) as e:
            if not quality_is_default:
                raise
            notes.append(f"aesthetic score skipped: {e}")
            warnings.warn(notes[-1], stacklevel=3)
    else:
        notes.append(f"aesthetic score skipped: no predictor paired with CLIP {clip_name!r}; pass quality=...")
    promptist = PromptistReward(clip_score, aesthetic) if aesthetic is not None else None
    return clip_score, aesthetic, promptist, notes


def _slug(text: str, n: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n] or "prompt"


def refine_and_compare(prompts: str | Sequence[str], model=None, rewriter=None, seeds: Sequence[int] = DEFAULT_SEEDS,
                       out_dir: str | os.PathLike | None = None, k: int = 4, clip: str | None = None,
                       quality: str | None = None, num_inference_steps: int | None = None,
                       guidance_scale: float | None = None, height: int | None = None, width: int | None = None,
                       rewrite_kwargs: dict | None = None, device=None, progress: bool = True) -> dict:
    """Rewrite -> generate original and refined (same seeds) -> score -> grid + ``result.json`` per prompt.

    ``model``: a T2I name or a ``Generator``; ``rewriter``: a name or a ``PromptRewriter``; ``k``: rewrite
    candidates kept in the report (candidate 0, the best beam, is the one generated). With ``out_dir`` and one
    prompt, ``result.json`` and ``grid.png`` go in ``out_dir``; with several, in ``out_dir/NNN-<slug>/`` plus a
    ``summary.json``. Returns ``{"out_dir": ..., "runs": [result, ...]}``.
    """
    from tqdm.auto import tqdm

    from t2i_prompt.generate import Generator
    from t2i_prompt.rewrite import PromptRewriter
    from t2i_prompt.utils import atomic_save_image, atomic_write_json

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ValueError("give at least one prompt.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompt {i} is empty or whitespace ({p!r}); give a text that describes the image.")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("give at least one seed.")
    generator = model if isinstance(model, Generator) else Generator(model, device=device, progress=progress)
    rewriter = rewriter if isinstance(rewriter, PromptRewriter) else PromptRewriter.from_pretrained(rewriter,
                                                                                                   device=device)
    default_clip, default_quality = default_scorer_names(generator.model_name)
    clip_name = clip or default_clip
    quality_name = quality or (default_quality if clip is None else None)
    clip_score, aesthetic, promptist, notes = _load_scorers(clip_name, quality_name, quality is None, device)

    # 1. rewrite (k candidates; candidate 0 is generated)
    rewrite_kwargs = dict(rewrite_kwargs or {})
    candidates = rewriter.rewrite(prompts, k=max(1, k), seed=seeds[0], **rewrite_kwargs)
    refined = [c[0].text for c in candidates]
    # 2. generate originals and rewrites with the same seeds, in one batched call (prompt-major order)
    settings = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, height=height,
                    width=width)
    output = generator.generate(prompts + refined, seeds, **settings)
    n_seeds = len(seeds)

    def images_of(row: int) -> list:
        return output.images[row * n_seeds : (row + 1) * n_seeds]

    # 3. score (images of both prompts against the original prompt)
    runs = []
    multi = len(prompts) > 1
    root = Path(out_dir) if out_dir is not None else None
    for i in tqdm(range(len(prompts)), desc="score", unit="prompt", disable=not (progress and multi)):
        orig_images, ref_images = images_of(i), images_of(len(prompts) + i)
        scores = _score_pair(prompts[i], orig_images, ref_images, clip_score, aesthetic, promptist)
        records = output.records[i * n_seeds : (i + 1) * n_seeds] + output.records[
            (len(prompts) + i) * n_seeds : (len(prompts) + i + 1) * n_seeds]
        result = {
            "original": prompts[i],
            "refined": refined[i],
            "candidates": [c.to_dict() for c in candidates[i]],
            "seeds": seeds,
            "settings": {
                "model": generator.model_name,
                "rewriter": rewriter.name,
                "k": k,
                "rewrite": _rewrite_settings(k, rewrite_kwargs),
                "generation": records[0]["settings"],
                "clip": {"model": clip_name, "scale": clip_score.scale, "clamp": clip_score.clamp,
                         "text": "original prompt"},
                "aesthetic": {"model": quality_name} if aesthetic is not None else None,
                "notes": notes,
                "truncated": {"original": records[0]["truncated"], "refined": records[n_seeds]["truncated"]},
            },
            "scores": scores,
        }
        if root is not None:
            run_dir = root / f"{i:03d}-{_slug(prompts[i])}" if multi else root
            files = {"original": [], "refined": []}
            for which, imgs in (("original", orig_images), ("refined", ref_images)):
                for seed, im in zip(seeds, imgs):
                    name = f"{which}_seed{seed}.png"
                    atomic_save_image(im, run_dir / name)
                    files[which].append(name)
            atomic_save_image(comparison_grid(result, orig_images, ref_images), run_dir / GRID_FILE)
            result["files"] = {**files, "grid": GRID_FILE}
            atomic_write_json(run_dir / RESULT_FILE, result)
            result["out_dir"] = str(run_dir)
        runs.append(result)
    summary = {"out_dir": str(root) if root is not None else None, "runs": runs}
    if root is not None and multi:
        atomic_write_json(root / SUMMARY_FILE, {
            "out_dir": str(root),
            "runs": [{"original": r["original"], "refined": r["refined"], "dir": Path(r["out_dir"]).name,
                      "mean": r["scores"]["mean"]} for r in runs],
        })
    return summary


def _rewrite_settings(k: int, rewrite_kwargs: dict) -> dict:
    """The decoding settings actually used (PromptRewriter.rewrite defaults overridden by ``rewrite_kwargs``)."""
    settings = {"do_sample": False, "max_new_tokens": 75, **rewrite_kwargs}
    if settings["do_sample"]:
        return {"top_k": 50, "top_p": 0.95, "temperature": 1.0, **settings}
    return {"num_beams": max(8, k), "length_penalty": -1.0, **settings}


def _score_pair(prompt, orig_images, ref_images, clip_score, aesthetic, promptist) -> dict:
    """Per-seed and mean scores of both image sets; the text is always the original prompt."""
    per = {"original": {}, "refined": {}}
    for which, imgs in (("original", orig_images), ("refined", ref_images)):
        per[which]["clip"] = clip_score.score([prompt] * len(imgs), imgs)
        if aesthetic is not None:
            per[which]["aesthetic"] = aesthetic.score([prompt] * len(imgs), imgs)
    if promptist is not None:
        baseline = [list(orig_images)] * len(ref_images)
        per["refined"]["promptist"] = promptist.score([prompt] * len(ref_images), ref_images, baseline)
    out = {which: {k: [round(float(x), 6) for x in v] for k, v in d.items()} for which, d in per.items()}
    out["mean"] = {which: {k: round(float(torch.as_tensor(v).mean()), 6) for k, v in d.items()}
                   for which, d in per.items()}
    return out


# ------------------------------------------------------------------------------------------------ grid drawing
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def comparison_grid(result: dict, orig_images: Sequence, ref_images: Sequence, tile: int | None = None):
    """Two rows (original, refined), one column per seed; each row captioned with its prompt, each tile with
    its seed and scores. PIL only."""
    from PIL import Image, ImageDraw

    tile = tile or max(192, min(512, max(im.width for im in list(orig_images) + list(ref_images))))
    pad, font = 8, _font(14)
    cols = max(len(orig_images), len(ref_images))
    width = cols * (tile + pad) + pad
    chars = max(20, width // 8)
    rows = []
    for which, imgs in (("original", orig_images), ("refined", ref_images)):
        caption = textwrap.wrap(f"{which}: {result[which]}", chars)[:4]
        labels = []
        for j, seed in enumerate(result["seeds"][: len(imgs)]):
            parts = [f"seed {seed}"] + [f"{k} {v[j]:.3f}" for k, v in result["scores"][which].items()]
            labels.append(textwrap.wrap("  ".join(parts), max(12, tile // 8))[:3])
        rows.append((caption, imgs, labels))
    line = 18
    height = pad
    for caption, _, labels in rows:
        height += line * len(caption) + tile + line * max(len(lab) for lab in labels) + 2 * pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = pad
    for caption, imgs, labels in rows:
        for text in caption:
            draw.text((pad, y), text, fill="black", font=font)
            y += line
        for j, im in enumerate(imgs):
            x = pad + j * (tile + pad)
            canvas.paste(im.convert("RGB").resize((tile, tile), Image.NEAREST if im.width < tile else Image.BICUBIC),
                         (x, y))
            for n, text in enumerate(labels[j]):
                draw.text((x, y + tile + 2 + n * line), text, fill="dimgray", font=font)
        y += tile + line * max(len(lab) for lab in labels) + 2 * pad
    return canvas
