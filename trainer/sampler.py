"""Sampling weights that give rare subtypes a fair share of every epoch.

Each label k gets a factor ``clip(target_share * N / n_k, 1, max_factor)``; a slice's
weight is the largest factor among its positive labels (1 for a normal slice). With 14
subarachnoid slices out of 1,600 that is the cap (each drawn ~8 times as often), enough
for the network to see them every few batches without learning 14 images by heart.
"""
from __future__ import annotations

import numpy as np

from ich_viewer import LABELS


def label_factors(labels: np.ndarray, target_share: float = 0.06, max_factor: float = 8.0,
                  any_share: float = 0.3) -> np.ndarray:
    """Per-label oversampling factor (len(LABELS),)."""
    n = max(len(labels), 1)
    counts = labels.sum(axis=0).astype(np.float64)
    shares = np.full(len(LABELS), target_share)
    shares[-1] = any_share
    factors = np.where(counts > 0, shares * n / np.maximum(counts, 1), 1.0)
    return np.clip(factors, 1.0, max_factor)


def sample_weights(labels: np.ndarray, **options) -> np.ndarray:
    """Weight per slice (N,) for sampling with replacement."""
    factors = label_factors(labels, **options)
    positive = labels.astype(bool)
    weighted = np.where(positive, factors[None, :], 1.0)
    return weighted.max(axis=1)


def epoch_indices(weights: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` slice indices drawn with replacement in proportion to ``weights``."""
    p = weights / weights.sum()
    return rng.choice(len(weights), size=count, replace=True, p=p)


def level_factors(any_labels: np.ndarray, position: np.ndarray, cap: float) -> np.ndarray:
    """Extra weight per slice (N,) for normal slices at levels where bleeds are common.

    Bleeds in CT-ICH gather in the middle third of a series (position alone ranks slices
    with AUC 0.75), so a network can score "middle of the head" instead of blood. Each
    third of the series gets its normal slices drawn ``clip(odds_b / odds, 1, cap)`` times
    as often, where ``odds_b`` is that third's bleeding-to-normal ratio: at every level the
    network then sees normal slices about as often, relative to bleeding ones, as overall."""
    positive = np.asarray(any_labels).astype(bool)
    third = np.minimum((np.asarray(position) * 3).astype(int), 2)
    overall = positive.sum() / max((~positive).sum(), 1)
    out = np.ones(len(positive))
    if cap <= 1 or overall <= 0:
        return out
    for b in range(3):
        normal = (third == b) & ~positive
        odds = ((third == b) & positive).sum() / max(normal.sum(), 1)
        out[normal] = np.clip(odds / overall, 1.0, cap)
    return out
