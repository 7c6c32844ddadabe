"""Token alignment between a source and a target prompt, for prompt-to-prompt edits (Hertz et al. 2022, §3.2).

An alignment is a (source tokens x target tokens) matrix ``mapper`` over the encoder sequence (BOS, prompt, EOS,
padding) plus ``keep``, the share of each target token's attention kept from the target itself (0 where the target
token takes the source's attention, 1 for words new in the target). Word swap needs prompts of equal token length
(the swapped words are aligned position by position); refinement aligns the two token sequences with a global
(Needleman-Wunsch) alignment so added words get their own attention. Same facts as prompt-to-prompt's
``seq_aligner.get_replacement_mapper`` / ``get_refinement_mapper`` (google/prompt-to-prompt), written anew.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TokenAlignment", "prompt_token_ids", "replace_alignment", "refine_alignment", "global_alignment"]


@dataclass
class TokenAlignment:
    """``mapper[i, j]``: weight of source token i in target token j's attention; ``keep[j]``: share of target
    token j's own attention (both over the encoder's ``length`` positions)."""

    mapper: torch.Tensor  # (length, length)
    keep: torch.Tensor  # (length,)
    kind: str

    def reweighted(self, scales: torch.Tensor) -> "TokenAlignment":
        """Scale each target token's attention by ``scales[j]`` (prompt-to-prompt's equalizer, not renormalised)."""
        return TokenAlignment(self.mapper * scales[None, :], self.keep * scales, self.kind)


def prompt_token_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of ``prompt`` including BOS and EOS, without padding (truncated to the tokenizer's window)."""
    return list(tokenizer(prompt, truncation=True, max_length=tokenizer.model_max_length)["input_ids"])


def _identity_tail(mapper: torch.Tensor, src_len: int, tgt_len: int) -> None:
    """Padding after the prompts maps position by position (the EOS/padding attention is kept from the source)."""
    length = mapper.shape[0]
    for j in range(tgt_len, length):
        mapper[min(j - tgt_len + src_len, length - 1), j] = 1.0


def replace_alignment(tokenizer, source: str, target: str, length: int) -> TokenAlignment:
    """Word swap: every target token takes the attention of the source token at the same position."""
    src, tgt = prompt_token_ids(tokenizer, source), prompt_token_ids(tokenizer, target)
    if len(src) != len(tgt):
        raise ValueError(f"word swap needs prompts of the same token length, but {source!r} has {len(src) - 2} "
                         f"tokens and {target!r} has {len(tgt) - 2}; use a refine edit (--refine) for prompts that "
                         "add or change words of a different length.")
    return TokenAlignment(torch.eye(length), torch.zeros(length), "replace")


def global_alignment(a: list[int], b: list[int], gap: int = -1, match: int = 1, mismatch: int = -1) -> list[int]:
    """Needleman-Wunsch alignment of two sequences; returns for each position of ``b`` the aligned position of
    ``a`` holding the same token, or -1 (inserted or changed in ``b``)."""
    n, m = len(a), len(b)
    score = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        score[i][0] = i * gap
    for j in range(1, m + 1):
        score[0][j] = j * gap
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = score[i - 1][j - 1] + (match if a[i - 1] == b[j - 1] else mismatch)
            score[i][j] = max(diag, score[i - 1][j] + gap, score[i][j - 1] + gap)
    aligned = [-1] * m
    i, j = n, m
    while i > 0 and j > 0:
        if score[i][j] == score[i - 1][j - 1] + (match if a[i - 1] == b[j - 1] else mismatch):
            if a[i - 1] == b[j - 1]:
                aligned[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif score[i][j] == score[i - 1][j] + gap:
            i -= 1
        else:
            j -= 1
    return aligned


def refine_alignment(tokenizer, source: str, target: str, length: int) -> TokenAlignment:
    """Refinement: target tokens aligned to an equal source token take its attention; new tokens keep their own."""
    src, tgt = prompt_token_ids(tokenizer, source), prompt_token_ids(tokenizer, target)
    mapper, keep = torch.zeros(length, length), torch.zeros(length)
    for j, i in enumerate(global_alignment(src, tgt)):
        if i >= 0:
            mapper[i, j] = 1.0
        else:
            keep[j] = 1.0
    _identity_tail(mapper, len(src), len(tgt))
    return TokenAlignment(mapper, keep, "refine")
