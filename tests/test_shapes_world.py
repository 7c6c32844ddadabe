"""Shapes world: grammar, renderer, detector, quality target, resume-exact training data."""

import random

import numpy as np
import pytest

from t2i_prompt.shapes import grammar, world
from t2i_prompt.shapes.train_scorers import perturb_scene, quality_target, rewriter_pairs
from t2i_prompt.shapes.detector import DetectedObject, detect_objects, relation_holds, score_image, score_scene
from t2i_prompt.shapes.evaluate import benchmark_file, parse_prompts, read_prompt_file, summarize
from t2i_prompt.shapes.grammar import ObjectSpec, PromptParseError, Scene, canonical_caption, parse_prompt
from t2i_prompt.shapes.render import PALETTE, render_scene

RED_CIRCLE = ObjectSpec("red", "circle")
BLUE_SQUARE = ObjectSpec("blue", "square")


def test_canonical_captions_exact():
    assert canonical_caption(Scene((RED_CIRCLE,))) == "a red circle"
    assert (canonical_caption(Scene((RED_CIRCLE, BLUE_SQUARE), "left", "outlined", "relation"))
            == "a red circle to the left of a blue square in outline style")
    assert canonical_caption(Scene((BLUE_SQUARE,) * 3, None, "filled", "count")) == "three blue squares"


def test_scene_validation_errors():
    with pytest.raises(ValueError, match="relation"):
        Scene((RED_CIRCLE, BLUE_SQUARE), None, "filled", "relation")
    with pytest.raises(ValueError, match="unknown style"):
        Scene((RED_CIRCLE,), None, "dotted")
    with pytest.raises(ValueError, match="count scene"):
        Scene((RED_CIRCLE, BLUE_SQUARE), None, "filled", "count")


def test_parse_roundtrip_canonical_and_casual():
    rng = random.Random(0)
    for _ in range(1500):
        scene = grammar.random_scene(rng)
        assert parse_prompt(canonical_caption(scene)) == scene
        casual = grammar.casual_caption(scene, rng)
        assert parse_prompt(casual).equivalent(scene), casual


def test_parse_specific_casual_forms():
    s = parse_prompt("please draw a navy box with a crimson ball on its left, hollow")
    assert s.equivalent(Scene((RED_CIRCLE, BLUE_SQUARE), "left", "outlined", "relation"))
    s = parse_prompt("crimson dot and navy block, block on the left")
    assert s.equivalent(Scene((BLUE_SQUARE, RED_CIRCLE), "left", "filled", "relation"))
    assert parse_prompt("a pair of scarlet balls").count == 2
    assert parse_prompt("blue square below red circle").normalized() == Scene(
        (RED_CIRCLE, BLUE_SQUARE), "above", "filled", "relation")


@pytest.mark.parametrize("bad, msg", [
    ("", "empty"),
    ("a purple hexagon", "no '<colour> <shape>'"),
    ("a red circle and a blue square", "no relation"),
    ("a red circle left of a red circle", "two different objects"),
])
def test_parse_errors_name_the_problem(bad, msg):
    with pytest.raises(PromptParseError, match=msg):
        parse_prompt(bad)


def test_render_is_deterministic_and_uses_palette():
    scene = Scene((RED_CIRCLE, BLUE_SQUARE), "above", "filled", "relation")
    a = render_scene(scene, np.random.default_rng(3))
    b = render_scene(scene, np.random.default_rng(3))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    colours = {tuple(c) for c in a.reshape(-1, 3)}
    assert colours == {(255, 255, 255), PALETTE["red"], PALETTE["blue"]}
    # red is in the top half, blue in the bottom half
    red = np.all(a == PALETTE["red"], -1)
    blue = np.all(a == PALETTE["blue"], -1)
    assert np.nonzero(red)[0].mean() < 16 < np.nonzero(blue)[0].mean()


def test_detector_at_least_99_percent_on_ground_truth():
    rng, nrng = random.Random(11), np.random.default_rng(11)
    n, correct = 1500, 0
    for _ in range(n):
        scene = grammar.random_scene(rng)
        correct += score_image(scene, render_scene(scene, nrng)).all_correct
    assert correct / n >= 0.99


