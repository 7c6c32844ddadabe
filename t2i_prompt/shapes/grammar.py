"""Scene specs of the shapes world and their two phrasings.

A :class:`Scene` is the ground truth behind every prompt: 1-3 objects (colour, shape), an optional
relation between two different objects, or a count of identical objects, and one global style
(``filled`` or ``outlined``) that applies to every object.

* The **canonical** caption is the only phrasing the T2I model is trained on (the "model-preferred"
  prompt): ``"a red circle to the left of a blue square in outline style"``.
* **Casual** captions are what a user might type (synonyms, word order, missing articles, vague
  relations, filler words). The T2I model never sees them; the rewriter learns casual -> canonical.

:func:`parse_prompt` reads either phrasing back into a :class:`Scene`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

SHAPES = ("circle", "square", "triangle")
COLORS = ("red", "green", "blue", "yellow")
STYLES = ("filled", "outlined")
RELATIONS = ("left", "right", "above", "below")
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}

# Canonical wording of each relation: "A <phrase> B".
RELATION_PHRASES = {
    "left": "to the left of",
    "right": "to the right of",
    "above": "above",
    "below": "below",
}
OUTLINE_SUFFIX = "in outline style"

# Casual vocabulary (never shown to the T2I model).
CASUAL_SHAPES = {
    "circle": ["circle", "ball", "dot", "disc", "round shape"],
    "square": ["square", "box", "block", "tile", "cube"],
    "triangle": ["triangle", "pyramid", "wedge", "triangular shape"],
}
CASUAL_SHAPES_PLURAL = {
    "circle": ["circles", "balls", "dots", "discs"],
    "square": ["squares", "boxes", "blocks", "tiles"],
    "triangle": ["triangles", "pyramids", "wedges"],
}
CASUAL_COLORS = {
    "red": ["red", "crimson", "scarlet"],
    "green": ["green", "lime", "emerald"],
    "blue": ["blue", "navy", "azure"],
    "yellow": ["yellow", "golden", "lemon"],
}
CASUAL_OUTLINE = ["hollow", "outlined", "just the outline", "line art", "not filled in", "outline only"]
CASUAL_FILLED = ["", "", "", "solid", "filled in"]
CASUAL_PREFIXES = [
    "", "", "", "please draw ", "draw ", "i want ", "can you make ", "a picture of ", "an image with ",
    "show me ", "generate ", "make me ",
]
CASUAL_SUFFIXES = ["", "", "", " please", " thanks", " on white", " simple", " for my kid"]
CASUAL_COUNTS = {
    2: ["two", "2", "a pair of", "a couple of"],
    3: ["three", "3", "a trio of", "three little"],
}


@dataclass(frozen=True)
class ObjectSpec:
    color: str
    shape: str

    def words(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """Ground truth of a prompt.

    ``objects`` is in layout order for relation scenes: ``objects[0]`` is the subject ("A" in "A left of B").
    ``relation`` is ``None`` unless there are two different objects; ``count`` scenes repeat one object.
    """

    objects: tuple[ObjectSpec, ...]
    relation: str | None = None
    style: str = "filled"
    kind: str = field(default="single")  # "single" | "relation" | "count"

    def __post_init__(self):
        if not 1 <= len(self.objects) <= 3:
            raise ValueError(f"a scene has 1-3 objects, got {len(self.objects)}")
        for o in self.objects:
            if o.color not in COLORS or o.shape not in SHAPES:
                raise ValueError(f"unknown object {o}; colours {COLORS}, shapes {SHAPES}")
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; expected one of {STYLES}")
        if self.kind == "relation":
            if len(self.objects) != 2 or self.relation not in RELATIONS:
                raise ValueError("a relation scene has 2 objects and a relation in " + str(RELATIONS))
        elif self.relation is not None:
            raise ValueError("only relation scenes carry a relation")
        if self.kind == "count" and (len(self.objects) < 2 or len(set(self.objects)) != 1):
            raise ValueError("a count scene repeats one object 2 or 3 times")

    @property
    def count(self) -> int:
        return len(self.objects)

    def normalized(self) -> "Scene":
        """Equivalent scene with relation in {left, above} ("B right of A" == "A left of B")."""
        if self.relation == "right":
            return Scene(self.objects[::-1], "left", self.style, "relation")
        if self.relation == "below":
            return Scene(self.objects[::-1], "above", self.style, "relation")
        return self

    def equivalent(self, other: "Scene") -> bool:
        return self.normalized() == other.normalized()


# ----------------------------------------------------------------------------------------- phrasing
def canonical_caption(scene: Scene) -> str:
    """The model-preferred caption; the T2I model is trained on exactly these."""
    if scene.kind == "count":
        o = scene.objects[0]
        text = f"{COUNT_WORDS[scene.count]} {o.color} {o.shape}s"
    elif scene.kind == "relation":
        a, b = scene.objects
        text = f"a {a.words()} {RELATION_PHRASES[scene.relation]} a {b.words()}"
    else:
        text = f"a {scene.objects[0].words()}"
    if scene.style == "outlined":
        text += f" {OUTLINE_SUFFIX}"
    return text


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# ---------------------------------------------------------------------------------- held-out splits
# Whole pieces of the casual generator that the rewriter's training pairs never contain (``split="train"``), so that
# generalisation to unseen phrasings is measured on them alone (issue 12 item 2). ``parse_prompt`` still reads them:
# the parser, not the generator, is the ground truth of a prompt's scene. ``split="all"`` is the generator as it was
# before the splits existed (same output for the same rng), so CLIP/quality data and shipped benchmarks are unchanged.
SPLITS = ("all", "train", "heldout_templates", "heldout_synonyms")
HELDOUT_TEMPLATES = {
    "prefixes": ("can you make ", "an image with "),
    "suffixes": (" for my kid",),
    "relation_frames": ("with_on_its",),  # "{b} with {a} on its left" / "... on its right" (reversed mention order)
}
HELDOUT_SYNONYMS = {
    "shapes": ("disc", "tile", "wedge", "discs", "tiles", "wedges"),
    "colors": ("scarlet", "emerald", "azure", "lemon"),
    "relations": ("beneath", "on top of", "on the left of", "on the right of"),
}
_HELDOUT_TEMPLATE_SET = frozenset(t for ts in HELDOUT_TEMPLATES.values() for t in ts)
_HELDOUT_SYNONYM_SET = frozenset(w for ws in HELDOUT_SYNONYMS.values() for w in ws)


class _Picker:
    """``rng.choice`` restricted to what a split allows; records which held-out pieces were used.

    With both kinds allowed it is exactly ``rng.choice(options)`` (same draw), which keeps ``split="all"``
    identical to the generator before the splits existed.
    """

    def __init__(self, rng: random.Random, split: str):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        self.rng = rng
        self.templates_ok = split in ("all", "heldout_templates")
        self.synonyms_ok = split in ("all", "heldout_synonyms")
        self.used_templates: list[str] = []
        self.used_synonyms: list[str] = []

    def _allowed(self, option, template, synonym) -> bool:
        return ((self.templates_ok or template not in _HELDOUT_TEMPLATE_SET)
                and (self.synonyms_ok or synonym not in _HELDOUT_SYNONYM_SET))

    def choice(self, options, templates=None, synonyms=None):
        """Pick one of ``options``; ``templates``/``synonyms`` give each option's template id / synonym word."""
        templates = templates or list(options)
        synonyms = synonyms or list(options)
        allowed = [i for i in range(len(options)) if self._allowed(options[i], templates[i], synonyms[i])]
        i = self.rng.choice(allowed)
        if templates[i] in _HELDOUT_TEMPLATE_SET:
            self.used_templates.append(templates[i])
        if synonyms[i] in _HELDOUT_SYNONYM_SET:
            self.used_synonyms.append(synonyms[i])
        return options[i]


