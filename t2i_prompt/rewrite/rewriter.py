"""Prompt rewriter over any Hugging Face causal LM.

Two prompt formats:
* Promptist template (Hao et al. 2023, microsoft/LMOps:promptist): ``"{prompt} Rephrase:"``; the rewrite is the
  continuation. Decoding defaults are the Promptist demo's: beam search, 8 beams, ``length_penalty=-1.0``,
  ``max_new_tokens=75``, no sampling; candidate 0 is beam 0.
* Chat models (tokenizer has a chat template): a system prompt plus the user's prompt, answered by the assistant.

Batches are left-padded (decoder-only generation appends on the right). Each candidate carries its mean token
log-probability under the model (one teacher-forced pass over the generated tokens) and its CLIP token count,
because a T2I text encoder only reads 77 tokens.
"""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from transformers import LogitsProcessorList

from t2i_prompt.models.loading import ensure_pad_token
from t2i_prompt.rewrite.copy_bias import CopyBiasLogitsProcessor, prompt_token_ids
from t2i_prompt.rewrite.postprocess import ClipWindow, extract_rewrite, template_marker

PROMPTIST_TEMPLATE = "{prompt} Rephrase:"
DEFAULT_SYSTEM_PROMPT = (
    "You rewrite short text-to-image prompts into detailed prompts. Keep every object, colour, count and spatial "
    "relation of the original; add style, lighting and quality modifiers. Answer with the rewritten prompt only."
)
DEFAULT_REWRITER = "shapes:rewriter"
# Seeded decoding sets the process-wide RNG (fork_rng restores it after); one rewrite at a time may do so, which
# makes rewrite() safe to call from several threads (the app serves concurrent requests).
_RNG_LOCK = threading.Lock()
# Optional, next to the weights: {"chat": bool, "template": ..., "system_prompt": ...}. Training writes
# REWRITER_CONFIG; the older name t2i_prompt.json (rewriters trained before the rename) is also read.
REWRITER_CONFIG = "t2i_rewriter.json"
REWRITER_CONFIG_NAMES = (REWRITER_CONFIG, "t2i_prompt.json")


