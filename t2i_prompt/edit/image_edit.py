"""Edit a real image with a text change: invert it (DDIM, null-text or DPL), then prompt-to-prompt from the
inverted noise with the learned per-step embeddings replayed. ``EditConfig`` is the one object that drives both
the inversion and the edit; ``edit_image`` computes and writes nothing, ``save_edit`` writes the files.

The edit batch is [source, target]: the source branch replays the learned {uncond_t, cond_t} (its output is the
reconstruction); the target uses the learned uncond_t too, and DPL's learned change to each noun vector wherever a
source noun is aligned to the same token in the target (the reference edits with the unchanged placeholders kept).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import torch

from ..attention.alignment import (
    TokenAlignment,
    prompt_token_ids,
    refine_alignment,
    replace_alignment,
)
from ..attention.prompt2prompt import (
    DEFAULT_CROSS_REPLACE,
    DEFAULT_SELF_REPLACE,
    LocalBlend,
    PromptToPromptHook,
    check_blend_mask,
    model_blend_mask,
)
from ..attention.store import AttentionStore
from ..attention.tokens import find_word_spans, token_indices_multi
from .dpl import (
    DPL_PRESETS,
    DPLConfig,
    attention_resolution,
    background_map,
    dpl_inversion,
    inversion_hooks,
    noun_positions_for,
)
from .inversion import (
    EmbeddingSchedule,
    PassCounter,
    ddim_invert,
    ddim_pipeline,
    null_text_inversion,
    psnr,
    split_embeds,
)

__all__ = ["EditConfig", "EditResult", "edit_image", "save_edit", "save_learned", "load_learned", "default_nouns",
           "METHODS", "EDITS"]

METHODS = ("ddim", "nti", "dpl")
EDITS = ("replace", "refine")
# Words that are never "nouns" of a prompt when --nouns is not given (articles, prepositions, conjunctions).
STOPWORDS = frozenset("a an the and or of with in on at to from by for is are next left right above below top "
                      "bottom under over behind near its their this that".split())


@dataclass
class EditConfig:
    """Everything an edit uses. ``method``: ddim | nti | dpl; ``edit``: replace (word swap, equal token lengths) or
    refine (token alignment); ``reweight``: {word of the target: scale}; ``local``: LocalBlend words (of either
    prompt); ``nouns``: DPL's nouns (default: the source's words minus ``STOPWORDS``); ``dpl``: DPL's settings
    (``DPL_PRESETS``); null-text inversion: ``nti_inner_steps``, ``nti_epsilon`` (None: no early stop)."""

    method: str = "nti"
    edit: str = "replace"
    num_inference_steps: int = 50
    guidance_scale: float = 7.5
    cross_replace_steps: float = DEFAULT_CROSS_REPLACE
    self_replace_steps: float = DEFAULT_SELF_REPLACE
    reweight: dict[str, float] = field(default_factory=dict)
    local: tuple[str, ...] = ()
    local_threshold: float | None = None  # None: the model's (model_blend_mask), else the reference's 0.3
    local_normalise: str | None = None  # None: the model's, else the reference's "max"
    nouns: tuple[str, ...] | None = None
    nti_inner_steps: int = 10
    nti_epsilon: float | None = 1e-5
    dpl: DPLConfig = field(default_factory=lambda: DPL_PRESETS["release"])

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r} is not one of {METHODS}.")
        if self.edit not in EDITS:
            raise ValueError(f"edit {self.edit!r} is not one of {EDITS}.")
        check_blend_mask(self.local_normalise, self.local_threshold)
        if not isinstance(self.num_inference_steps, int) or self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {self.num_inference_steps!r}.")
        if not math.isfinite(self.guidance_scale) or self.guidance_scale < 0:
            raise ValueError(f"guidance_scale must be finite and >= 0, got {self.guidance_scale}.")
        if self.method in ("nti", "dpl") and self.guidance_scale <= 1.0:
            raise ValueError(f"method {self.method!r} needs guidance > 1 (got {self.guidance_scale}); it learns to "
                             "undo guidance drift. Use --method ddim at guidance <= 1.")
        for word, scale in self.reweight.items():
            if not math.isfinite(float(scale)):
                raise ValueError(f"reweight scale of {word!r} must be finite, got {scale}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EditResult:
    """Images (PIL), learned per-step embeddings, per-noun attention maps (res x res arrays), timings in seconds,
    UNet pass counts, loss histories and the settings that made them."""

    image: Any
    reconstruction: Any
    edits: list[Any]
    learned: dict[str, list[torch.Tensor]]
    word_maps: dict[str, Any]
    timings: dict[str, float]
    passes: dict[str, int]
    metrics: dict[str, float]
    settings: dict[str, Any]
    losses: dict[str, Any] = field(default_factory=dict)
    background: Any = None


def default_nouns(prompt: str) -> tuple[str, ...]:
    """The source's content words (stopwords removed, each once) — what DPL learns tokens for without --nouns."""
    seen: list[str] = []
    for word in prompt.replace(",", " ").replace(".", " ").split():
        w = word.lower()
        if w not in STOPWORDS and w not in seen:
            seen.append(w)
    return tuple(seen)


