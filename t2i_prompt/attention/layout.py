"""Rule-based layout planner: spatial phrases in a prompt -> regions, so users need not type boxes.

RAG plans layouts with an LLM (``RAG_MLLM.py``); this covers the common two-object patterns by rules:

* "A on the left and B on the right" (also right/left, "at the top/bottom", "on top ... at the bottom")
* "A to the left of B", "A left of B", "A to the right of B", "A next to B", "A beside B"
* "A above B", "A over B", "A on top of B", "A below B", "A under B", "A beneath B"
* "A, B and C" / "A and B" (side by side, left to right; the whole prompt) only with ``side_by_side=True``

Otherwise text after the first comma ("..., in a park, oil painting") is global context: it stays in the base prompt only.
The base prompt is always the whole prompt. Boxes are image halves (x0, y0, x1, y1 fractions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .masks import Region

__all__ = ["LayoutPlan", "plan_layout"]

LEFT, RIGHT = (0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)
TOP, BOTTOM = (0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 1.0)
_SIDE = {"left": LEFT, "right": RIGHT, "top": TOP, "bottom": BOTTOM}


@dataclass
class LayoutPlan:
    """Base prompt plus one region per object, and which rule produced them."""

    base_prompt: str
    regions: list[Region]
    rule: str


def _clean(phrase: str) -> str:
    return re.sub(r"\s+", " ", phrase).strip(" ,.;")


_PLACED = re.compile(
    r"^(?P<a>.+?)\s+(?:on|at|to)\s+the\s+(?P<sa>left|right|top|bottom)(?:\s+side)?\s*,?\s+and\s+"
    r"(?P<b>.+?)\s+(?:on|at|to)\s+the\s+(?P<sb>left|right|top|bottom)(?:\s+side)?$", re.IGNORECASE)
_ON_TOP = re.compile(r"^(?P<a>.+?)\s+on\s+top\s*,?\s+and\s+(?P<b>.+?)\s+(?:at|on)\s+the\s+bottom$", re.IGNORECASE)
_RELATIONS = [  # (pattern, box of A, box of B)
    (re.compile(r"^(?P<a>.+?)\s+(?:to\s+the\s+|on\s+the\s+)?left\s+of\s+(?P<b>.+)$", re.IGNORECASE), LEFT, RIGHT),
    (re.compile(r"^(?P<a>.+?)\s+(?:to\s+the\s+|on\s+the\s+)?right\s+of\s+(?P<b>.+)$", re.IGNORECASE), RIGHT, LEFT),
    (re.compile(r"^(?P<a>.+?)\s+(?:next\s+to|beside)\s+(?P<b>.+)$", re.IGNORECASE), LEFT, RIGHT),
    (re.compile(r"^(?P<a>.+?)\s+(?:above|over|on\s+top\s+of)\s+(?P<b>.+)$", re.IGNORECASE), TOP, BOTTOM),
    (re.compile(r"^(?P<a>.+?)\s+(?:below|under|beneath|underneath)\s+(?P<b>.+)$", re.IGNORECASE), BOTTOM, TOP),
]


# A trailing global style phrase ("... in outline style", "... in watercolor style") describes every object.
_STYLE_SUFFIX = re.compile(r"\s+in\s+(?:the\s+)?[\w\s-]+?\s+style$", re.IGNORECASE)


def plan_layout(prompt: str, side_by_side: bool = False) -> LayoutPlan:
    """Regions for a prompt with a spatial phrase; ``ValueError`` when no rule matches (then pass boxes).

    A trailing "in ... style" phrase is global: it is removed before matching and appended to every region prompt.
    """
    text = _clean(prompt)
    style = _STYLE_SUFFIX.search(text)
    if style is None:
        return _plan(prompt, text, side_by_side)
    plan = _plan(prompt, text[: style.start()], side_by_side)
    suffix = style.group(0).strip()
    plan.regions = [Region(f"{r.prompt} {suffix}", box=r.box, mask=r.mask, negative_prompt=r.negative_prompt)
                    for r in plan.regions]
    return plan


def _plan(prompt: str, text: str, side_by_side: bool) -> LayoutPlan:
    """The rules on ``text`` (the prompt without a global style phrase); the plan's base prompt is ``prompt``."""
    head = _clean(text.split(",")[0])
    m = _PLACED.match(head)
    if m:
        sa, sb = m["sa"].lower(), m["sb"].lower()
        if sa == sb:
            raise ValueError(f"Both objects of {prompt!r} are placed on the {sa}; give boxes with --region instead.")
        return LayoutPlan(prompt, [Region(_clean(m["a"]), box=_SIDE[sa]), Region(_clean(m["b"]), box=_SIDE[sb])],
                          "placed")
    m = _ON_TOP.match(head)
    if m:
        return LayoutPlan(prompt, [Region(_clean(m["a"]), box=TOP), Region(_clean(m["b"]), box=BOTTOM)], "placed")
    for pattern, box_a, box_b in _RELATIONS:
        m = pattern.match(head)
        if m:
            return LayoutPlan(prompt, [Region(_clean(m["a"]), box=box_a), Region(_clean(m["b"]), box=box_b)],
                              "relation")
    if side_by_side:
        parts = [_clean(p) for p in re.split(r"\s*,\s*|\s+and\s+", text) if _clean(p)]
        if len(parts) >= 2:
            n = len(parts)
            return LayoutPlan(prompt, [Region(p, box=(i / n, 0.0, (i + 1) / n, 1.0)) for i, p in enumerate(parts)],
                              "side_by_side")
    raise ValueError(
        f"No layout rule matches {prompt!r}; use phrases like 'A on the left and B on the right', "
        "'A to the left of B' or 'A above B', or give boxes with --region 'x0,y0,x1,y1:prompt'."
    )
