"""Tiny T2I-CompBench evaluator models (B-VQA BLIP, OWLv2, DPT-hybrid) in the real architectures and on-disk
format, for ``tiny:blip_vqa`` / ``tiny:owlv2`` / ``tiny:dpt`` (registered in ``tiny.TINY_BUILDERS``)."""

from __future__ import annotations

from pathlib import Path

import torch

from .tiny import _text_config_kwargs, _tiny_bert_tokenizer, _tiny_clip_tokenizer


def build_blip_vqa(out_dir: Path) -> None:
    """BLIP-VQA (``BlipForQuestionAnswering``: ViT, question encoder, answer decoder) with a BERT tokenizer that
    has "yes" and "no" (the tokens B-VQA reads) — the layout of Salesforce/blip-vqa-capfilt-large."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForQuestionAnswering,
        BlipProcessor,
    )
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    base = _tiny_bert_tokenizer()
    vocab = list(base.get_vocab()) + [w for w in ("yes", "no") if w not in base.get_vocab()]
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(dict.fromkeys(vocab))}, do_lower_case=True,
                              model_max_length=35)
    hidden = 32
    text = dict(vocab_size=len(tokenizer), hidden_size=hidden, encoder_hidden_size=hidden, intermediate_size=64,
                num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64,
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                sep_token_id=tokenizer.sep_token_id)
    vision = dict(hidden_size=hidden, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  image_size=32, patch_size=8)
    torch.manual_seed(0)
    model = BlipForQuestionAnswering(BlipConfig(text_config=text, vision_config=vision, projection_dim=32))
    model.save_pretrained(out_dir, safe_serialization=True)
    BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(out_dir)


def build_owlv2(out_dir: Path) -> None:
    """OWLv2 zero-shot detector (``Owlv2ForObjectDetection``, CLIP-style towers, 32 px, 8 px patches) + processor."""
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    tokenizer = _tiny_clip_tokenizer()
    tokenizer.model_max_length = 16  # OWL pads text queries to 16 tokens
    text = _text_config_kwargs(len(tokenizer))
    text["max_position_embeddings"] = 16
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                  patch_size=8)
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=32))
    model.save_pretrained(out_dir, safe_serialization=True)
    Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 32, "width": 32}),
                   tokenizer=tokenizer).save_pretrained(out_dir)


def build_dpt(out_dir: Path) -> None:
    """DPT-hybrid depth model (``DPTForDepthEstimation``, ``is_hybrid``: a BiT backbone under the ViT), as
    Intel/dpt-hybrid-midas, with 3 BiT stages, 2 ViT layers and 32 px input."""
    from transformers import (
        BitConfig,
        DPTConfig,
        DPTForDepthEstimation,
        DPTImageProcessor,
    )

    backbone = BitConfig(global_padding="same", layer_type="bottleneck", depths=[1, 1, 1], hidden_sizes=[8, 16, 32],
                         out_features=["stage1", "stage2", "stage3"], embedding_dynamic_padding=True,
                         embedding_size=8, num_groups=4)
    config = DPTConfig(is_hybrid=True, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=64, image_size=32, patch_size=16, backbone_out_indices=[0, 0, 0, 1],
                       neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_in_index=-1,
                       backbone_featmap_shape=[1, 32, 2, 2], readout_type="project", backbone_config=backbone)
    torch.manual_seed(0)
    DPTForDepthEstimation(config).save_pretrained(out_dir, safe_serialization=True)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(out_dir)
