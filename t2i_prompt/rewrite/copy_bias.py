"""Copy bias at decoding: a bonus on the logits of tokens that occur in the user's prompt.

A rewriter that meets a word it never saw in training ("scarlet", "wedge") tends to garble it ("scart", "wed") or
drop the object it belongs to; both are semantic drift. Adding a constant ``bias`` (in nats) to the score of every
token of the row's own prompt makes copying the prompt's pieces whole cheaper than inventing new ones, without
changing the model. It is the decoding-only cousin of copy mechanisms (Gu et al. 2016, CopyNet; See et al. 2017,
pointer-generator networks), which learn a copy probability instead of using a constant. Tokens of the fixed
template (e.g. Promptist's " Rephrase:"), special tokens and padding get no bonus.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


class CopyBiasLogitsProcessor(LogitsProcessor):
    """Adds ``bias`` to the scores of each prompt's own tokens.

    ``source_ids``: one list of token ids per prompt of the batch. Generation rows are the batch items repeated
    consecutively (beams, or several return sequences), so row ``r`` belongs to prompt ``r // (rows // batch)``.
    ``excluded_ids``: ids never boosted (EOS, BOS, padding), so the bias cannot end or pad a rewrite.
    """

    def __init__(self, source_ids, vocab_size: int, bias: float, excluded_ids=()):
        self.bias = float(bias)
        mask = torch.zeros(len(source_ids), vocab_size, dtype=torch.bool)
        for row, ids in enumerate(source_ids):
            mask[row, [i for i in ids if 0 <= i < vocab_size]] = True
        mask[:, [int(i) for i in excluded_ids if i is not None and 0 <= int(i) < vocab_size]] = False
        self.mask = mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows, batch = scores.shape[0], self.mask.shape[0]
        if self.bias == 0:
            return scores
        if rows % batch:
            raise ValueError(f"{rows} generation rows cannot be split evenly over {batch} prompts.")
        mask = self.mask.to(scores.device).repeat_interleave(rows // batch, 0)[:, : scores.shape[-1]]
        if mask.shape[-1] < scores.shape[-1]:  # the LM's head may be wider than the tokenizer's vocabulary
            mask = torch.nn.functional.pad(mask, (0, scores.shape[-1] - mask.shape[-1]))
        return scores + self.bias * mask.to(scores.dtype)


def prompt_token_ids(tokenizer, prompt: str) -> list[int]:
    """The ids of ``prompt``'s tokens as they occur at its start and after a space (BPE marks the leading space)."""
    ids = set()
    for text in (prompt, " " + prompt):
        ids.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    return sorted(ids)