def _casual_object(o: ObjectSpec, pick: _Picker, article: bool) -> str:
    color = pick.choice(CASUAL_COLORS[o.color])
    shape = pick.choice(CASUAL_SHAPES[o.shape])
    phrase = f"{color} {shape}"
    if article and pick.rng.random() < 0.6:
        phrase = f"{_article(phrase)} {phrase}"
    return phrase


def _relation_forms(a: str, b: str, relation: str) -> list[tuple[str, str, str]]:
    """(text, template id, relation word) of every casual phrasing of "a REL b", possibly reversed or vague."""
    sa = a.split()[-1]
    forms = {
        "left": [(f"{a} left of {b}", "a_rel_b", "left of"), (f"{a} on the left of {b}", "a_rel_b", "on the left of"),
                 (f"{b} with {a} on its left", "with_on_its", "on its left"),
                 (f"{a} and {b}, {sa} on the left", "and_side", "on the left"),
                 (f"{b} to the right of {a}", "b_rel_a", "to the right of")],
        "right": [(f"{a} right of {b}", "a_rel_b", "right of"),
                  (f"{a} on the right of {b}", "a_rel_b", "on the right of"),
                  (f"{b} with {a} on its right", "with_on_its", "on its right"),
                  (f"{a} and {b}, {sa} on the right", "and_side", "on the right"),
                  (f"{b} to the left of {a}", "b_rel_a", "to the left of")],
        "above": [(f"{a} over {b}", "a_rel_b", "over"), (f"{a} on top of {b}", "a_rel_b", "on top of"),
                  (f"{b} under {a}", "b_rel_a", "under"), (f"{a} sitting above {b}", "a_rel_b", "sitting above"),
                  (f"{b} below {a}", "b_rel_a", "below")],
        "below": [(f"{a} under {b}", "a_rel_b", "under"), (f"{a} beneath {b}", "a_rel_b", "beneath"),
                  (f"{b} over {a}", "b_rel_a", "over"), (f"{a} underneath {b}", "a_rel_b", "underneath"),
                  (f"{b} on top of {a}", "b_rel_a", "on top of")],
    }
    return forms[relation]


