"""The shapes-world benchmark: prompts -> (optional rewrite) -> images -> exact detector -> accuracy.

Every prompt is parsed back into its :class:`~t2i_prompt.shapes.grammar.Scene` with the world's grammar
(casual or canonical); the *original* prompt's scene is the ground truth, whatever the rewriter emits.
Per-category accuracy: colour and shape (per object), relation (relation prompts only), count (exact
number of objects), style, and all-correct.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from .detector import score_image
from .drift import object_drop, object_drop_rate
from .grammar import PromptParseError, Scene, parse_prompt

CATEGORIES = ("color", "shape", "relation", "count", "style", "all_correct")
BENCHMARK_DIR = Path(__file__).parent / "data"


def read_prompt_file(path: str | Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with '#' are skipped (``utils.read_prompt_lines``)."""
    from ..utils import read_prompt_lines

    return read_prompt_lines(path, "prompt file")


def benchmark_file(name: str) -> Path:
    """A shipped benchmark list: ``single``, ``relation``, ``count`` (canonical) or ``casual``."""
    path = BENCHMARK_DIR / f"{name}.txt"
    if not path.is_file():
        names = sorted(p.stem for p in BENCHMARK_DIR.glob("*.txt"))
        raise ValueError(f"unknown benchmark {name!r}; shipped: {names}")
    return path


def parse_prompts(prompts: Sequence[str]) -> tuple[list[tuple[int, str, Scene]], list[dict]]:
    """Split prompts into parsed (index, prompt, scene) and unparseable ({line, prompt, error}) ones."""
    parsed, errors = [], []
    for i, p in enumerate(prompts):
        try:
            parsed.append((i, p, parse_prompt(p)))
        except PromptParseError as e:
            errors.append({"line": i + 1, "prompt": p, "error": str(e)})
    return parsed, errors


def detector_scores(prompt: str, images) -> list[dict] | None:
    """Exact per-image scores of ``images`` against ``prompt``'s scene; None if the grammar cannot parse it."""
    try:
        scene = parse_prompt(prompt)
    except PromptParseError:
        return None
    return [{k: v for k, v in score_image(scene, im).to_dict().items() if k != "detected"} for im in images]


def drops_objects(original: str, rewrite: str) -> bool:
    """Semantic drift of a rewrite: it names fewer objects than the original mentions (``drift.object_drop`` > 0)."""
    return object_drop(original, rewrite) > 0


def _mean(values: list) -> float | None:
    values = [float(v) for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


def summarize(scores: list[dict]) -> dict:
    """Mean of every category over ``scores`` (each a SceneScore dict), ignoring N/A relations."""
    return {c: _mean([s[c] for s in scores]) for c in CATEGORIES} | {"n_images": len(scores)}


def evaluate_prompts(
    prompts: Sequence[str],
    pipeline=None,
    seeds: Sequence[int] = (0,),
    rewriter=None,
    hooks_for_prompt: Callable[[str], list] | None = None,
    guidance_scale: float | None = None,
    num_inference_steps: int | None = None,
    progress: bool = True,
    keep_images: bool = False,
) -> dict:
    """Run the benchmark; returns ``{"overall", "by_kind", "n_prompts", "unparsed", "items"}``.

    ``pipeline``: a T2IPipeline, a model name, None (the shapes world), or any object with the
    ``ImageGenerator.generate`` signature. ``rewriter``: a PromptRewriter
    or a model name; the first candidate is generated. ``hooks_for_prompt(prompt) -> hooks`` builds
    prompt-specific attention hooks (e.g. region binding from the layout planner).
    """
    parsed, unparsed = parse_prompts(prompts)
    if not parsed:
        raise ValueError(f"none of the {len(prompts)} prompts could be parsed by the shapes grammar: {unparsed[:3]}")
    if hasattr(pipeline, "generate"):
        generator = pipeline
    else:
        from ..generate.generator import ImageGenerator

        generator = ImageGenerator(pipeline)
    texts = [p for _, p, _ in parsed]
    if rewriter is not None:
        from ..rewrite import PromptRewriter

        if not hasattr(rewriter, "rewrite"):
            rewriter = PromptRewriter.from_pretrained(rewriter)
        texts = [cands[0].text for cands in rewriter.rewrite(texts, k=1)]
    settings = {k: v for k, v in (("guidance_scale", guidance_scale), ("num_inference_steps", num_inference_steps))
                if v is not None}
    items = []
    if hooks_for_prompt is None:
        out = generator.generate(texts, seeds=list(seeds), progress=progress, **settings)
        images = out.images  # prompt-major: prompt 0 x all seeds, then prompt 1, ...
    else:
        images = []
        for text in texts:
            images += generator.generate([text], seeds=list(seeds), hooks=hooks_for_prompt(text),
                                         progress=False, **settings).images
    k = 0
    for (line, prompt, scene), text in zip(parsed, texts):
        for seed in seeds:
            score = score_image(scene, images[k]).to_dict()
            item = {"line": line + 1, "prompt": prompt, "generated_prompt": text, "seed": seed,
                    "kind": scene.kind, **score}
            if keep_images:
                item["image"] = images[k]
            items.append(item)
            k += 1
    by_kind = {kind: summarize([i for i in items if i["kind"] == kind])
               for kind in ("single", "relation", "count") if any(i["kind"] == kind for i in items)}
    return {"overall": summarize(items), "by_kind": by_kind, "n_prompts": len(parsed),
            "object_drop_rate": (round(object_drop_rate([p for _, p, _ in parsed], texts), 4)
                                 if rewriter is not None else None),
            "seeds": list(seeds), "unparsed": unparsed, "items": items}
