"""Sem-DPO: weights, the loss against hand computations, and equality with trl's DPO loss at alpha = 0."""

import copy
import math

import pytest
import torch

from t2i_prompt.train.semdpo import (SEMDPO_COLUMNS, SemDPOTrainer, add_semdpo_columns, semdpo_loss,
                                     semdpo_weights, text_similarity_fn)


def test_weights_in_unit_interval_and_decreasing_with_distance():
    similarity = torch.linspace(1.0, -1.0, 9)
    for alpha in (0.5, 1.0, 3.0):
        w = semdpo_weights(similarity, alpha)
        assert w[0].item() == 1.0  # identical meaning -> weight exactly 1
        assert torch.all(w > 0) and torch.all(w <= 1)
        assert torch.all(w[1:] < w[:-1])  # strictly decreasing with distance 1 - cos
        assert torch.allclose(w, torch.exp(-alpha * (1 - similarity)))
    assert torch.all(semdpo_weights(similarity, 0.0) == 1.0)
    # float noise above 1 is clamped, never a weight > 1
    assert semdpo_weights(torch.tensor([1.0000001]), 2.0).item() == 1.0


def test_weights_reject_negative_alpha():
    with pytest.raises(ValueError, match="alpha=-0.5 must be >= 0"):
        semdpo_weights(torch.tensor([0.5]), -0.5)


def test_loss_matches_hand_computation():
    chosen, rejected = torch.tensor([-5.0, -7.0]), torch.tensor([-6.0, -6.0])
    ref_chosen, ref_rejected = torch.tensor([-5.5, -7.0]), torch.tensor([-5.8, -6.1])
    similarity, alpha, beta = torch.tensor([0.9, 0.5]), 2.0, 0.1
    weights = semdpo_weights(similarity, alpha)
    expected = []
    for i in range(2):
        w = math.exp(-alpha * (1 - similarity[i].item()))
        logits = beta * ((chosen[i] - ref_chosen[i]) - (rejected[i] - ref_rejected[i])).item()
        expected.append(w * -math.log(1 / (1 + math.exp(-logits))))
    loss = semdpo_loss(chosen, rejected, ref_chosen, ref_rejected, weights, beta)
    assert loss.item() == pytest.approx(sum(expected) / 2, rel=1e-6)
    normalized = semdpo_loss(chosen, rejected, ref_chosen, ref_rejected, weights, beta, normalize_weights=True)
    w_sum = sum(math.exp(-alpha * (1 - s)) for s in (0.9, 0.5))
    assert normalized.item() == pytest.approx(sum(expected) / w_sum, rel=1e-6)


def test_minilm_weight_is_higher_for_closer_rewrite():
    similarity = text_similarity_fn("minilm")
    sims = similarity(["a red cat", "a red cat"], ["a red cat, highly detailed, 8k", "a city skyline at night"])
    w = semdpo_weights(sims, alpha=2.0)
    assert sims[0] > sims[1] and w[0] > w[1]
    assert 0 < w[1] < w[0] <= 1


# ------------------------------------------------------------------------------------ against trl's DPOTrainer
@pytest.fixture(scope="module")
def dpo_setup(tmp_path_factory):
    import datasets
    from trl import DPOTrainer

    from t2i_prompt.train.config import DPOTrainConfig
    from t2i_prompt.train.policy import load_policy

    model, tokenizer = load_policy("tiny:gpt2")
    rows = [{"original": f"a {c} cat", "prompt": f"a {c} cat Rephrase:", "chosen": f" a {c} cat, highly detailed",
             "rejected": f" a {c} dog"} for c in ("red", "blue", "green", "white")]
    raw = datasets.Dataset.from_list(rows)
    out = tmp_path_factory.mktemp("semdpo")

    def make(cls, dataset, args_overrides=None, **kwargs):
        args = DPOTrainConfig(output_dir=str(out), max_steps=1, per_device_train_batch_size=4, report_to="none",
                              save_strategy="no", disable_tqdm=True, **(args_overrides or {}))
        m = copy.deepcopy(model)
        return cls(model=m, ref_model=copy.deepcopy(model).eval(), args=args, train_dataset=dataset,
                   processing_class=tokenizer, **kwargs)

    dpo = make(DPOTrainer, raw.remove_columns("original"))
    return make, raw, dpo


