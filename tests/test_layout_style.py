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


def test_regions_sweep_pairs_each_image_with_its_vanilla_image():
    """By hand: two prompts x two seeds; a relation that is N/A in either image drops that pair only."""
    from helpers import eval_script

    sweep = eval_script("shapes_regions_sweep")

    def item(line, seed, shape, relation, all_correct):
        return {"line": line, "seed": seed, "color": 1.0, "shape": shape, "relation": relation, "count": 1.0,
                "style": 1.0, "all_correct": all_correct}

    vanilla = [item(1, 0, 1.0, 0.0, False), item(1, 1, 0.5, 1.0, True), item(2, 0, 1.0, None, True),
               item(2, 1, 1.0, 1.0, True)]
    cell = [item(2, 1, 0.5, 1.0, False), item(1, 0, 1.0, 1.0, True), item(1, 1, 1.0, 1.0, True),
            item(2, 0, 0.0, 1.0, False)]  # another order: pairs are matched by (line, seed), not position
    diff = sweep.paired_differences(vanilla, cell)
    assert diff["shape"]["mean"] == (0.0 + 0.5 - 1.0 - 0.5) / 4 and diff["shape"]["n"] == 4
    assert diff["relation"]["n"] == 3 and abs(diff["relation"]["mean"] - 1 / 3) < 1e-4
    assert diff["all_correct"]["mean"] == (1 + 0 - 1 - 1) / 4
    assert diff["color"] == {"mean": 0.0, "ci95": [0.0, 0.0], "n": 4}
    low, high = diff["shape"]["ci95"]
    assert -1.0 <= low <= diff["shape"]["mean"] <= high <= 0.5
