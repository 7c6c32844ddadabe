"""One CLIP model shared by every CLIP-based reward, with an image-embedding cache.

CLIP score and the aesthetic predictor both start from the CLIP image embedding; when they use the same CLIP
the vision tower (most of the cost: ViT-L/14 is ~300M parameters) should run once per image. ``CLIPEmbedder``
keeps an LRU cache of L2-normalised image embeddings keyed by the image content (mode, size and pixel bytes),
and ``CLIPEmbedder.shared(name)`` returns one embedder per model name, so rewards built from the same name
share it without the caller wiring anything.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

# OpenAI CLIP preprocessing constants (openai/CLIP:clip/clip.py `_transform`), used when a checkpoint
# ships no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def image_fingerprint(image: Image.Image) -> str:
    """Content key of an image: two images with equal mode, size and pixels share an embedding."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}|{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """``x / ||x||`` along the last dim; a zero vector stays zero (the LAION predictor's convention)."""
    norm = x.norm(dim=-1, keepdim=True)
    return x / torch.where(norm == 0, torch.ones_like(norm), norm)


class CLIPEmbedder:
    """A transformers ``CLIPModel`` with its tokenizer and preprocessing; returns L2-normalised embeddings.

    ``cache_size=0`` disables the image cache (every call runs the vision tower).
    """

    _shared: dict[tuple[str, str], "CLIPEmbedder"] = {}

    def __init__(self, model, tokenizer, image_processor=None, name: str = "clip", cache_size: int = 4096):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.name = name
        self.cache_size = cache_size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        vision = model.config.vision_config
        self.image_size = int(vision.image_size)
        self.max_text_tokens = int(model.config.text_config.max_position_embeddings)
        self.embed_dim = int(model.config.projection_dim)

    # ---- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name: str | None = "shapes:clip", device=None, dtype=None, cache_size: int = 4096):
        """Load any CLIPModel checkpoint by name (``shapes:clip``, ``tiny:clip``, a local dir, a cached hub id)."""
        from transformers import CLIPModel

        from t2i_prompt.models.loading import load_pretrained, resolve_model_path

        name = name or "shapes:clip"
        path = Path(resolve_model_path(name))
        model = load_pretrained(CLIPModel, name, device, dtype)
        tokenizer = _load_clip_tokenizer(path, model.config.text_config.vocab_size)
        image_processor = None
        if (path / "preprocessor_config.json").is_file():
            image_processor = _load_image_processor(path)
        return cls(model, tokenizer, image_processor, name=name, cache_size=cache_size)

    @classmethod
    def shared(cls, name: str | None = "shapes:clip", device=None) -> "CLIPEmbedder":
        """One embedder per (name, device) in this process, so rewards on the same CLIP share its image cache."""
        key = (name or "shapes:clip", str(device))
        if key not in cls._shared:
            cls._shared[key] = cls.from_pretrained(key[0], device=device)
        return cls._shared[key]

    # ---- preprocessing -----------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Pixel tensor ``(N, 3, S, S)``: the checkpoint's image processor if it has one, else the OpenAI
        CLIP transform (bicubic resize of the short side to ``image_size``, centre crop, CLIP mean/std)."""
        if self.image_processor is not None:
            pixels = self.image_processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
            return pixels["pixel_values"]
        s = self.image_size
        mean, std = np.asarray(CLIP_MEAN, np.float32), np.asarray(CLIP_STD, np.float32)
        out = []
        for im in images:
            im = im.convert("RGB")
            w, h = im.size
            scale = s / min(w, h)
            im = im.resize((max(s, round(w * scale)), max(s, round(h * scale))), Image.BICUBIC)
            left, top = (im.width - s) // 2, (im.height - s) // 2
            arr = np.asarray(im.crop((left, top, left + s, top + s)), np.float32) / 255.0
            out.append(torch.from_numpy(((arr - mean) / std).transpose(2, 0, 1).copy()))
        return torch.stack(out)

    # ---- embeddings ----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 16) -> torch.Tensor:
        """L2-normalised image embeddings ``(N, D)`` (float32, CPU); cached images skip the vision tower."""
        keys = [image_fingerprint(im) for im in images] if self.cache_size else [None] * len(images)
        todo = [i for i, k in enumerate(keys) if k is None or k not in self._cache]
        fresh: dict[int, torch.Tensor] = {}
        for start in range(0, len(todo), batch_size):
            idx = todo[start : start + batch_size]
            pixels = self.preprocess([images[i] for i in idx]).to(self.device, self.dtype)
            pooled = self.model.vision_model(pixel_values=pixels).pooler_output
            emb = l2_normalize(self.model.visual_projection(pooled).float().cpu())
            for j, i in enumerate(idx):
                fresh[i] = emb[j]
        rows = []
        for i, k in enumerate(keys):
            if i in fresh:
                rows.append(fresh[i])
                if k is not None:
                    self._remember(k, fresh[i])
            else:
                self._cache.move_to_end(k)
                rows.append(self._cache[k])
        if not rows:
            return torch.zeros(0, self.embed_dim)
        return torch.stack(rows)

    def _remember(self, key: str, emb: torch.Tensor) -> None:
        self._cache[key] = emb
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        self._cache.clear()

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """L2-normalised text embeddings ``(N, D)``; text past the model's window is truncated with a warning."""
        out = []
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            full = self.tokenizer(chunk, padding=False, truncation=False, verbose=False)["input_ids"]
            for t, ids in zip(chunk, full):
                if len(ids) > self.max_text_tokens:
                    warnings.warn(
                        f"text has {len(ids)} CLIP tokens, over the {self.max_text_tokens}-token window; "
                        f"scoring its first {self.max_text_tokens} tokens: {t[:60]!r}...",
                        stacklevel=2,
                    )
            enc = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=self.max_text_tokens, return_tensors="pt"
            ).to(self.device)
            pooled = self.model.text_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).pooler_output
            out.append(l2_normalize(self.model.text_projection(pooled).float().cpu()))
        return torch.cat(out) if out else torch.zeros(0, self.embed_dim)

    def cosine(self, texts: Sequence[str], images: Sequence[Image.Image]) -> torch.Tensor:
        """Row-wise cosine similarity between ``texts[i]`` and ``images[i]`` (no logit scale)."""
        return (self.encode_texts(texts) * self.encode_images(images)).sum(-1)


