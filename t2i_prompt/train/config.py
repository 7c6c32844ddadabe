"""Training configs: dataclasses subclassing trl's ``SFTConfig``/``DPOConfig``, parsed from YAML then CLI overrides.

Every field has one ``help`` text (shown by ``--help``). Unknown keys, in the YAML file or on the command line, are
an error that lists the valid keys (trl's own scripts ignore them; a typo there silently trains the wrong thing).

CPU-safe defaults: trl 1.16 defaults to ``bf16=True`` and ``gradient_checkpointing=True``, which fail or run 3-4x
slower on CPU (docs/environment.md gotcha 4). Here ``bf16``, ``gradient_checkpointing`` and ``use_cpu`` default to
``None`` and resolve in ``__post_init__``: without CUDA to ``use_cpu=True, bf16=False, gradient_checkpointing=False``;
with CUDA to bf16 when supported and gradient checkpointing on (trl's GPU defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trl import DPOConfig, SFTConfig

from ..config import help_field as _help
from ..config import load_yaml, make_parser, parse_config, parse_mapping as _parse_mapping, unknown_keys_error
from ..rewrite.rewriter import DEFAULT_SYSTEM_PROMPT, PROMPTIST_TEMPLATE

PROMPT_FORMATS = ("rephrase", "chat")
PAIR_STRATEGIES = ("best_vs_worst", "all_pairs", "floors")
DPO_LOSSES = ("dpo", "semdpo")

__all__ = ["SFTTrainConfig", "DPOTrainConfig", "PreferenceConfig", "LoopConfig", "PolicyModelFields", "load_yaml",
           "make_parser", "parse_config", "unknown_keys_error"]


def _resolve_device_defaults(cfg) -> None:
    """Fill ``use_cpu``/``bf16``/``gradient_checkpointing`` left at ``None`` (see module docstring)."""
    import torch

    has_cuda = torch.cuda.is_available()
    if cfg.use_cpu is None:
        cfg.use_cpu = not has_cuda
    on_gpu = has_cuda and not cfg.use_cpu
    if cfg.bf16 is None:
        cfg.bf16 = on_gpu and torch.cuda.is_bf16_supported() and not cfg.fp16
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing (the old name is a warned alias that
    # mirrors the new one after TrainingArguments.__post_init__).
    if cfg.activation_checkpointing is None:
        cfg.activation_checkpointing = on_gpu if cfg.gradient_checkpointing is None else cfg.gradient_checkpointing
    cfg.gradient_checkpointing = None
    if not on_gpu and (cfg.bf16 or cfg.fp16):
        raise ValueError(
            f"bf16={cfg.bf16}, fp16={cfg.fp16} need a GPU, but training runs on CPU; set `bf16: false` and "
            "`fp16: false` (CPU trains in fp32)."
        )


@dataclass
class PolicyModelFields:
    """Fields shared by SFT and DPO: which model, which data, which prompt format, LoRA or full fine-tuning, and
    the CPU-safe device defaults (mixed in before trl's config class, so these definitions win)."""

    model_name_or_path: str = field(
        default="tiny:gpt2",
        metadata=_help("Policy model: a `tiny:<arch>` name, `shapes:rewriter`, a local directory or a cached hub id."),
    )
    dataset: str | None = field(
        default=None,
        metadata=_help("Training data: a .jsonl/.json file, a directory written by `Dataset.save_to_disk`, or a hub id."),
    )
    dataset_split: str = field(default="train", metadata=_help("Split to use when `dataset` holds several splits."))
    prompt_format: str = field(
        default="rephrase",
        metadata=_help(
            "How the plain prompt is shown to the LM: `rephrase` (Promptist: `template`, completion after it) or "
            "`chat` (the tokenizer's chat template: `system_prompt`, then the plain prompt as the user turn; the same "
            "input `PromptRewriter` builds).",
            choices=list(PROMPT_FORMATS),
        ),
    )
    template: str = field(
        default=PROMPTIST_TEMPLATE,
        metadata=_help("Promptist input template for `prompt_format: rephrase`; must contain `{prompt}`."),
    )
    system_prompt: str = field(
        default=DEFAULT_SYSTEM_PROMPT,
        metadata=_help("System message for `prompt_format: chat` (default: PromptRewriter's); empty = none."),
    )
    use_lora: bool = field(default=False, metadata=_help("Train a LoRA adapter (peft) instead of all weights."))
    lora_r: int = field(default=8, metadata=_help("LoRA rank r (> 0)."))
    lora_alpha: int = field(default=16, metadata=_help("LoRA scaling alpha (the update is scaled by alpha / r)."))
    lora_dropout: float = field(default=0.0, metadata=_help("Dropout on the LoRA branch, in [0, 1)."))
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata=_help("Module names to adapt; `None` lets peft pick the defaults of the architecture."),
    )
    merge_lora_on_save: bool = field(
        default=True,
        metadata=_help("Save the final model with the LoRA weights merged, so it loads like any full checkpoint."),
    )
    # trl/transformers fields with defaults suited to short prompts and to CPUs (they override the trl defaults)
    max_length: int | None = field(default=128, metadata=_help("Max tokens of prompt + completion (truncated)."))
    logging_steps: float = field(default=1, metadata=_help("Log every N steps (or a fraction of the run if < 1)."))
    bf16: bool | None = field(default=None, metadata=_help("bf16 mixed precision; `None` = on for bf16-capable GPUs."))
    use_cpu: bool | None = field(default=None, metadata=_help("Train on CPU; `None` = when no CUDA device exists."))
    gradient_checkpointing: bool | None = field(
        default=None, metadata=_help("Activation checkpointing; `None` = on for GPU, off on CPU (3-4x faster there).")
    )

    def _validate_policy_fields(self) -> None:
        if self.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"prompt_format={self.prompt_format!r}; use one of {list(PROMPT_FORMATS)}.")
        if "{prompt}" not in self.template:
            raise ValueError(f"template={self.template!r} must contain '{{prompt}}'.")
        import string

        fields_used = {name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None}
        if fields_used - {"prompt"}:
            raise ValueError(f"template={self.template!r} uses unknown field(s) {sorted(fields_used - {'prompt'})}; "
                             "only {prompt} is filled in (write {{ and }} for literal braces).")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length={self.max_length} must be >= 1 (tokens of prompt + completion) or null.")
        if self.lora_r <= 0:
            raise ValueError(f"lora_r={self.lora_r} must be > 0.")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout={self.lora_dropout} must be in [0, 1).")


