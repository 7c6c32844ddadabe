"""Dynamic Prompt Learning (Wang et al., NeurIPS 2023, arXiv 2309.15664; code wangkai930418/DPL): per-timestep
noun tokens optimised so each noun's cross-attention stays on its object, then null-text inversion.

At every sampling step t (0 = the noisiest) from the inverted noise:
1. attention phase: AdamW on the noun tokens' conditioning vectors (initialised from the noun, warm-started from
   the previous step) with ``L = l_at L_at + l_dj L_dj + l_bg L_bg`` on the 16x16 cross-attention maps A_i
   (x100 softmax over the prompt's tokens, 3x3 Gaussian smoothing): ``L_at = max_i (1 - max A_i)``,
   ``L_dj = mean_{i<j} cos(A_i, A_j)``, ``L_bg = mean_i cos(A_i, BG)``; it stops early once every weighted loss is
   under its threshold ``beta * exp(-t / alpha)`` (L_bg: ``exp(-(t - max_iter_to_alter) / alpha)``);
2. null-text phase: the unconditional embedding is optimised as in null-text inversion (optionally with its early
   stop, which the release code lacks);
3. the guided DDIM step with the learned {uncond_t, cond_t}.
BG comes from the inversion: KMeans (5 clusters) on the mean 16x16 self-attention; ``bg_method`` says which
clusters are background. ``"cross"`` (the paper's rule): a cluster whose highest max-normalised noun cross-attention
is <= ``bg_threshold`` (0.2). It assumes a noun's attention is near zero away from its object (on SD most of it
sinks into the BOS token); on a model whose words attend diffusely the background keeps 0.4-0.8 of a noun's peak
and no cluster is ever background (the shapes world: 0 of 12 scenes). ``"boundary"``: a cluster whose boundary
connectivity ``BndCon = |cluster on the map's border| / sqrt(|cluster|)`` is >= ``bg_boundary`` (2.0) is background
(the boundary prior of Zhu et al., CVPR 2014, "Saliency Optimization from Robust Background Detection", eq. 1:
background regions touch the border much more than their size predicts); it uses the self-attention clusters alone.

``softmax_over="nouns"`` (off by default) runs the x100 softmax over the nouns alone. Over the whole prompt it
assumes a noun can hold the most attention somewhere, as on SD once BOS is excluded; on the shapes world one
function word ("the", "to", "above") holds the most at ~every pixel, so each noun's softmaxed peak stays ~1e-4,
``L_at`` sits at 0.9999 for every inner step and its gradient vanishes (the shapes v3 model;
``eval/attention_tokens.py``). But with the nouns alone every pixel's mass is split between them (the maps sum to
1), so ``L_bg`` cannot lower both at a background pixel and ``L_dj`` pushes each pixel to one noun: the background
is handed to a noun, and leakage rises (shapes v3-partial, README "Editing"). ``softmax_over="none"`` keeps each
noun's own attention probabilities (smoothed, no re-softmax): a noun's share at a pixel can fall without another
noun's rising, which is what the leakage measure counts.

Differences from the release code, on purpose: the learned vectors live in the text encoder's *output* space at the
noun's positions (no tokenizer surgery, one code path for SD1.x and SDXL's two encoders); maps come from the
capture path (``AttentionStore``, with gradients); a missing background warns instead of silently disabling L_bg.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields, replace
from typing import Sequence

import torch
import torch.nn.functional as F

from ..attention.controller import AttentionController
from ..attention.store import AttentionStore, SelfAttentionStore
from .inversion import (
    Inversion,
    OptimisationDiverged,
    PassCounter,
    backward_into,
    ddim_move,
    ddim_pipeline,
    optimise_uncond,
    split_embeds,
    with_rows,
)

__all__ = ["DPLConfig", "DPL_PRESETS", "DPLResult", "dpl_inversion", "background_map", "boundary_connectivity",
           "kmeans", "BG_METHODS", "attention_losses"]


BG_METHODS = ("cross", "boundary")
SOFTMAX_OVER = ("prompt", "nouns", "none")


@dataclass(frozen=True)
class DPLConfig:
    """DPL's hyperparameters (methods.md §7). Loss weights ``lambda_*``, early-stop decays ``alpha_*`` and offsets
    ``beta_*`` per loss (at: attention balancing, dj: disjoint objects, bg: background leakage); inner steps of the
    two phases; ``lr`` of the token optimiser (AdamW); ``null_early_stop`` adds null-text inversion's early stop
    (``epsilon + t * 2e-5``) to the null phase; ``bg_method`` the background rule (``"cross"``: the paper's, a
    cluster no noun claims with max-normalised cross-attention above ``bg_threshold``; ``"boundary"``: boundary
    connectivity >= ``bg_boundary``; see the module docstring); ``softmax_over`` the tokens the map softmax runs over
    (``"prompt"``: the paper's; ``"nouns"``: the nouns only; ``"none"``: no re-softmax, each noun's own attention
    probabilities; see the module docstring)."""

    lambda_at: float = 1.0
    lambda_dj: float = 0.05
    lambda_bg: float = 0.05
    alpha_at: float = 25.0
    alpha_dj: float = 25.0
    alpha_bg: float = 50.0
    beta_at: float = 0.3
    beta_dj: float = 0.9
    beta_bg: float = 0.7
    attn_inner_steps: int = 21
    null_inner_steps: int = 51
    lr: float = 1e-3
    max_iter_to_alter: int = 0
    null_early_stop: bool = False
    null_epsilon: float = 1e-5
    bg_threshold: float = 0.2
    bg_method: str = "cross"
    bg_boundary: float = 2.0
    clusters: int = 5
    attn_res: int = 16
    softmax_scale: float = 100.0
    smooth_sigma: float = 0.5
    softmax_over: str = "prompt"

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"DPL setting {f.name} must be finite, got {v}.")
        for name in ("attn_inner_steps", "null_inner_steps", "clusters", "attn_res"):
            if getattr(self, name) < (0 if name.endswith("inner_steps") else 1):
                raise ValueError(f"DPL setting {name} must be >= {0 if name.endswith('inner_steps') else 1}, "
                                 f"got {getattr(self, name)}.")
        if self.softmax_over not in SOFTMAX_OVER:
            raise ValueError(f"DPL softmax_over {self.softmax_over!r} is not one of {SOFTMAX_OVER}.")
        if self.bg_method not in BG_METHODS:
            raise ValueError(f"DPL bg_method {self.bg_method!r} is not one of {BG_METHODS}.")
        if min(self.alpha_at, self.alpha_dj, self.alpha_bg) <= 0 or self.lr <= 0:
            raise ValueError("DPL alphas and lr must be > 0.")

    def to_dict(self) -> dict:
        return asdict(self)


DPL_PRESETS: dict[str, DPLConfig] = {
    # DPL.sh, the release recipe
    "release": DPLConfig(),
    # _3_dpl_inv.py's argparse defaults (all loss weights 0, beta_bg 0.3, one attention step)
    "argparse": DPLConfig(lambda_at=0.0, lambda_dj=0.0, lambda_bg=0.0, beta_bg=0.3, attn_inner_steps=1),
    # release losses and thresholds; the attention phase capped at 10 inner steps, the null phase is null-text
    # inversion's (10 inner steps, early stop at its epsilon): at most 2x NTI's UNet passes per image
    "fast": DPLConfig(attn_inner_steps=10, null_inner_steps=10, null_early_stop=True),
}


def kmeans(x: torch.Tensor, k: int, iters: int = 30) -> torch.Tensor:
    """Lloyd's k-means on the rows of ``x`` (N, D), deterministic farthest-point initialisation; labels (N,)."""
    k = min(k, x.shape[0])
    centres = [x[0]]
    for _ in range(1, k):
        d = torch.cdist(x, torch.stack(centres)).min(dim=1).values
        centres.append(x[int(d.argmax())])
    c = torch.stack(centres)
    labels = torch.zeros(x.shape[0], dtype=torch.long)
    for _ in range(iters):
        labels = torch.cdist(x, c).argmin(dim=1)
        new = torch.stack([x[labels == j].mean(0) if (labels == j).any() else c[j] for j in range(k)])
        if torch.allclose(new, c):
            break
        c = new
    return labels


