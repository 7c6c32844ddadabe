"""CompBench scorer throughput: batched evaluator calls vs one image at a time, side by side in one run.

The three transformers evaluators (B-VQA on BlipForQuestionAnswering, OWLv2 detection, CLIP cosine) score the same
images through ``TransformersBackend`` twice batched (the second is the control row: batched vs batched should be
~1.0x) and once with batch size 1. ``--size tiny`` uses the tiny:* test models (CPU, overhead-dominated);
``--size base`` builds the real architectures with random weights (BLIP ViT-B at 480 px with a BERT-base text side,
OWLv2 base/16 at 960 px, CLIP ViT-B/32) and saves them, so no download is needed — run that on a GPU. Repeats are
interleaved and medians reported; the scores of both modes are checked equal.

    python benchmarks/compbench.py --size tiny --images 64
    python benchmarks/compbench.py --size base --images 64 --batch-size 32 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from t2i_prompt.cli.boundary import OneLineParser, run_script
from t2i_prompt.cli.options import int_in


def build_base_models(root: Path) -> dict[str, str]:
    """Real-size evaluator architectures, random weights, saved with save_pretrained (safetensors) under ``root``."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForQuestionAnswering,
        BlipProcessor,
        CLIPConfig,
        CLIPModel,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2Processor,
    )
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.owlv2.image_processing_pil_owlv2 import (
        Owlv2ImageProcessorPil,
    )

    from t2i_prompt.models.tokenizers import make_clip_tokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "yes", "no", "a", "red", "green", "blue", "circle",
             "square", "bench", "bowl", "?"]
    vocab = words + [f"w{i}" for i in range(30524 - len(words))]
    bert = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True, model_max_length=35)
    torch.manual_seed(0)
    blip = BlipForQuestionAnswering(BlipConfig(text_config={"vocab_size": 30524}, vision_config={"image_size": 384}))
    blip.save_pretrained(root / "vqa")
    BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": 384, "width": 384}),
                  tokenizer=bert).save_pretrained(root / "vqa")
    clip_tok = make_clip_tokenizer()
    clip = CLIPModel(CLIPConfig(vision_config={"patch_size": 32}))
    clip.save_pretrained(root / "clip")
    clip_tok.save_pretrained(root / "clip")
    CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(
        root / "clip")
    owl_tok = make_clip_tokenizer()
    owl_tok.model_max_length = 16
    owl = Owlv2ForObjectDetection(Owlv2Config(vision_config={"image_size": 960, "patch_size": 16}))
    owl.save_pretrained(root / "detector")
    Owlv2Processor(image_processor=Owlv2ImageProcessorPil(size={"height": 960, "width": 960}),
                   tokenizer=owl_tok).save_pretrained(root / "detector")
    return {part: str(root / part) for part in ("vqa", "detector", "clip")}


def tiny_models() -> dict[str, str]:
    from t2i_prompt.models.loading import resolve_model_path

    return {part: str(resolve_model_path(f"tiny:{arch}"))
            for part, arch in (("vqa", "blip_vqa"), ("detector", "owlv2"), ("clip", "clip"))}


def make_parser() -> OneLineParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--images", type=int_in(1, 100_000), default=64)
    parser.add_argument("--batch-size", type=int_in(2, 1024), default=16)
    parser.add_argument("--repeats", type=int_in(1, 100), default=3)
    parser.add_argument("--device", default=None)
    return parser


def main(args) -> dict:
    from t2i_prompt.evaluate.backends import build_backend

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = build_base_models(Path(tmp)) if args.size == "base" else tiny_models()
        print(f"models ({args.size}) ready in {time.perf_counter() - t0:.1f}s")
        side = 512 if args.size == "base" else 32
        rng = np.random.default_rng(0)
        images = [Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)) for _ in range(args.images)]
        questions = [["a red circle?", "a blue square?"]] * args.images
        labels = [["circle", "square"]] * args.images
        texts = ["a red circle and a blue square"] * args.images
        backends = {
            "batched": build_backend("transformers", paths, (), args.device, args.batch_size, 0.0),
            "batched (control)": build_backend("transformers", paths, (), args.device, args.batch_size, 0.0),
            "one at a time": build_backend("transformers", paths, (), args.device, 1, 0.0),
        }
        calls = {"vqa": lambda b: b.vqa(images, questions), "detect": lambda b: b.detect(images, labels),
                 "clip": lambda b: b.clip(images, texts)}
        times: dict = {part: {name: [] for name in backends} for part in calls}
        outputs: dict = {part: {} for part in calls}

        def sync():
            if torch.cuda.is_available():
                torch.cuda.synchronize()

        for part, call in calls.items():
            for b in backends.values():
                call(b)  # load + warm-up
            for r in range(args.repeats):
                order = list(backends) if r % 2 == 0 else list(backends)[::-1]
                for name in order:
                    sync()
                    t = time.perf_counter()
                    outputs[part][name] = call(backends[name])
                    sync()
                    times[part][name].append(time.perf_counter() - t)
    rows = {}
    for part in calls:
        med = {name: statistics.median(v) for name, v in times[part].items()}
        rows[part] = {name: {"seconds": round(s, 4), "images_per_s": round(args.images / s, 2),
                             "vs_one_at_a_time": round(med["one at a time"] / s, 2)} for name, s in med.items()}
        a, b = outputs[part]["batched"], outputs[part]["one at a time"]
        if part == "detect":  # detections per image vary in number: compare the best score per image and label
            a = [[max((d.score for d in x if d.label == lab), default=0.0) for lab in labels[0]] for x in a]
            b = [[max((d.score for d in x if d.label == lab), default=0.0) for lab in labels[0]] for x in b]
        np.testing.assert_allclose(np.array(a, dtype=float), np.array(b, dtype=float), atol=1e-3)
    print(f"{args.images} images, batch {args.batch_size}, {args.repeats} repeats, size {args.size}")
    print(f"{'scorer':<8} {'mode':<18} {'seconds':>9} {'img/s':>9} {'speed-up':>9}")
    for part, modes in rows.items():
        for name, row in modes.items():
            print(f"{part:<8} {name:<18} {row['seconds']:>9.3f} {row['images_per_s']:>9.1f} "
                  f"{row['vs_one_at_a_time']:>8.2f}x")
    result = {"size": args.size, "images": args.images, "batch_size": args.batch_size, "rows": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    run_script(main, make_parser)
