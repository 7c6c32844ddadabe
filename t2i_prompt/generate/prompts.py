"""Prompts into token ids: checked prompt lists and the text encoder's token window (truncation is warned about
and reported, never silent)."""

from __future__ import annotations

import warnings
from typing import Sequence

import torch

__all__ = ["PromptTruncationWarning", "as_prompt_list", "tokenize_window"]


class PromptTruncationWarning(UserWarning):
    """A prompt was longer than the text encoder's token window and its tail was dropped."""


def as_prompt_list(prompt: str | Sequence[str], what: str = "prompt") -> list[str]:
    """A prompt or a list of prompts as a checked list of non-empty strings (``what`` names the argument)."""
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts:
        raise ValueError(f"`{what}` is an empty list; pass at least one text.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ValueError(f"`{what}[{i}]` must be a string, got {type(p).__name__}.")
        if what == "prompt" and not p.strip():
            raise ValueError(f"`prompt[{i}]` is empty or whitespace; give a text that describes the image.")
    return prompts


def tokenize_window(tokenizer, encoder, texts: list[str], what: str, warn: bool = True) -> tuple[torch.Tensor, list[str]]:
    """Pad/truncate to the token window; warn about (if ``warn``) and return each prompt's dropped text.

    The window is the tokenizer's ``model_max_length`` (77 for CLIP), or the encoder's position count when the
    tokenizer has no real limit (transformers uses ~1e30 for "unset").
    """
    max_len = tokenizer.model_max_length
    if max_len > 100_000:
        max_len = encoder.config.max_position_embeddings
    ids = tokenizer(texts, padding="max_length", max_length=max_len, truncation=True, return_tensors="pt").input_ids
    full = tokenizer(texts, truncation=True, max_length=1 << 20).input_ids  # explicit limit: no length log spam
    dropped = []
    for i, seq in enumerate(full):
        # keep bos + (max_len - 2) tokens + eos; everything before the final eos beyond that is dropped
        extra = seq[max_len - 1 : -1] if len(seq) > max_len else []
        text = tokenizer.decode(extra, skip_special_tokens=True).strip() if extra else ""
        if extra and warn:
            warnings.warn(f"{what}[{i}] is longer than the text encoder's {max_len}-token window; "
                          f"{len(extra)} token(s) were dropped: {text!r}", PromptTruncationWarning, stacklevel=5)
        dropped.append(text)
    return ids, dropped
