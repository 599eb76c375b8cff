"""Evaluation maths, patient-level splits and the sampler of the trainer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.metrics import (bootstrap_auc, evaluate, out_of_fold_thresholds, roc_auc, sens_spec,
                             specificity_threshold, weighted_log_loss)
from trainer.sampler import label_factors, sample_weights
from trainer.splits import fold_masks, patient_folds
from trainer.train import weighted_bce


def _brute_auc(y, p):
    pos, neg = p[y], p[~y]
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def test_auc_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.2
    p = np.round(rng.random(300) * 0.7 + y * 0.3, 1)  # many ties
    assert roc_auc(y, p) == pytest.approx(_brute_auc(y, p))
    assert roc_auc(y, y.astype(float)) == 1.0
    assert roc_auc(y, 1 - y.astype(float)) == 0.0
    assert np.isnan(roc_auc(np.zeros(5, bool), np.arange(5.0)))


def test_bootstrap_over_patients_brackets_the_auc_and_widens_with_fewer_patients():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 25)
    y = rng.random(1000) < 0.15
    p = rng.random(1000) * 0.8 + y * 0.25
    auc = roc_auc(y, p)
    low, high = bootstrap_auc(y, p, groups, n_boot=300)
    assert low < auc < high
    few = np.repeat(np.arange(4), 250)  # same slices, 4 "patients": correlated clusters
    low4, high4 = bootstrap_auc(y, p, few, n_boot=300)
    assert (high4 - low4) > 0 and (high - low) > 0


def test_specificity_threshold_bounds_false_flags_and_honest_thresholds_exclude_the_fold():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1], bool)
    p = np.array([0.1, 0.2, 0.3, 0.45, 0.5, 0.7, 0.8, 0.9])
    t = specificity_threshold(y, p)
    assert 0.45 < t <= 0.5
    assert sens_spec(y, p, t) == (1.0, 1.0)
    rng = np.random.default_rng(4)
    y2 = rng.random(2000) < 0.1
    p2 = rng.random(2000) * 0.5 + y2 * 0.2  # weak separation
    t2 = specificity_threshold(y2, p2, 0.9)
    sens2, spec2 = sens_spec(y2, p2, t2)
    assert 0.9 <= spec2 < 0.91  # the lowest threshold keeping specificity >= 0.9
    assert sens_spec(y2, p2, t2 - 0.01)[1] < 0.9
    fold_of = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    per_sample = out_of_fold_thresholds(y, p, fold_of)
    assert per_sample[0] == specificity_threshold(y[fold_of == 1], p[fold_of == 1])
    assert per_sample[1] == specificity_threshold(y[fold_of == 0], p[fold_of == 0])


def test_weighted_log_loss_weights_any_twice_and_matches_training_loss():
    y = np.array([[0, 0, 0, 0, 0, 1.0]])
    p = np.array([[0.5, 0.5, 0.5, 0.5, 0.5, 0.25]])
    expected = (5 * np.log(2) + 2 * -np.log(0.25)) / 7
    assert weighted_log_loss(y, p) == pytest.approx(expected)
    logits = torch.logit(torch.tensor(p, dtype=torch.float32))
    assert float(weighted_bce(logits, torch.tensor(y, dtype=torch.float32))) == pytest.approx(expected, rel=1e-5)


def test_evaluate_reports_every_label_with_intervals():
    rng = np.random.default_rng(1)
    n = 400
    groups = np.repeat(np.arange(20), 20)
    labels = (rng.random((n, 6)) < 0.2).astype(np.uint8)
    labels[:, 5] = labels[:, :5].max(axis=1)
    probs = np.clip(labels * 0.4 + rng.random((n, 6)) * 0.6, 0, 1)
    folds = groups % 4
    m = evaluate(labels, probs, groups, folds, n_boot=100)
    assert set(m["labels"]) == {"epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any"}
    for entry in m["labels"].values():
        low, high = entry["auc_ci95"]
        assert low <= entry["auc"] <= high
        assert 0 < entry["threshold"] < 1
        assert 0 <= entry["sensitivity"] <= 1 and 0 <= entry["specificity"] <= 1
    assert m["patients"] == 20 and m["slices"] == n
    assert m["mean_subtype_auc"] == pytest.approx(np.mean([m["labels"][k]["auc"] for k in list(m["labels"])[:5]]))


def test_patient_folds_never_split_a_patient_and_spread_rare_subtypes():
    rng = np.random.default_rng(2)
    groups, labels = [], []
    for patient in range(30):
        n = 20
        lab = np.zeros((n, 6), np.uint8)
        if patient < 5:  # five patients with the rare subtype
            lab[5:8, 2] = 1
        elif patient < 15:
            lab[rng.integers(0, n, 4), 0] = 1
        lab[:, 5] = lab[:, :5].max(axis=1)
        groups += [f"p{patient}"] * n
        labels.append(lab)
    groups, labels = np.array(groups), np.concatenate(labels)
    folds = patient_folds(groups, labels, 5, seed=0)
    assert folds == patient_folds(groups, labels, 5, seed=0)  # fixed by the seed
    assert sorted({folds[f"p{i}"] for i in range(5)}) == [0, 1, 2, 3, 4]  # one rare patient per fold
    seen = set()
    for fold in range(5):
        train, held = fold_masks(groups, folds, fold)
        assert not set(groups[train]) & set(groups[held])
        seen |= set(groups[held])
    assert seen == set(groups)


def test_sampler_gives_rare_labels_a_capped_larger_share():
    labels = np.zeros((1000, 6), np.uint8)
    labels[:5, 3] = 1     # very rare: 0.06 * 1000 / 5 = 12, capped at 8
    labels[10:210, 0] = 1  # common
    labels[:, 5] = labels[:, :5].max(axis=1)
    factors = label_factors(labels, target_share=0.06, max_factor=8.0, any_share=0.3)
    assert factors[3] == 8.0 and factors[0] == 1.0
    weights = sample_weights(labels, target_share=0.06, max_factor=8.0, any_share=0.3)
    share = weights[:5].sum() / weights.sum()
    assert share > 4 * 5 / 1000
    assert weights[500] == 1.0


def test_auc_by_level_separates_position_from_what_the_model_sees():
    from trainer.metrics import auc_by_level

    groups = np.repeat(np.arange(6), 30)  # 6 series of 30 slices, stored in series order
    y = np.zeros(180, bool)
    for s in range(6):
        y[s * 30 + 10: s * 30 + 14] = True  # bleeds only in the middle third, off its centre
    rng = np.random.default_rng(0)
    perfect_in_middle = np.where(y, 0.9, 0.1) + rng.normal(0, 0.01, 180)
    by_level = auc_by_level(y, perfect_in_middle, groups)
    assert by_level["position_only"] > 0.7  # position alone already ranks these bleeds well
    assert by_level["middle"] > 0.99
    assert np.isnan(by_level["lowest"]) and np.isnan(by_level["highest"])  # no bleeds there
    position_only = auc_by_level(y, -np.abs(np.tile(np.arange(30) / 29, 6) - 0.5), groups)
    assert position_only["middle"] < 0.9  # inside one third position says much less
