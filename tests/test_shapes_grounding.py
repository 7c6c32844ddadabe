"""The shapes T2I's grounding fine-tune: object masks from the renderer, noun positions, TokenCompose's L_token."""

import numpy as np
import pytest
import torch

from t2i_prompt.shapes import world
from t2i_prompt.shapes.grammar import ObjectSpec, Scene, canonical_caption
from t2i_prompt.shapes.grounding import mask_targets, noun_targets, token_loss
from t2i_prompt.shapes.render import PALETTE, render_scene, render_scene_with_masks
from t2i_prompt.shapes.train_t2i import T2ITrainConfig, T2ITrainer

PAIR = Scene((ObjectSpec("red", "circle"), ObjectSpec("blue", "circle")), "left", "outlined", "relation")
COUNT = Scene((ObjectSpec("green", "square"),) * 3, None, "filled", "count")


@pytest.fixture(scope="module")
def tokenizer():
    return world.make_tokenizer()


def test_masks_come_with_the_same_image_and_cover_exactly_the_painted_pixels():
    image, masks = render_scene_with_masks(PAIR, np.random.default_rng(5))
    assert np.array_equal(image, render_scene(PAIR, np.random.default_rng(5)))  # same jitter draws
    assert masks.shape == (2, 32, 32) and not np.logical_and(masks[0], masks[1]).any()
    for obj, mask in zip(PAIR.objects, masks):
        painted = np.all(image == PALETTE[obj.color], axis=-1)
        assert painted.any() and not (painted & ~mask).any()  # paint only inside the object's mask
        assert (mask & ~painted).sum() > 0  # outlined: the mask is the whole extent, the rim is painted
    assert np.all(image[~(masks[0] | masks[1])] == 255)  # background is white everywhere else


def test_training_batch_with_masks_is_the_training_batch(tokenizer):
    scenes, images = world.sample_training_batch(3, 11, 6)
    scenes_m, images_m, masks = world.sample_training_batch_with_masks(3, 11, 6)
    assert scenes == scenes_m and np.array_equal(images, images_m)
    assert [m.shape[0] for m in masks] == [s.count for s in scenes]


def test_noun_targets_name_each_object_by_its_own_occurrence(tokenizer):
    caption = canonical_caption(PAIR)  # "a red circle to the left of a blue circle in outline style"
    (first, objs0), (second, objs1) = noun_targets(PAIR, caption, tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(caption).input_ids)
    assert first != second and (objs0, objs1) == ([0], [1])
    assert [tokens[p] for p in first] == ["circle</w>"] and [tokens[p] for p in second] == ["circle</w>"]
    assert "red" in tokens[first[0] - 1] and "blue" in tokens[second[0] - 1]
    [(plural, objs)] = noun_targets(COUNT, canonical_caption(COUNT), tokenizer)
    assert objs == [0, 1, 2]
    count_tokens = tokenizer.convert_ids_to_tokens(tokenizer(canonical_caption(COUNT)).input_ids)
    assert "".join(count_tokens[p] for p in plural).replace("</w>", "") == "squares"


def test_mask_targets_pool_the_share_of_each_cell():
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, :2, :2] = True  # the top-left cell, fully
    masks[1, 2, 2:] = True  # half of the bottom-right cell
    assert torch.equal(mask_targets(masks, [0], 2), torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert torch.equal(mask_targets(masks, [0, 1], 2), torch.tensor([[1.0, 0.0], [0.0, 0.5]]))


def test_token_loss_by_hand():
    target = torch.zeros(1, 2, 2, 2)
    target[0, :, 0, 0] = 1.0
    maps = torch.zeros(1, 2, 2, 2)
    maps[0, 0, 0, 0] = 0.3  # noun 0: all its attention inside -> 0
    maps[0, 1, 0, 0], maps[0, 1, 1, 1] = 0.1, 0.3  # noun 1: a quarter inside -> (1 - 0.25)^2
    both = torch.tensor([[True, True]])
    assert token_loss(maps, target, both).item() == pytest.approx((0 + 0.75**2) / 2)
    assert token_loss(maps, target, torch.tensor([[True, False]])).item() == pytest.approx(0.0)  # padding ignored
    assert token_loss(maps, target, torch.tensor([[False, False]])).item() == 0.0


def _trainer(tmp_path, **kw):
    return T2ITrainer(T2ITrainConfig(run_dir=str(tmp_path / "run"), max_steps=40, batch_size=8, threads=1,
                                     warmup_steps=1, block_out_channels=[8, 16, 16], eval_guidances=[],
                                     cfg_dropout=0.0, **kw))


def test_grounding_step_adds_the_weighted_token_loss_and_trains_the_attention(tmp_path):
    torch.manual_seed(0)
    plain = _trainer(tmp_path / "plain")
    grounded = _trainer(tmp_path / "grounded", grounding_weight=0.5)
    grounded.unet.load_state_dict(plain.unet.state_dict())
    grounded.text_encoder.load_state_dict(plain.text_encoder.state_dict())
    total = grounded.training_step()
    assert plain.training_step() == pytest.approx(grounded.last_losses["diffusion"], rel=1e-5)  # same batch
    assert total == pytest.approx(grounded.last_losses["diffusion"] + 0.5 * grounded.last_losses["token"], rel=1e-5)
    assert "token" not in plain.last_losses
    assert dict(grounded.unet.attn_processors).keys() == dict(plain.unet.attn_processors).keys()
    assert all(type(p).__name__ != "HookedAttnProcessor" for p in grounded.unet.attn_processors.values())


def test_grounding_alone_moves_the_nouns_attention_onto_their_objects(tmp_path):
    torch.manual_seed(0)
    trainer = _trainer(tmp_path, grounding_weight=200.0, learning_rate=3e-3)  # the token loss dominates
    first = None
    for _ in range(25):
        trainer.step = 0  # the same batch every step: a fit, not a generalisation test
        trainer.training_step()
        first = first if first is not None else trainer.last_losses["token"]
    assert trainer.last_losses["token"] < 0.7 * first


@pytest.mark.parametrize("bad, message", [({"grounding_weight": -0.1}, "grounding_weight must be >= 0"),
                                          ({"grounding_weight": float("nan")}, "grounding_weight must be >= 0"),
                                          ({"grounding_resolution": 0}, "grounding_resolution must be a positive")])
def test_grounding_settings_are_checked_before_any_model_is_built(bad, message):
    with pytest.raises(ValueError, match=message):
        T2ITrainConfig(**bad)
