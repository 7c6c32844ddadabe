"""LPA: Local Prompt Adaptation (Sanjyal, arXiv 2507.20094; ANKITSANJYAL/local-style-diffusion ``lp2``).

The prompt is split into content words (objects) and style words ("... in Van Gogh style"); within a timestep
window, cross-attention layers routed to *style* cannot attend to content tokens and layers routed to *content*
cannot attend to style tokens. Default: preset ``lpa_late_only`` with window [300, 650] (the paper's best).

Layer routing uses ``LayerInfo.tag``, derived from the block structure: attention-bearing down blocks are
``down1, down2, ...`` in forward order, then ``mid``, then attention-bearing up blocks ``up1, up2, ...``.

| tag   | SD1.5                       | SDXL                        | tiny / shapes UNets        |
|-------|-----------------------------|-----------------------------|----------------------------|
| down1 | down_blocks.0 (64x64)       | down_blocks.1 (64x64)       | first CrossAttnDown block  |
| down2 | down_blocks.1 (32x32)       | down_blocks.2 (32x32)       | second, if any             |
| down3 | down_blocks.2 (16x16)       | -                           |                            |
| mid   | mid_block                   | mid_block                   | mid_block                  |
| up1   | up_blocks.1 (16x16)         | up_blocks.0 (32x32)         | first CrossAttnUp block    |
| up2   | up_blocks.2 (32x32)         | up_blocks.1 (64x64)         | second, if any             |
| up3   | up_blocks.3 (64x64)         | -                           |                            |

For SD1.5 this is exactly the reference's table (down3/up3 are unrouted there, as in the reference). A preset tag
that a UNet lacks routes nothing.

Suppression is a true attention mask: -inf added to the forbidden tokens' logits of the conditional CFG half
(BOS, EOS and padding always stay allowed, so no row is fully masked). ``mode="zero_embeddings"`` reproduces the
reference instead: forbidden token rows of the encoder states are multiplied by 0, in every row of the batch
(both CFG halves, as the reference's ``lp2`` masks the whole encoder batch). That is only partial
suppression: a zero key still gets softmax weight exp(0) relative to the others (its value is zero, but it dilutes
the rest), so use it only to reproduce the paper.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .controller import AttentionContext, AttentionHook, LayerInfo
from .tokens import token_indices_multi

__all__ = ["PRESETS", "PromptParts", "split_style_prompt", "LPAHook", "check_window"]

ALL = "all"
# preset -> (style tags, content tags); from the reference's core/routing.py.
PRESETS: dict[str, tuple[tuple[str, ...] | str, tuple[str, ...] | str]] = {
    "lpa_late_only": (("up2",), ("down1", "mid")),
    "lpa_early_style_late": (("up1", "up2"), ("down1", "down2", "mid")),
    "lpa_mid_only": (("mid",), ("down2", "up1")),
    "lpa_full": (ALL, ALL),
    "vanilla": ((), ()),
}
DEFAULT_WINDOW = (300.0, 650.0)
STOP_WORDS = frozenset("in on the a an of and with to for style aesthetic".split())
_STYLE_PATTERNS = (  # tried in order
    re.compile(r"\bin the style of ([\w\s'-]+?)(?:[,.;]|$)", re.IGNORECASE),
    re.compile(r"\bin (?:the |an? )?([\w\s'-]+?) (?:style|aesthetic)\b", re.IGNORECASE),
)


@dataclass
class PromptParts:
    """Result of ``split_style_prompt``: de-duplicated content and style words (original spelling)."""

    content: list[str]
    style: list[str]
    style_phrase: str  # e.g. "van gogh" ('' when the prompt has no style phrase)


def _dedupe(words):
    seen, out = set(), []
    for w in words:
        if w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
    return out


def split_style_prompt(prompt: str, backend: str = "auto") -> PromptParts:
    """Split ``prompt`` into content and style words, as in LPA's ``core/parsing.py``.

    Style: the words of an "in <X> style|aesthetic" (or "in the style of <X>") phrase. Content, by backend:
    ``spacy`` (NOUN/PROPN/VERB/ADJ, needs spaCy + en_core_web_sm), ``pos`` (every word minus a stop-list and the
    style words), ``naive`` (every word minus the style words). ``auto`` uses spaCy when importable, else ``pos``.
    """
    if backend not in ("auto", "spacy", "pos", "naive"):
        raise ValueError(f"Unknown parser backend {backend!r}; choose 'auto', 'spacy', 'pos' or 'naive'.")
    phrase = ""
    for pattern in _STYLE_PATTERNS:
        m = pattern.search(prompt)
        if m:
            phrase = m.group(1).strip()
            break
    style = _dedupe(w for w in re.findall(r"[\w'-]+", phrase) if w.lower() not in STOP_WORDS)
    style_lower = {w.lower() for w in style}
    words = re.findall(r"[\w'-]+", prompt)
    if backend in ("auto", "spacy"):
        content = _spacy_content(prompt, style_lower, required=backend == "spacy")
        if content is not None:
            return PromptParts(content, style, phrase)
    skip = style_lower | (STOP_WORDS if backend != "naive" else {"style", "aesthetic"} if phrase else set())
    content = _dedupe(w for w in words if w.lower() not in skip)
    return PromptParts(content, style, phrase)


def _spacy_content(prompt: str, style_lower: set[str], required: bool):
    """Content words by part of speech with spaCy; None when spaCy is unavailable and not required."""
    try:
        import spacy

        nlp = spacy.load("en_core_web_sm")
    except (ImportError, OSError) as e:
        if required:
            raise ValueError(f"Parser backend 'spacy' needs spaCy and en_core_web_sm ({e}); use backend='pos'.") from e
        return None
    keep = {"NOUN", "PROPN", "VERB", "ADJ"}
    return _dedupe(t.text for t in nlp(prompt) if t.pos_ in keep and t.text.lower() not in style_lower)


def check_window(window) -> tuple[float, float]:
    """Validate a timestep window (scheduler units, inclusive)."""
    try:
        t0, t1 = (float(x) for x in window)
    except (TypeError, ValueError) as e:
        raise ValueError(f"LPA window must be two numbers (start, end) in timestep units, got {window!r}.") from e
    if t0 > t1:
        raise ValueError(f"LPA window start {t0:g} > end {t1:g}; pass (start, end) with start <= end, e.g. (300, 650).")
    return t0, t1


class LPAHook(AttentionHook):
    """Route content and style tokens to different cross-attention layers inside a timestep window.

    Args:
        preset: one of ``PRESETS`` (default ``lpa_late_only``).
        window: (t0, t1) in scheduler timestep units; active when t0 <= t <= t1. Default (300, 650).
        parser: backend of ``split_style_prompt``.
        mode: ``"mask"`` (-inf logits, default) or ``"zero_embeddings"`` (the reference's partial suppression).
        content_words / style_words: override the parser (both words of the prompt).
    """

    def __init__(self, preset="lpa_late_only", window=DEFAULT_WINDOW, parser="auto", mode="mask",
                 content_words=None, style_words=None):
        if preset not in PRESETS:
            raise ValueError(f"Unknown LPA preset {preset!r}; valid presets: {', '.join(PRESETS)}.")
        if mode not in ("mask", "zero_embeddings"):
            raise ValueError(f"Unknown LPA mode {mode!r}; choose 'mask' or 'zero_embeddings'.")
        self.preset, self.window, self.parser, self.mode = preset, check_window(window), parser, mode
        self.style_tags, self.content_tags = PRESETS[preset]
        self.content_words, self.style_words = content_words, style_words
        self.content_ids: list[list[int]] = []  # per image
        self.style_ids: list[list[int]] = []
        self.parts: list[PromptParts] = []
        self._bias_cache: dict = {}

    def role(self, layer: LayerInfo) -> tuple[bool, bool]:
        """(is a style layer, is a content layer) for a cross-attention layer."""
        def routed(tags):
            return tags == ALL or layer.tag in tags

        return routed(self.style_tags), routed(self.content_tags)

    def set_token_ids(self, content_ids, style_ids) -> None:
        """Content and style token positions per image, for use without a pipeline."""
        self.content_ids = [list(x) for x in content_ids]
        self.style_ids = [list(x) for x in style_ids]
        self._bias_cache: dict = {}

    def on_start(self, run) -> None:
        tokenizers = [run.pipeline.tokenizer, getattr(run.pipeline, "tokenizer_2", None)]
        content, style = [], []
        self.parts = []
        for prompt in run.prompts:
            parts = split_style_prompt(prompt, self.parser)
            if self.content_words is not None or self.style_words is not None:
                parts = PromptParts(list(self.content_words or []), list(self.style_words or []), parts.style_phrase)
            self.parts.append(parts)
            content.append(sorted({i for w in parts.content for i in token_indices_multi(tokenizers, prompt, w)}))
            style.append(sorted({i for w in parts.style for i in token_indices_multi(tokenizers, prompt, w)}))
        self.set_token_ids(content, style)

    def wants_layer(self, layer: LayerInfo) -> bool:
        return layer.is_cross and any(self.role(layer))

    def is_active(self, ctx: AttentionContext) -> bool:
        return bool(self.content_ids) and ctx.timestep is not None and self.window[0] <= ctx.timestep <= self.window[1]

    def forbidden(self, ctx: AttentionContext) -> list[list[int]]:
        """Per image, the token positions this layer must not attend to."""
        is_style, is_content = self.role(ctx.layer)
        return [sorted(set(c if is_style else []) | set(s if is_content else []))
                for c, s in zip(self.content_ids, self.style_ids)]

    def _row_mask(self, ctx: AttentionContext, num_keys: int, whole_batch: bool = False) -> torch.Tensor:
        """(B, Nk) bool, True at forbidden tokens in the conditional rows (or every row with ``whole_batch``);
        cached per layer role and shape. Row r shows image r mod num_images (CFG batch: [uncond; cond])."""
        key = (self.role(ctx.layer), ctx.batch_size, ctx.do_cfg, num_keys, whole_batch)
        if key not in self._bias_cache:
            mask = torch.zeros(ctx.batch_size, num_keys, dtype=torch.bool)
            forbidden = self.forbidden(ctx)
            rows = range(ctx.batch_size) if whole_batch else range(ctx.cond.start, ctx.cond.stop)
            for row in rows:
                ids = forbidden[(row % ctx.num_images) % len(forbidden)]
                if ids and max(ids) >= num_keys:
                    raise ValueError(f"LPA token position {max(ids)} is beyond the {num_keys} encoder tokens.")
                mask[row, ids] = True
            self._bias_cache[key] = mask
        return self._bias_cache[key]

    def attention_bias(self, ctx: AttentionContext, num_queries: int, num_keys: int):
        if self.mode != "mask":
            return None
        mask = self._row_mask(ctx, num_keys)
        bias = torch.zeros(mask.shape).masked_fill_(mask, float("-inf"))
        return bias[:, None, None, :]  # (B, 1, 1, Nk)

    def edit_context(self, ctx: AttentionContext, attn, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        if self.mode != "zero_embeddings":
            return encoder_hidden_states
        keep = ~self._row_mask(ctx, encoder_hidden_states.shape[1], whole_batch=True).to(encoder_hidden_states.device)
        return encoder_hidden_states * keep[..., None].to(encoder_hidden_states.dtype)