@dataclass
class RewriteCandidate:
    """One rewrite of ``source``.

    ``mean_logprob``: mean log-probability of the generated tokens (EOS included when generated) under the model.
    ``num_tokens``: generated LM tokens (EOS excluded). ``clip_tokens``: CLIP tokens of ``text`` incl. bos/eos;
    ``exceeds_clip_window`` then ``clip_text`` is the part a 77-token text encoder actually reads.
    ``empty``: post-processing left nothing, so ``text`` falls back to ``source``.
    ``token_ids``: the generated LM token ids (EOS included when generated), the tokens ``mean_logprob`` averages.
    """

    text: str
    mean_logprob: float
    num_tokens: int
    source: str
    raw_text: str
    clip_tokens: int
    exceeds_clip_window: bool
    clip_text: str
    source_truncated: bool = False
    empty: bool = False
    token_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class PromptRewriter:
    """``rewrite(prompts, k) -> list[list[RewriteCandidate]]`` with a causal LM and its tokenizer."""

    def __init__(self, model, tokenizer, template: str | None = None, system_prompt: str | None = None,
                 chat: bool | None = None, clip_window: ClipWindow | None = None, name: str = "rewriter"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.chat = bool(getattr(tokenizer, "chat_template", None)) if chat is None else chat
        if self.chat and not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat=True needs a tokenizer with a chat_template; use a template string instead.")
        self.template = template or ("{prompt}" if self.chat else PROMPTIST_TEMPLATE)
        self.marker = template_marker(self.template)
        self.system_prompt = DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt
        self.clip_window = clip_window
        self.name = name
        ensure_pad_token(tokenizer)

    @classmethod
    def from_pretrained(cls, name: str | None = None, template: str | None = None, system_prompt: str | None = None,
                        chat: bool | None = None, device=None, dtype=None) -> "PromptRewriter":
        """Load a causal LM by name (``shapes:rewriter`` default, ``tiny:gpt2``, ``tiny:chat``, a dir, a hub id).

        An optional ``t2i_rewriter.json`` (or ``t2i_prompt.json``) next to the weights sets the ``chat`` /
        ``template`` / ``system_prompt`` defaults, so a trained rewriter formats inputs as in training.
        """
        from t2i_prompt.models.loading import load_causal_lm, resolve_model_path

        name = name or DEFAULT_REWRITER
        model, tokenizer = load_causal_lm(name, device, dtype)
        path = Path(resolve_model_path(name))
        cfg_files = [path / f for f in REWRITER_CONFIG_NAMES if (path / f).is_file()]
        cfg = json.loads(cfg_files[0].read_text()) if cfg_files else {}
        return cls(model, tokenizer, template=template or cfg.get("template"),
                   system_prompt=system_prompt if system_prompt is not None else cfg.get("system_prompt"),
                   chat=chat if chat is not None else cfg.get("chat"), name=name)

    # ---- inputs ------------------------------------------------------------------------------------------------
    def format_input(self, prompt: str) -> str:
        """The text fed to the LM for one prompt (template, or the chat template with the system prompt)."""
        user = self.template.format(prompt=prompt)
        if not self.chat:
            return user
        messages = [{"role": "user", "content": user}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _window(self) -> ClipWindow:
        if self.clip_window is None:
            self.clip_window = ClipWindow()
        return self.clip_window

    def _check_prompts(self, prompts: Sequence[str]) -> list[tuple[str, bool]]:
        checked = []
        for i, p in enumerate(prompts):
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"prompt {i} is empty or whitespace ({p!r}); give the rewriter some text to rewrite.")
            kept, _, exceeded = self._window().check(p.strip(), what=f"input prompt {i}")
            checked.append((kept, exceeded))
        return checked

    # ---- generation --------------------------------------------------------------------------------------------
    @staticmethod
    def decoding_settings(k: int = 1, do_sample: bool = False, num_beams: int | None = None,
                          max_new_tokens: int = 75, length_penalty: float = -1.0, temperature: float = 1.0,
                          top_k: int = 50, top_p: float = 0.95, copy_bias: float = 0.0) -> dict:
        """The decoding settings ``rewrite`` uses for these arguments (the one copy of its defaults): Promptist beam
        search (``num_beams=max(8, k)``, ``length_penalty=-1``) or top-k/top-p sampling. ``copy_bias`` > 0 adds that
        many nats to the scores of the prompt's own tokens (``copy_bias.py``; recorded only when set)."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k (number of rewrite candidates) must be an integer >= 1, got {k!r}.")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}.")
        if isinstance(copy_bias, bool) or not isinstance(copy_bias, (int, float)) or not 0 <= copy_bias < float("inf"):
            raise ValueError(f"copy_bias must be a finite number >= 0 (nats added to the prompt's tokens; 0 = off), "
                             f"got {copy_bias!r}.")
        settings = {"k": k, "do_sample": bool(do_sample), "max_new_tokens": max_new_tokens}
        if copy_bias:
            settings["copy_bias"] = float(copy_bias)
        if do_sample:
            if not (temperature > 0 and temperature < float("inf")):
                raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
            return {**settings, "temperature": float(temperature), "top_k": top_k, "top_p": top_p}
        beams = num_beams or max(8, k)
        if beams < k:
            raise ValueError(f"num_beams ({beams}) must be >= k ({k}) to return k beams.")
        return {**settings, "num_beams": beams, "length_penalty": length_penalty}

    @torch.inference_mode()
    def rewrite(self, prompts: str | Sequence[str], k: int = 1, seed: int = 0, batch_size: int = 8,
                **decoding) -> list[list[RewriteCandidate]]:
        """``k`` candidates per prompt; ``decoding`` as in ``decoding_settings`` (beam search by default: the
        ``k`` best beams in order; ``do_sample=True``: ``k`` samples sorted by ``mean_logprob``).
        Seeded: the same ``seed`` gives the same candidates (the global RNG state is restored afterwards)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        settings = self.decoding_settings(k, **decoding)
        checked = self._check_prompts(prompts)
        gen_kwargs = {key: v for key, v in settings.items() if key != "k"}
        gen_kwargs.update(num_return_sequences=k, pad_token_id=self.tokenizer.pad_token_id)
        if settings["do_sample"]:
            gen_kwargs["num_beams"] = 1
        else:
            gen_kwargs["early_stopping"] = True
        do_sample = settings["do_sample"]
        results: list[list[RewriteCandidate]] = []
        with _RNG_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for start in range(0, len(checked), batch_size):
                results += self._rewrite_batch(checked[start:start + batch_size], k, do_sample, gen_kwargs)
        return results

    def _rewrite_batch(self, checked, k, do_sample, gen_kwargs) -> list[list[RewriteCandidate]]:
        device = next(self.model.parameters()).device
        inputs = [self.format_input(p) for p, _ in checked]
        enc = self.tokenizer(inputs, return_tensors="pt", padding=True, padding_side="left",
                             add_special_tokens=not self.chat, verbose=False).to(device)
        gen_kwargs = self._fit_context(enc["input_ids"].shape[1], gen_kwargs)
        copy_bias = gen_kwargs.pop("copy_bias", 0.0)
        if copy_bias:
            gen_kwargs["logits_processor"] = LogitsProcessorList([self._copy_bias([p for p, _ in checked], copy_bias)])
        out = self.model.generate(**enc, **gen_kwargs)
        prompt_len = enc["input_ids"].shape[1]
        generated = out[:, prompt_len:]
        gen_mask = self._generated_mask(generated)
        logprobs = self._mean_logprobs(enc["input_ids"].repeat_interleave(k, 0),
                                       enc["attention_mask"].repeat_interleave(k, 0), generated, gen_mask)
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        batch = []
        for i, (source, truncated) in enumerate(checked):
            cands = []
            for j in range(i * k, (i + 1) * k):
                token_ids = generated[j, : int(gen_mask[j].sum())].tolist()
                n_tokens = len(token_ids) - int(bool(token_ids) and token_ids[-1] in self._eos_ids())
                cand = self._candidate(texts[j], inputs[i], source, truncated, float(logprobs[j]), n_tokens)
                cand.token_ids = token_ids
                cands.append(cand)
            if do_sample:
                cands.sort(key=lambda c: c.mean_logprob, reverse=True)
            batch.append(cands)
        return batch

    def _copy_bias(self, prompts: Sequence[str], bias: float) -> CopyBiasLogitsProcessor:
        vocab = max(int(getattr(self.model.config, "vocab_size", 0) or 0), len(self.tokenizer))
        special = self._eos_ids() | {self.tokenizer.pad_token_id, self.tokenizer.bos_token_id}
        return CopyBiasLogitsProcessor([prompt_token_ids(self.tokenizer, p) for p in prompts], vocab, bias, special)

    def _fit_context(self, input_len: int, gen_kwargs: dict) -> dict:
        """Shrink ``max_new_tokens`` (with a warning) so input + output fit the LM's position window."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if not limit or input_len + gen_kwargs["max_new_tokens"] <= limit:
            return gen_kwargs
        room = limit - input_len
        if room < 1:
            raise ValueError(
                f"the rewriter input is {input_len} LM tokens, at or over {self.name!r}'s {limit}-token context; "
                "shorten the prompt (or the system prompt)."
            )
        warnings.warn(f"input is {input_len} LM tokens; generating at most {room} new tokens to fit the "
                      f"{limit}-token context of {self.name!r}.", stacklevel=4)
        return {**gen_kwargs, "max_new_tokens": room}

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = ids if isinstance(ids, (list, tuple)) else [ids]
        return {int(i) for i in ids if i is not None} | {int(self.tokenizer.eos_token_id)}

    def _generated_mask(self, generated: torch.Tensor) -> torch.Tensor:
        """1 for generated tokens up to and including the first EOS, 0 for what follows (padding)."""
        is_eos = torch.zeros_like(generated, dtype=torch.bool)
        for e in self._eos_ids():
            is_eos |= generated == e
        after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0
        return (~after_eos).long()

    def _mean_logprobs(self, prompt_ids, prompt_mask, generated, gen_mask) -> torch.Tensor:
        """Teacher-forced mean log p(token | prefix) over each row's generated tokens."""
        ids = torch.cat([prompt_ids, generated], 1)
        mask = torch.cat([prompt_mask, gen_mask], 1)
        position_ids = (mask.cumsum(1) - 1).clamp_min(0)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits.float()
        p = prompt_ids.shape[1]
        logp = torch.log_softmax(logits[:, p - 1:-1], -1).gather(-1, generated.unsqueeze(-1)).squeeze(-1)
        counts = gen_mask.sum(1).clamp_min(1)
        return ((logp * gen_mask).sum(1) / counts).cpu()

    def _candidate(self, raw, model_input, source, source_truncated, mean_logprob, num_tokens) -> RewriteCandidate:
        text = extract_rewrite(raw, model_input=model_input, marker=self.marker)
        empty = not text
        if empty:
            warnings.warn(f"the rewriter produced an empty rewrite for {source[:60]!r}; keeping the original prompt.",
                          stacklevel=4)
            text = source
        clip_text, clip_tokens, exceeded = self._window().check(text, what="rewrite")
        return RewriteCandidate(text=text, mean_logprob=mean_logprob, num_tokens=num_tokens, source=source,
                                raw_text=raw, clip_tokens=clip_tokens, exceeds_clip_window=exceeded,
                                clip_text=clip_text, source_truncated=source_truncated, empty=empty)
