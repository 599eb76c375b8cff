"""Fitting the app's second stage for "any" (``ich_viewer.inference.hu_features``).

A logistic regression on the network's out-of-fold "any" logit plus the slice's measured
HU features. Like slice context it is evaluated nested: for each fold the stage is fitted
on the other folds' out-of-fold outputs and applied to the held fold, so its numbers are
as honest as the first stage's; the bundled stage is fitted on all out-of-fold outputs.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ich_viewer.inference.head_angle import sample_indices, turned, upright_turn
from ich_viewer.inference.hu_features import FEATURE_NAMES, FEATURE_SET, STAGE_INPUTS, input_features, stage_logit
from ich_viewer.inference.preprocess import InputSpec, centre_hu
from trainer.cache import CachedSet, window_batch
from trainer.calibration import logit

REGULARISATION_C = 1.0
"""sklearn's inverse L2 strength on standardised inputs; 0.3-1.0 gave the same CV here."""


NOISE_CHECK_HU = 10.0
"""Noise added to check the stage's robustness: about what 0.6-1 mm slices carry in the brain."""
ROTATION_CHECK_DEG = 8.0
"""Degrees every head is turned further in the image, to check that the stage's upright turn
(``head_angle``) holds: emergency patients lie as they can."""
OFFSET_CHECK_HU = 8.0
"""HU added to the whole head to check the stage against another scanner's calibration
(scanners read brain several HU apart)."""


def slice_features(data: CachedSet, spec: InputSpec, noise_hu: float = 0.0, seed: int = 0,
                   offset_hu: float = 0.0, rotate_deg: float = 0.0) -> np.ndarray:
    """(N, F) features of every cached slice, as the app computes them: from the windowed
    input, each patient's slices turned upright by the angle the app would find for them
    (``head_angle``). For the robustness checks ``rotate_deg`` first turns the head in the
    image, then ``noise_hu`` adds Gaussian noise of that SD and ``offset_hu`` a constant to
    the head (not the air); the angle is found on what results, as the app would."""
    out = np.zeros((len(data), len(FEATURE_NAMES)))
    generator = torch.Generator().manual_seed(seed)
    for rows in series_rows(data):
        hu = torch.from_numpy(np.asarray(data.hu[rows], dtype=np.float32))
        if rotate_deg:
            hu = turned(hu, rotate_deg)
        head = hu > -500.0
        if noise_hu:
            hu = hu + torch.randn(hu.shape, generator=generator) * noise_hu * head
        if offset_hu:
            hu = hu + offset_hu * head
        inputs = window_batch(hu, spec)
        upright = upright_turn(centre_hu(inputs[sample_indices(len(rows))], spec))
        out[rows] = input_features(inputs, spec, upright).numpy()
    return out


def series_rows(data: CachedSet) -> list[np.ndarray]:
    """Each patient's rows, in the cache's order (foot to head, as the app orders a series)."""
    return [np.flatnonzero(data.groups == group) for group in dict.fromkeys(data.groups.tolist())]


def series_turns(data: CachedSet, spec: InputSpec) -> dict[str, float]:
    """Each patient's angle as the app finds it (degrees to turn the head upright)."""
    turns = {}
    for rows in series_rows(data):
        picked = rows[sample_indices(len(rows))]
        hu = torch.from_numpy(np.asarray(data.hu[picked], dtype=np.float32))
        turns[str(data.groups[rows[0]])] = upright_turn(centre_hu(window_batch(hu, spec), spec))
    return turns


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
