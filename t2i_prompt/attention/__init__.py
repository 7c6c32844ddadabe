"""Attention hooks for diffusers UNets: one controller protocol for every method.

``AttentionController`` installs ``HookedAttnProcessor`` on the layers hooks want; hooks: ``AttentionStore``
(map capture), ``LPAHook`` (Local Prompt Adaptation), ``RegionHook`` (RAG hard binding + soft refinement),
``LatentRecorder`` / ``RepaintHook`` / ``repaint`` (region repainting); ``plan_layout`` turns spatial phrases into
regions.
"""

from .controller import AttentionContext, AttentionController, AttentionHook, LayerInfo
from .layout import LayoutPlan, plan_layout
from .lpa import PRESETS as LPA_PRESETS
from .lpa import LPAHook, parse_prompt
from .regions import LatentRecorder, Region, RegionHook, RepaintHook, repaint
from .store import AttentionStore, save_heatmaps
from .tokens import token_indices

__all__ = [
    "AttentionContext", "AttentionController", "AttentionHook", "LayerInfo", "LayoutPlan", "plan_layout",
    "LPA_PRESETS", "LPAHook", "parse_prompt", "LatentRecorder", "Region", "RegionHook", "RepaintHook", "repaint",
    "AttentionStore", "save_heatmaps", "token_indices",
]
