"""Copy-bias noise for the rewriter's SFT pairs: an unknown word in a slot is copied, an unknown filler is dropped.

A rewriter trained on the generator's vocabulary alone cannot know that an unseen colour word ("azure") means blue,
and before this noise it guessed: it copied the other object's colour, or dropped an object after an unseen relation
word. What it can learn is the behaviour that keeps the scene: leave a word it cannot map where it is (the world's
parser reads "a azure circle" as blue) and drop words that are not part of the scene. Training pairs therefore get
pseudo-words (English words from the shapes CLIP vocabulary or random letter strings; never a word of the grammar,
held-out synonyms included) in two kinds of places:

* **a slot** - a colour, a shape, or the relation phrase between two objects: the pseudo-word replaces the casual
  word *and* the canonical target's word (copy);
* **a frame** - the relation phrase becomes an unknown frame around the second object ("A <w> B <w> <w>" or
  "A with B at its top", the shape of "B with A on its left"): the target keeps the frame's words where they stand and
  writes only the objects canonically (copy), because the parser, not the rewriter, reads relations it has no
  canonical form for;
* **a filler** - before the first object (pseudo-words, or article-led ones such as "a <w> with" that look like an
  object's start) or at the end: the target is unchanged (drop).

None of these ever produces a held-out piece of the grammar (``HELDOUT_TEMPLATES`` / ``HELDOUT_SYNONYMS``); the
tests check it, so what is measured on the held-out sets stays unseen.

This is input noising for robustness in the spirit of denoising seq2seq pre-training (Lewis et al. 2020, BART) and
of copy mechanisms for out-of-vocabulary words (Gu et al. 2016, CopyNet), done here in the data only.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

from .grammar import (CASUAL_COLORS, CASUAL_SHAPES, CASUAL_SHAPES_PLURAL, COLORS, HELDOUT_SYNONYMS,
                      HELDOUT_TEMPLATES, SHAPES, _COLOR_WORDS, _NUMBERS, _SHAPE_WORDS, _relation_forms)

# Probability of each kind of noise per pair (independent); about a quarter of the pairs stay clean. (A first run with
# 0.15 / 0.15 / 0.25 / 0.15 / 0.15 and random letter strings only learned to copy the first piece of a real unseen word.)
P_COLOR, P_SHAPE, P_RELATION, P_PREFIX, P_SUFFIX = 0.3, 0.3, 0.35, 0.2, 0.2
P_FRAME = 0.4  # share of relation noise that is a frame around the second object rather than a phrase between them
# Share of frames whose tail ends on a side word ("<glue> its <side>", never "on its left/right"): noise v3 ended every
# frame on a pseudo-word, and the rewriter then turned "B with A on its left" into "B to the left of A" (0/23), since a
# known side word had only ever meant a canonical relation. A relation stated after the second object is copied.
P_SIDE_TAIL = 0.5
_SIDES = ("left", "right", "top", "bottom", "side", "front", "back")
# Function words a frame or an article-led filler may use besides pseudo-words (their arrangements are new; none
# completes a held-out piece: a frame's tail is never "on its left/right", a pseudo-word is never "image").
_GLUE = ("with", "on", "its", "the", "of", "at", "by", "and", "to", "side", "next")
P_ENGLISH = 0.5  # share of pseudo-words that are English words (real letter statistics) rather than random strings
_TOKENIZER_JSON = Path(__file__).parent / "weights" / "t2i" / "tokenizer" / "tokenizer.json"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_VOWELS = "aeiou"
# Every word the grammar knows (casual and canonical), so that a pseudo-word is never one of them.
_KNOWN = ({w for ws in CASUAL_COLORS.values() for p in ws for w in p.split()}
          | {w for ws in list(CASUAL_SHAPES.values()) + list(CASUAL_SHAPES_PLURAL.values()) for p in ws
             for w in p.split()}
          | set(COLORS) | set(SHAPES) | set(_NUMBERS) | set(_SHAPE_WORDS) | set(_COLOR_WORDS)
          | {w for r in ("left", "right", "above", "below") for f in _relation_forms("x", "y", r) for w in f[2].split()}
          | {"left", "right", "above", "below", "over", "under", "top", "outline", "outlined", "hollow", "filled",
             "solid", "line", "art", "not", "style", "in", "a", "an", "and", "with", "its", "of", "the", "to", "on"})
# Relation phrases of the "A <phrase> B" forms: the only ones whose middle can be swapped for a pseudo phrase.
_RELATION_PHRASES = {f[2] for r in ("left", "right", "above", "below") for f in _relation_forms("x", "y", r)
                     if f[1] in ("a_rel_b", "b_rel_a")}


def _usable(word: str) -> bool:
    """Not a grammar word, and containing neither a held-out synonym nor a style marker."""
    blocked = [w for ws in HELDOUT_SYNONYMS.values() for w in ws if " " not in w] + ["outline", "hollow"]
    return word not in _KNOWN and not any(b in word for b in blocked)


@functools.lru_cache(maxsize=1)
def _english_words() -> tuple[str, ...]:
    """Whole-word entries (3-10 letters) of the shapes CLIP BPE vocabulary that are usable pseudo-words."""
    vocab = json.loads(_TOKENIZER_JSON.read_text())["model"]["vocab"]
    words = sorted(w[:-4] for w in vocab if w.endswith("</w>") and w[:-4].isalpha() and 3 <= len(w) - 4 <= 10)
    return tuple(w for w in words if _usable(w))


def pseudo_word(rng: random.Random) -> str:
    """An English word or a random 3-9 letter string that is no word of the shapes grammar (nor a held-out one)."""
    if rng.random() < P_ENGLISH:
        return rng.choice(_english_words())
    while True:
        n = rng.randint(3, 9)
        word = "".join(rng.choice(_VOWELS if (i + rng.randint(0, 1)) % 2 else _LETTERS) for i in range(n))
        if _usable(word):
            return word


def _clean(word: str) -> str:
    return word.strip(",").lower()


def _objects(words: list[str]) -> list[tuple[int, int]]:
    """(colour index, shape index) of every "<colour> <shape>" in a casual word list (as ``_find_objects``)."""
    return [(i - 1, i) for i in range(1, len(words))
            if _clean(words[i]) in _SHAPE_WORDS and _clean(words[i - 1]) in _COLOR_WORDS]


def _set(words: list[str], i: int, new: str) -> None:
    """Replace word ``i`` keeping its trailing comma."""
    words[i] = new + ("," if words[i].endswith(",") else "")


def add_copy_noise(casual: str, canonical: str, rng: random.Random) -> tuple[str, str]:
    """One noisy (casual, canonical) pair; the pair is returned unchanged when no noise was drawn.

    ``canonical`` must describe the casual prompt's objects in mention order (``world.caption_pairs`` does).
    """
    words, target = casual.split(" "), canonical.split(" ")
    objs = _objects(words)
    t_colors = [j for j, w in enumerate(target) if w in COLORS]
    t_shapes = [j for j, w in enumerate(target) if w in SHAPES or (w.endswith("s") and w[:-1] in SHAPES)]
    if not objs or len(objs) != len(t_colors) or len(t_colors) != len(t_shapes):
        return casual, canonical
    drop: set[int] = set()
    if rng.random() < P_RELATION and len(objs) == 2:
        # the words between object 1's shape and object 2's article/colour, if they are an "A <phrase> B" phrase
        start = objs[0][1] + 1 + (_clean(words[objs[0][1] + 1]) == "shape")
        end = objs[1][0] - (_clean(words[objs[1][0] - 1]) in ("a", "an"))
        t_start, t_end = t_shapes[0] + 1, t_colors[1] - 1  # canonical: "a C S <phrase> a C S"
        if " ".join(words[start:end]) in _RELATION_PHRASES and not words[end - 1].endswith(","):
            if rng.random() < P_FRAME:
                phrase, tail = _frame(rng)
                j = objs[1][1] + 1 + (objs[1][1] + 1 < len(words) and _clean(words[objs[1][1] + 1]) == "shape")
                if words[j - 1].endswith(","):  # the comma after the second object moves behind the frame's tail
                    words[j - 1], tail = words[j - 1][:-1], tail[:-1] + [tail[-1] + ","]
                words = words[:start] + phrase + words[end:j] + tail + words[j:]
                t_end2 = t_shapes[1] + 1
                target = target[:t_start] + phrase + target[t_end:t_end2] + [w.strip(",") for w in tail] + target[t_end2:]
            else:
                phrase = rng.choice([[pseudo_word(rng)], [pseudo_word(rng), "of"], ["on", pseudo_word(rng), "of"],
                                     ["to", "the", pseudo_word(rng), "of"], ["on", "the", pseudo_word(rng), "of"],
                                     [pseudo_word(rng), "to"], [pseudo_word(rng), pseudo_word(rng)]])
                words = words[:start] + phrase + words[end:]
                target = target[:t_start] + phrase + target[t_end:]
            objs = _objects(words)
            t_colors = [j for j, w in enumerate(target) if w in COLORS]
            t_shapes = [j for j, w in enumerate(target) if w in SHAPES or (w.endswith("s") and w[:-1] in SHAPES)]
    if rng.random() < P_COLOR:
        k = rng.randrange(len(objs))
        new = pseudo_word(rng)
        _set(words, objs[k][0], new)
        target[t_colors[k]] = new
    if rng.random() < P_SHAPE:
        k = rng.randrange(len(objs))
        plural = target[t_shapes[k]].endswith("s")
        new = pseudo_word(rng) + ("s" if plural else "")
        i = objs[k][1]
        if i + 1 < len(words) and _clean(words[i + 1]) == "shape":  # "round shape" -> one pseudo-word
            words[i] = new + ("," if words[i + 1].endswith(",") else "")
            drop.add(i + 1)
        else:
            _set(words, i, new)
        target[t_shapes[k]] = new
    words = [w for i, w in enumerate(words) if i not in drop]
    if rng.random() < P_PREFIX:
        words = _prefix(rng) + words
    if rng.random() < P_SUFFIX:
        words = words + [pseudo_word(rng) for _ in range(rng.randint(1, 3))]
    return " ".join(words), " ".join(target)


def _frame(rng: random.Random) -> tuple[list[str], list[str]]:
    """(words between the objects, words after the second one) of an unknown relation frame: 1-2 and 1-3 words;
    the tail is "<glue> its <side>" with probability ``P_SIDE_TAIL``, else glue and pseudo-words ending on a pseudo-word."""
    def word() -> str:
        return rng.choice(_GLUE) if rng.random() < 0.4 else pseudo_word(rng)

    phrase = [rng.choice(["with", "having", word()])] + ([word()] if rng.random() < 0.3 else [])
    if rng.random() < P_SIDE_TAIL:
        glue, side = rng.choice(("at", "to", "by", "on")), rng.choice(_SIDES)
        if glue == "on" and side in ("left", "right"):  # "with A on its left" is the held-out frame itself
            glue = "at"
        return phrase, [glue, "its", side]
    tail = [word() for _ in range(rng.randint(1, 3))]
    if tail[-1] in _GLUE:  # a frame ends on a content word ("on its <w>"), as relation frames do
        tail[-1] = pseudo_word(rng)
    return phrase, tail


def _prefix(rng: random.Random) -> list[str]:
    """1-4 filler words before the first object: pseudo-words, or an article-led "a/an <w> [<w>] with/of/showing"."""
    if rng.random() < 0.5:
        return [pseudo_word(rng) for _ in range(rng.randint(1, 4))]
    while True:
        nouns = [pseudo_word(rng) for _ in range(rng.randint(1, 2))]
        words = [_article_for(nouns[0])] + nouns + [rng.choice(["with", "of", "showing", "that has", "for"])]
        text = " ".join(words) + " "
        if not any(text.startswith(p) for p in HELDOUT_TEMPLATES["prefixes"]):
            return text.split()


def _article_for(word: str) -> str:
    return "an" if word[0] in _VOWELS else "a"