def test_detector_reads_attributes_exactly():
    scene = Scene((ObjectSpec("yellow", "triangle"), ObjectSpec("green", "square")), "left", "outlined", "relation")
    objs = detect_objects(render_scene(scene))
    assert [(o.color, o.shape, o.style) for o in objs] == [("yellow", "triangle", "outlined"),
                                                           ("green", "square", "outlined")]
    assert objs[0].x < 16 < objs[1].x


def test_score_scene_categories_by_hand():
    scene = Scene((RED_CIRCLE, BLUE_SQUARE), "left", "filled", "relation")
    # right colours, one wrong shape, relation reversed (red is on the right)
    det = [DetectedObject("blue", "square", "filled", 8, 16, 100), DetectedObject("red", "triangle", "filled", 24, 16, 60)]
    s = score_scene(scene, det)
    assert (s.color, s.shape, s.relation, s.count, s.style, s.all_correct) == (1.0, 0.5, 0.0, True, True, False)
    # nothing detected: everything wrong, count wrong
    s = score_scene(scene, [])
    assert (s.color, s.shape, s.relation, s.count, s.style) == (0.0, 0.0, 0.0, False, False)
    assert relation_holds(det[0], det[1], "left") and not relation_holds(det[0], det[1], "above")


def test_summarize_ignores_missing_relation():
    scores = [{"color": 1.0, "shape": 0.5, "relation": None, "count": True, "style": True, "all_correct": False},
              {"color": 0.0, "shape": 1.0, "relation": 1.0, "count": False, "style": True, "all_correct": False}]
    out = summarize(scores)
    assert out["color"] == 0.5 and out["shape"] == 0.75 and out["relation"] == 1.0 and out["count"] == 0.5
    assert out["n_images"] == 2


def test_benchmark_files_parse_completely():
    for name in ("single", "relation", "count", "casual"):
        prompts = read_prompt_file(benchmark_file(name))
        parsed, unparsed = parse_prompts(prompts)
        assert unparsed == [] and len(parsed) == len(prompts) >= 24
    kinds = {s.kind for _, _, s in parse_prompts(read_prompt_file(benchmark_file("relation")))[0]}
    assert kinds == {"relation"}
    with pytest.raises(ValueError, match="shipped"):
        benchmark_file("nope")


def test_parse_prompts_reports_bad_lines():
    parsed, unparsed = parse_prompts(["a red circle", "a purple hexagon"])
    assert len(parsed) == 1 and unparsed[0]["line"] == 2 and "hexagon" in unparsed[0]["prompt"]


def test_quality_prefers_large_centred_filled():
    big = render_scene(Scene((RED_CIRCLE,)))
    pair = render_scene(Scene((RED_CIRCLE, BLUE_SQUARE), "left", "filled", "relation"))
    hollow = render_scene(Scene((RED_CIRCLE,), None, "outlined"))
    assert quality_target(big) > quality_target(pair) and quality_target(big) > quality_target(hollow)
    assert quality_target(np.full((32, 32, 3), 255, np.uint8)) == 1.0


def test_perturb_scene_changes_exactly_one_thing():
    rng = random.Random(5)
    for _ in range(300):
        s = grammar.random_scene(rng)
        p = perturb_scene(s, rng)
        assert not p.equivalent(s)


def test_training_batches_are_a_function_of_step():
    s1, im1 = world.sample_training_batch(seed=0, step=42, batch_size=4)
    s2, im2 = world.sample_training_batch(seed=0, step=42, batch_size=4)
    s3, im3 = world.sample_training_batch(seed=0, step=43, batch_size=4)
    assert s1 == s2 and np.array_equal(im1, im2)
    assert not np.array_equal(im1, im3)
    x = world.images_to_tensor(im1)
    assert x.shape == (4, 3, 32, 32) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert np.array_equal(world.tensor_to_images(x), im1)


def test_rewriter_pairs_use_promptist_template():
    pairs = rewriter_pairs(5, seed=1)
    for p in pairs:
        assert p["prompt"].endswith(" Rephrase:")
        scene = parse_prompt(p["completion"].strip())
        assert canonical_caption(scene) == p["completion"].strip()


