"""What the CompBench metrics read from prompts (the rule-based parser; spaCy is an optional extra)."""

from __future__ import annotations

import pytest

from t2i_prompt.evaluate import categories, parsing


@pytest.fixture(autouse=True)
def _rules_parser(monkeypatch):
    monkeypatch.setattr(parsing, "spacy_pipeline", lambda: None)


def test_bvqa_questions_filter_and_cap():
    assert parsing.bvqa_questions("a red circle on the left of a blue square") == ["a red circle?", "a blue square?"]
    assert parsing.bvqa_questions("The red hat was on top of the brown coat rack.") == \
        ["the red hat?", "the brown coat rack?"]  # "top" is dropped
    many = " and ".join(f"a {c} ball" for c in "abcdefghij")
    assert len(parsing.bvqa_questions(many)) == 8


def test_related_and_depth_objects():
    assert parsing.related_objects("a girl on the top of a frog") == ("person", "on the top of", "frog")
    assert parsing.related_objects("a mouse on side of a key") == ("mouse", "on side of", "key")
    assert parsing.related_objects("The green plant was next to the white vase.") == ("plant", "next to", "vase")
    assert parsing.related_objects("a red circle and a blue square") == (None, None, None)
    assert parsing.depth_objects("a chair hidden by a mouse") == ("chair", "hidden", "mouse")
    assert parsing.depth_objects("a cat behind a boy") == ("cat", "behind", "person")


def test_counted_objects_aliases_and_dedup():
    vocab = categories.object_vocabulary("compbench")
    assert parsing.counted_objects("two keys, three phones and four birds", vocab) == \
        [("key", 2), ("phone", 3), ("bird", 4)]
    assert parsing.counted_objects("seven women", vocab) == [("person", 7)]
    assert parsing.counted_objects("two ships and one painting", vocab) == [("boat", 2), ("picture", 1)]
    assert parsing.counted_objects("two girls and three boys", vocab) == [("person", 2)]  # one class, first count
    shapes = categories.object_vocabulary("shapes")
    assert parsing.counted_objects("three blue squares", shapes) == [("blue square", 3)]


def test_drop_adjectives_fallback():
    assert parsing.drop_adjectives("The red hat was on top of the brown coat rack.") == \
        "The hat was on top of the coat rack."


def test_shipped_val_lists_parse():
    """Every official spatial / 3D / numeracy val prompt yields its objects with the rule-based parser."""
    vocab = categories.object_vocabulary("compbench")
    assert all(None not in parsing.related_objects(p) for p in categories.category_prompts("compbench", "spatial"))
    assert all(None not in parsing.depth_objects(p) for p in categories.category_prompts("compbench", "3d_spatial"))
    assert all(parsing.counted_objects(p, vocab) for p in categories.category_prompts("compbench", "numeracy"))
    assert [len(categories.category_prompts("compbench", c)) for c in categories.CATEGORIES] == [300] * 8
