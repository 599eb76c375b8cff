"""Calibration, operating points, exam-level and by-level metrics, and the slice-context stage."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.calibration import (apply_platt, calibrate, cross_fitted, expected_calibration_error, fit_calibration,
                                 fit_platt)
from trainer.context import apply_context, fit_context, nested_context
from trainer.metrics import (exam_level, false_positive_rate_by_level, operating_point, roc_auc, series_position,
                             threshold_for)


def _scores(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and over-confident scores: the true probability is sigmoid(z), the score sigmoid(3 z + 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.5, n)
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    return y, 1 / (1 + np.exp(-(3 * z + 1)))


def test_platt_scaling_undoes_a_known_distortion_and_lowers_the_error():
    y, p = _scores()
    scale, bias = fit_platt(y, p)
    assert scale == pytest.approx(1 / 3, abs=0.06) and bias == pytest.approx(-1 / 3, abs=0.15)
    assert expected_calibration_error(y, apply_platt(p, scale, bias)) < 0.5 * expected_calibration_error(y, p)


def test_calibration_keeps_any_above_the_subtypes_and_cross_fitting_uses_other_folds():
    rng = np.random.default_rng(1)
    labels = (rng.random((600, 6)) < 0.2).astype(np.uint8)
    labels[:, 5] = labels[:, :5].max(axis=1)
    probs = np.clip(0.6 * labels + 0.4 * rng.random((600, 6)), 0.01, 0.99)
    calibration = fit_calibration(labels, probs)
    out = calibrate(probs, calibration)
    assert np.all(out[:, 5] >= out[:, :5].max(axis=1))
    fold_of = np.arange(600) % 3
    crossed = cross_fitted(labels, probs, fold_of)
    held = fold_of == 0
    assert np.allclose(crossed[held], calibrate(probs[held], fit_calibration(labels[~held], probs[~held])))
    assert not np.allclose(crossed[held], out[held])


def test_threshold_rules_hit_their_targets():
    y, p = _scores(seed=2)
    t_sens = threshold_for(y, p, ("sensitivity", 0.9))
    assert (p[y] >= t_sens).mean() >= 0.9 and (p[y] >= t_sens).mean() < 0.91
    t_spec = threshold_for(y, p, ("specificity", 0.95))
    assert (p[~y] < t_spec).mean() >= 0.95


def test_operating_point_reports_intervals_around_the_estimate():
    y, p = _scores(seed=3)
    groups = np.repeat(np.arange(200), 20).astype(str)
    fold_of = np.repeat(np.arange(200) % 5, 20)
    point = operating_point(y, p, groups, fold_of, ("sensitivity", 0.9), n_boot=200)
    low, high = point["sensitivity_ci95"]
    assert low <= point["sensitivity"] <= high and high - low < 0.1
    assert 0.85 < point["sensitivity"] < 0.95
    assert point["specificity_ci95"][0] <= point["specificity"] <= point["specificity_ci95"][1]


def test_exam_level_uses_each_patients_highest_slice():
    labels = np.zeros((6, 6), dtype=np.uint8)
    labels[4, :] = 1  # patient b has blood on one slice
    probs = np.zeros((6, 6))
    probs[:, 5] = [0.1, 0.2, 0.3, 0.05, 0.9, 0.1]
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    assert exam_level(labels, probs, groups, n_boot=10)["auc"] == 1.0
    probs[1, 5] = 0.95  # a's worst slice now outranks b's
    assert exam_level(labels, probs, groups, n_boot=10)["auc"] == 0.0


def test_false_flags_are_split_into_thirds_of_each_series():
    groups = np.array(["a"] * 9 + ["b"] * 3)
    assert np.allclose(series_position(groups)[9:], [0, 0.5, 1])
    flagged = np.zeros(12, dtype=bool)
    flagged[[8, 11]] = True  # the last slice of each series
    rates = false_positive_rate_by_level(np.zeros(12), flagged, groups)
    assert rates["highest"]["false_positive_rate"] == pytest.approx(2 / 4)
    assert rates["lowest"]["false_positive_rate"] == 0.0 and rates["middle"]["false_positive_rate"] == 0.0


def test_slice_context_learns_that_blood_spans_neighbouring_slices():
    """Series where the true bleed covers a run of slices but the first stage sees it only in
    the run's middle: the second stage learns to spread it, and nested CV shows the gain."""
    rng = np.random.default_rng(4)
    labels, probs, groups, brain = [], [], [], []
    for patient in range(40):
        n = 20
        y = np.zeros((n, 6), dtype=np.uint8)
        p = np.full((n, 6), 0.05) + rng.random((n, 6)) * 0.05
        if patient % 2:
            start = rng.integers(2, 14)
            y[start:start + 5, [0, 5]] = 1
            p[start + 2, [0, 5]] = 0.9  # only the middle slice is seen
        labels.append(y)
        probs.append(p)
        groups += [f"p{patient}"] * n
        brain.append(np.full(n, 0.3))
    labels, probs, groups, brain = np.concatenate(labels), np.concatenate(probs), np.array(groups), np.concatenate(brain)
    net = fit_context(probs, brain, labels, groups, epochs=200)
    refined = apply_context(net, probs, brain, groups)
    assert refined.shape == probs.shape and np.all(refined[:, 5] >= refined[:, :5].max(axis=1) - 1e-9)
    fold_of = np.array([int(g[1:]) % 4 for g in groups])
    nested = nested_context(probs, brain, labels, groups, fold_of)
    assert roc_auc(labels[:, 5], nested[:, 5]) > roc_auc(labels[:, 5], probs[:, 5]) + 0.1
