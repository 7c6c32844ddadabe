"""The one vocabulary of reward names: ``build_reward(name, model=None, device=None)``.

=============  ==============================================================================================
``clip``       CLIP score: cosine of the prompt and the image, clamped at 0 (``scale=``, ``clamp=``, ``prefix=``)
``clip_cos``   the raw CLIP cosine (not clamped; can be negative)
``aesthetic``  LAION-style aesthetic MLP on the CLIP image embedding (``model`` = predictor, ``clip=`` its CLIP)
``quality``    the same predictor class under the shapes world's name (``shapes:quality`` by default)
``vp_score``   VP-Score / ImageReward-layout BLIP checkpoint (``model`` is required: no public weights)
``similarity`` text semantic similarity of the prompt and a candidate *text* (MiniLM or a CLIP text tower)
``promptist``  Promptist's ``rel + aes`` (Hao et al. 2023), ``model`` = CLIP, ``aesthetic=`` the predictor
``a*x+b*y``    a weighted sum of the names above, e.g. ``1.0*clip+0.1*quality``
=============  ==============================================================================================

Default models follow the T2I model (``default_models``): the shapes world's own scorers for the shapes world,
tiny ones for ``tiny:*`` models, OpenAI CLIP ViT-L/14 for real models (the LAION predictor has no hub id: pass it).
"""

from __future__ import annotations

import re
from typing import Any

REWARD_NAMES = ("clip", "clip_cos", "aesthetic", "quality", "vp_score", "similarity", "promptist")
REAL_CLIP = "openai/clip-vit-large-patch14"
REAL_IMAGES = "real"  # any name but shapes[:part] / tiny:<arch> means a real T2I model; this one says "unknown, real"
_TERM = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)\s*\*\s*)?([a-z_]+)\s*")


def default_models(t2i_model: str | None = None) -> dict[str, str | None]:
    """CLIP and aesthetic predictor that fit a T2I model name (``None`` where nothing fits without being told)."""
    name = str(t2i_model or "shapes")
    if name == "shapes" or name.startswith("shapes:"):
        return {"clip": "shapes:clip", "aesthetic": "shapes:quality", "similarity": "minilm"}
    if name.startswith("tiny:"):
        return {"clip": "tiny:clip", "aesthetic": "tiny:quality", "similarity": "minilm"}
    return {"clip": REAL_CLIP, "aesthetic": None, "similarity": "minilm"}


def parse_composite(spec: str) -> list[tuple[float, str]]:
    """``"1.0*clip+0.1*quality"`` -> ``[(1.0, "clip"), (0.1, "quality")]``; a bare name has weight 1."""
    terms, pos = [], 0
    while pos < len(spec):
        match = _TERM.match(spec, pos)
        if (match is None or match.end() == pos or (terms and match.group(1) is None)
                or match.group(3) not in REWARD_NAMES):
            raise ValueError(f"reward {spec!r}: cannot read it from character {pos}; write weight*name terms joined "
                             f"by '+', e.g. '1.0*clip+0.1*quality', with names from {list(REWARD_NAMES)}.")
        sign = -1.0 if match.group(1) == "-" else 1.0
        terms.append((sign * float(match.group(2) or 1.0), match.group(3)))
        pos = match.end()
    if not terms:
        raise ValueError(f"reward {spec!r} names no reward; use one of {list(REWARD_NAMES)}.")
    return terms


def check_reward_name(name: str) -> str:
    """``name`` if it is a reward name or a composite of them; otherwise a ValueError listing the valid names."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"reward name must be a non-empty string, got {name!r}; use one of {list(REWARD_NAMES)}.")
    if name not in REWARD_NAMES:
        parse_composite(name)
    return name


def build_reward(name: str, model: str | None = None, device=None, t2i_model: str | None = None, **options: Any):
    """A reward object for ``name`` (see the module table). ``model`` names its checkpoint (default: what fits
    ``t2i_model``); ``options`` go to the reward (``clip=``, ``scale=``, ``clamp=``, ``prefix=``, ``aesthetic=``)."""
    from . import AestheticReward, CLIPScore, CompositeReward, PromptistReward, TextSimilarity, VPScore

    check_reward_name(name)
    defaults = default_models(t2i_model)
    if name not in REWARD_NAMES:
        if model is not None:
            raise ValueError(f"composite reward {name!r} takes no single model; build its terms with their own models.")
        terms = {}
        for weight, term in parse_composite(name):
            terms[term] = (build_reward(term, device=device, t2i_model=t2i_model, **options), weight)
        return CompositeReward(terms)
    if name in ("clip", "clip_cos"):
        kwargs = {"clamp": True, **{k: v for k, v in options.items() if k in ("scale", "clamp", "prefix")}}
        if name == "clip_cos":
            kwargs["clamp"] = False
        return CLIPScore.from_pretrained(model or defaults["clip"], device=device, **kwargs)
    if name in ("aesthetic", "quality"):
        predictor = model or ("shapes:quality" if name == "quality" and defaults["aesthetic"] is None
                              else defaults["aesthetic"])
        if predictor is None:
            raise ValueError(f"reward {name!r} needs a predictor for real images: pass its file or directory, e.g. "
                             "the LAION 'sac+logos+ava1-l14-linearMSE.pth' (with the CLIP ViT-L/14 it was trained on).")
        return AestheticReward.from_pretrained(predictor, clip=options.get("clip"), device=device)
    if name == "vp_score":
        if not model:
            raise ValueError("reward 'vp_score' needs a model: the directory of a VP-Score/ImageReward-layout checkpoint.")
        return VPScore.from_pretrained(model, device=device)
    if name == "similarity":
        return TextSimilarity.from_pretrained(model or defaults["similarity"], device=str(device or "cpu"))
    # promptist: CLIP (cosine, scale 1) + aesthetic predictor sharing one embedder
    clip_score = CLIPScore.from_pretrained(model or defaults["clip"], preset="promptist", device=device)
    predictor = options.get("aesthetic") or defaults["aesthetic"]
    if predictor is None:
        raise ValueError("reward 'promptist' needs an aesthetic predictor for real images: pass aesthetic=PATH.")
    return PromptistReward(clip_score, AestheticReward.from_pretrained(predictor, clip=clip_score.clip))


def reward_model_name(name: str, model: str | None = None, t2i_model: str | None = None) -> str | None:
    """The checkpoint ``build_reward(name, model, t2i_model=...)`` loads (for cache keys and reports)."""
    defaults = default_models(t2i_model)
    if model is not None:
        return model
    if name in ("clip", "clip_cos", "promptist"):
        return defaults["clip"]
    if name in ("aesthetic", "quality"):
        return defaults["aesthetic"] or ("shapes:quality" if name == "quality" else None)
    if name == "similarity":
        return defaults["similarity"]
    return None
