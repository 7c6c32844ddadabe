"""Rewards: ``score(prompts, images) -> (N,)`` tensors with ``name``, ``value_range``, ``higher_is_better``.

CLIP score (3 scales, clamp, prefix), the LAION aesthetic predictor, VP-Score (ImageReward-style BLIP), text
similarity (MiniLM), weighted composites and the Promptist reward. CLIP-based rewards built from the same model
name share one ``CLIPEmbedder``, so each image goes through the vision tower once.
"""

from t2i_prompt.rewards.aesthetic import AestheticMLP, AestheticReward, save_predictor
from t2i_prompt.rewards.base import Reward, check_pairs, load_images
from t2i_prompt.rewards.clip_model import CLIPEmbedder
from t2i_prompt.rewards.clip_score import CLIP_SCORE_PRESETS, CLIPScore
from t2i_prompt.rewards.composite import CompositeReward, PromptistReward, promptist_relevance
from t2i_prompt.rewards.text_similarity import TextSimilarity
from t2i_prompt.rewards.vp_score import VPScore

__all__ = [
    "AestheticMLP", "AestheticReward", "CLIPEmbedder", "CLIPScore", "CLIP_SCORE_PRESETS", "CompositeReward",
    "PromptistReward", "Reward", "TextSimilarity", "VPScore", "check_pairs", "load_images", "promptist_relevance",
    "save_predictor",
]
