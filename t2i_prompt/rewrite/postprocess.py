"""Post-processing of rewriter output and the T2I text encoder's 77-token window.

Promptist (microsoft/LMOps:promptist) decodes the whole sequence and keeps what follows ``" Rephrase:"``; small or
chat models also echo the input, run on into a second "x Rephrase: y" pair, or wrap the answer in quotes. These
pure functions undo that, so they can be tested on hand-made strings.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

CLIP_WINDOW = 77  # CLIP text encoders see 77 tokens including <|startoftext|> and <|endoftext|>

_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "`": "`"}


def normalize_whitespace(text: str) -> str:
    """Collapse every whitespace run (newlines, tabs, repeated spaces) to one space and strip the ends."""
    return re.sub(r"\s+", " ", text).strip()


def template_marker(template: str) -> str:
    """The fixed text after ``{prompt}`` in a template (``" Rephrase:"`` for Promptist), stripped; ``""`` if none."""
    if "{prompt}" not in template:
        raise ValueError(f"a rewrite template must contain '{{prompt}}', got {template!r}.")
    return template.split("{prompt}", 1)[1].strip()


def extract_rewrite(generated: str, model_input: str = "", marker: str = "") -> str:
    """The rewrite inside ``generated``: drop an echoed ``model_input`` and a leading ``marker``, cut at a
    repeated ``marker`` (the model starting another pair), strip wrapping quotes, normalise whitespace."""
    text = normalize_whitespace(generated)
    echo = normalize_whitespace(model_input)
    if echo and text.startswith(echo):
        text = text[len(echo):].lstrip()
    if marker:
        if text.startswith(marker):
            text = text[len(marker):].lstrip()
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    text = text.strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        text = text[1:-1]
    return normalize_whitespace(text)


@lru_cache(maxsize=1)
def default_clip_tokenizer():
    """The full OpenAI CLIP BPE (what SD1.x/SDXL text encoders use), built offline from clip-anytorch."""
    from t2i_prompt.models.tokenizers import make_clip_tokenizer

    return make_clip_tokenizer()


class ClipWindow:
    """Counts CLIP tokens (``<|startoftext|>`` and ``<|endoftext|>`` included) and truncates text to the window."""

    def __init__(self, tokenizer=None, max_tokens: int = CLIP_WINDOW):
        self.tokenizer = tokenizer if tokenizer is not None else default_clip_tokenizer()
        self.max_tokens = max_tokens

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, truncation=False, verbose=False)["input_ids"])

    def fits(self, text: str) -> bool:
        return self.count(text) <= self.max_tokens

    def truncate(self, text: str) -> str:
        """Longest prefix of whole words that fits the window (CLIP decoding is lossy, so words are kept as typed)."""
        if self.fits(text):
            return text
        words = text.split()
        lo, hi = 0, len(words)  # invariant: words[:lo] fits, words[:hi + 1] does not
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits(" ".join(words[:mid])):
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo])

    def check(self, text: str, what: str = "prompt") -> tuple[str, int, bool]:
        """``(text that fits, token count, exceeded)``; warns when the window is exceeded."""
        n = self.count(text)
        if n <= self.max_tokens:
            return text, n, False
        kept = self.truncate(text)
        warnings.warn(
            f"{what} has {n} CLIP tokens, over the text encoder's {self.max_tokens}-token window; the encoder only "
            f"sees the first {self.max_tokens} (kept {len(kept.split())} of {len(text.split())} words): {text[:60]!r}...",
            stacklevel=3,
        )
        return kept, n, True
