"""The shapes world's smaller models: a contrastive CLIP, a quality predictor, and a rewriter LM.

* CLIP: a transformers ``CLIPModel`` (ViT on 32x32, patch 4; text tower with the shapes CLIP BPE) trained
  with the symmetric InfoNCE loss of Radford et al. (2021) on casual and canonical captions. Each batch is
  built from *pairs* of scenes that differ in one attribute (relation swapped, a colour, a shape, the style,
  the count), so the model must tell "red left of blue" from "blue left of red" - the hard negatives a
  faithfulness reward needs.
* Quality: the LAION aesthetic MLP layout on the L2-normalised shapes-CLIP image embedding, regressing
  :func:`quality_target`, which prefers large, centred, filled objects. It rewards single big objects over
  faithful two-object scenes, so reward hacking and semantic drift are measurable.
* Rewriter: a tiny GPT-2 (byte-level BPE trained in-process) fine-tuned casual -> canonical with the
  Promptist template ``"{casual} Rephrase: {canonical}"``, loss on the completion only.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..cache import atomic_dir
from ..rewrite.rewriter import PROMPTIST_TEMPLATE
from . import world
from .detector import detect_objects
from .grammar import (COLORS, RELATIONS, SHAPES, ObjectSpec, Scene, canonical_caption, casual_caption, random_scene)
from .render import IMAGE_SIZE, render_batch


# --------------------------------------------------------------------------------------------- CLIP
def perturb_scene(scene: Scene, rng: random.Random) -> Scene:
    """A scene differing from ``scene`` in exactly one attribute (a hard negative)."""
    objs = list(scene.objects)
    options = ["color", "shape", "style"] + (["relation"] if scene.kind == "relation" else [])
    options += ["count"] if scene.kind != "relation" else []
    what = rng.choice(options)
    if what == "style":
        return Scene(scene.objects, scene.relation, "outlined" if scene.style == "filled" else "filled", scene.kind)
    if what == "relation":
        other = rng.choice([r for r in RELATIONS if r != scene.relation])
        return Scene(scene.objects, other, scene.style, "relation")
    if what == "count":
        n = rng.choice([c for c in (1, 2, 3) if c != scene.count])
        return Scene((objs[0],) * n, None, scene.style, "single" if n == 1 else "count")
    i = rng.randrange(len(objs)) if scene.kind == "relation" else 0
    o = objs[i]
    for _ in range(20):
        new = (ObjectSpec(rng.choice([c for c in COLORS if c != o.color]), o.shape) if what == "color"
               else ObjectSpec(o.color, rng.choice([s for s in SHAPES if s != o.shape])))
        if scene.kind != "relation" or new != objs[1 - i]:
            break
    if scene.kind == "relation":
        objs[i] = new
        return Scene(tuple(objs), scene.relation, scene.style, "relation")
    return Scene((new,) * len(objs), None, scene.style, scene.kind)


def make_clip_model(vocab_size: int):
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig

    text = world.make_text_config(vocab_size)
    vision = CLIPVisionConfig(image_size=IMAGE_SIZE, patch_size=4, hidden_size=64, intermediate_size=256,
                              num_hidden_layers=3, num_attention_heads=4, projection_dim=64)
    return CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=64))


def clip_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> CLIP-normalised (N, 3, H, W), the transform CLIPEmbedder applies at 32 px."""
    from ..rewards.clip_model import CLIP_MEAN, CLIP_STD

    x = torch.from_numpy(images).float().div(255).permute(0, 3, 1, 2)
    return (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)