def check_words(source: str, targets: Sequence[str], reweight: dict[str, float] = (), local: Sequence[str] = (),
                nouns: Sequence[str] | None = None) -> None:
    """User errors about words, before any model loads: reweight words must be in every target, local words in a
    prompt, nouns in the source."""
    for word in reweight:
        if not all(find_word_spans(t, word) for t in targets):
            raise ValueError(f"--reweight word {word!r} is not in the target prompt {targets[0]!r}; pick a word of it.")
    for word in local:
        if not find_word_spans(source, word) and not any(find_word_spans(t, word) for t in targets):
            raise ValueError(f"--local word {word!r} is in neither {source!r} nor {targets[0]!r}.")
    for noun in nouns or ():
        if not find_word_spans(source, noun):
            raise ValueError(f"--nouns word {noun!r} is not in the source prompt {source!r}.")


def prepare_image(pipeline, image, height: int | None, width: int | None):
    """The image at the model's size: a PIL image is resized (with a warning) when its size differs."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise ValueError(f"edit_image takes a PIL image, got {type(image).__name__}.")
    h = height or pipeline.defaults["height"]
    w = width or pipeline.defaults["width"]
    if image.size != (w, h):
        warnings.warn(f"image is {image.size[0]}x{image.size[1]}; resized to {w}x{h} (the model's size; pass "
                      "height/width to choose another).", stacklevel=3)
        image = image.convert("RGB").resize((w, h), Image.BICUBIC)
    return image.convert("RGB")


def alignments_for(tokenizer, source: str, targets: Sequence[str], config: EditConfig, length: int) -> list[TokenAlignment]:
    make = replace_alignment if config.edit == "replace" else refine_alignment
    out = []
    for target in targets:
        align = make(tokenizer, source, target, length)
        if config.reweight:
            scales = torch.ones(length)
            for word, scale in config.reweight.items():
                scales[token_indices_multi([tokenizer], target, word)] = float(scale)
            align = align.reweighted(scales)
        out.append(align)
    return out


def save_learned(path: str | Path, learned: dict[str, list[torch.Tensor]], metadata: dict[str, Any]) -> Path:
    """Per-step embeddings as safetensors (``uncond.<i>``, ``cond.<i>``) with JSON metadata, atomically."""
    from safetensors.torch import save

    from ..utils import atomic_write_bytes

    tensors = {f"{kind}.{i}": t.detach().cpu().clone().contiguous() for kind, steps in learned.items()
               for i, t in enumerate(steps)}
    return atomic_write_bytes(path, save(tensors, metadata={"t2i_prompt_edit": json.dumps(metadata)}))


def load_learned(path: str | Path) -> tuple[dict[str, list[torch.Tensor]], dict[str, Any]]:
    """Read ``save_learned``'s file -> ({kind: [per-step tensors]}, metadata)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"learned embeddings file not found: {path}")
    learned: dict[str, dict[int, torch.Tensor]] = {}
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("t2i_prompt_edit", "{}"))
        for key in f.keys():
            kind, _, i = key.partition(".")
            learned.setdefault(kind, {})[int(i)] = f.get_tensor(key)
    return {k: [v[i] for i in sorted(v)] for k, v in learned.items()}, meta


def _oom_message(exc: BaseException, config: EditConfig) -> str:
    return (f"out of accelerator memory during the {config.method} edit ({str(exc).splitlines()[0][:120]}); lower "
            "the image size (--height/--width) or use --dtype fp16; the optimisation holds one UNet graph of batch 1, "
            "the edit one CFG batch of 2 per target.")


