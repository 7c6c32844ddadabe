"""Training of the shapes-world T2I model (pixel-space UNet + tiny CLIP text encoder), with exact resume.

Each step's data is a pure function of (seed, step) and the checkpoint holds model, EMA, optimizer and
step, so a run killed at any point and resumed continues the same trajectory. The script that drives
this is ``training/shapes/train_t2i.py``; the exact commands are in ``training/shapes/README.md``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..cache import StepCheckpoints, atomic_dir, fingerprint_path
from . import world


@dataclass
class T2ITrainConfig:
    """Hyper-parameters of the T2I run (defaults are the shipped model's)."""

    run_dir: str = "runs/shapes_t2i"
    seed: int = 0
    max_steps: int = 6000
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    final_lr_fraction: float = 0.1  # cosine decay to this fraction of the peak at max_steps
    weight_decay: float = 0.01
    ema_decay: float = 0.995
    cfg_dropout: float = 0.1  # fraction of captions replaced by "" (classifier-free guidance)
    prediction_type: str = "sample"  # x0, the shipped model's; "epsilon" / "v_prediction" as in SD (README §3)
    snr_gamma: float = 0.0  # min-SNR-gamma loss weighting (Hang et al., 2023); 0 = off (the shipped model)
    p_single: float = 0.35  # scene mix of the training data (rest: relation, then count)
    p_relation: float = 0.45
    grounding_weight: float = 0.0  # weight of TokenCompose's noun-attention loss (grounding.py); 0 = off (shipped v3)
    grounding_resolution: int = 16  # side at which noun maps and object masks are compared (DPL's and the eval's)
    init_from: str = ""  # warm start: an exported model folder whose unet/text_encoder weights are loaded first
    checkpoint_every: int = 100
    eval_every: int = 500
    eval_guidance: float = 3.0  # guidance written into the export's defaults: the sweep's best (README §3)
    eval_guidances: list = field(default_factory=lambda: [1.0, 2.0, 3.0])  # logged at every evaluation
    threads: int = 2
    block_out_channels: list = field(default_factory=lambda: [32, 64, 64])

    def __post_init__(self):
        if not self.grounding_weight >= 0:  # also catches NaN
            raise ValueError(f"grounding_weight must be >= 0 (0 turns the grounding loss off), "
                             f"got {self.grounding_weight}.")
        if self.grounding_resolution < 1:
            raise ValueError(f"grounding_resolution must be a positive map side (16 = DPL's), "
                             f"got {self.grounding_resolution}.")


def learning_rate(cfg: T2ITrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``final_lr_fraction`` of the peak."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    floor = cfg.final_lr_fraction
    return cfg.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def diffusion_loss(pred, x0, noise, t, scheduler, snr_gamma: float = 0.0) -> torch.Tensor:
    """MSE against the scheduler's prediction target, optionally min-SNR-gamma weighted.

    Min-SNR (Hang et al., 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy"): per-sample weight
    min(SNR, gamma) / SNR for epsilon, min(SNR, gamma) / (SNR + 1) for v, min(SNR, gamma) for x0, where
    SNR(t) = alpha_bar / (1 - alpha_bar).
    """
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = scheduler.get_velocity(x0, noise, t)
    else:
        target = x0
    per_sample = (pred - target).pow(2).mean(dim=(1, 2, 3))
    if snr_gamma > 0:
        abar = scheduler.alphas_cumprod.to(t.device)[t]
        snr = abar / (1 - abar)
        capped = snr.clamp(max=snr_gamma)
        weight = {"epsilon": capped / snr, "v_prediction": capped / (snr + 1)}.get(kind, capped)
        per_sample = per_sample * weight
    return per_sample.mean()


class T2ITrainer:
    """Holds the models and optimizer of a run; ``train()`` resumes from ``run_dir/checkpoint`` if present."""

    def __init__(self, cfg: T2ITrainConfig):
        from diffusers import DDPMScheduler
        from transformers import CLIPTextModel

        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        torch.manual_seed(cfg.seed)
        self.tokenizer = world.make_tokenizer()
        self.unet = world.make_unet(cfg.block_out_channels).to(memory_format=torch.channels_last)
        self.text_encoder = CLIPTextModel(world.make_text_config(len(self.tokenizer)))
        self.ema_unet = copy.deepcopy(self.unet).requires_grad_(False)
        self.ema_text_encoder = copy.deepcopy(self.text_encoder).requires_grad_(False)
        self.scheduler = DDPMScheduler.from_config(world.make_scheduler_config(cfg.prediction_type))
        self.init_weights: dict[str, str] = {}  # sha256 of each warm-start file: content, not the path's name
        if cfg.init_from:
            self._warm_start(Path(cfg.init_from))
            self.ema_unet.load_state_dict(self.unet.state_dict())
            self.ema_text_encoder.load_state_dict(self.text_encoder.state_dict())
        params = list(self.unet.parameters()) + list(self.text_encoder.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.step = 0
        self.history: list[dict] = []
        self.last_losses: dict[str, float] = {}  # the latest step's loss terms (diffusion, token)
        self.checkpoints = StepCheckpoints(self.run_dir)

    def _warm_start(self, folder: Path) -> None:
        """Load unet / text_encoder weights of an exported model (same architecture, any prediction type)."""
        from safetensors.torch import load_file

        for name, module in (("unet", self.unet), ("text_encoder", self.text_encoder)):
            files = sorted((folder / name).glob("*.safetensors"))
            if len(files) != 1:
                found = ", ".join(f.name for f in files) or "none"
                raise FileNotFoundError(f"--init_from {folder}: expected one {name}/*.safetensors (found {found}); "
                                        "pass a folder written by the shapes T2I export")
            module.load_state_dict(load_file(str(files[0])))
            self.init_weights[name] = fingerprint_path(folder / name)  # weights and config: all that defines the part

    # ------------------------------------------------------------------------------------ checkpoints
    def _modules(self) -> dict:
        return {"unet": self.unet, "text_encoder": self.text_encoder,
                "ema_unet": self.ema_unet, "ema_text_encoder": self.ema_text_encoder}

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint-<step>`` fully, point ``LATEST`` at it, then delete older ones (``StepCheckpoints``):
        a kill at any point leaves one complete checkpoint that the restart finds."""
        from safetensors.torch import save_file

        def write(tmp: Path) -> None:
            for name, module in self._modules().items():
                save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp / f"{name}.safetensors"))
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            (tmp / "state.json").write_text(json.dumps(
                {"step": self.step, "config": asdict(self.cfg), "history": self.history,
                 "init_weights": self.init_weights}, indent=1))

        return self.checkpoints.save(self.step, write)

    def load_checkpoint(self) -> bool:
        from safetensors.torch import load_file

        ckpt = self.checkpoints.latest()
        if ckpt is None or not (ckpt / "state.json").exists():
            return False
        state = json.loads((ckpt / "state.json").read_text())
        if state["config"]["block_out_channels"] != list(self.cfg.block_out_channels):
            raise ValueError(f"checkpoint in {ckpt} has another architecture; use a new --run_dir")
        if state["config"].get("prediction_type", "sample") != self.cfg.prediction_type:
            raise ValueError(f"checkpoint in {ckpt} predicts {state['config'].get('prediction_type', 'sample')!r}, "
                             f"not {self.cfg.prediction_type!r}; use a new --run_dir")
        for name, module in self._modules().items():
            module.load_state_dict(load_file(str(ckpt / f"{name}.safetensors")))
        self.optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        self.step = state["step"]
        self.history = state.get("history", [])
        self.trained_config = state["config"]
        self.init_weights = state.get("init_weights", self.init_weights)
        return True

    # ---------------------------------------------------------------------------------------- training
    def encode(self, captions: list[str], text_encoder=None) -> torch.Tensor:
        ids = self.tokenizer(captions, padding="max_length", max_length=77, truncation=True,
                             return_tensors="pt").input_ids
        return (text_encoder or self.text_encoder)(ids).last_hidden_state

    def _grounding_hooks(self, scenes, captions, masks):
        """An attention store over each caption's shape words and their object masks (``grounding.py``), or None
        when no caption of the batch names an object (all dropped for CFG)."""
        from ..attention.controller import AttentionController
        from ..attention.store import AttentionStore
        from .grounding import mask_targets, noun_targets

        res = self.cfg.grounding_resolution
        word_ids = []
        targets, valid = torch.zeros(len(scenes), 2, res, res), torch.zeros(len(scenes), 2, dtype=torch.bool)
        for b, (scene, caption) in enumerate(zip(scenes, captions)):
            nouns = noun_targets(scene, caption, self.tokenizer) if caption else []
            word_ids.append([ids for ids, _ in nouns] + [[]] * (2 - len(nouns)))
            for n, (_, objects) in enumerate(nouns):
                targets[b, n] = mask_targets(masks[b], objects, res)
                valid[b, n] = True
        if not valid.any():
            return None
        store = AttentionStore(resolution=res)
        store.set_token_ids(word_ids)
        return AttentionController([store], do_cfg=False), store, targets, valid

    def training_step(self) -> float:
        cfg = self.cfg
        sample = world.sample_training_batch_with_masks if cfg.grounding_weight > 0 else world.sample_training_batch
        scenes, images, *masks = sample(cfg.seed, self.step, cfg.batch_size, p_single=cfg.p_single,
                                        p_relation=cfg.p_relation)
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + self.step)
        captions = [world.canonical_caption(s) for s in scenes]
        drop = torch.rand(len(captions), generator=gen) < cfg.cfg_dropout
        captions = ["" if d else c for c, d in zip(captions, drop.tolist())]
        x0 = world.images_to_tensor(images).to(memory_format=torch.channels_last)
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (len(x0),), generator=gen)
        xt = self.scheduler.add_noise(x0, noise, t)
        grounding = self._grounding_hooks(scenes, captions, masks[0]) if masks else None
        if grounding is None:
            pred = self.unet(xt, t, encoder_hidden_states=self.encode(captions)).sample
        else:
            controller, store, targets, valid = grounding
            with controller.installed(self.unet):
                controller.set_latent_size(*x0.shape[-2:])
                controller.on_step_begin(self.step, t[0])  # the store keeps every call; the timestep is not used
                pred = self.unet(xt, t, encoder_hidden_states=self.encode(captions)).sample
        loss = diffusion_loss(pred.float(), x0, noise, t, self.scheduler, cfg.snr_gamma)
        self.last_losses = {"diffusion": float(loss.detach())}
        if grounding is not None:
            from .grounding import token_loss

            l_token = token_loss(store.maps(), targets, valid)
            self.last_losses["token"] = float(l_token.detach())
            loss = loss + cfg.grounding_weight * l_token
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.unet.parameters()) + list(self.text_encoder.parameters()), 1.0)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))  # warm-up: short memory early on
        for ema, live in ((self.ema_unet, self.unet), (self.ema_text_encoder, self.text_encoder)):
            for pe, pl in zip(ema.parameters(), live.parameters()):
                pe.lerp_(pl, 1 - decay)

    def train(self, log=print) -> None:
        from tqdm.auto import tqdm

        torch.set_num_threads(self.cfg.threads)
        if self.load_checkpoint():
            log(f"resumed from {self.run_dir / 'checkpoint'} at step {self.step}")
        bar = tqdm(total=self.cfg.max_steps, initial=self.step, desc="shapes t2i", dynamic_ncols=True)
        running, running_token, t0 = None, None, time.time()
        while self.step < self.cfg.max_steps:
            loss = self.training_step()
            running = loss if running is None else 0.98 * running + 0.02 * loss
            bar.update(1)
            token = self.last_losses.get("token")
            running_token = token if token is None or running_token is None else 0.98 * running_token + 0.02 * token
            bar.set_postfix(loss=f"{running:.4f}", lr=f"{learning_rate(self.cfg, self.step):.1e}",
                            **({"token": f"{running_token:.3f}"} if running_token is not None else {}))
            if self.step % self.cfg.eval_every == 0 or self.step == self.cfg.max_steps:
                metrics = self.evaluate()
                metrics.update(step=self.step, loss=running, token_loss=running_token,
                               minutes=round((time.time() - t0) / 60, 1))
                self.history.append(metrics)
                log(json.dumps(metrics))
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.max_steps:
                self.save_checkpoint()
        bar.close()

    # -------------------------------------------------------------------------------------- evaluation
    def pipeline(self, ema: bool = True):
        """A T2IPipeline over the current (EMA) weights, for evaluation and export."""
        from diffusers import DDIMScheduler

        from ..generate.pipeline import T2IPipeline

        return T2IPipeline(
            unet=self.ema_unet if ema else self.unet, scheduler=DDIMScheduler.from_config(world.make_scheduler_config(self.cfg.prediction_type)),
            text_encoder=self.ema_text_encoder if ema else self.text_encoder, tokenizer=self.tokenizer,
            vae=None, defaults=dict(world.DEFAULT_SAMPLING, guidance_scale=self.cfg.eval_guidance),
        )

    def evaluate(self, n_per_kind: int = 16) -> dict:
        """Detector accuracy on a small fixed canonical set (single, relation, count) at each eval guidance."""
        from .evaluate import evaluate_prompts
        from .grammar import canonical_caption, scene_set

        prompts = [canonical_caption(s) for k in ("single", "relation", "count") for s in scene_set(k, n_per_kind, 123)]
        was_training = self.unet.training
        out = {}
        try:
            for g in self.cfg.eval_guidances:
                report = evaluate_prompts(prompts, pipeline=self.pipeline(), seeds=[0], progress=False,
                                          guidance_scale=g)
                out[f"g{g:g}"] = {"overall": report["overall"], "by_kind": report["by_kind"]}
        except Exception as e:  # evaluation must never kill a long run
            out["eval_error"] = repr(e)[:200]
        finally:
            self.unet.train(was_training)
        return {"eval": out}

    def export(self, out_dir: str | Path) -> Path:
        """Write the EMA model in diffusers layout (+ t2i_sampling.json defaults) atomically."""
        from diffusers import DDIMScheduler

        self.ema_unet.to(memory_format=torch.contiguous_format)
        scheduler = DDIMScheduler.from_config(world.make_scheduler_config(self.cfg.prediction_type))
        index = {"_class_name": "T2IPipeline", "_t2i_prompt": "shapes-world pixel-space pipeline",
                 "unet": ["diffusers", "UNet2DConditionModel"], "text_encoder": ["transformers", "CLIPTextModel"],
                 "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "DDIMScheduler"]}
        # provenance from the run that made the weights (the checkpoint's config), not the exporting command line
        trained = getattr(self, "trained_config", None) or asdict(self.cfg)
        defaults = dict(world.DEFAULT_SAMPLING, guidance_scale=trained.get("eval_guidance", self.cfg.eval_guidance),
                        trained_steps=self.step, seed=trained["seed"], init_from=trained.get("init_from") or None,
                        init_weights_sha256=self.init_weights or None)
        with atomic_dir(out_dir) as tmp:
            self.ema_unet.save_pretrained(tmp / "unet")
            self.ema_text_encoder.save_pretrained(tmp / "text_encoder")
            self.tokenizer.save_pretrained(tmp / "tokenizer")
            scheduler.save_pretrained(tmp / "scheduler")
            (tmp / "model_index.json").write_text(json.dumps(index, indent=2))
            (tmp / "t2i_sampling.json").write_text(json.dumps(defaults, indent=2))
        return Path(out_dir)
