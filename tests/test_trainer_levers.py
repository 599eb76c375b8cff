"""The two levers against the positional shortcut: level-balanced sampling and the
training-only blood-map loss on inserted lesions (trainer/sampler.py, trainer/train.py)."""
from __future__ import annotations

import numpy as np
import torch

from ich_viewer.inference.preprocess import InputSpec
from trainer.augment import AugmentConfig, HUAugment
from trainer.insert import InsertConfig, LesionInserter
from trainer.sampler import level_factors
from trainer.train import seg_loss, seg_targets
from tests.test_trainer_insert import _stack


def test_level_factors_draw_normal_slices_more_often_where_bleeds_gather():
    # 30 slices per series; bleeds only in the middle third
    position = np.tile(np.arange(30) / 29, 4)
    bleeding = np.zeros(120, bool)
    for s in range(4):
        bleeding[s * 30 + 12: s * 30 + 18] = True
    factors = level_factors(bleeding, position, cap=3.0)
    third = np.minimum((position * 3).astype(int), 2)
    middle_normal = (third == 1) & ~bleeding
    assert np.all(factors[bleeding] == 1.0)  # bleeding slices keep their weight
    assert np.all(factors[(third != 1)] == 1.0)  # no bleeds at the ends: nothing to balance
    odds_middle, odds_all = 6 / 4, 24 / 96
    assert np.allclose(factors[middle_normal], min(odds_middle / odds_all, 3.0))
    assert np.all(level_factors(bleeding, position, cap=1.0) == 1.0)  # off


def test_augment_moves_masks_with_their_samples_and_keeps_the_draws():
    spec = InputSpec(size=64)
    hu = torch.full((4, 3, 64, 64), -1000.0)
    hu[:, :, 20:32, 14:26] = 60.0  # a bright block: the "lesion"
    masks = torch.zeros((4, 1, 64, 64))
    masks[:, 0, 20:32, 14:26] = 1.0
    config = AugmentConfig(noise_hu=0.0, hu_offset=0.0, blur_p=0.0, window_centre_jitter=0.0,
                           window_width_jitter=0.0)
    torch.manual_seed(3)
    inputs, moved = HUAugment(spec, config).with_masks(hu, masks)
    torch.manual_seed(3)
    plain = HUAugment(spec, config)(hu)
    assert torch.equal(inputs, plain)  # masks change none of the random draws
    bright = inputs[:, 3] > 0.5  # brain window of the centre slice: the block after the transform
    assert moved is not None and moved.shape == (4, 1, 64, 64)
    for i in range(4):
        overlap = (bright[i] & (moved[i, 0] > 0.5)).sum() / bright[i].sum()
        assert overlap > 0.8
    assert not torch.equal(moved, masks)  # something moved


def test_seg_targets_know_inserted_and_normal_slices_but_not_real_bleeds():
    stack, _ = _stack(seed=1)
    batch = np.stack([stack, stack, stack]).astype(np.float32)
    labels = np.zeros((3, 6), np.uint8)
    labels[2, [1, 5]] = 1  # a real bleed: no mask known
    inserter = LesionInserter(InsertConfig(probability=1.0), np.random.default_rng(0))
    out_hu, out_labels = inserter(batch, labels)
    masks, known = seg_targets(inserter, out_hu.shape, out_labels)
    inserted = {i for i, _ in inserter.last}
    assert inserted and 2 not in inserted
    assert known.tolist() == [True, True, False]
    for i in inserted:
        assert masks[i].sum() > 0
    for i in {0, 1} - inserted:
        assert masks[i].sum() == 0
    # the loss is small for a map that says "blood" exactly where the mask is, large otherwise
    target = torch.nn.functional.adaptive_max_pool2d(masks, (10, 10)) > 0.25
    right = torch.where(target, 8.0, -8.0)
    assert seg_loss(right, masks, known) < 0.05 < seg_loss(-right, masks, known)
    assert seg_loss(right, masks, torch.zeros(3, dtype=torch.bool)) == 0.0