def train_clip(out_dir: str | Path, steps: int = 800, batch_pairs: int = 48, lr: float = 2e-3, seed: int = 0,
               log=print) -> Path:
    """Train the shapes CLIP and save it (model + tokenizer) to ``out_dir``."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    tok = world.make_tokenizer()
    model = make_clip_model(len(tok))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    for step in tqdm(range(steps), desc="shapes clip"):
        scenes = []
        for _ in range(batch_pairs):
            s = random_scene(rng)
            scenes += [s, perturb_scene(s, rng)]
        captions = [casual_caption(s, rng) if rng.random() < 0.5 else canonical_caption(s) for s in scenes]
        pixels = clip_pixels(render_batch(scenes, nrng))
        enc = tok(captions, padding=True, return_tensors="pt")
        out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, pixel_values=pixels)
        # symmetric InfoNCE; equal scenes inside a batch are both positives (soft targets)
        same = torch.tensor([[a.equivalent(b) for b in scenes] for a in scenes], dtype=torch.float32)
        targets = same / same.sum(1, keepdim=True)
        loss = 0.5 * (F.cross_entropy(out.logits_per_image, targets) + F.cross_entropy(out.logits_per_text, targets))
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / steps))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 200 == 0 or step == steps - 1:
            acc = (out.logits_per_image.argmax(1) == torch.arange(len(scenes))).float().mean()
            log(f"clip step {step} loss {loss.item():.3f} image->text top1 {acc.item():.2f}")
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return Path(out_dir)


# ------------------------------------------------------------------------------------------ quality
def quality_target(image) -> float:
    """The world's "aesthetic": ink coverage of the largest object times its centredness, on a 1-10 scale.

    A large, centred, filled object scores ~10; two small objects or outlines score far lower, whatever
    the prompt asked for (the conflict with faithfulness is the point).
    """
    objs = detect_objects(image)
    if not objs:
        return 1.0
    best = max(objs, key=lambda o: o.area)
    coverage = min(1.0, best.area / (0.22 * IMAGE_SIZE * IMAGE_SIZE))
    off = math.hypot(best.x - IMAGE_SIZE / 2, best.y - IMAGE_SIZE / 2) / (IMAGE_SIZE / 2)
    return 1.0 + 9.0 * coverage * max(0.0, 1.0 - off)


def train_quality(out_dir: str | Path, clip_dir: str | Path, steps: int = 1500, batch: int = 128, seed: int = 0,
                  log=print) -> Path:
    """Fit the aesthetic-layout MLP to :func:`quality_target` on shapes-CLIP embeddings; save to ``out_dir``."""
    from transformers import CLIPModel

    from ..rewards.aesthetic import AestheticMLP, save_predictor

    torch.manual_seed(seed)
    clip = CLIPModel.from_pretrained(str(clip_dir)).eval()
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    # a fixed pool of rendered scenes, embedded once
    scenes = [random_scene(rng) for _ in range(6000)]
    images = render_batch(scenes, nrng)
    targets = torch.tensor([quality_target(im) for im in images], dtype=torch.float32)
    with torch.no_grad():
        emb = torch.cat([clip.visual_projection(clip.vision_model(pixel_values=clip_pixels(images[i:i + 500])).pooler_output)
                         for i in range(0, len(images), 500)])
    emb = emb / emb.norm(dim=-1, keepdim=True)
    mlp = AestheticMLP(embed_dim=emb.shape[1])
    opt = torch.optim.AdamW(mlp.parameters(), lr=1e-3)
    n_train = 5000
    for step in range(steps):
        idx = torch.randint(0, n_train, (batch,))
        loss = F.mse_loss(mlp(emb[idx]).squeeze(-1), targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    mlp.eval()
    with torch.no_grad():
        val = F.mse_loss(mlp(emb[n_train:]).squeeze(-1), targets[n_train:]).item()
    log(f"quality MLP: held-out MSE {val:.3f} (target variance {targets[n_train:].var().item():.3f})")
    return save_predictor(mlp, out_dir, clip="shapes:clip")


# ----------------------------------------------------------------------------------------- rewriter
def _rewriter_pair(casual: str, canonical: str) -> dict:
    return {"prompt": PROMPTIST_TEMPLATE.format(prompt=casual), "completion": " " + canonical}


def rewriter_pairs(n: int, seed: int, split: str = "all") -> list[dict]:
    """``{"prompt": casual + " Rephrase:", "completion": " " + canonical}`` SFT pairs (see ``world.caption_pairs``;
    ``split="train"`` leaves out the grammar's held-out templates and synonyms)."""
    return [_rewriter_pair(casual, canonical) for casual, canonical, _ in world.caption_pairs(n, seed, split)]


def train_rewriter(out_dir: str | Path, steps: int = 3000, batch: int = 32, lr: float = 2e-3, seed: int = 0,
                   split: str = "all", copy_noise: bool = False, checkpoint_every: int = 500, log=print) -> Path:
    """Minimal SFT of a tiny GPT-2 casual -> canonical (the trl-based ``training/sft.py`` can replace it).

    ``split``: the casual generator's split of the training pairs (``"train"`` holds out the grammar's
    ``HELDOUT_TEMPLATES`` / ``HELDOUT_SYNONYMS``, which ``eval/shapes_rewriter.py`` then measures separately).
    ``copy_noise``: each drawn pair gets the copy-bias noise of :mod:`.copy_noise` (fresh pseudo-words every step),
    which teaches the model to copy words it cannot map and to drop fillers it does not know.
    Every ``checkpoint_every`` steps model, optimizer and all three RNG states go to ``<out_dir>.run/``
    (``StepCheckpoints``); a rerun of the same command resumes the same trajectory and the folder is removed once
    ``out_dir`` is written.
    """
    from safetensors.torch import load_file, load_model, save_file, save_model
    from tqdm.auto import tqdm
    from transformers import GPT2Config, GPT2LMHeadModel

    from ..cache import StepCheckpoints
    from ..models.tokenizers import train_bytelevel_tokenizer
    from .copy_noise import add_copy_noise

    settings = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "split": split, "copy_noise": copy_noise}
    run = StepCheckpoints(Path(f"{out_dir}.run"))
    if (ckpt := run.latest()) is not None and (ckpt / "state.json").is_file():  # checked before any data or model
        state = json.loads((ckpt / "state.json").read_text())
        if state["settings"] != settings:
            raise ValueError(f"{ckpt} was written with {state['settings']}, not {settings}; delete {run.root} or "
                             "pass the same settings to resume")
    else:
        ckpt = None
    torch.manual_seed(seed)
    triples = world.caption_pairs(40000, seed, split)
    pairs = [_rewriter_pair(casual, canonical) for casual, canonical, _ in triples]
    corpus = [p["prompt"] + p["completion"] for p in pairs[:20000]]  # the tokenizer sees clean pairs only
    tok = train_bytelevel_tokenizer(corpus, vocab_size=1000)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=128, n_layer=4, n_head=4,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                       pad_token_id=tok.pad_token_id))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng, noise_rng = random.Random(seed), random.Random(seed + 1)
    start = 0
    if ckpt is not None:
        load_model(model, str(ckpt / "model.safetensors"))
        opt.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        torch.set_rng_state(load_file(str(ckpt / "torch_rng.safetensors"))["state"])
        for r, st in ((rng, state["rng"]), (noise_rng, state["noise_rng"])):
            r.setstate((st[0], tuple(st[1]), st[2]))
        start = state["step"]
        log(f"resumed from {ckpt} at step {start}")

    def write(tmp: Path, step: int) -> None:
        save_model(model, str(tmp / "model.safetensors"))  # drops the tied lm_head copy of the embedding
        torch.save(opt.state_dict(), tmp / "optimizer.pt")
        save_file({"state": torch.get_rng_state()}, str(tmp / "torch_rng.safetensors"))
        (tmp / "state.json").write_text(json.dumps({"step": step, "settings": settings, "rng": rng.getstate(),
                                                    "noise_rng": noise_rng.getstate()}))

    model.train()
    for step in tqdm(range(start, steps), desc="shapes rewriter", initial=start, total=steps):
        idx = [rng.randrange(len(pairs)) for _ in range(batch)]
        rows = ([_rewriter_pair(*add_copy_noise(triples[i][0], triples[i][1], noise_rng)) for i in idx] if copy_noise
                else [pairs[i] for i in idx])
        prompt_ids = [tok(r["prompt"]).input_ids for r in rows]
        full_ids = [p + tok(r["completion"]).input_ids + [tok.eos_token_id] for p, r in zip(prompt_ids, rows)]
        for j, i in enumerate(idx):  # a noisy pair longer than the context (rare: long pseudo-words) trains clean
            if len(full_ids[j]) > model.config.n_positions:
                prompt_ids[j] = tok(pairs[i]["prompt"]).input_ids
                full_ids[j] = prompt_ids[j] + tok(pairs[i]["completion"]).input_ids + [tok.eos_token_id]
        width = max(map(len, full_ids))
        ids = torch.full((batch, width), tok.pad_token_id)
        labels = torch.full((batch, width), -100)
        attn = torch.zeros((batch, width), dtype=torch.long)
        for i, (p, f) in enumerate(zip(prompt_ids, full_ids)):
            ids[i, :len(f)] = torch.tensor(f)
            labels[i, len(p):len(f)] = torch.tensor(f[len(p):])  # loss on the completion only
            attn[i, :len(f)] = 1
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == steps - 1:
            log(f"rewriter step {step} loss {loss.item():.4f}")
        if (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            run.save(step + 1, lambda tmp: write(tmp, step + 1))
    model.eval()
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "t2i_rewriter.json").write_text(json.dumps({"template": PROMPTIST_TEMPLATE, "trained_steps": steps,
                                                                "split": split, "copy_noise": copy_noise}))
    shutil.rmtree(run.root, ignore_errors=True)
    return Path(out_dir)
