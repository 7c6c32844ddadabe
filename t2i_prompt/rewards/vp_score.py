"""VP-Score (Wu et al., "VisionPrefer", arXiv 2404.15100) as an ImageReward-architecture BLIP scorer.

ASSUMPTION (methods.md §3): no VP-Score code or model card is public, and the paper says it follows ImageReward's
recipe, so we load it as ImageReward (THUDM/ImageReward: ImageReward/ImageReward.py): BLIP image encoder -> BLIP
text encoder cross-attending to the image patches -> the text [CLS]/[ENC] hidden state -> MLP
768->1024->128->64->16->1 -> ``(r - mean) / std``. The checkpoint is user-supplied (no hub id is hard-coded): a
directory with a transformers ``BlipForImageTextRetrieval`` + ``BlipProcessor`` and the head as
``score_head.safetensors`` (keys ``mlp.layers.{0,2,4,6,7}.*``) + ``score_head.json`` (``mean``, ``std``).
Scores are unnormalised logits: compare them only with other VP-Score values.
"""

from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image

from t2i_prompt.rewards.aesthetic import AestheticMLP
from t2i_prompt.rewards.base import UNBOUNDED, check_pairs

ENC_TOKEN = "[ENC]"  # ImageReward replaces the first text token ([CLS]) with BLIP's [ENC] token
IMAGEREWARD_MEAN_STD = (0.16717362830052426, 1.0333394966054072)  # ImageReward.py's reward normalisation


def single_file_error(path) -> ValueError:
    """The one-line error for a weights file where a VP-Score/ImageReward folder is needed; for the official
    ``ImageReward.pt`` (a state dict of LAVIS-BLIP ``blip.*`` and ``mlp.*`` tensors) it says how to convert it."""
    from t2i_prompt.models.loading import load_state_dict

    try:
        keys = set(load_state_dict(path)) if str(path).endswith((".pt", ".pth", ".bin", ".safetensors")) else set()
    except ValueError:
        keys = set()
    if any(k.startswith("blip.") for k in keys) and any(k.startswith("mlp.layers.") for k in keys):
        mean, std = IMAGEREWARD_MEAN_STD
        return ValueError(
            f"{path} is the official ImageReward checkpoint (LAVIS BLIP keys blip.*, head mlp.*), which t2i-prompt "
            "does not read directly; convert it once into a folder: its blip.* tensors to a transformers "
            "BlipForImageTextRetrieval (the key renames of transformers' convert_blip_original_pytorch_to_hf.py) "
            "saved with save_pretrained + BlipProcessor, its mlp.* tensors (prefix kept) to score_head.safetensors, "
            f'and score_head.json {{"mean": {mean}, "std": {std}}}; then pass that folder.')
    return ValueError(f"{path} is a single weights file; VP-Score loads a folder (BlipForImageTextRetrieval + "
                      "BlipProcessor files + score_head.safetensors + score_head.json, see rewards/vp_score.py).")


class VPScore:
    """``score(prompts, images) -> (mlp(text_encoder(prompt | image)[:, 0]) - mean) / std``."""

    name = "vp_score"
    value_range = UNBOUNDED  # z-normalised reward, roughly [-2, 2] for ImageReward
    higher_is_better = True

    def __init__(self, model, processor, head: AestheticMLP, mean: float = 0.0, std: float = 1.0):
        if std <= 0:
            raise ValueError(f"score_head.json std must be > 0, got {std}.")
        self.model = model.eval()
        self.processor = processor
        self.head = head.eval().to(next(model.parameters()).device)
        self.mean, self.std = float(mean), float(std)
        self.enc_token_id = _enc_token_id(processor.tokenizer)

    @classmethod
    def from_pretrained(cls, name: str, device=None, dtype=None) -> "VPScore":
        """Load a user checkpoint directory in the layout described in the module docstring."""
        from t2i_prompt.models.loading import load_blip

        if not name:
            raise ValueError("VP-Score has no public checkpoint: pass the path of your converted checkpoint directory.")
        from t2i_prompt.models.loading import resolve_model_path

        path = resolve_model_path(name)
        if path.is_file():
            raise single_file_error(path)
        model, processor, head_state, meta = load_blip(path, device, dtype)
        if head_state is None:
            raise FileNotFoundError(
                f"{name!r} has no score_head.safetensors: a VP-Score/ImageReward checkpoint needs the MLP head "
                "(keys mlp.layers.{0,2,4,6,7}.weight/bias) next to the BLIP weights."
            )
        prefix = "mlp."
        head = AestheticMLP.from_state_dict({k[len(prefix):]: v for k, v in head_state.items() if k.startswith(prefix)})
        meta = meta or {}
        return cls(model, processor, head.to(dtype=next(model.parameters()).dtype),
                   mean=meta.get("mean", 0.0), std=meta.get("std", 1.0))

    @torch.inference_mode()
    def score(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> torch.Tensor:
        check_pairs(prompts, images)
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        pixels = self.processor.image_processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        text = self.processor.tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt")
        input_ids = text["input_ids"].clone()
        if self.enc_token_id is not None:
            input_ids[:, 0] = self.enc_token_id
        image_embeds = self.model.vision_model(pixel_values=pixels["pixel_values"].to(device, dtype)).last_hidden_state
        image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=device)
        hidden = self.model.text_encoder(
            input_ids=input_ids.to(device),
            attention_mask=text["attention_mask"].to(device),
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_mask,
        ).last_hidden_state[:, 0]
        return ((self.head(hidden).float() - self.mean) / self.std).cpu()


def _enc_token_id(tokenizer) -> int | None:
    """Id of ``[ENC]`` if the tokenizer has it (ImageReward's BLIP tokenizer does); else keep ``[CLS]``."""
    token_id = tokenizer.convert_tokens_to_ids(ENC_TOKEN)
    return None if token_id is None or token_id == tokenizer.unk_token_id else int(token_id)
