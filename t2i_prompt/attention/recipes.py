"""What to steer with -> attention hooks: the one place that turns settings into ``AttentionHook`` lists.

A ``HookSpec`` holds LPA (preset + timestep window), regions (given boxes and/or planned from the prompt's spatial
phrase), region binding settings (hb_steps, sr_delta, sr_steps) and the words whose attention maps are captured.
The CLI, the shapes benchmarks, the app and the evaluators build hooks only through ``HookSpec.build(prompt)``, so
one flag means one thing everywhere; ``to_dict`` is what a generation records to be reproduced from its metadata.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .controller import AttentionHook
from .lpa import DEFAULT_WINDOW, PRESETS, LPAHook, check_window
from .masks import Region
from .regions import SR_SOURCES

__all__ = ["HookSpec", "parse_region", "save_attention_maps", "NoLayoutError"]

SR_STEPS = ("all", "after_hb", "none")



class NoLayoutError(ValueError):
    """``auto_regions`` was asked for a prompt without a spatial phrase the layout planner can place."""


def parse_region(spec: str) -> Region:
    """``"x0,y0,x1,y1:prompt"`` (image fractions) -> ``Region``; a clear ValueError for anything else."""
    box, sep, prompt = str(spec).partition(":")
    if not sep or not prompt.strip():
        raise ValueError(f"--region {spec!r} must look like 'x0,y0,x1,y1:prompt', e.g. '0,0,0.5,1:a red cat'.")
    try:
        coords = [float(v) for v in box.split(",")]
    except ValueError as e:
        raise ValueError(f"--region {spec!r}: the box must be four numbers x0,y0,x1,y1 (image fractions).") from e
    if len(coords) != 4 or not all(math.isfinite(c) for c in coords):
        raise ValueError(f"--region {spec!r}: the box must be four finite numbers x0,y0,x1,y1 (image fractions).")
    return Region(prompt.strip(), box=coords)


@dataclass
class HookSpec:
    """Settings of every steering method; ``build(prompt)`` gives the hooks for one prompt.

    ``lpa``: an LPA preset (``lpa_late_only`` ...) or None; ``lpa_window``: (start, end) in timestep units.
    ``regions``: ``Region``s or ``"x0,y0,x1,y1:prompt"`` strings; ``auto_regions``: also plan regions from the
    prompt (``plan_layout``); ``hb_steps`` / ``sr_delta`` / ``sr_steps``: RAG hard binding and soft refinement.
    ``capture``: words whose cross-attention maps an ``AttentionStore`` keeps (heatmaps).
    """

    lpa: str | None = None
    lpa_window: tuple[float, float] | None = None
    regions: list = field(default_factory=list)
    auto_regions: bool = False
    hb_steps: int = 2
    sr_delta: float = 1.0
    sr_steps: str = "all"
    sr_source: str | None = None  # None: the model's default (attention/regions.py model_sr_source)
    capture: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.lpa is not None and self.lpa not in PRESETS:
            raise ValueError(f"Unknown LPA preset {self.lpa!r}; valid presets: {', '.join(PRESETS)}.")
        if self.lpa_window is not None:
            window = check_window(self.lpa_window)
            if not all(math.isfinite(t) and 0 <= t <= 1000 for t in window):
                raise ValueError(f"LPA window {self.lpa_window!r} must lie in [0, 1000] timestep units, e.g. 300 650.")
            self.lpa_window = window
        self.regions = [r if isinstance(r, Region) else parse_region(r) for r in self.regions]
        if isinstance(self.hb_steps, bool) or not isinstance(self.hb_steps, int) or self.hb_steps < 0:
            raise ValueError(f"hb_steps must be an integer >= 0 (hard-binding steps), got {self.hb_steps!r}.")
        if not (isinstance(self.sr_delta, (int, float)) and 0.0 <= self.sr_delta <= 1.0):
            raise ValueError(f"sr_delta must be a number in [0, 1] (soft-refinement weight), got {self.sr_delta!r}.")
        if self.sr_steps not in SR_STEPS:
            raise ValueError(f"sr_steps must be one of {SR_STEPS}, got {self.sr_steps!r}.")
        if self.sr_source is not None and self.sr_source not in SR_SOURCES:
            raise ValueError(f"sr_source must be one of {SR_SOURCES} (what soft refinement attends to), "
                             f"got {self.sr_source!r}.")
        self.capture = [str(w) for w in self.capture]
        if any(not w.strip() for w in self.capture):
            raise ValueError(f"attention-map words must be non-empty, got {self.capture!r}.")

    @property
    def active(self) -> bool:
        """True when the spec asks for any hook."""
        return bool(self.lpa or self.lpa_window or self.regions or self.auto_regions or self.capture)

    def plan_regions(self, prompt: str) -> list[Region]:
        """The regions for ``prompt``: planned ones first (when ``auto_regions``), then the given boxes (later win
        overlaps). ``NoLayoutError`` when planning was asked for and the prompt has no spatial phrase."""
        from .layout import plan_layout

        planned = []
        if self.auto_regions:
            try:
                planned = plan_layout(prompt).regions
            except ValueError as e:
                raise NoLayoutError(f"--auto-regions: {e}") from e
        return planned + list(self.regions)

    def build(self, prompt: str) -> list[AttentionHook]:
        """The hooks for one prompt: LPA, region binding, attention-map capture (in that order)."""
        from .regions import RegionHook
        from .store import AttentionStore

        for word in self.capture:  # the same check AttentionStore makes on tokens, before any model loads
            if word.lower() not in prompt.lower():
                raise ValueError(f"{word!r} does not occur in the prompt {prompt!r}; pass a word or phrase from "
                                 "the prompt.")
        hooks: list[AttentionHook] = []
        if self.lpa or self.lpa_window:
            hooks.append(LPAHook(self.lpa or "lpa_late_only", window=self.lpa_window or DEFAULT_WINDOW))
        regions = self.plan_regions(prompt)
        if regions:
            hooks.append(RegionHook(regions, hb_steps=self.hb_steps, sr_delta=self.sr_delta, sr_steps=self.sr_steps,
                                    sr_source=self.sr_source))
        if self.capture:
            hooks.append(AttentionStore(self.capture))
        return hooks

    def factory(self, unplanned: list[str] | None = None) -> Callable[[str], list[AttentionHook]] | None:
        """``prompt -> hooks`` for batch runs, or None when the spec is empty. A prompt the planner cannot place
        runs with the other hooks only and is appended to ``unplanned`` (benchmarks report the count)."""
        if not self.active:
            return None

        def build(prompt: str) -> list[AttentionHook]:
            try:
                return self.build(prompt)
            except NoLayoutError:
                if unplanned is None:
                    raise
                unplanned.append(prompt)
                return replace(self, auto_regions=False).build(prompt)

        return build

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (regions as ``x0,y0,x1,y1:prompt`` strings); ``HookSpec.from_dict`` rebuilds them."""
        out = asdict(self)
        out["lpa_window"] = list(self.lpa_window) if self.lpa_window else None
        regions = []
        for r in self.regions:
            if r.box is None:
                raise ValueError(f"region {r.prompt!r} is a mask; only box regions can be recorded as text.")
            regions.append(",".join(f"{v:g}" for v in r.box) + ":" + r.prompt)
        out["regions"] = regions
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HookSpec":
        data = dict(data or {})
        if data.get("lpa_window") is not None:
            data["lpa_window"] = tuple(data["lpa_window"])
        return cls(**data)


def save_attention_maps(hooks: Sequence, images: Sequence, out_dir: str | os.PathLike) -> list[Path]:
    """Heatmap PNGs (``attn_NNN_<word>.png``) of every ``AttentionStore`` among ``hooks``, one per image and word."""
    from .store import AttentionStore, save_heatmaps

    paths: list[Path] = []
    for hook in hooks:
        if isinstance(hook, AttentionStore):
            for i, image in enumerate(images):
                paths += save_heatmaps(image, hook.word_maps(i), out_dir, prefix=f"attn_{i:03d}")
    return paths
