"""The interactive operations behind the app, as plain functions over models loaded once by name.

``Studio`` loads T2I models, rewriters and scorers lazily on first use and caches them by name (a name is what the
user typed: ``shapes``, ``tiny:sd15``, a local path, a cached hub id). One loaded pipeline serves concurrent calls:
``T2IPipeline`` holds its own lock around the denoising loop and ``PromptRewriter.rewrite`` seeds under a lock, so
the methods here keep no per-call state on ``self`` (the app keeps per-user state in ``gr.State``). Every method
checks its inputs before a model loads and returns plain objects; nothing here knows about Gradio.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .compare import CompareResult, Scorers, compare_rewrite
from .inputs import check_prompt, is_shapes, parse_seeds

ProgressFn = Callable[[int, int], None]  # (done, total)
MAX_CANDIDATES = 16
EVAL_METHODS = ("vanilla", "rewriter", "regions", "regions_base")
# Region binding as the Evaluate tab runs it: planned boxes, RAG's soft refinement or the base-prompt source.
MODEL_DEFAULT = "model default"  # the app's label for "use the model's own setting"
EVAL_REGION_SPECS = {"regions": {"sr_source": "region"}, "regions_base": {"sr_source": "base"}}


@dataclass
class GenerateResult:
    """Images of one prompt (one per seed), their scores against the prompt, and the settings that made them."""

    prompt: str
    seeds: list[int]
    images: list
    scores: dict[str, list[float]]
    detector: list[dict] | None
    settings: dict[str, Any]
    heatmaps: dict[str, list] = field(default_factory=dict)  # word -> one overlay image per seed
    regions: list = field(default_factory=list)  # the Region objects the hooks bound (typed + planned)


@dataclass
class RepaintResult:
    original: Any
    repainted: Any
    settings: dict[str, Any]


class Studio:
    """Models by name, loaded on first use and shared by every call; the app's functions."""

    def __init__(self, model: str = "shapes", rewriter: str = "shapes:rewriter", votes_path: str | Path | None = None,
                 device=None, progress: bool = False):
        self.default_model = model
        self.default_rewriter = rewriter
        self.votes_path = Path(votes_path) if votes_path else Path("outputs/app/votes.jsonl")
        self.device = device
        self.progress = progress
        self._cache: dict[tuple[str, str], Any] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    # ---- models, cached by (kind, name) -------------------------------------------------------------------------
    def _load(self, kind: str, name: str, build: Callable[[], Any]):
        key = (kind, name)
        with self._guard:
            if key in self._cache:
                return self._cache[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one load per name, other names load in parallel
            if key not in self._cache:
                value = build()
                with self._guard:
                    self._cache[key] = value
        return self._cache[key]

    def generator(self, name: str | None = None):
        from ..generate import ImageGenerator

        name = name or self.default_model
        return self._load("t2i", name, lambda: ImageGenerator(name, device=self.device, progress=self.progress))

    def rewriter(self, name: str | None = None):
        from ..rewrite import PromptRewriter

        name = name or self.default_rewriter
        return self._load("rewriter", name, lambda: PromptRewriter.from_pretrained(name, device=self.device))

    def scorers(self, t2i_name: str | None = None) -> Scorers:
        name = t2i_name or self.default_model
        return self._load("scorers", name, lambda: Scorers.for_model(name, device=self.device))

    def similarity(self):
        from ..rewards.registry import build_reward

        return self._load("similarity", "minilm", lambda: build_reward("similarity", device=self.device))

    def loaded(self) -> list[str]:
        """``kind:name`` of every model loaded so far (the app shows it; tests check the cache)."""
        return [f"{k}:{n}" for k, n in self._cache]

    # ---- rewrite ----------------------------------------------------------------------------------------------
    def rewrite(self, prompt: str, k: int = 4, seed: int = 0, rewriter: str | None = None, model: str | None = None,
                render: bool = True, decoding: dict | None = None) -> dict[str, Any]:
        """``k`` candidates for ``prompt``, each with its mean log-probability, its text similarity to the prompt
        and, with ``render``, the CLIP score (and aesthetic/quality) of one image of it at ``seed`` scored against
        the *original* prompt. ``best`` is the rewriter's own first candidate (what ``compare`` generates)."""
        from ..rewrite import PromptRewriter

        prompt = check_prompt(prompt)
        if not 1 <= int(k) <= MAX_CANDIDATES:
            raise ValueError(f"k (candidates) must be in [1, {MAX_CANDIDATES}], got {k!r}.")
        seed = parse_seeds(seed)[0]
        settings = PromptRewriter.decoding_settings(int(k), **(decoding or {}))
        cands = self.rewriter(rewriter).rewrite(prompt, k=int(k), seed=seed, **(decoding or {}))[0]
        texts = [c.text for c in cands]
        sims = self.similarity().score([prompt] * len(texts), texts)
        rows = [{"text": c.text, "mean_logprob": round(c.mean_logprob, 6), "similarity": round(float(s), 6),
                 "fallback": c.empty, "exceeds_clip_window": c.exceeds_clip_window} for c, s in zip(cands, sims)]
        if render:
            gen = self.generator(model)
            images = gen.generate(texts, [seed], progress=False).images
            scorers = self.scorers(gen.model_name)
            clip = scorers.clip.score([prompt] * len(images), images)
            aes = scorers.aesthetic.score([prompt] * len(images), images) if scorers.aesthetic is not None else None
            for i, row in enumerate(rows):
                row["clip"] = round(float(clip[i]), 6)
                if aes is not None:
                    row["aesthetic"] = round(float(aes[i]), 6)
        return {"prompt": prompt, "candidates": rows, "best": 0, "seed": seed,
                "rewriter": rewriter or self.default_rewriter, "decoding": settings}

    # ---- compare ----------------------------------------------------------------------------------------------
    def compare(self, prompt: str, seeds: Sequence[int] | str = (0, 1), k: int = 4, pick: int = 0,
                model: str | None = None, rewriter: str | None = None, num_inference_steps: int | None = None,
                guidance_scale: float | None = None, negative_prompt: str | None = None,
                decoding: dict | None = None, progress: ProgressFn | None = None) -> CompareResult:
        """The original prompt and candidate ``pick`` of its rewrite, generated with the same seeds, both scored
        against the original (``workflows.compare.compare_rewrite``), with each candidate's text similarity."""
        prompt = check_prompt(prompt)
        seeds = parse_seeds(seeds)
        gen, rw = self.generator(model), self.rewriter(rewriter)
        hooks = [_progress_hook(progress)] if progress is not None else []
        result = compare_rewrite(prompt, model=gen, rewriter=rw, seeds=seeds, k=int(k), pick=int(pick),
                                 num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                                 negative_prompt=negative_prompt or None, rewrite_kwargs=decoding,
                                 scorers=self.scorers(gen.model_name), hooks=hooks)
        if result.candidates:
            sims = self.similarity().score([prompt] * len(result.candidates), [c["text"] for c in result.candidates])
            for c, s in zip(result.candidates, sims):
                c["similarity"] = round(float(s), 6)
        return result

    # ---- generate with hooks -----------------------------------------------------------------------------------
    def hook_spec(self, lpa: str | None = None, lpa_window: Sequence[float] | None = None, regions: str = "",
                  auto_regions: bool = False, hb_steps: int = 2, sr_delta: float = 1.0, capture: str | Sequence = "",
                  sr_source: str | None = None):
        """A ``HookSpec`` from the app's fields: regions one per line ``x0,y0,x1,y1:prompt``, words comma-separated;
        ``sr_source`` None / "" / "model default": the model's default."""
        from ..attention.recipes import HookSpec

        lines = [ln.strip() for ln in (regions or "").splitlines() if ln.strip()]
        words = ([w.strip() for w in capture.split(",") if w.strip()] if isinstance(capture, str)
                 else [str(w) for w in capture])
        return HookSpec(lpa=lpa or None, lpa_window=tuple(lpa_window) if lpa_window else None, regions=lines,
                        auto_regions=bool(auto_regions), hb_steps=int(hb_steps), sr_delta=float(sr_delta),
                        capture=words, sr_source=None if sr_source in (None, "", MODEL_DEFAULT) else sr_source)

    def generate(self, prompt: str, seeds: Sequence[int] | str = (0,), model: str | None = None,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 negative_prompt: str | None = None, spec=None, progress: ProgressFn | None = None) -> GenerateResult:
        """Images of ``prompt`` (one per seed) with the hooks of ``spec`` (a ``HookSpec``), scored against it."""
        from ..attention.recipes import HookSpec
        from ..attention.store import AttentionStore, heatmap_overlay

        prompt = check_prompt(prompt)
        seeds = parse_seeds(seeds)
        spec = spec or HookSpec()
        hooks = spec.build(prompt)  # bad boxes / words / presets fail here, before a model loads
        regions = spec.plan_regions(prompt)
        gen = self.generator(model)
        extra = [_progress_hook(progress)] if progress is not None else []
        out = gen.generate([prompt], seeds, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                           negative_prompt=negative_prompt or None, hooks=[*hooks, *extra], hook_spec=spec,
                           progress=False, batch_size=len(seeds))
        scores = self.score(prompt, out.images, model=gen.model_name)
        heatmaps: dict[str, list] = {}
        for hook in hooks:
            if isinstance(hook, AttentionStore):
                for i, image in enumerate(out.images):
                    for word, attn in hook.word_maps(i).items():
                        heatmaps.setdefault(word, []).append(heatmap_overlay(image, attn))
        settings = dict(out.records[0]["settings"], model=gen.model_name)
        return GenerateResult(prompt, seeds, out.images, scores["scores"], scores["detector"], settings, heatmaps,
                              regions)

    def attention_maps(self, prompt: str, words: str | Sequence[str], seed: int = 0, **kwargs) -> dict[str, Any]:
        """The cross-attention heatmap of each word over the image of ``prompt`` at ``seed``."""
        from ..attention.recipes import HookSpec

        prompt = check_prompt(prompt)
        spec = self.hook_spec(capture=words)
        if not spec.capture:
            raise ValueError("give at least one word of the prompt whose attention to show, e.g. 'circle'.")
        result = self.generate(prompt, [parse_seeds(seed)[0]], spec=HookSpec(capture=spec.capture), **kwargs)
        return {"image": result.images[0], "maps": {w: imgs[0] for w, imgs in result.heatmaps.items()},
                "settings": result.settings}

    def region_preview(self, prompt: str, spec, image=None, size: int = 256):
        """The regions ``spec`` binds for ``prompt`` drawn over ``image`` (or a blank canvas)."""
        from .grid import draw_regions

        prompt = check_prompt(prompt)
        return draw_regions(image, spec.plan_regions(prompt), size=size)

    def repaint(self, prompt: str, region: str, seed: int = 0, new_seed: int | None = None,
                model: str | None = None, num_inference_steps: int | None = None,
                guidance_scale: float | None = None, hb_steps: int = 2, sr_delta: float = 1.0) -> RepaintResult:
        """Regenerate one region (``x0,y0,x1,y1:prompt``) of the image of ``prompt`` at ``seed``; the rest stays."""
        from ..attention.recipes import parse_region
        from ..edit.repaint import repaint

        prompt = check_prompt(prompt)
        if not isinstance(region, str) or not region.strip():
            raise ValueError("give the region to repaint as x0,y0,x1,y1:prompt, e.g. 0,0,0.5,1:a green triangle.")
        bound = parse_region(region.strip())
        seed = parse_seeds(seed)[0]
        new_seed = seed + 1 if new_seed in (None, "") else parse_seeds(new_seed)[0]
        gen = self.generator(model)
        settings = gen.pipeline.resolve_settings(num_inference_steps, guidance_scale)
        out = repaint(gen.pipeline, prompt, bound, seed=seed, new_seed=new_seed, hb_steps=int(hb_steps),
                      sr_delta=float(sr_delta), **settings)
        return RepaintResult(out.original[0], out.image[0],
                             dict(settings, prompt=prompt, region=region.strip(), seed=seed, new_seed=new_seed,
                                  model=gen.model_name))

    def lpa_split(self, prompt: str) -> dict[str, Any]:
        """The content / style words LPA routes to different layers."""
        from ..attention.lpa import split_style_prompt

        parts = split_style_prompt(check_prompt(prompt))
        return {"content": parts.content, "style": parts.style, "style_phrase": parts.style_phrase}

    # ---- edit a real image ----------------------------------------------------------------------------------------
    def edit(self, image, source: str, target: str, method: str = "nti", edit: str = "replace",
             reweight: str = "", local: str = "", num_inference_steps: int | None = None,
             guidance_scale: float | None = None, model: str | None = None, local_normalise: str | None = None,
             local_threshold: float | None = None) -> dict[str, Any]:
        """Invert ``image`` (a PIL image or a file path) under ``source`` (DDIM, null-text or DPL) and edit it to
        ``target`` with prompt-to-prompt (``t2i_prompt.edit.edit_image``). ``reweight``: ``"word=scale, ..."``;
        ``local``: LocalBlend words, comma-separated (mask: ``local_normalise`` / ``local_threshold``, None: the
        model's). Returns the reconstruction, the edit, one attention overlay per
        noun and the edit's metrics, timings and UNet pass counts."""
        from ..attention.store import heatmap_overlay
        from ..attention.prompt2prompt import check_blend_mask
        from ..edit.image_edit import EditConfig, check_words, edit_image
        from ..rewards.base import load_images

        source, target = check_prompt(source, "source prompt"), check_prompt(target, "target prompt")
        scales = {}
        for item in [x.strip() for x in (reweight or "").split(",") if x.strip()]:
            word, sep, value = item.rpartition("=")
            try:
                scales[word.strip()] = float(value)
            except ValueError:
                sep = ""
            if not sep or not word.strip():
                raise ValueError(f"reweight {item!r} must be WORD=SCALE, e.g. circle=2.")
        words = tuple(w.strip() for w in (local or "").split(",") if w.strip())
        check_words(source, [target], scales, words)
        check_blend_mask(local_normalise, local_threshold)
        if image is None:
            raise ValueError("upload the image to edit (PNG or JPEG).")
        if isinstance(image, (str, Path)):
            (image,) = load_images([image], what="image to edit")
        gen = self.generator(model)
        settings = gen.pipeline.resolve_settings(num_inference_steps, guidance_scale)
        config = EditConfig(method=method, edit=edit, num_inference_steps=int(settings["num_inference_steps"]),
                            guidance_scale=float(settings["guidance_scale"]), reweight=scales, local=words,
                            local_normalise=local_normalise, local_threshold=local_threshold)
        result = edit_image(gen.pipeline, image.convert("RGB"), source, target, config, height=settings["height"],
                            width=settings["width"])
        return {"reconstruction": result.reconstruction, "edit": result.edits[0],
                "maps": {w: heatmap_overlay(result.image, m) for w, m in result.word_maps.items()},
                "metrics": result.metrics, "timings": result.timings, "passes": result.passes,
                "settings": dict(result.settings, model=gen.model_name)}

    # ---- score ------------------------------------------------------------------------------------------------
    def score(self, prompt: str, images: Sequence, model: str | None = None) -> dict[str, Any]:
        """CLIP score (and aesthetic/quality) of each image against ``prompt``; on the shapes world also the exact
        detector's verdict. ``images``: PIL images or image file paths (checked: not an image / too large)."""
        from ..rewards.base import load_images

        prompt = check_prompt(prompt)
        if not images:
            raise ValueError("give at least one image to score.")
        paths = [im for im in images if isinstance(im, (str, Path))]
        loaded = iter(load_images(paths, what="uploaded image")) if paths else iter(())
        images = [next(loaded) if isinstance(im, (str, Path)) else im for im in images]
        name = model or self.default_model
        scorers = self.scorers(name)
        scores = {"clip": [round(float(x), 6) for x in scorers.clip.score([prompt] * len(images), images)]}
        if scorers.aesthetic is not None:
            scores["aesthetic"] = [round(float(x), 6) for x in scorers.aesthetic.score([prompt] * len(images), images)]
        detector = None
        if is_shapes(name):
            from ..shapes.evaluate import detector_scores

            detector = detector_scores(prompt, images)
        return {"scores": scores, "detector": detector, "scorers": scorers.describe()}

    # ---- vote -------------------------------------------------------------------------------------------------
    def vote(self, prompt: str, original: str, refined: str, preferred: str, seeds: Sequence[int] | str,
             scores: dict | None = None, model: str | None = None, rewriter: str | None = None) -> dict[str, Any]:
        """Append the user's choice as a preference pair to ``votes_path`` (the JSONL ``training/dpo.py`` reads)."""
        from .votes import append_vote, vote_row

        row = vote_row(check_prompt(prompt), {"original": original, "refined": refined}, preferred,
                       parse_seeds(seeds), scores, t2i_model=model or self.default_model,
                       rewriter=rewriter or self.default_rewriter)
        count = append_vote(self.votes_path, row)
        return {"row": row, "rows": count, "votes_file": str(self.votes_path)}

    # ---- evaluate ---------------------------------------------------------------------------------------------
    def evaluate(self, benchmark: str = "relation", n_prompts: int = 6, seeds: Sequence[int] | str = (0,),
                 methods: Sequence[str] = EVAL_METHODS, progress: ProgressFn | None = None) -> list[dict[str, Any]]:
        """A small shapes-world benchmark run: the first ``n_prompts`` of a shipped list, per method (``vanilla``,
        ``rewriter`` = the default rewriter's first candidate, ``regions`` / ``regions_base`` = planned region binding
        with RAG's or the base-prompt soft-refinement source), exact detector accuracies. One row per method."""
        from ..attention.recipes import HookSpec
        from ..shapes.evaluate import benchmark_file, evaluate_prompts, read_prompt_file

        path = benchmark_file(benchmark)  # an unknown name is an error naming the shipped lists
        unknown = [m for m in methods if m not in EVAL_METHODS]
        if unknown or not methods:
            raise ValueError(f"methods {list(methods)!r}: choose from {', '.join(EVAL_METHODS)}.")
        if not 1 <= int(n_prompts) <= 64:
            raise ValueError(f"n_prompts must be in [1, 64], got {n_prompts!r}.")
        seeds = parse_seeds(seeds)
        if not is_shapes(self.default_model):
            raise ValueError(f"the evaluation runs on the shapes world (its exact detector); the app's model is "
                             f"{self.default_model!r}. Start the app with --model shapes.")
        prompts = read_prompt_file(path)[: int(n_prompts)]
        gen = self.generator("shapes")
        rows = []
        for i, method in enumerate(methods):
            unplanned: list[str] = []
            report = evaluate_prompts(
                prompts, pipeline=gen, seeds=seeds, progress=False,
                rewriter=self.rewriter() if method == "rewriter" else None,
                hooks_for_prompt=(HookSpec(auto_regions=True, **EVAL_REGION_SPECS[method]).factory(unplanned)
                                  if method in EVAL_REGION_SPECS else None))
            rows.append({"method": method, "benchmark": benchmark, "n_prompts": report["n_prompts"],
                         "n_images": report["overall"]["n_images"], **{k: v for k, v in report["overall"].items()
                                                                      if k != "n_images"},
                         "unplanned_prompts": len(unplanned) if method in EVAL_REGION_SPECS else None})
            if progress is not None:
                progress(i + 1, len(methods))
        return rows


def _progress_hook(callback: ProgressFn):
    from ..hooks import ProgressHook

    return ProgressHook(lambda step, n, state: callback(step, n))