def boundary_connectivity(labels: torch.Tensor) -> dict[int, float]:
    """Per cluster of a (res, res) label map: cells on the map's border / sqrt(cells) (Zhu et al. 2014, eq. 1)."""
    border = torch.zeros_like(labels, dtype=torch.bool)
    border[0] = border[-1] = True
    border[:, 0] = border[:, -1] = True
    return {int(j): float((border & (labels == j)).sum()) / math.sqrt(float((labels == j).sum()))
            for j in labels.unique()}


def background_map(self_attention: torch.Tensor, noun_maps: torch.Tensor, clusters: int = 5,
                   threshold: float = 0.2, method: str = "cross",
                   boundary: float = 2.0) -> tuple[torch.Tensor | None, torch.Tensor]:
    """DPL's background mask from KMeans on the (N, N) self-attention rows. ``method="cross"`` (the paper's): a
    cluster whose highest max-normalised noun cross-attention (``noun_maps``: (nouns, res, res)) is <= ``threshold``
    is background; ``"boundary"``: a cluster with boundary connectivity >= ``boundary``. Returns (BG (res, res) in
    {0, 1} or None when no cluster is background, the cluster labels (res, res))."""
    if method not in BG_METHODS:
        raise ValueError(f"background method {method!r} is not one of {BG_METHODS}.")
    res = noun_maps.shape[-1]
    labels = kmeans(self_attention.float(), clusters)
    bg = torch.zeros(labels.shape[0])
    if method == "boundary":
        for j, score in boundary_connectivity(labels.reshape(res, res)).items():
            if score >= boundary:
                bg[labels == j] = 1.0
    else:
        norm = noun_maps.flatten(1) / noun_maps.flatten(1).amax(dim=1, keepdim=True).clamp_min(1e-12)  # (nouns, N)
        for j in labels.unique():
            where = labels == j
            if float(norm[:, where].mean(dim=1).max()) <= threshold:
                bg[where] = 1.0
    return (bg.reshape(res, res) if bg.any() else None), labels.reshape(res, res)


