"""Weighted sums of rewards, and the Promptist reward (Hao et al., NeurIPS 2023; microsoft/LMOps:promptist).

Promptist, for a plain prompt x, its rewrite y, images i_y of y and images i_x of x:
``rel = min(20 * max(cos_CLIP(x, i_y), 0) - 5.6, 0)`` (the plain x, not y, is the text; no logit scale) and
``aes = g_aes(i_y) - mean_j g_aes(i_x_j)``; the reward is ``rel + aes`` per image of y (the paper averages it
over the 2 images of y). When CLIP score and the aesthetic predictor share one ``CLIPEmbedder`` every image goes
through the vision tower once.
"""

from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image

from t2i_prompt.rewards.aesthetic import AestheticReward
from t2i_prompt.rewards.base import Reward, check_pairs
from t2i_prompt.rewards.clip_score import CLIPScore

PROMPTIST_REL_SLOPE = 20.0
PROMPTIST_REL_OFFSET = 5.6  # relevance saturates at cos >= 0.28


def weighted_sum(values: dict, weights: dict):
    """``sum_k weights[k] * values[k]`` over the keys of ``weights`` (floats or tensors): the one composite rule."""
    missing = [k for k in weights if k not in values]
    if missing:
        raise ValueError(f"composite needs values for {missing}; got {sorted(values)}.")
    return sum(w * values[k] for k, w in weights.items())


class CompositeReward:
    """``sum_i w_i * reward_i.score(prompts, images)``; every term must agree on ``higher_is_better``."""

    name = "composite"
    higher_is_better = True

    def __init__(self, terms: dict[str, tuple[Reward, float]]):
        if not terms:
            raise ValueError("a composite reward needs at least one (reward, weight) term.")
        for key, (reward, weight) in terms.items():
            if not reward.higher_is_better:
                raise ValueError(f"term {key!r} is lower-is-better; negate it before adding it to a composite.")
        self.terms = dict(terms)
        lo = sum(min(w * r.value_range[0], w * r.value_range[1]) for r, w in self.terms.values())
        hi = sum(max(w * r.value_range[0], w * r.value_range[1]) for r, w in self.terms.values())
        self.value_range = (lo, hi)

    def score_terms(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        """Each term's unweighted score, keyed by term name."""
        return {key: reward.score(prompts, images) for key, (reward, _) in self.terms.items()}

    def score(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> torch.Tensor:
        return weighted_sum(self.score_terms(prompts, images), {k: w for k, (_, w) in self.terms.items()})


def promptist_relevance(cos: torch.Tensor) -> torch.Tensor:
    """``min(20 * max(cos, 0) - 5.6, 0)``: 0 once the image matches the plain prompt well enough."""
    return (PROMPTIST_REL_SLOPE * cos.clamp_min(0.0) - PROMPTIST_REL_OFFSET).clamp_max(0.0)


class PromptistReward:
    """``score(plain_prompts, refined_images, plain_images=None) -> rel + aes`` per refined image.

    ``plain_images[i]`` is the list of images generated from ``plain_prompts[i]`` (or one image); its mean
    aesthetic score is the baseline. Without ``plain_images`` the baseline is 0 (``rel + aes(y)``).
    """

    name = "promptist"
    value_range = (-PROMPTIST_REL_OFFSET - 10.0, 10.0)  # rel in [-5.6, 0], aes delta nominally within +-9
    higher_is_better = True

    def __init__(self, clip_score: CLIPScore, aesthetic: AestheticReward):
        if clip_score.scale != 1.0:
            raise ValueError(f"Promptist relevance uses the raw cosine; build CLIPScore with scale=1, got {clip_score.scale}.")
        self.clip_score = clip_score
        self.aesthetic = aesthetic

    @classmethod
    def from_pretrained(cls, clip: str | None = "shapes:clip", aesthetic: str | None = "shapes:quality", device=None):
        """Promptist used OpenAI ViT-L/14 and ``sac+logos+ava1-l14-linearMSE.pth``; the default is the shapes world."""
        clip_score = CLIPScore.from_pretrained(clip, preset="promptist", device=device)
        return cls(clip_score, AestheticReward.from_pretrained(aesthetic, clip=clip_score.clip))

    def score_terms(self, prompts, images, plain_images=None) -> dict[str, torch.Tensor]:
        """``rel``, ``aes`` (delta to the baseline) and ``reward`` per refined image."""
        check_pairs(prompts, images)
        rel = promptist_relevance(self.clip_score.score(prompts, images))
        aes = self.aesthetic.score(prompts, images)
        if plain_images is not None:
            aes = aes - self.baseline(prompts, plain_images)
        return {"rel": rel, "aes": aes, "reward": rel + aes}

    def baseline(self, prompts: Sequence[str], plain_images) -> torch.Tensor:
        """Mean aesthetic score of each plain prompt's images, ``(N,)``."""
        groups = [g if isinstance(g, (list, tuple)) else [g] for g in plain_images]
        if len(groups) != len(prompts):
            raise ValueError(f"plain_images has {len(groups)} group(s) for {len(prompts)} prompt(s); give one group per prompt.")
        if any(len(g) == 0 for g in groups):
            raise ValueError("every plain prompt needs at least one image for the aesthetic baseline.")
        flat = [im for g in groups for im in g]
        scores = self.aesthetic.score_embeddings(self.aesthetic.clip.encode_images(flat))
        means, start = [], 0
        for g in groups:
            means.append(scores[start : start + len(g)].mean())
            start += len(g)
        return torch.stack(means)

    def score(self, prompts: Sequence[str], images: Sequence[Image.Image], plain_images=None) -> torch.Tensor:
        return self.score_terms(prompts, images, plain_images)["reward"]
