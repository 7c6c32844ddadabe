"""Sem-DPO (Mohamed et al., arXiv 2507.20133): DPO whose per-pair loss is scaled by a semantic-consistency weight.

    W_α(x, y_w) = exp(-α · (1 − cos(e(x), e(y_w))))
    L_Sem-DPO   = −E[ W_α(x, y_w) · log σ( β·log(π_θ(y_w|x)/π_ref(y_w|x)) − β·log(π_θ(y_l|x)/π_ref(y_l|x)) ) ]

``e`` is a frozen text embedder (MiniLM by default, a CLIP text tower optional); the weights are computed once,
before training, and ride along in the batch. With α = 0 every weight is exactly 1 and the loss is trl's sigmoid
DPO loss bit for bit. ``_compute_loss`` overrides a private trl method, hence the trl==1.16.0 pin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from trl import DPOTrainer

WEIGHT_COLUMN = "semdpo_weight"
SIMILARITY_COLUMN = "semdpo_similarity"
SEMDPO_COLUMNS = (WEIGHT_COLUMN, SIMILARITY_COLUMN)


def semdpo_weights(similarity: torch.Tensor, alpha: float) -> torch.Tensor:
    """``W_α = exp(-α · (1 − cos))`` (Sem-DPO Eq. for the semantic weight); in (0, 1], 1 when cos = 1 or α = 0.

    ``similarity`` is cos(e(x), e(y_w)); clamped to [-1, 1] so float noise never gives a weight above 1.
    """
    if alpha < 0:
        raise ValueError(f"alpha={alpha} must be >= 0 (a negative alpha would up-weight pairs that drift away).")
    distance = 1.0 - similarity.clamp(-1.0, 1.0)
    return torch.exp(-alpha * distance)


def semdpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
                ref_rejected_logps: torch.Tensor, weights: torch.Tensor, beta: float,
                normalize_weights: bool = False) -> torch.Tensor:
    """``mean(W · −log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]))`` over the batch.

    Inputs are summed completion log-probs, shape (B,). ``normalize_weights`` divides W by its batch mean
    (an option; the paper does not state it).
    """
    chosen_logratios = chosen_logps - ref_chosen_logps
    rejected_logratios = rejected_logps - ref_rejected_logps
    per_pair_loss = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))  # (B,)
    if normalize_weights:
        weights = weights / weights.mean()
    return (weights.to(per_pair_loss.dtype) * per_pair_loss).mean()


def add_semdpo_columns(dataset, embed_similarity: Callable[[list[str], list[str]], torch.Tensor], alpha: float,
                       original_column: str = "original", chosen_text: Callable[[Any], str] = str):
    """Precompute (once) cos(e(x), e(y_w)) and the weight for every pair as two dataset columns."""
    originals = list(dataset[original_column])
    chosen = [chosen_text(c) for c in dataset["chosen"]]
    similarity = embed_similarity(originals, chosen).float().cpu()
    weights = semdpo_weights(similarity, alpha)
    for column in SEMDPO_COLUMNS:
        if column in dataset.column_names:
            dataset = dataset.remove_columns(column)
    dataset = dataset.add_column(SIMILARITY_COLUMN, similarity.tolist())
    return dataset.add_column(WEIGHT_COLUMN, weights.tolist())


@dataclass
class PairWeightCollator:
    """Wraps trl's preference collator and adds the per-pair weight and similarity tensors (B,)."""

    base: Callable[[list[dict]], dict]

    def __call__(self, examples: list[dict]) -> dict:
        out = self.base(examples)
        for column in SEMDPO_COLUMNS:
            out[column] = torch.tensor([example[column] for example in examples], dtype=torch.float32)
        return out