def _gaussian_kernel(sigma: float, size: int = 3) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def token_maps(maps: torch.Tensor, config: DPLConfig) -> torch.Tensor:
    """Per-token maps (tokens, res, res) of raw probabilities -> x``softmax_scale`` softmax over the tokens, then
    Gaussian smoothing (Attend-and-Excite's preprocessing, which DPL uses)."""
    return smooth(torch.softmax(maps * config.softmax_scale, dim=0), config)


def smooth(maps: torch.Tensor, config: DPLConfig) -> torch.Tensor:
    """3x3 Gaussian smoothing of (tokens, res, res) maps (reflect padding, so a constant map stays constant)."""
    if config.smooth_sigma <= 0:
        return maps
    return F.conv2d(F.pad(maps[:, None], (1, 1, 1, 1), mode="reflect"),
                    _gaussian_kernel(config.smooth_sigma).to(maps))[:, 0]


def attention_losses(noun_maps: torch.Tensor, bg: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """``L_at``, ``L_dj``, ``L_bg`` of the nouns' maps (nouns, res, res) (zero where undefined)."""
    flat = noun_maps.flatten(1)
    zero = flat.sum() * 0
    at = (1 - flat.amax(dim=1)).max()
    if flat.shape[0] > 1:
        pairs = [F.cosine_similarity(flat[i], flat[j], dim=0)
                 for i in range(flat.shape[0]) for j in range(i + 1, flat.shape[0])]
        dj = torch.stack(pairs).mean()
    else:
        dj = zero
    bg_loss = F.cosine_similarity(flat, bg.flatten()[None].to(flat), dim=1).mean() if bg is not None else zero
    return {"at": at, "dj": dj, "bg": bg_loss}


@dataclass
class DPLResult:
    """Per sampling step: learned ``uncond`` and ``cond`` hidden states, loss histories of both phases, the
    background mask used (None if none) and the inner steps actually run."""

    uncond: list[torch.Tensor]
    cond: list[torch.Tensor]
    attention_losses: list[list[dict[str, float]]]
    null_losses: list[list[float]]
    background: torch.Tensor | None
    noun_positions: dict[str, list[int]]


class _NounMapper:
    """Cond-only UNet pass with the learned vectors at the noun positions -> the nouns' processed maps (with grad)."""

    def __init__(self, pipe, inversion: Inversion, noun_positions: dict[str, list[int]], config: DPLConfig):
        self.pipe, self.inversion, self.config = pipe, inversion, config
        self.positions = noun_positions
        ids = inversion.embeds.input_ids[0].tolist() if inversion.embeds.input_ids is not None else []
        eos = pipe.tokenizer.eos_token_id
        length = ids.index(eos) if eos in ids else max(p for ps in noun_positions.values() for p in ps) + 1
        self.text_positions = list(range(1, length))  # the prompt's tokens (no BOS, EOS, padding)
        self.store = AttentionStore(resolution=config.attn_res)
        self.store.set_token_ids([[[p] for p in self.text_positions]])
        self.controller = AttentionController([self.store], do_cfg=False)

    def maps(self, latent, t, step, cond) -> tuple[torch.Tensor, torch.Tensor]:
        """(the nouns' maps (nouns, res, res), the conditional noise prediction of this pass)."""
        self.store.reset()
        self.controller.on_step_begin(step, t)
        noise = self.pipe.predict_noise(latent, t, cond, 1.0, self.inversion.scheduler)
        raw = self.store.maps()[0]  # (tokens, res, res)
        index = {p: k for k, p in enumerate(self.text_positions)}
        if self.config.softmax_over in ("nouns", "none"):
            nouns = torch.stack([raw[[index[p] for p in ps]].mean(0) for ps in self.positions.values()])
            if self.config.softmax_over == "none":  # each noun's own attention probabilities
                return smooth(nouns, self.config), noise
            return token_maps(nouns, self.config), noise  # the nouns compete only with each other
        soft = token_maps(raw, self.config)
        return torch.stack([soft[[index[p] for p in ps]].mean(0) for ps in self.positions.values()]), noise


def _below_thresholds(losses: dict[str, torch.Tensor], step: int, config: DPLConfig, has_bg: bool) -> bool:
    """DPL's early stop: every active loss under its exponentially decaying threshold."""
    checks = []
    if config.lambda_at > 0:
        checks.append(losses["at"].item() < config.beta_at * math.exp(-step / config.alpha_at))
    if config.lambda_dj > 0 and len(losses) and losses["dj"].item() != 0.0:
        checks.append(losses["dj"].item() < config.beta_dj * math.exp(-step / config.alpha_dj))
    if config.lambda_bg > 0 and has_bg and step >= config.max_iter_to_alter:
        checks.append(losses["bg"].item() < config.beta_bg * math.exp(-(step - config.max_iter_to_alter) / config.alpha_bg))
    return all(checks)


def attention_resolution(unet, latent_side: int, wanted: int) -> int:
    """The side of the largest self-attention grid of ``unet`` not above ``wanted`` (else its smallest grid): DPL's
    16x16 maps on SD1.5 at 512 px, the nearest existing grid on other UNets and sizes."""
    from ..attention.controller import unet_layers

    sides = sorted({max(1, latent_side // l.factor) for l in unet_layers(unet).values() if not l.is_cross})
    if not sides:
        raise ValueError("This UNet has no self-attention layer; DPL needs one for its background map.")
    fitting = [s for s in sides if s <= wanted]
    return fitting[-1] if fitting else sides[0]


def inversion_hooks(config: DPLConfig, noun_positions: dict[str, list[int]]) -> tuple[AttentionStore, SelfAttentionStore]:
    """The stores DPL needs during DDIM inversion: the nouns' cross-attention and the self-attention at ``attn_res``."""
    cross = AttentionStore(resolution=config.attn_res)
    cross.set_token_ids([list(noun_positions.values())], words=list(noun_positions))
    return cross, SelfAttentionStore(config.attn_res)


def dpl_inversion(pipeline, inversion: Inversion, noun_positions: dict[str, list[int]], guidance_scale: float,
                  config: DPLConfig, background: torch.Tensor | None, counter: PassCounter | None = None,
                  progress: bool = False) -> DPLResult:
    """Run DPL's per-step token learning and null-text phase from ``inversion`` (see the module docstring)."""
    from tqdm.auto import tqdm

    if guidance_scale <= 1.0:
        raise ValueError(f"DPL needs guidance > 1 (got {guidance_scale}): its null-text phase undoes guidance drift.")
    if not noun_positions:
        raise ValueError("DPL needs at least one noun of the source prompt (--nouns).")
    if background is None and config.lambda_bg > 0:
        hint = ("raise bg_threshold, or use bg_method='boundary' where words attend diffusely"
                if config.bg_method == "cross" else "lower bg_boundary")
        warnings.warn(f"DPL: no background cluster was found (bg_method {config.bg_method!r}); L_bg is off for this "
                      f"image; {hint}.", stacklevel=2)
    pipe = ddim_pipeline(pipeline)
    counter = counter or PassCounter()
    uncond, cond = split_embeds(inversion.embeds)
    mapper = _NounMapper(pipe, inversion, noun_positions, config)
    all_pos = [p for ps in noun_positions.values() for p in ps]
    vectors = cond.embeds[0, all_pos].detach().clone()  # (tokens, D), initialised from the nouns
    latent = inversion.start()
    result = DPLResult([], [], [], [], background, dict(noun_positions))
    bar = tqdm(total=inversion.num_steps, desc="DPL", disable=not progress)
    with pipe._lock, mapper.controller.installed(pipe.unet):
        mapper.controller.set_latent_size(*latent.shape[-2:])
        for i, t in enumerate(inversion.timesteps):
            vec = vectors.clone().requires_grad_(True)
            optimiser = torch.optim.AdamW([vec], lr=config.lr)
            history: list[dict[str, float]] = []

            def hidden_with(v):
                h = cond.embeds.clone()
                h[0, all_pos] = v
                return h

            noise_cond = None  # the cond prediction at the final vectors, when the last pass computed it
            for _ in range(config.attn_inner_steps):
                with torch.enable_grad():
                    noun_maps, noise = mapper.maps(latent, t, i, with_rows(cond, hidden_with(vec)))
                    losses = attention_losses(noun_maps, background)
                    total = (config.lambda_at * losses["at"] + config.lambda_dj * losses["dj"]
                             + config.lambda_bg * losses["bg"])
                    history.append({k: v.item() for k, v in losses.items()} | {"total": total.item()})
                    if not torch.isfinite(total):
                        raise OptimisationDiverged(
                            f"DPL: the attention loss became {total.item()} at step {i}; lower lr "
                            f"(now {config.lr}) or the loss weights (kept the steps before).",
                            {"uncond": result.uncond, "cond": result.cond})
                    if _below_thresholds(losses, i, config, background is not None) or total.item() == 0.0:
                        noise_cond = noise.detach()  # vec is final: this pass's prediction is the step's (saves a pass)
                        break
                    backward_into(total, vec)
                    counter.backward += 1
                    optimiser.step()
            vectors = vec.detach()
            cond_i = with_rows(cond, hidden_with(vectors))
            if noise_cond is None:
                with torch.no_grad(), mapper.controller.suspended():
                    noise_cond = pipe.predict_noise(latent, t, cond_i, 1.0, inversion.scheduler)
            with mapper.controller.suspended():
                try:
                    hidden, null_losses = optimise_uncond(
                        pipe, inversion, i, latent, uncond, noise_cond, guidance_scale, config.null_inner_steps,
                        config.null_epsilon if config.null_early_stop else None, counter)
                except OptimisationDiverged as e:
                    e.learned = {"uncond": result.uncond, "cond": result.cond}
                    raise
                uncond = with_rows(uncond, hidden)
                with torch.no_grad():
                    noise_uncond = pipe.predict_noise(latent, t, uncond, 1.0, inversion.scheduler)
            guided = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
            latent = ddim_move(inversion.scheduler, guided, latent, t, inversion.prev_timestep(i)).detach()
            result.uncond.append(hidden)
            result.cond.append(cond_i.embeds.detach())
            result.attention_losses.append(history)
            result.null_losses.append(null_losses)
            bar.update(1)
            bar.set_postfix(attn=len(history), null=len(null_losses))
    bar.close()
    return result


def preset(name: str, **overrides) -> DPLConfig:
    """A named preset (``release``, ``argparse``, ``fast``) with field overrides."""
    if name not in DPL_PRESETS:
        raise ValueError(f"Unknown DPL preset {name!r}; choose from {sorted(DPL_PRESETS)}.")
    return replace(DPL_PRESETS[name], **overrides)


def noun_positions_for(tokenizers: Sequence, prompt: str, nouns: Sequence[str]) -> dict[str, list[int]]:
    """Token positions of each noun in ``prompt`` (a clear error naming a noun that is not in it)."""
    from ..attention.tokens import token_indices_multi

    return {noun: token_indices_multi(tokenizers, prompt, noun) for noun in nouns}
