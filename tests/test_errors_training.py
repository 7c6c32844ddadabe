"""Issue class 3: training configs and data are validated before training, each error naming the field."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("overrides, needle", [
    ({"reward_models": {"clipp": "tiny:clip"}}, "reward_models names ['clipp'], which are not in rewards"),
    ({"rewards": ["clip", "qualty"]}, "reward 'qualty': cannot read it"),
    ({"max_prompts": 0}, "max_prompts=0 must be >= 1"),
    ({"max_prompts": -1}, "max_prompts=-1 must be >= 1"),
    ({"sample_temperature": float("nan")}, "sample_temperature=nan must be a finite number > 0"),
])
def test_preference_config_errors(overrides, needle):
    from t2i_prompt.train.config import PreferenceConfig

    with pytest.raises(ValueError) as err:
        PreferenceConfig(**overrides)
    assert needle in str(err.value)


@pytest.mark.parametrize("overrides, needle", [
    ({"template": "{prompt} {style} Rephrase:"}, "uses unknown field(s) ['style']"),
    ({"max_length": 0}, "max_length=0 must be >= 1"),
])
def test_policy_config_errors(overrides, needle):
    from t2i_prompt.train.config import SFTTrainConfig

    with pytest.raises(ValueError) as err:
        SFTTrainConfig(output_dir="unused", **overrides)
    assert needle in str(err.value)


def test_numeric_chosen_is_an_error_naming_the_row():
    import datasets

    from t2i_prompt.train.data import validate_preferences

    ds = datasets.Dataset.from_dict({"prompt": ["a", "a"], "chosen": [1, 3], "rejected": ["c", "c"]})
    with pytest.raises(ValueError, match="row 0: column 'chosen' holds int 1, not text"):
        validate_preferences(ds)