@dataclass
class SFTTrainConfig(PolicyModelFields, SFTConfig):
    """Supervised fine-tuning of a prompt rewriter on (plain prompt -> refined prompt) pairs.

    Loss on the completion only (trl's prompt/completion format masks the prompt). Fields beyond ``SFTConfig``:
    the model/data/format/LoRA fields of ``PolicyModelFields`` plus the two column names below.

    > [!NOTE] Defaults that differ from ``SFTConfig``: ``bf16``/``gradient_checkpointing``/``use_cpu`` resolve per
    > device (fp32 and no checkpointing on CPU), ``learning_rate=5e-4``, ``max_length=128``, ``logging_steps=1``,
    > ``output_dir="outputs/sft"``.
    """

    source_column: str = field(default="prompt", metadata=_help("Dataset column with the plain (user) prompt."))
    target_column: str = field(default="refined", metadata=_help("Dataset column with the refined prompt to learn."))
    output_dir: str | None = field(default="outputs/sft", metadata=_help("Where checkpoints and the final model go."))
    learning_rate: float = field(default=5e-4, metadata=_help("AdamW learning rate."))

    def __post_init__(self):
        self._validate_policy_fields()
        _resolve_device_defaults(self)
        super().__post_init__()


@dataclass
class DPOTrainConfig(PolicyModelFields, DPOConfig):
    """DPO or Sem-DPO on (prompt, chosen, rejected) preference data.

    ``loss: semdpo`` scales each pair's DPO loss by ``w = exp(-semdpo_alpha * (1 - cos(e(x), e(y_w))))``
    (Sem-DPO, arXiv 2507.20133), with ``e`` a frozen text embedder (``semdpo_embedding_model``), the weights
    computed once before training.

    > [!NOTE] Defaults that differ from ``DPOConfig``: device-resolved ``bf16``/``gradient_checkpointing``/``use_cpu``,
    > ``learning_rate=1e-4``, ``max_length=128``, ``logging_steps=1``, ``output_dir="outputs/dpo"``.
    """

    loss: str = field(
        default="dpo",
        metadata=_help("`dpo` (trl's DPOTrainer, sigmoid loss) or `semdpo` (semantically weighted DPO).",
                       choices=list(DPO_LOSSES)),
    )
    semdpo_alpha: float = field(
        default=1.0,
        metadata=_help("Sem-DPO alpha >= 0: weight = exp(-alpha * cosine distance(original, chosen)); 0 gives DPO. "
                       "The paper does not publish its value; sweep 0.5-5."),
    )
    semdpo_embedding_model: str = field(
        default="minilm",
        metadata=_help("Frozen embedder e(.) for the weights: `minilm` (all-MiniLM-L6-v2, bundled) or "
                       "`clip:<model name>` (the text tower of a CLIP model, e.g. `clip:shapes:clip`)."),
    )
    semdpo_normalize_weights: bool = field(
        default=False,
        metadata=_help("Divide the weights by their batch mean (off by default: the paper does not state it)."),
    )
    original_column: str = field(
        default="prompt",
        metadata=_help("Column with the original plain prompt x (embedded for Sem-DPO and formatted as the LM input)."),
    )
    output_dir: str | None = field(default="outputs/dpo", metadata=_help("Where checkpoints and the final model go."))
    learning_rate: float = field(default=1e-4, metadata=_help("AdamW learning rate."))

    def __post_init__(self):
        self._validate_policy_fields()
        if self.loss not in DPO_LOSSES:
            raise ValueError(f"loss={self.loss!r}; use one of {list(DPO_LOSSES)}.")
        if self.semdpo_alpha < 0:
            raise ValueError(
                f"semdpo_alpha={self.semdpo_alpha} must be >= 0 (weights exp(-alpha*distance) must stay in (0, 1])."
            )
        _resolve_device_defaults(self)
        super().__post_init__()
        if self.loss == "semdpo" and (self.loss_type != ["sigmoid"] or self.ld_alpha is not None):
            raise ValueError(
                f"loss=semdpo weights the sigmoid DPO loss; got loss_type={self.loss_type}, ld_alpha={self.ld_alpha}. "
                "Use `loss_type: sigmoid` and leave ld_alpha unset."
            )


