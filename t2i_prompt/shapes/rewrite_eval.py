"""Does the shapes rewriter keep the scene? Exact-scene accuracy and object drop on fixed in- and out-of-template sets.

Three fixed seeded prompt sets of the casual generator (``grammar.SPLITS``): ``in_distribution`` (the training
split's templates and synonyms, new draws), ``heldout_templates`` (each prompt uses a held-out sentence frame,
prefix or suffix) and ``heldout_synonyms`` (each uses a held-out shape, colour or relation word). A rewrite is
exact when ``parse_prompt(rewrite)`` is the scene of ``parse_prompt(original)`` (the parser is the ground truth;
an unparseable rewrite is wrong); its drift is ``drift.object_drop``. ``eval/shapes_rewriter.py`` runs it.

A fourth set, ``pseudo_words``, is for choosing decoding settings (the copy bias) without looking at the held-out
sets: training-split prompts with the copy-bias noise of :mod:`.copy_noise` (made-up words in a colour, shape or
relation slot, or as filler), scored by exact match with the noisy canonical target.
"""

from __future__ import annotations

import random
import re
from typing import Sequence

from .drift import object_drop
from .grammar import HELDOUT_SYNONYMS, HELDOUT_TEMPLATES, PromptParseError, casual_caption, parse_prompt, random_scene

EVAL_SETS = {"in_distribution": "train", "heldout_templates": "heldout_templates",
             "heldout_synonyms": "heldout_synonyms"}
EVAL_SEED = 20261202  # not the rewriter's training seed (0); each set adds its index
_PIECE_PATTERNS = {
    **{f"prefixes:{p.strip()}": rf"^{re.escape(p.strip())}\b" for p in HELDOUT_TEMPLATES["prefixes"]},
    **{f"suffixes:{s.strip()}": rf"\b{re.escape(s.strip())}$" for s in HELDOUT_TEMPLATES["suffixes"]},
    "relation_frames:with ... on its": r"\bwith .+ on its (left|right)\b",
    **{f"{kind}:{w}": rf"\b{re.escape(w)}\b" for kind, ws in HELDOUT_SYNONYMS.items() for w in ws},
}


def eval_prompts(name: str, n: int = 200, seed: int = EVAL_SEED) -> list[str]:
    """The fixed casual prompts of set ``name`` (one of ``EVAL_SETS``): ``n`` draws from its grammar split."""
    if name not in EVAL_SETS:
        raise ValueError(f"unknown evaluation set {name!r}; expected one of {tuple(EVAL_SETS)}")
    rng = random.Random(seed + list(EVAL_SETS).index(name))
    return [casual_caption(random_scene(rng), rng, EVAL_SETS[name]) for _ in range(n)]


def pseudo_word_pairs(n: int = 200, seed: int = EVAL_SEED + 10) -> list[tuple[str, str]]:
    """``n`` fixed (noisy casual, noisy canonical) pairs of the training split, each with at least one pseudo-word."""
    from .copy_noise import add_copy_noise
    from .world import caption_pairs

    rng, out = random.Random(seed), []
    for casual, canonical, _ in caption_pairs(4 * n, seed, "train"):
        noisy = add_copy_noise(casual, canonical, rng)
        if noisy[0] != casual:
            out.append(noisy)
        if len(out) == n:
            return out
    raise ValueError(f"only {len(out)} noisy pairs among {4 * n} draws; ask for fewer")


def heldout_pieces(prompt: str) -> list[str]:
    """``"<kind>:<piece>"`` of every held-out template / synonym in ``prompt`` (``"colors:azure"``,
    ``"prefixes:can you make"``; kinds are the keys of ``HELDOUT_TEMPLATES`` and ``HELDOUT_SYNONYMS``)."""
    text = prompt.lower()
    return [name for name, pattern in _PIECE_PATTERNS.items() if re.search(pattern, text)]


def exact_scene(original: str, rewrite: str) -> bool:
    """``parse_prompt(rewrite)`` is the same scene as ``parse_prompt(original)`` ("B right of A" == "A left of B")."""
    try:
        return parse_prompt(rewrite).equivalent(parse_prompt(original))
    except PromptParseError:
        return False


def score_rewrites(originals: Sequence[str], rewrites: Sequence[str]) -> list[dict]:
    """Per prompt: ``{"prompt", "rewrite", "exact_scene", "object_drop", "heldout_pieces"}``."""
    if len(originals) != len(rewrites):
        raise ValueError(f"{len(originals)} originals but {len(rewrites)} rewrites; pass one rewrite per original")
    return [{"prompt": o, "rewrite": r, "exact_scene": exact_scene(o, r), "object_drop": object_drop(o, r),
             "heldout_pieces": heldout_pieces(o)} for o, r in zip(originals, rewrites)]
