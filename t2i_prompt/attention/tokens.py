"""Words and phrases -> token positions in the text encoder's sequence.

Cross-attention keys are the encoder's output positions (BOS at 0, then the prompt's tokens, then EOS/padding), so
every hook that targets "the word cat" needs those positions. Like prompt-to-prompt's ``get_word_inds`` but
character-exact: the prompt is tokenised with offsets and a word owns every token whose characters overlap it, which
handles words split into several BPE tokens, punctuation and repeated words.

SDXL has two tokenizers whose encoder outputs are concatenated along the feature axis, so one position indexes both;
positions are resolved with each tokenizer and united (for the CLIP BPE they are identical).
"""

from __future__ import annotations

import re
from typing import Sequence

__all__ = ["find_word_spans", "token_indices", "token_indices_multi"]


def find_word_spans(prompt: str, word: str) -> list[tuple[int, int]]:
    """Character spans of every whole-word, case-insensitive occurrence of ``word`` (a word or phrase) in ``prompt``."""
    word = word.strip()
    if not word:
        raise ValueError("Empty word: pass a word or phrase that occurs in the prompt.")
    parts = [re.escape(p) for p in word.split()]
    pattern = r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)"
    return [m.span() for m in re.finditer(pattern, prompt, flags=re.IGNORECASE)]


def _offsets(tokenizer, prompt: str, max_length: int) -> list[tuple[int, int]]:
    """(start, end) character offsets of each token position, specials as (0, 0); needs a fast tokenizer."""
    enc = tokenizer(prompt, return_offsets_mapping=True, truncation=True, max_length=max_length)
    special = set(tokenizer.all_special_ids)
    return [(0, 0) if i in special else tuple(o) for i, o in zip(enc["input_ids"], enc["offset_mapping"])]


def token_indices(
    tokenizer, prompt: str, word: str, occurrence: int | None = None, max_length: int | None = None
) -> list[int]:
    """Positions of ``word`` in the encoder sequence of ``prompt`` (all occurrences, or only the ``occurrence``-th, 0-based).

    Raises ``ValueError`` naming the word and the prompt when the word is absent, or when it lies beyond the
    tokenizer's ``model_max_length`` (the encoder never sees it).
    """
    spans = find_word_spans(prompt, word)
    if not spans:
        raise ValueError(f"Word {word!r} does not occur in the prompt {prompt!r}; pass a word or phrase from the prompt.")
    if occurrence is not None:
        if not 0 <= occurrence < len(spans):
            raise ValueError(
                f"Word {word!r} occurs {len(spans)} time(s) in the prompt {prompt!r}; occurrence={occurrence} is out of range."
            )
        spans = [spans[occurrence]]
    max_length = max_length or int(min(tokenizer.model_max_length, 10_000))
    offsets = _offsets(tokenizer, prompt, max_length)
    found = [i for i, (s, e) in enumerate(offsets) if e > s and any(s < we and e > ws for ws, we in spans)]
    if not found:
        raise ValueError(
            f"Word {word!r} of the prompt {prompt!r} lies beyond the tokenizer's {max_length} tokens; shorten the prompt."
        )
    return found


def token_indices_multi(tokenizers: Sequence, prompt: str, word: str, occurrence: int | None = None) -> list[int]:
    """``token_indices`` over several tokenizers (SDXL's two), united and sorted."""
    found: set[int] = set()
    for tok in tokenizers:
        if tok is not None:
            found.update(token_indices(tok, prompt, word, occurrence))
    return sorted(found)