def _casual_relation(a: str, b: str, relation: str, pick: _Picker) -> str:
    forms = _relation_forms(a, b, relation)
    return pick.choice([f[0] for f in forms], [f[1] for f in forms], [f[2] for f in forms])


def casual_caption(scene: Scene, rng: random.Random, split: str = "all") -> str:
    """A random casual phrasing of ``scene`` (synonyms, word order, fillers); parseable by parse_prompt.

    ``split`` (see ``SPLITS``): ``"all"`` the whole generator (the default, unchanged); ``"train"`` never uses a
    piece of ``HELDOUT_TEMPLATES`` or ``HELDOUT_SYNONYMS``; ``"heldout_templates"`` always uses at least one held-out
    template and no held-out synonym; ``"heldout_synonyms"`` the reverse.
    """
    if split in ("heldout_templates", "heldout_synonyms"):
        for _ in range(1000):  # rejection: redraw until a held-out piece of the asked kind was used
            text, pick = _casual_caption(scene, rng, split)
            if pick.used_templates if split == "heldout_templates" else pick.used_synonyms:
                return text
        raise ValueError(f"no {split} phrasing found for {scene}; the held-out lists do not cover this scene")
    return _casual_caption(scene, rng, split)[0]


def _casual_caption(scene: Scene, rng: random.Random, split: str) -> tuple[str, _Picker]:
    pick = _Picker(rng, split)
    article = rng.random() < 0.7
    if scene.kind == "count":
        o = scene.objects[0]
        n = rng.choice(CASUAL_COUNTS[scene.count])
        body = f"{n} {pick.choice(CASUAL_COLORS[o.color])} {pick.choice(CASUAL_SHAPES_PLURAL[o.shape])}"
    elif scene.kind == "relation":
        a = _casual_object(scene.objects[0], pick, article)
        b = _casual_object(scene.objects[1], pick, article)
        body = _casual_relation(a, b, scene.relation, pick)
        while a.split()[-1] == b.split()[-1] and ", " in body:  # "ball and ball, ball on the left" is ambiguous
            body = _casual_relation(a, b, scene.relation, pick)
    else:
        body = _casual_object(scene.objects[0], pick, article)
    if scene.style == "outlined":
        style = rng.choice(CASUAL_OUTLINE)
        body = f"{style} {body}" if rng.random() < 0.4 and style in ("hollow", "outlined") else f"{body}, {style}"
    else:
        filled = rng.choice(CASUAL_FILLED)
        if filled:
            body = f"{body}, {filled}"
    text = pick.choice(CASUAL_PREFIXES) + body + pick.choice(CASUAL_SUFFIXES)
    return re.sub(r"\s+", " ", text).strip(), pick


# ------------------------------------------------------------------------------------------ sampling
def all_objects() -> list[ObjectSpec]:
    return [ObjectSpec(c, s) for c in COLORS for s in SHAPES]


def random_scene(rng: random.Random, p_single: float = 0.35, p_relation: float = 0.45) -> Scene:
    """Sample a scene: single object, two-object relation, or a count of 2-3 identical objects."""
    style = rng.choice(STYLES)
    objs = all_objects()
    u = rng.random()
    if u < p_single:
        return Scene((rng.choice(objs),), None, style, "single")
    if u < p_single + p_relation:
        a, b = rng.sample(objs, 2)
        return Scene((a, b), rng.choice(RELATIONS), style, "relation")
    o = rng.choice(objs)
    return Scene((o,) * rng.choice((2, 3)), None, style, "count")


# ------------------------------------------------------------------------------------------- parsing
class PromptParseError(ValueError):
    """A prompt that the shapes grammar cannot read; the message says what is missing."""


_NUMBERS = {"one": 1, "1": 1, "two": 2, "2": 2, "three": 3, "3": 3, "pair": 2, "couple": 2, "trio": 3}
_COLOR_WORDS = {w: c for c, ws in CASUAL_COLORS.items() for w in ws}
_SHAPE_WORDS = {}
for _s, _ws in list(CASUAL_SHAPES.items()) + list(CASUAL_SHAPES_PLURAL.items()):
    for _w in _ws:
        _SHAPE_WORDS[_w.split()[0]] = _s  # "round shape" -> "round", "triangular shape" -> "triangular"
