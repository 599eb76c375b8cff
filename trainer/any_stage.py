"""Fitting the app's second stage for "any" (``ich_viewer.inference.hu_features``).

A logistic regression on the network's out-of-fold "any" logit plus the slice's measured
HU features. Like slice context it is evaluated nested: for each fold the stage is fitted
on the other folds' out-of-fold outputs and applied to the held fold, so its numbers are
as honest as the first stage's; the bundled stage is fitted on all out-of-fold outputs.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ich_viewer.inference.hu_features import FEATURE_SET, STAGE_INPUTS, input_features, stage_logit
from ich_viewer.inference.preprocess import AIR_HU, InputSpec
from trainer.cache import CachedSet, window_batch
from trainer.calibration import logit

REGULARISATION_C = 1.0
"""sklearn's inverse L2 strength on standardised inputs; 0.3-1.0 gave the same CV here."""


NOISE_CHECK_HU = 10.0
"""Noise added to check the stage's robustness: about what 0.6-1 mm slices carry in the brain."""
ROTATION_CHECK_DEG = 8.0
"""Degrees the head is turned in the image to check the stage's left-right features: CT-ICH's
heads lie fairly straight, emergency patients often do not."""
OFFSET_CHECK_HU = 8.0
"""HU added to the whole head to check the stage against another scanner's calibration
(scanners read brain several HU apart)."""


def slice_features(data: CachedSet, spec: InputSpec, batch: int = 128, noise_hu: float = 0.0,
                   seed: int = 0, offset_hu: float = 0.0, rotate_deg: float = 0.0) -> np.ndarray:
    """(N, F) features of every cached slice, from the same windowed input the app computes;
    ``rotate_deg`` turns the head in the image first, then ``noise_hu`` adds Gaussian noise of
    that SD and ``offset_hu`` a constant to the head (not the air)."""
    parts = []
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(data), batch):
        hu = torch.from_numpy(np.asarray(data.hu[start:start + batch], dtype=np.float32))
        if rotate_deg:
            hu = _rotated(hu, rotate_deg)
        head = hu > -500.0
        if noise_hu:
            hu = hu + torch.randn(hu.shape, generator=generator) * noise_hu * head
        if offset_hu:
            hu = hu + offset_hu * head
        parts.append(input_features(window_batch(hu, spec), spec).numpy())
    return np.concatenate(parts).astype(np.float64)


def _rotated(hu: torch.Tensor, degrees: float) -> torch.Tensor:
    """(B, n, S, S) HU turned about the image centre, air filling the corners."""
    angle = math.radians(degrees)
    theta = torch.tensor([[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0]])
    grid = F.affine_grid(theta.expand(len(hu), 2, 3), list(hu.shape), align_corners=False)
    return F.grid_sample(hu - AIR_HU, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + AIR_HU


def fit_stage(any_prob: np.ndarray, features: np.ndarray, y: np.ndarray) -> dict:
    """The card's ``any_stage``: standardisation and logistic coefficients, as plain lists."""
    inputs = np.column_stack([logit(any_prob), features])
    scaler = StandardScaler().fit(inputs)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=REGULARISATION_C, max_iter=5000).fit((inputs - scaler.mean_) / scale, y)
    return {"inputs": list(STAGE_INPUTS), "feature_set": FEATURE_SET, "mean": scaler.mean_.tolist(), "scale": scale.tolist(),
            "coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0])}


def apply_stage(stage: dict, any_prob: np.ndarray, features: np.ndarray) -> np.ndarray:
    """P(any) after the stage, by the app's own function."""
    out = stage_logit(torch.from_numpy(logit(any_prob)), torch.from_numpy(features), stage)
    return torch.sigmoid(out.double()).numpy()


def nested_stage(probs: np.ndarray, features: np.ndarray, labels: np.ndarray, fold_of: np.ndarray,
                 also: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Out-of-fold probabilities with "any" replaced by a stage that never saw the held fold;
    and the same stages applied to ``also`` (other features of the same slices, e.g. noisy)."""
    out = probs.astype(np.float64).copy()
    other = out.copy() if also is not None else None
    y = labels[:, -1]
    for fold in np.unique(fold_of):
        held = fold_of == fold
        stage = fit_stage(probs[~held, -1], features[~held], y[~held])
        out[held, -1] = apply_stage(stage, probs[held, -1], features[held])
        if other is not None and also is not None:
            other[held, -1] = apply_stage(stage, probs[held, -1], also[held])
    return out, other
