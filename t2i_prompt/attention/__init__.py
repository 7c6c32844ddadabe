"""Attention hooks for diffusers UNets: one controller protocol for every method.

``AttentionController`` installs ``HookedAttnProcessor`` on the layers hooks want; hooks: ``AttentionStore``
(map capture), ``LPAHook`` (Local Prompt Adaptation), ``RegionHook`` (RAG hard binding + soft refinement),
``PromptToPromptHook`` / ``LocalBlend`` (prompt-to-prompt editing);
``plan_layout`` turns spatial phrases into regions; ``recipes.HookSpec`` turns "what to steer with" into hooks.
Repainting one region lives in ``t2i_prompt.edit``.
"""

from .controller import AttentionContext, AttentionController, AttentionHook, LayerInfo
from .layout import LayoutPlan, plan_layout
from .lpa import PRESETS as LPA_PRESETS
from .lpa import LPAHook, split_style_prompt
from .masks import Region
from .prompt2prompt import LocalBlend, PromptToPromptHook
from .regions import RegionHook
from .store import AttentionStore, SelfAttentionStore, save_heatmaps
from .tokens import token_indices

__all__ = [
    "AttentionContext", "AttentionController", "AttentionHook", "LayerInfo", "LayoutPlan", "plan_layout",
    "LPA_PRESETS", "LPAHook", "split_style_prompt", "Region", "RegionHook", "AttentionStore", "save_heatmaps",
    "token_indices", "PromptToPromptHook", "LocalBlend", "SelfAttentionStore",
]