def _batch(trainer):
    examples = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    return trainer.data_collator(examples)


def _sem_trainer(make, raw, similarity, alpha, **kwargs):
    fixed = lambda a, b: torch.full((len(a),), similarity)  # noqa: E731
    dataset = add_semdpo_columns(raw, fixed, alpha).remove_columns("original")
    return make(SemDPOTrainer, dataset, **kwargs)


def _both_losses(sem, dpo):
    """(batch, Sem-DPO loss, trl DPO loss) on the same batch (trl's without the Sem-DPO columns)."""
    inputs = _batch(sem)
    with torch.no_grad():
        sem_loss = sem.compute_loss(sem.model, dict(inputs)).item()
        dpo_loss = dpo.compute_loss(dpo.model, {k: v for k, v in inputs.items() if k not in SEMDPO_COLUMNS}).item()
    return inputs, sem_loss, dpo_loss


def test_alpha_zero_equals_trl_sigmoid_dpo_exactly(dpo_setup):
    make, raw, dpo = dpo_setup
    sem = _sem_trainer(make, raw, similarity=0.3, alpha=0.0)
    inputs, sem_loss, dpo_loss = _both_losses(sem, dpo)
    assert torch.all(inputs["semdpo_weight"] == 1.0)
    assert sem_loss == dpo_loss  # bit-for-bit, not approx
    assert sem._metrics["train"]["semdpo/weight_mean"][-1] == 1.0
    assert sem._metrics["train"]["semdpo/similarity_mean"][-1] == pytest.approx(0.3)
    assert sem._metrics["train"]["rewards/margins"][-1] == pytest.approx(dpo._metrics["train"]["rewards/margins"][-1])
    # the same dashboard: every trl DPO metric key is logged by Sem-DPO too, with the same value
    assert set(dpo._metrics["train"]) <= set(sem._metrics["train"])
    for key in ("entropy", "num_tokens", "logits/chosen", "logits/rejected", "mean_token_accuracy", "logps/chosen"):
        assert sem._metrics["train"][key][-1] == pytest.approx(dpo._metrics["train"][key][-1], rel=1e-6), key


@pytest.mark.parametrize("overrides, option", [
    ({"f_divergence_type": "forward_kl"}, "f_divergence_type"),
    ({"use_weighting": True}, "use_weighting"),
    ({"loss_weights": [0.5]}, "loss_weights"),
])
def test_trl_options_semdpo_would_ignore_are_refused(dpo_setup, overrides, option):
    make, raw, _ = dpo_setup
    fixed = lambda a, b: torch.full((len(a),), 0.5)  # noqa: E731
    dataset = add_semdpo_columns(raw, fixed, 0.0).remove_columns("original")
    with pytest.raises(ValueError, match=f"does not support {option}="):
        make(SemDPOTrainer, dataset, args_overrides=overrides)


def test_constant_weight_scales_trl_loss(dpo_setup):
    make, raw, dpo = dpo_setup
    sem = _sem_trainer(make, raw, similarity=0.5, alpha=1.0)
    inputs, sem_loss, dpo_loss = _both_losses(sem, dpo)
    assert sem_loss == pytest.approx(math.exp(-0.5) * dpo_loss, rel=1e-6)
    assert sem._metrics["train"]["semdpo/weight_min"][-1] == pytest.approx(math.exp(-0.5), rel=1e-6)
    normalized = _sem_trainer(make, raw, similarity=0.5, alpha=1.0, normalize_weights=True)
    with torch.no_grad():
        assert normalized.compute_loss(normalized.model, dict(inputs)).item() == pytest.approx(dpo_loss, rel=1e-6)


def test_trainer_requires_weight_column(dpo_setup):
    make, raw, _ = dpo_setup
    with pytest.raises(ValueError, match="semdpo_weight"):
        make(SemDPOTrainer, raw.remove_columns("original"))