_SHAPE_WORDS.update({"triangular": "triangle", "round": "circle", "circles": "circle", "squares": "square",
                     "triangles": "triangle"})
_OUTLINE_MARKERS = ("outline", "outlined", "hollow", "line art", "not filled")
# Relation cues: (regex, relation, reversed?) where reversed means the first-mentioned object is the reference.
_RELATION_CUES = [
    (r"\bto the left of\b|\bon the left of\b|\bleft of\b", "left", False),
    (r"\bto the right of\b|\bon the right of\b|\bright of\b", "right", False),
    (r"\bwith \S+ on its left\b|\bwith .+ on its left\b", "left", True),
    (r"\bwith .+ on its right\b", "right", True),
    (r"\bon the left\b", "left", None),
    (r"\bon the right\b", "right", None),
    (r"\bon top of\b|\bover\b|\babove\b|\bsitting above\b", "above", False),
    (r"\bunderneath\b|\bbeneath\b|\bunder\b|\bbelow\b", "below", False),
]


def _find_objects(text: str) -> list[tuple[int, ObjectSpec, int]]:
    """(position, object, count) for every "[number] colour shape" in text, in order."""
    tokens = re.findall(r"[a-z0-9]+", text)
    found = []
    for i, tok in enumerate(tokens):
        if tok in _SHAPE_WORDS and i > 0:
            # colour is the closest colour word within 2 tokens before the shape ("red round shape")
            if tokens[i - 1] not in _COLOR_WORDS:  # "<colour> <shape>", adjacent
                continue
            color, cpos = _COLOR_WORDS[tokens[i - 1]], i - 1
            count = 1
            for j in range(max(0, cpos - 3), cpos):
                if tokens[j] in _NUMBERS:
                    count = _NUMBERS[tokens[j]]
            found.append((i, ObjectSpec(color, _SHAPE_WORDS[tok]), count))
    return found


def count_mentioned_objects(text: str) -> int:
    """Objects a prompt mentions ("<colour> <shape>" mentions, times their number word), canonical or casual."""
    return sum(count for _, _, count in _find_objects(text.lower()))


def parse_prompt(prompt: str) -> Scene:
    """Read a canonical or casual prompt back into a :class:`Scene`.

    Raises :class:`PromptParseError` naming what could not be read (no object, unknown relation, ...).
    """
    text = prompt.lower().strip()
    if not text:
        raise PromptParseError("empty prompt")
    style = "outlined" if any(m in text for m in _OUTLINE_MARKERS) else "filled"
    objects = _find_objects(text)
    if not objects:
        raise PromptParseError(
            f"no '<colour> <shape>' found in {prompt!r}; colours {COLORS}, shapes {SHAPES}"
        )
    if len(objects) == 1:
        _, obj, count = objects[0]
        if count == 1:
            return Scene((obj,), None, style, "single")
        return Scene((obj,) * count, None, style, "count")
    if len(objects) > 2:
        raise PromptParseError(f"more than two described objects in {prompt!r}; the grammar has at most two")
    (_, a, ca), (_, b, cb) = objects
    if ca != 1 or cb != 1:
        raise PromptParseError(f"counts combined with a relation are not in the grammar: {prompt!r}")
    if a == b:
        raise PromptParseError(f"a relation needs two different objects: {prompt!r}")
    for pattern, relation, reversed_ in _RELATION_CUES:
        if re.search(pattern, text):
            if reversed_ is None:
                # "A and B, <shape> on the left": the named shape is the one on the left/right.
                tail = text[text.rfind(",") + 1:] if "," in text else text
                names = [w for w in re.findall(r"[a-z]+", tail) if w in _SHAPE_WORDS]
                subject_is_b = bool(names) and _SHAPE_WORDS[names[0]] == b.shape and a.shape != b.shape
                return Scene((b, a) if subject_is_b else (a, b), relation, style, "relation")
            return Scene((b, a) if reversed_ else (a, b), relation, style, "relation")
    raise PromptParseError(
        f"two objects but no relation in {prompt!r}; use one of: to the left of, to the right of, above, below"
    )


def scene_set(kind: str, n: int, seed: int) -> list[Scene]:
    """A fixed seeded list of ``n`` scenes of one kind ("single", "relation", "count")."""
    rng = random.Random(seed)
    probs = {"single": (1.0, 0.0), "relation": (0.0, 1.0), "count": (0.0, 0.0)}[kind]
    return [random_scene(rng, *probs) for _ in range(n)]