def edit_image(pipeline, image, source: str, target: str | Sequence[str], config: EditConfig | None = None,
               height: int | None = None, width: int | None = None, learned: dict | None = None,
               progress: bool = False) -> EditResult:
    """Invert ``image`` under ``source`` with ``config.method`` and edit it towards ``target`` (one or several)
    with prompt-to-prompt; ``learned`` (from ``load_learned``) skips the optimisation for a further edit."""
    config = config or EditConfig()
    targets = [target] if isinstance(target, str) else list(target)
    if not targets or not all(isinstance(t, str) and t.strip() for t in targets) or not source.strip():
        raise ValueError("edit_image needs a non-empty source prompt and target prompt(s).")
    check_words(source, targets, config.reweight, config.local, config.nouns)
    normalise, threshold = model_blend_mask(pipeline, config.local_normalise, config.local_threshold)
    config = replace(config, local_normalise=normalise, local_threshold=threshold)  # the settings record what ran
    tokenizer = pipeline.tokenizer
    length = int(tokenizer.model_max_length)
    alignments = alignments_for(tokenizer, source, targets, config, length)
    tokenizers = [pipeline.tokenizer, getattr(pipeline, "tokenizer_2", None)]
    nouns = tuple(config.nouns) if config.nouns else default_nouns(source)
    positions = noun_positions_for(tokenizers, source, nouns)
    image = prepare_image(pipeline, image, height, width)
    try:
        return _edit(pipeline, image, source, targets, config, alignments, positions, learned, progress)
    except torch.cuda.OutOfMemoryError as e:
        raise ValueError(_oom_message(e, config)) from e


def _edit(pipeline, image, source, targets, config, alignments, positions, learned, progress) -> EditResult:
    pipe = ddim_pipeline(pipeline)
    side = min(image.size) // pipe.vae_scale_factor
    config = replace(config, dpl=replace(config.dpl, attn_res=attention_resolution(pipe.unet, side, config.dpl.attn_res)))
    counter = PassCounter(pipe.unet)
    timings: dict[str, float] = {}
    losses: dict[str, Any] = {}
    background = None
    try:
        hooks = inversion_hooks(config.dpl, positions) if config.method == "dpl" and learned is None else ()
        inversion = ddim_invert(pipe, image, source, config.num_inference_steps, progress, hooks=hooks)
        timings["inversion"] = inversion.seconds
        uncond, cond = split_embeds(inversion.embeds)
        start = time.perf_counter()
        if learned is not None:
            steps = len(learned.get("uncond", []))
            if steps != config.num_inference_steps:
                raise ValueError(f"the learned embeddings have {steps} steps but the edit runs "
                                 f"{config.num_inference_steps}; use the same --steps.")
            learned_uncond, learned_cond = learned["uncond"], learned.get("cond") or [cond.embeds] * steps
        elif config.method == "ddim":
            learned_uncond = [uncond.embeds] * config.num_inference_steps
            learned_cond = [cond.embeds] * config.num_inference_steps
        elif config.method == "nti":
            nti_losses: list[list[float]] = []
            null_text_inversion(pipe, inversion, config.guidance_scale, config.nti_inner_steps, config.nti_epsilon,
                                progress, counter, on_step=lambda i, l: nti_losses.append(l))
            learned_uncond, learned_cond = inversion.uncond, [cond.embeds] * config.num_inference_steps
            losses["null"] = nti_losses
        else:
            cross, self_store = hooks
            background, _ = background_map(self_store.maps()[0], cross.maps()[0], config.dpl.clusters,
                                           config.dpl.bg_threshold, config.dpl.bg_method,
                                           config.dpl.bg_boundary)
            result = dpl_inversion(pipe, inversion, positions, config.guidance_scale, config.dpl, background,
                                   counter, progress)
            learned_uncond, learned_cond = result.uncond, result.cond
            losses["attention"], losses["null"] = result.attention_losses, result.null_losses
        timings["optimisation"] = time.perf_counter() - start
        learned_out = {"uncond": list(learned_uncond), "cond": list(learned_cond)}
        schedule = _batch_schedule(learned_uncond, learned_cond, cond.embeds, pipe, source, targets, alignments, positions,
                                   config.guidance_scale)
        start = time.perf_counter()
        store = AttentionStore(resolution=config.dpl.attn_res)
        store.set_token_ids([list(positions.values())] * (1 + len(targets)), words=list(positions))
        edit_hooks = [EmbeddingSchedule(schedule), PromptToPromptHook(alignments, config.cross_replace_steps,
                                                                      config.self_replace_steps), store]
        if config.local:
            edit_hooks.append(_local_blend(pipe, source, targets, config))
        out = pipe([source, *targets], num_inference_steps=config.num_inference_steps,
                   guidance_scale=config.guidance_scale, height=image.size[1], width=image.size[0],
                   latents=inversion.start().repeat(1 + len(targets), 1, 1, 1), hooks=edit_hooks, output_type="pt")
        timings["edit"] = time.perf_counter() - start
    finally:
        counter.close()
    timings["total"] = sum(timings.values())
    from ..generate.pipeline import T2IPipeline

    original = pipe.encode_image(image)
    pil = T2IPipeline.postprocess(out.images)
    metrics = {"reconstruction_psnr": psnr(out.images[:1], _pixels(image)),
               "latent_mse": float(((out.latents[:1] - original) ** 2).mean())}
    settings = {"source": source, "targets": targets, "model": getattr(pipeline, "name", None),
                "size": list(image.size), **config.to_dict()}
    return EditResult(image, pil[0], pil[1:], learned_out, store.word_maps(0), timings, counter.to_dict(), metrics,
                      settings, losses, background)