class _GroundTruthGenerator:
    """ImageGenerator stand-in that renders each prompt's ground truth (or a blank canvas)."""

    def __init__(self, blank=False):
        self.blank, self.calls = blank, []

    def generate(self, prompts, seeds, hooks=(), progress=False, **kw):
        from types import SimpleNamespace

        from PIL import Image

        self.calls.append((list(prompts), list(seeds), list(hooks)))
        images = []
        for p in prompts:
            for s in seeds:
                arr = np.full((32, 32, 3), 255, np.uint8) if self.blank else render_scene(
                    parse_prompt(p), np.random.default_rng(s))
                images.append(Image.fromarray(arr))
        return SimpleNamespace(images=images, records=[])


def test_evaluate_prompts_perfect_and_blank_generators():
    from t2i_prompt.shapes.evaluate import evaluate_prompts

    prompts = ["a red circle", "a blue square to the left of a red circle in outline style", "two green triangles",
               "a purple hexagon"]
    report = evaluate_prompts(prompts, pipeline=_GroundTruthGenerator(), seeds=[0, 1], progress=False)
    assert report["n_prompts"] == 3 and report["unparsed"][0]["line"] == 4
    assert report["overall"] == {"color": 1.0, "shape": 1.0, "relation": 1.0, "count": 1.0, "style": 1.0,
                                 "all_correct": 1.0, "n_images": 6}
    assert set(report["by_kind"]) == {"single", "relation", "count"}
    blank = evaluate_prompts(prompts[:2], pipeline=_GroundTruthGenerator(blank=True), seeds=[0], progress=False)
    assert blank["overall"]["all_correct"] == 0.0 and blank["overall"]["color"] == 0.0
    assert blank["overall"]["relation"] == 0.0 and blank["overall"]["n_images"] == 2


def test_evaluate_scores_original_spec_after_rewrite():
    """The rewriter's output is generated, but the ground truth is the original prompt's scene."""
    from types import SimpleNamespace

    from t2i_prompt.shapes.evaluate import evaluate_prompts

    class WrongRewriter:  # always rewrites to a different scene
        def rewrite(self, prompts, k=1):
            return [[SimpleNamespace(text="a yellow square")] for _ in prompts]

    gen = _GroundTruthGenerator()
    report = evaluate_prompts(["crimson ball please"], pipeline=gen, seeds=[0], rewriter=WrongRewriter(),
                              progress=False)
    assert gen.calls[0][0] == ["a yellow square"]
    assert report["items"][0]["generated_prompt"] == "a yellow square"
    assert report["overall"]["color"] == 0.0 and report["overall"]["shape"] == 0.0


def test_evaluate_rejects_all_unparseable():
    from t2i_prompt.shapes.evaluate import evaluate_prompts

    with pytest.raises(ValueError, match="none of the 1 prompts"):
        evaluate_prompts(["hello world"], pipeline=_GroundTruthGenerator(), progress=False)


@pytest.mark.parametrize("original, rewrite, dropped", [
    ("crimson ball on the left of a navy box", "a red circle to the left of a blue square", False),
    ("crimson ball on the left of a navy box", "a red circle", True),              # the second object is gone
    ("a pair of azure dots, hollow", "two blue circles in outline style", False),
    ("a pair of azure dots, hollow", "a blue circle in outline style", True),     # the count fell from 2 to 1
    ("a red circle beside a blue square", "a red circle and a blue square", False),  # unseen relation, both kept
    ("emerald block please", "a green square", False),
    ("emerald block please", "a green square next to a red circle", False),       # extra objects are not drops
])
def test_object_drop_counter_on_hand_made_cases(original, rewrite, dropped):
    from t2i_prompt.shapes.evaluate import drops_objects
    from t2i_prompt.shapes.grammar import count_mentioned_objects

    assert drops_objects(original, rewrite) is dropped
    assert count_mentioned_objects("three yellow triangles") == 3 and count_mentioned_objects("a cat") == 0