class SemDPOTrainer(DPOTrainer):
    """``DPOTrainer`` with the Sem-DPO loss. The dataset must carry the columns of ``add_semdpo_columns``.

    Logs ``semdpo/weight_mean``, ``semdpo/weight_min``, ``semdpo/similarity_mean`` besides the usual
    ``rewards/*`` and ``logps/*`` metrics.
    """

    def __init__(self, *args, normalize_weights: bool = False, **kwargs):
        for key in ("train_dataset", "eval_dataset"):
            dataset = kwargs.get(key)
            if dataset is not None and WEIGHT_COLUMN not in dataset.column_names:
                raise ValueError(f"{key} has no {WEIGHT_COLUMN!r} column; build it with add_semdpo_columns().")
        super().__init__(*args, **kwargs)
        self._refuse_unsupported_options()
        self.normalize_weights = normalize_weights
        self.data_collator = PairWeightCollator(self.data_collator)

    def _refuse_unsupported_options(self) -> None:
        """trl options that change the loss Sem-DPO weights are an error here, never silently ignored."""
        if self.ld_alpha is not None or list(self.loss_types) != ["sigmoid"]:
            raise ValueError("SemDPOTrainer weights the sigmoid DPO loss only; use loss_type=['sigmoid'], no ld_alpha.")
        refused = {
            "f_divergence_type": (self.f_divergence_type != "reverse_kl", "leave it at 'reverse_kl' (standard DPO)"),
            "use_weighting": (bool(self.use_weighting), "set use_weighting=False (WPO weights are not combined)"),
            "loss_weights": (list(self.loss_weights) != [1.0], "leave loss_weights unset (one sigmoid loss)"),
            "router_aux_loss_coef": (bool(self.aux_loss_enabled), "set router_aux_loss_coef=0 (MoE aux loss)"),
        }
        for option, (bad, fix) in refused.items():
            if bad:
                raise ValueError(f"SemDPOTrainer does not support {option}={getattr(self, option, None)!r}: {fix}, "
                                 "or train with loss=dpo.")

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if not set(SEMDPO_COLUMNS) <= set(self._signature_columns):
            self._signature_columns = [*self._signature_columns, *SEMDPO_COLUMNS]

    def compute_ref_log_probs(self, model, inputs):
        return super().compute_ref_log_probs(model, _without_semdpo(inputs))

    def policy_forward(self, model, inputs):
        """The policy forward as trl runs it (every model input forwarded; log-probs, entropy, mean logits, top-1)."""
        skip = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps", *SEMDPO_COLUMNS}
        model_kwargs = {k: v for k, v in inputs.items() if k not in skip}
        labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
        return model(**model_kwargs, labels=labels, use_cache=False, fused_lm_head=True)

    def sequence_logps(self, model, inputs, outputs=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed completion log-probs of the policy, split into (chosen, rejected), each (B,)."""
        outputs = outputs if outputs is not None else self.policy_forward(model, inputs)
        seq_len = inputs["completion_mask"].size(1) - 1  # log_probs are for the shifted labels
        return outputs.log_probs[:, -seq_len:].sum(dim=1).chunk(2, dim=0)  # batch is [chosen; rejected]

    def reference_logps(self, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference log-probs: precomputed columns, else a no-grad pass (adapters off for LoRA, gotcha 5)."""
        if self.precompute_ref_logps:
            return inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        return self.compute_ref_log_probs(self.ref_model if self.ref_model is not None else self.model, inputs)

    def _compute_loss(self, model, inputs, return_outputs):
        weights, similarity = inputs[WEIGHT_COLUMN], inputs[SIMILARITY_COLUMN]
        outputs = self.policy_forward(model, inputs)
        chosen_logps, rejected_logps = self.sequence_logps(model, inputs, outputs)
        ref_chosen_logps, ref_rejected_logps = self.reference_logps(inputs)
        loss = semdpo_loss(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, weights,
                           self.beta, self.normalize_weights)
        self.log_token_metrics(outputs, inputs)
        self.log_pair_metrics(chosen_logps - ref_chosen_logps, rejected_logps - ref_rejected_logps,
                              chosen_logps, rejected_logps, weights, similarity)
        if return_outputs:
            raise ValueError("SemDPOTrainer does not return logits; set prediction_loss_only=True for evaluation.")
        return loss

    def log_token_metrics(self, outputs, inputs) -> None:
        """trl's ``entropy``, ``num_tokens``, ``logits/chosen|rejected`` and ``mean_token_accuracy`` (same keys and
        rules as ``DPOTrainer``: completion tokens only, sums gathered across processes, then divided)."""
        mode = "train" if self.model.training else "eval"
        gather = self.accelerator.gather_for_metrics
        mask = inputs["completion_mask"][..., 1:]
        seq_len = mask.size(1)

        def ratio(total, count):
            total, count = gather(total.detach()).sum(), gather(count).sum()
            return (total / count).item() if count > 0 else 0.0

        self._metrics[mode]["entropy"].append(ratio((outputs.entropy[:, -seq_len:] * mask).sum(), mask.sum()))
        if mode == "train":
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        chosen_logits, rejected_logits = outputs.mean_logits[:, -seq_len:].chunk(2, dim=0)
        chosen_mask, rejected_mask = mask.chunk(2, dim=0)
        self._metrics[mode]["logits/chosen"].append(ratio(chosen_logits[chosen_mask.bool()].sum(), chosen_mask.sum()))
        self._metrics[mode]["logits/rejected"].append(
            ratio(rejected_logits[rejected_mask.bool()].sum(), rejected_mask.sum()))
        chosen_top1, _ = outputs.is_top1[:, -seq_len:].chunk(2, dim=0)
        self._metrics[mode]["mean_token_accuracy"].append(
            ratio((chosen_top1 & chosen_mask.bool()).sum(), chosen_mask.sum()))

    def log_pair_metrics(self, chosen_logratios, rejected_logratios, chosen_logps, rejected_logps, weights,
                         similarity) -> None:
        """Same ``rewards/*``, ``logps/*`` keys as trl, plus ``semdpo/*``; gathered across processes."""
        mode = "train" if self.model.training else "eval"
        gather = self.accelerator.gather_for_metrics
        chosen_rewards = gather(self.beta * chosen_logratios.detach())
        rejected_rewards = gather(self.beta * rejected_logratios.detach())
        all_weights, all_similarity = gather(weights), gather(similarity)
        metrics = {
            "rewards/chosen": chosen_rewards.mean(),
            "rewards/rejected": rejected_rewards.mean(),
            "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean(),
            "rewards/margins": (chosen_rewards - rejected_rewards).mean(),
            "logps/chosen": gather(chosen_logps.detach()).mean(),
            "logps/rejected": gather(rejected_logps.detach()).mean(),
            "semdpo/weight_mean": all_weights.mean(),
            "semdpo/weight_min": all_weights.min(),
            "semdpo/similarity_mean": all_similarity.mean(),
        }
        for key, value in metrics.items():
            self._metrics[mode][key].append(value.item())


def _without_semdpo(inputs: dict) -> dict:
    return {k: v for k, v in inputs.items() if k not in SEMDPO_COLUMNS}


def text_similarity_fn(model_name: str) -> Callable[[Sequence[str], Sequence[str]], torch.Tensor]:
    """cos(e(a_i), e(b_i)) with a frozen embedder: ``minilm`` or a CLIP model name (``shapes:clip``, ``tiny:clip``)."""
    from ..rewards.text_similarity import TextSimilarity

    return TextSimilarity.from_pretrained(model_name).similarity