def _load_image_processor(path: Path):
    """The checkpoint's image processor; CLIP's is loaded as its PIL class directly, which is what transformers
    falls back to without torchvision anyway (and it skips the fallback warning)."""
    import json

    from transformers import AutoImageProcessor

    kind = json.loads((path / "preprocessor_config.json").read_text()).get("image_processor_type", "")
    if kind.startswith("CLIPImageProcessor"):
        try:
            from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

            return CLIPImageProcessorPil.from_pretrained(str(path))
        except ImportError:  # other transformers versions: the auto class
            pass
    return AutoImageProcessor.from_pretrained(str(path))


def _load_clip_tokenizer(path: Path, vocab_size: int):
    """The checkpoint's own tokenizer; if it ships none, the full OpenAI CLIP BPE when the vocab size matches."""
    from transformers import AutoTokenizer

    if any((path / f).is_file() for f in ("tokenizer.json", "vocab.json", "tokenizer_config.json")):
        return AutoTokenizer.from_pretrained(path)
    from t2i_prompt.models.tokenizers import make_clip_tokenizer

    if vocab_size != 49408:
        raise FileNotFoundError(
            f"{path} has no tokenizer files and its vocab size ({vocab_size}) is not OpenAI CLIP's 49408; "
            "save the tokenizer next to the model (tokenizer.save_pretrained(dir))."
        )
    return make_clip_tokenizer()
