"""CompBench evaluator models in transformers: BLIP-VQA, OWLv2, DPT-hybrid MiDaS and CLIP, loaded by hub id or path.

Each model loads on first use through ``models.loading.load_pretrained`` (safetensors first, headers checked).
B-VQA follows BLIP's ``vqa_prob`` inference: the image through the ViT (480 px for the 384-px checkpoint,
positions interpolated), the question
through the text encoder with cross-attention to it, one decoder step from the BOS token, softmax, then
p_yes / (p_yes + p_no) for the tokens "yes" and "no" (BERT ids 2748 / 2053). Batches hold many images, and many
questions per image (each image is encoded once).
"""

from __future__ import annotations

import numpy as np
import torch

from ..cache import fingerprint
from .backends import VQA_IMAGE_SIZE
from .rules import Detection, answer_probability, official_frame_scale

DEFAULT_DETECTOR_THRESHOLD = 0.1  # OWLv2's usual cut (its scores run lower than UniDet's; UniDet used 0.5)


class TransformersBackend:
    name = "transformers"

    def __init__(self, models: dict, device=None, batch_size: int = 16, detector_threshold: float | None = None):
        from ..utils import select_device_dtype

        self.names = dict(models)
        self.device, _ = select_device_dtype(device, None)
        self.batch_size = batch_size
        self.threshold = DEFAULT_DETECTOR_THRESHOLD if detector_threshold is None else detector_threshold
        self._loaded: dict = {}

    def models(self) -> dict:
        return dict(self.names)

    def tier(self) -> str:
        return "official-rules, transformers models (" + ", ".join(f"{k}={v}" for k, v in self.names.items()) + ")"

    def fingerprint(self, part: str) -> str:
        from .backends import check_model

        extra = f"|threshold={self.threshold}" if part == "detector" else ""
        return fingerprint(check_model(part, self.names[part])) + extra

    def _load(self, part: str):
        if part in self._loaded:
            return self._loaded[part]
        from ..models.loading import load_pretrained, resolve_model_path
        from .backends import check_model

        name = self.names[part]
        path = str(check_model(part, name))
        if part == "vqa":
            from transformers import BlipForQuestionAnswering, BlipProcessor

            loaded = (load_pretrained(BlipForQuestionAnswering, name, self.device, torch.float32),
                      BlipProcessor.from_pretrained(path))
        elif part == "detector":
            from transformers import Owlv2ForObjectDetection, Owlv2Processor

            loaded = (load_pretrained(Owlv2ForObjectDetection, name, self.device, torch.float32),
                      Owlv2Processor.from_pretrained(path))
        elif part == "depth":
            from transformers import DPTForDepthEstimation, DPTImageProcessor

            loaded = (load_pretrained(DPTForDepthEstimation, name, self.device, torch.float32),
                      DPTImageProcessor.from_pretrained(path))
        else:
            from ..rewards.clip_model import CLIPEmbedder

            resolve_model_path(name)
            loaded = CLIPEmbedder.from_pretrained(name, device=self.device, cache_size=0)
        self._loaded[part] = loaded
        return loaded

    def _batches(self, n: int):
        return [range(i, min(n, i + self.batch_size)) for i in range(0, n, self.batch_size)]

    # ------------------------------------------------------------------------------------------ B-VQA
    @torch.inference_mode()
    def vqa(self, images, questions: list[list[str]]) -> list[list[float]]:
        model, processor = self._load("vqa")
        tok = processor.tokenizer
        yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
        # BLIP_vqa.py runs the 384-px checkpoint at 480 px; other checkpoints get the same 480/384 ratio.
        size = round(int(model.config.vision_config.image_size) * VQA_IMAGE_SIZE / 384)
        out: list[list[float]] = [[] for _ in images]
        for batch in self._batches(len(images)):
            pixels = processor.image_processor([images[i].convert("RGB") for i in batch], return_tensors="pt",
                                               size={"height": size, "width": size})["pixel_values"]
            embeds = model.vision_model(pixel_values=pixels.to(self.device), interpolate_pos_encoding=True)[0]
            pairs = [(j, q) for j, i in enumerate(batch) for q in questions[i]]
            if not pairs:
                continue
            text = tok([q for _, q in pairs], padding=True, return_tensors="pt").to(self.device)
            image_embeds = embeds[torch.tensor([j for j, _ in pairs], device=self.device)]
            image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
            question = model.text_encoder(input_ids=text["input_ids"], attention_mask=text["attention_mask"],
                                          encoder_hidden_states=image_embeds, encoder_attention_mask=image_mask)[0]
            start = torch.full((len(pairs), 1), model.decoder_start_token_id, device=self.device)
            logits = model.text_decoder(input_ids=start, encoder_hidden_states=question,
                                        encoder_attention_mask=text["attention_mask"]).logits[:, 0]
            probs = logits.float().softmax(-1)
            for (j, _), p in zip(pairs, probs):
                out[batch[j]].append(answer_probability(float(p[yes]), float(p[no])))
        return out

    # ------------------------------------------------------------------------------------------ detection
    @torch.inference_mode()
    def detect(self, images, labels: list[list[str]]) -> list[list[Detection]]:
        model, processor = self._load("detector")
        out: list[list[Detection]] = [[] for _ in images]
        for batch in self._batches(len(images)):
            todo = [i for i in batch if labels[i]]
            if not todo:
                continue
            width = max(len(labels[i]) for i in todo)
            queries = [list(labels[i]) + [" "] * (width - len(labels[i])) for i in todo]  # OWL pads queries
            inputs = processor(text=queries, images=[images[i].convert("RGB") for i in todo], return_tensors="pt")
            outputs = model(**{k: v.to(self.device) for k, v in inputs.items()})
            sides = [max(images[i].size) for i in todo]  # OWLv2 pads to a square before resizing
            results = processor.post_process_grounded_object_detection(
                outputs, threshold=self.threshold, target_sizes=[(s, s) for s in sides])
            for i, result in zip(todo, results):
                scale = official_frame_scale(*images[i].size)
                for box, score, k in zip(result["boxes"], result["scores"], result["labels"]):
                    if int(k) < len(labels[i]):
                        out[i].append(Detection(labels[i][int(k)], tuple(float(v) * scale for v in box.tolist()),
                                                float(score)))
        return out

    # ------------------------------------------------------------------------------------------ depth
    @torch.inference_mode()
    def depth(self, images) -> list[np.ndarray]:
        model, processor = self._load("depth")
        out = []
        for batch in self._batches(len(images)):
            ims = [images[i].convert("RGB") for i in batch]
            pixels = processor(images=ims, return_tensors="pt")["pixel_values"].to(self.device)
            predicted = model(pixel_values=pixels).predicted_depth  # (B, h, w), MiDaS inverse depth
            for im, d in zip(ims, predicted):
                scale = official_frame_scale(*im.size)
                size = (round(im.size[1] * scale), round(im.size[0] * scale))
                d = torch.nn.functional.interpolate(d[None, None].float(), size=size, mode="bicubic",
                                                    align_corners=False)[0, 0].cpu().numpy()
                span = d.max() - d.min()
                out.append((d - d.min()) / span if span > 0 else np.zeros_like(d))
        return out

    # ------------------------------------------------------------------------------------------ CLIP
    def clip(self, images, texts) -> list[float]:
        embedder = self._load("clip")
        text = embedder.encode_texts(list(texts), batch_size=self.batch_size)
        image = embedder.encode_images([im.convert("RGB") for im in images], batch_size=self.batch_size)
        return [float(v) for v in (text * image).sum(-1)]
