"""Patient-level folds: every slice of a patient lands in the same fold, fixed by a seed.

Patients are dealt into folds per stratum (which subtypes the patient has, rarest first)
so each fold gets a share of the few patients with a rare subtype; a plain shuffle could
put all three subdural patients into one fold.
"""
from __future__ import annotations

import numpy as np


def patient_folds(groups: np.ndarray, labels: np.ndarray, n_folds: int = 5, seed: int = 0) -> dict[str, int]:
    """Patient key -> fold number (0..n_folds-1)."""
    patients = sorted(set(groups.tolist()))
    positives = {p: labels[groups == p].max(axis=0) for p in patients}
    counts = np.sum([positives[p] for p in patients], axis=0)
    rng = np.random.default_rng(seed)

    def stratum(patient: str) -> int:
        present = np.flatnonzero(positives[patient][:-1])
        if not len(present):
            return -1 if not positives[patient][-1] else len(counts)
        return int(present[np.argmin(counts[present])])  # the patient's rarest subtype

    folds: dict[str, int] = {}
    fill = np.zeros(n_folds, dtype=int)
    by_stratum: dict[int, list[str]] = {}
    for patient in patients:
        by_stratum.setdefault(stratum(patient), []).append(patient)
    for key in sorted(by_stratum, key=lambda k: (counts[k] if 0 <= k < len(counts) else 10**9, k)):
        members = by_stratum[key]
        rng.shuffle(members)
        for patient in members:
            least = np.flatnonzero(fill == fill.min())
            fold = int(rng.choice(least))
            folds[patient] = fold
            fill[fold] += 1
    return folds


def fold_masks(groups: np.ndarray, folds: dict[str, int], fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(train mask, held-out mask) over samples for one fold."""
    held = np.array([folds[g] == fold for g in groups])
    return ~held, held
