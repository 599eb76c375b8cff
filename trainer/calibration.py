"""Per-label Platt scaling fitted on out-of-fold predictions, and how well it is calibrated.

The bundled ensemble's logits are mapped by ``scale * logit + bias`` per label (the app
applies it inside the model, see ``ich_viewer.inference.model.Calibrated``) so that a
displayed 0.7 means about 7 in 10. Platt scaling (a one-feature logistic regression)
rather than isotonic regression: with 14 positive slices for a label, two parameters are
all the data can carry. The calibration error reported is cross-fitted (each fold's
calibration fitted on the other folds) so it is not measured on what it was fitted to.
"""
from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression

from ich_viewer import LABELS

MIN_SCALE = 0.05
"""A scale near zero would flatten a label to a constant; below this it is clipped."""
EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def fit_platt(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(scale, bias) so that sigmoid(scale * logit(p) + bias) is calibrated on (y, p)."""
    y = np.asarray(y).astype(int)
    if y.min() == y.max():
        return 1.0, 0.0
    model = LogisticRegression(C=1e4, max_iter=1000).fit(logit(p)[:, None], y)
    return max(float(model.coef_[0, 0]), MIN_SCALE), float(model.intercept_[0])


def apply_platt(p: np.ndarray, scale: float, bias: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(scale * logit(p) + bias)))


def fit_calibration(labels: np.ndarray, probs: np.ndarray) -> dict[str, list[float]]:
    """The card's ``calibration``: per-label scale and bias in LABELS order."""
    pairs = [fit_platt(labels[:, k], probs[:, k]) for k in range(len(LABELS))]
    return {"scale": [s for s, _ in pairs], "bias": [b for _, b in pairs]}


def calibrate(probs: np.ndarray, calibration: dict, lift_any: bool = True) -> np.ndarray:
    """Apply a calibration to (N, 6) probabilities as the app does: P(any) >= P(subtype)
    unless "any" comes from the second stage (``lift_any`` False)."""
    out = np.stack([apply_platt(probs[:, k], calibration["scale"][k], calibration["bias"][k])
                    for k in range(probs.shape[1])], axis=1)
    if lift_any:
        out[:, -1] = np.maximum(out[:, -1], out[:, :-1].max(axis=1))
    return out


def cross_fitted(labels: np.ndarray, probs: np.ndarray, fold_of: np.ndarray, lift_any: bool = True) -> np.ndarray:
    """Calibrated out-of-fold probabilities, each fold calibrated on the other folds only."""
    out = np.zeros_like(probs, dtype=np.float64)
    for fold in np.unique(fold_of):
        held = fold_of == fold
        out[held] = calibrate(probs[held], fit_calibration(labels[~held], probs[~held]), lift_any)
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean predicted| over equal-width bins, weighted by bin size."""
    y = np.asarray(y).astype(float)
    p = np.asarray(p, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(y[members].mean() - p[members].mean())
    return float(error)


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(mean predicted, observed rate) per non-empty bin, for the reliability diagram."""
    observed, predicted = calibration_curve(np.asarray(y).astype(int), np.asarray(p), n_bins=bins,
                                            strategy="uniform")
    return predicted, observed


def calibration_report(labels: np.ndarray, raw: np.ndarray, calibrated: np.ndarray) -> dict:
    """ECE per label before and after (cross-fitted) calibration."""
    return {label: {"ece_raw": expected_calibration_error(labels[:, k], raw[:, k]),
                    "ece_calibrated": expected_calibration_error(labels[:, k], calibrated[:, k])}
            for k, label in enumerate(LABELS)}
