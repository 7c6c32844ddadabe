"""Layout planner: a trailing global style phrase belongs to every region."""

from t2i_prompt.attention.layout import plan_layout


def test_global_style_phrase_goes_to_every_region():
    plan = plan_layout("a red circle to the left of a blue square in outline style")
    assert [r.prompt for r in plan.regions] == ["a red circle in outline style", "a blue square in outline style"]
    assert [r.box for r in plan.regions] == [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]
    assert plan.base_prompt == "a red circle to the left of a blue square in outline style"


def test_side_by_side_with_style_and_without():
    plan = plan_layout("a cat, a dog and a bird in watercolor style", side_by_side=True)
    assert [r.prompt for r in plan.regions] == ["a cat in watercolor style", "a dog in watercolor style",
                                                "a bird in watercolor style"]
    assert [r.prompt for r in plan_layout("a green triangle above a red square").regions] == [
        "a green triangle", "a red square"]
