"""LAION improved aesthetic predictor (christophschuhmann/improved-aesthetic-predictor:simple_inference.py).

An MLP on the L2-normalised CLIP image embedding, trained with MSE on 1-10 ratings (SAC + LAION-Logos + AVA).
The standard checkpoint ``sac+logos+ava1-l14-linearMSE.pth`` has no activations between its Linear layers
(the ReLUs are commented out upstream). The same class loads the shapes world's quality predictor
(``shapes:quality``: ``model.safetensors`` + ``config.json`` ``{"embed_dim": ..., "clip": "shapes:clip"}``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torch import nn

from t2i_prompt.rewards.base import check_pairs
from t2i_prompt.rewards.clip_model import CLIPEmbedder

LAION_CLIP = "openai/clip-vit-large-patch14"


class AestheticMLP(nn.Module):
    """Linear(D,1024) Dropout(.2) Linear(1024,128) Dropout(.2) Linear(128,64) Dropout(.1) Linear(64,16) Linear(16,1).

    Module names give the official state-dict keys ``layers.{0,2,4,6,7}.{weight,bias}``. ImageReward's score head
    (THUDM/ImageReward ``MLP``) has the same layout on BLIP features, so VP-Score reuses this class;
    ``hidden_dims`` lets tiny test heads shrink it.
    """

    def __init__(self, embed_dim: int = 768, hidden_dims: Sequence[int] = (1024, 128, 64, 16)):
        super().__init__()
        if len(hidden_dims) != 4:
            raise ValueError(f"the LAION/ImageReward MLP has 4 hidden layers, got hidden_dims={tuple(hidden_dims)}.")
        h1, h2, h3, h4 = hidden_dims
        self.embed_dim = embed_dim
        self.layers = nn.Sequential(
            nn.Linear(embed_dim, h1),
            nn.Dropout(0.2),
            nn.Linear(h1, h2),
            nn.Dropout(0.2),
            nn.Linear(h2, h3),
            nn.Dropout(0.1),
            nn.Linear(h3, h4),
            nn.Linear(h4, 1),
        )

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.layers(embeds).squeeze(-1)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "AestheticMLP":
        """Build with the dims read from the weights; key or shape mismatches raise ``ValueError``."""
        missing = [f"layers.{i}.weight" for i in (0, 2, 4, 6) if f"layers.{i}.weight" not in state]
        if missing:
            raise ValueError(
                f"not a LAION-layout MLP state dict: missing {missing} (keys: {sorted(state)[:6]}...)."
            )
        dims = [int(state[f"layers.{i}.weight"].shape[0]) for i in (0, 2, 4, 6)]
        mlp = cls(int(state["layers.0.weight"].shape[1]), dims)
        try:
            mlp.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"MLP state dict does not match the LAION layout: {e}") from e
        return mlp.eval()


class AestheticReward:
    """``score(prompts, images) -> MLP(normalise(CLIP image embedding))``; the prompt is ignored."""

    name = "aesthetic"
    value_range = (1.0, 10.0)  # nominal rating scale of the LAION predictor; not enforced (a regression)
    higher_is_better = True

    def __init__(self, clip: CLIPEmbedder, mlp: AestheticMLP):
        if mlp.embed_dim != clip.embed_dim:
            raise ValueError(
                f"aesthetic MLP expects {mlp.embed_dim}-d embeddings but CLIP {clip.name!r} gives "
                f"{clip.embed_dim}-d; pair the predictor with the CLIP it was trained on."
            )
        self.clip = clip
        self.mlp = mlp.eval()

    @classmethod
    def from_pretrained(cls, name: str | None = "shapes:quality", clip: str | CLIPEmbedder | None = None, device=None):
        """Load a predictor: a directory with ``config.json`` + ``model.safetensors`` (``shapes:quality``,
        ``tiny:quality``), or an official ``.pth``/``.safetensors`` file (then ``clip`` defaults to ViT-L/14)."""
        from t2i_prompt.models.loading import load_state_dict

        name = name or "shapes:quality"
        path, config = _resolve_predictor(name)
        if path.is_dir():
            weights = path / "model.safetensors"
            if not weights.is_file():
                raise FileNotFoundError(f"{path} has no model.safetensors; save the MLP with save_predictor().")
            state = load_state_dict(weights)
        else:
            state = load_state_dict(path)
        mlp = AestheticMLP.from_state_dict(state)
        if config.get("embed_dim", mlp.embed_dim) != mlp.embed_dim:
            raise ValueError(f"{path}: config embed_dim {config['embed_dim']} != weights' {mlp.embed_dim}.")
        if not isinstance(clip, CLIPEmbedder):
            clip = CLIPEmbedder.shared(clip or config.get("clip") or LAION_CLIP, device=device)
        return cls(clip, mlp.to(clip.device))

    @torch.inference_mode()
    def score_embeddings(self, embeds: torch.Tensor) -> torch.Tensor:
        """Score L2-normalised image embeddings ``(N, D)`` directly."""
        return self.mlp(embeds.to(next(self.mlp.parameters()).device)).float().cpu()

    def score(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> torch.Tensor:
        check_pairs(prompts, images)
        return self.score_embeddings(self.clip.encode_images(images))


def save_predictor(mlp: AestheticMLP, out_dir: str | os.PathLike, clip: str) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (the ``shapes:quality`` layout), each file atomically."""
    from safetensors.torch import save

    from t2i_prompt.utils import atomic_write_bytes, atomic_write_json

    out = Path(out_dir)
    state = {k: v.detach().contiguous().cpu() for k, v in mlp.state_dict().items()}
    atomic_write_bytes(out / "model.safetensors", save(state))
    atomic_write_json(out / "config.json", {"embed_dim": mlp.embed_dim, "clip": clip})
    return out


def _resolve_predictor(name: str) -> tuple[Path, dict]:
    """Path and config of a predictor: a weights file, or a directory (``shapes:quality``, ``tiny:quality``)."""
    from t2i_prompt.models.loading import resolve_model_path

    if Path(name).expanduser().is_file():
        return Path(name).expanduser(), {}
    path = Path(resolve_model_path(name))
    cfg_file = path / "config.json"
    config = json.loads(cfg_file.read_text()) if path.is_dir() and cfg_file.is_file() else {}
    return path, config