def _pixels(image) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def _local_blend(pipe, source, targets, config) -> LocalBlend:
    tokenizers = [pipe.tokenizer, getattr(pipe, "tokenizer_2", None)]
    ids = []
    for prompt in (source, *targets):
        ids.append(sorted({i for w in config.local if find_word_spans(prompt, w)
                           for i in token_indices_multi(tokenizers, prompt, w)}))
    return LocalBlend(ids, threshold=config.local_threshold, resolution=config.dpl.attn_res,
                      normalise=config.local_normalise)


def _batch_schedule(uncond_steps, cond_steps, cond, pipe, source, targets, alignments, positions,
                    guidance_scale: float) -> list[torch.Tensor]:
    """Per step the CFG batch [uncond x (1 + targets); cond_src, cond_tgt...] (only the cond rows at guidance <= 1):
    learned rows for the source and every target's uncond. Where a target token is aligned to the same source noun
    token, the target adds DPL's learned offset (learned - source's own vector) to its *own* vector. DPL's release
    code learns placeholder input tokens, which the text encoder then reads in the target's context; these vectors
    live in the encoder's output space, where a noun's vector already carries its context ("red" in "a red
    circle"), so copying the source's learned vector would paste the old colour back over a swapped one."""
    target_embeds = split_embeds(pipe.encode_prompt(targets, do_cfg=True))[1].embeds
    src_ids = prompt_token_ids(pipe.tokenizer, source)
    copies = []  # per target: [(source position, target position)] of unchanged noun tokens
    all_pos = [p for ps in positions.values() for p in ps]
    for target, align in zip(targets, alignments):
        tgt_ids = prompt_token_ids(pipe.tokenizer, target)
        pairs = []
        for p in all_pos:
            j = int(align.mapper[p].argmax())
            if float(align.mapper[p, j]) > 0 and j < len(tgt_ids) and tgt_ids[j] == src_ids[p]:
                pairs.append((p, j))
        copies.append(pairs)
    changed = cond_steps[0] is not cond  # DPL learned rows; NTI/DDIM keep the prompt's own
    schedule = []
    for u, c in zip(uncond_steps, cond_steps):
        tgt = target_embeds.clone()
        if changed:
            for n, pairs in enumerate(copies):
                for p, j in pairs:
                    tgt[n, j] = target_embeds[n, j] + (c[0, p] - cond[0, p])
        rows = [c, tgt] if guidance_scale <= 1.0 else [u.expand(1 + len(targets), -1, -1), c, tgt]
        schedule.append(torch.cat(rows))
    return schedule


def save_edit(result: EditResult, out_dir: str | Path) -> list[Path]:
    """Write reconstruction.png, edit.png (edit_<k>.png for several targets), source.png, embeddings.safetensors,
    attention_<noun>.png heatmaps and edit.json (settings, metrics, timings, UNet passes, losses)."""
    from ..attention.store import save_heatmaps
    from ..utils import atomic_save_image, atomic_write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [atomic_save_image(result.image, out / "source.png"),
             atomic_save_image(result.reconstruction, out / "reconstruction.png")]
    for k, im in enumerate(result.edits):
        paths.append(atomic_save_image(im, out / ("edit.png" if len(result.edits) == 1 else f"edit_{k}.png")))
    meta = {k: result.settings[k] for k in ("source", "targets", "method", "num_inference_steps", "guidance_scale")}
    paths.append(save_learned(out / "embeddings.safetensors", result.learned, meta))
    paths += save_heatmaps(result.reconstruction, result.word_maps, out, prefix="attention")
    record = {"settings": result.settings, "metrics": result.metrics, "timings_s": result.timings,
              "unet_passes": result.passes, "losses": result.losses, "files": [p.name for p in paths]}
    paths.append(atomic_write_json(out / "edit.json", record))
    return paths