@dataclass
class PreferenceConfig:
    """Preference data engine: K rewrites per prompt, I images per rewrite (seeds shared), reward, pairs.

    Per-metric floors follow Prompt-A-Video (Ji et al., arXiv 2412.15156, `booster/dpo/filter.py`).
    """

    prompts: str | None = field(
        default=None,
        metadata=_help("Prompts file: .txt (one per line) or .jsonl/.json with a `prompt_column` field."),
    )
    prompt_column: str = field(default="prompt", metadata=_help("Field of a .jsonl prompts file holding the prompt."))
    max_prompts: int | None = field(default=None, metadata=_help("Use only the first N prompts (None = all)."))
    policy: str = field(default="shapes:rewriter", metadata=_help("Rewriter model that samples the candidates."))
    t2i_model: str = field(default="shapes", metadata=_help("Text-to-image model that renders every candidate."))
    num_candidates: int = field(default=4, metadata=_help("K: rewrites sampled per prompt (>= 2)."))
    include_original: bool = field(
        default=False, metadata=_help("Also render/score the original prompt as one more candidate."))
    images_per_candidate: int = field(default=2, metadata=_help("I: images per candidate; seeds are shared."))
    seed: int = field(
        default=0,
        metadata=_help("Base seed: image seeds are seed..seed+I-1 for every candidate; prompt n samples with seed+n."),
    )
    num_inference_steps: int | None = field(default=None, metadata=_help("Denoising steps (None = model default)."))
    guidance_scale: float | None = field(default=None, metadata=_help("CFG scale (None = model default)."))
    height: int | None = field(default=None, metadata=_help("Image height (None = model default)."))
    width: int | None = field(default=None, metadata=_help("Image width (None = model default)."))
    rewards: list[str] = field(
        default_factory=lambda: ["clip"],
        metadata=_help("Reward metrics (names known to `t2i_prompt.rewards`), scored against the ORIGINAL prompt."),
    )
    reward_weights: list[float] | None = field(
        default=None, metadata=_help("Weight of each reward in the composite score (None = all 1.0)."))
    reward_models: dict | str | None = field(
        default=None,
        metadata=_help("Optional per-reward model names, e.g. {clip: tiny:clip} (JSON on the command line)."),
    )
    strategy: str = field(
        default="best_vs_worst",
        metadata=_help("Pair selection: `best_vs_worst`, `all_pairs` (every pair with gap > min_gap) or `floors` "
                       "(Prompt-A-Video: chosen among the top `floors_top_k` passing every floor).",
                       choices=list(PAIR_STRATEGIES)),
    )
    min_gap: float = field(default=0.0, metadata=_help("Keep a pair only if score(chosen) - score(rejected) > min_gap."))
    floors: dict | str | None = field(
        default=None,
        metadata=_help("Per-metric minimum scores the chosen must exceed, e.g. {clip: 0.25} (strategy `floors`)."),
    )
    floors_top_k: int = field(default=2, metadata=_help("`floors`: chosen is one of the top-k ranked candidates."))
    similarity_model: str = field(
        default="minilm", metadata=_help("Embedder for cos(original, candidate): `minilm` or `clip:<model>`."))
    output_dir: str = field(default="outputs/preferences", metadata=_help("Where the dataset and report go."))
    cache_dir: str | None = field(
        default=None, metadata=_help("Image/score cache (default `<output_dir>/cache`); shared across runs is fine."))
    sample_temperature: float = field(default=1.0, metadata=_help("Sampling temperature of the policy."))
    max_new_tokens: int = field(default=48, metadata=_help("Max tokens per sampled rewrite."))

    def __post_init__(self):
        for name in ("reward_models", "floors"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, _parse_mapping(name, value))
        self.floors = {k: float(v) for k, v in (self.floors or {}).items()}
        if self.strategy not in PAIR_STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r}; use one of {list(PAIR_STRATEGIES)}.")
        if self.num_candidates < 2 and not self.include_original:
            raise ValueError(f"num_candidates={self.num_candidates}: a pair needs >= 2 candidates.")
        if self.images_per_candidate < 1:
            raise ValueError(f"images_per_candidate={self.images_per_candidate} must be >= 1.")
        if not self.rewards:
            raise ValueError("rewards is empty; name at least one reward, e.g. `rewards: [clip]`.")
        from ..rewards.registry import REWARD_NAMES, check_reward_name

        for name in self.rewards:
            check_reward_name(name)
        typos = sorted(set(self.reward_models or {}) - set(self.rewards))
        if typos:
            raise ValueError(f"reward_models names {typos}, which are not in rewards={self.rewards} (reward names: "
                             f"{', '.join(REWARD_NAMES)}); fix the key or add the reward.")
        if self.max_prompts is not None and self.max_prompts < 1:
            raise ValueError(f"max_prompts={self.max_prompts} must be >= 1 (or null for all prompts).")
        if not self.sample_temperature > 0 or self.sample_temperature == float("inf"):
            raise ValueError(f"sample_temperature={self.sample_temperature} must be a finite number > 0.")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise ValueError(
                f"reward_weights has {len(self.reward_weights)} values for {len(self.rewards)} rewards "
                f"{self.rewards}; give one weight per reward."
            )
        unknown_floors = sorted(set(self.floors) - set(self.rewards))
        if unknown_floors:
            raise ValueError(f"floors name metrics {unknown_floors} that are not in rewards={self.rewards}.")
        if self.floors and self.strategy != "floors":
            raise ValueError(f"floors={self.floors} are only used by strategy=floors (strategy={self.strategy!r}); "
                             "set `strategy: floors` or remove the floors.")
        if self.strategy == "floors" and not self.floors:
            raise ValueError("strategy=floors needs `floors`, e.g. {clip: 0.25}.")
        if self.min_gap < 0:
            raise ValueError(f"min_gap={self.min_gap} must be >= 0.")

    @property
    def weights(self) -> list[float]:
        return list(self.reward_weights) if self.reward_weights is not None else [1.0] * len(self.rewards)

    @property
    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.output_dir) / "cache"

    def render_settings(self) -> dict[str, Any]:
        """Everything besides (model, prompt, seed) that changes an image: part of every cache key."""
        return {"num_inference_steps": self.num_inference_steps, "guidance_scale": self.guidance_scale,
                "height": self.height, "width": self.width}


@dataclass
class LoopConfig:
    """Iterative DPO: rounds of (sample candidates with the current policy -> pairs -> DPO), each round's policy
    sampling the next round's candidates."""

    rounds: int = field(default=2, metadata=_help("Number of generate -> pairs -> DPO rounds (>= 1)."))
    policy: str = field(default="shapes:rewriter", metadata=_help("Policy of round 0 (e.g. the SFT output)."))
    preference_config: str | None = field(
        default=None, metadata=_help("YAML of the preference engine (PreferenceConfig); `policy` is set per round."))
    dpo_config: str | None = field(
        default=None, metadata=_help("YAML of DPO/Sem-DPO (DPOTrainConfig); model and dataset are set per round."))
    output_dir: str = field(default="outputs/loop", metadata=_help("round_<r>/{preferences,dpo} go here."))

    def __post_init__(self):
        if self.rounds < 1:
            raise ValueError(f"rounds={self.rounds} must be >= 1.")
        for name in ("preference_config", "dpo_config"):
            if getattr(self, name) is None:
                raise ValueError(f"{name} is required: the path of a YAML config for that stage.")
