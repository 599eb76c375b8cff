"""Slice-level metrics with patient-level uncertainty.

ROC AUC is the Mann-Whitney statistic (ties count half). Its 95% interval comes from a
bootstrap over patients (slices of one patient are correlated, so resampling slices
would give intervals that are too narrow). Thresholds follow one stated rule (specificity
>= 0.90 on out-of-fold predictions); sensitivity and specificity are reported with thresholds
chosen without the fold being scored, so the numbers are not tuned on what they score.
"""
from __future__ import annotations

import numpy as np

from ich_viewer import LABELS

LOGLOSS_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 2.0])
MIN_SPECIFICITY = 0.9
THRESHOLD_RULE = ("per label, the lowest threshold whose specificity on the patient-level 5-fold "
                  "cross-validated (out-of-fold) slice predictions is at least 0.90, i.e. at most about "
                  "1 in 10 normal slices flagged per label")


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties averaged (vectorised: the bootstrap calls this thousands of times)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    new_group = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.concatenate([starts[1:], [len(values)]])
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + ends + 1) / 2.0)[group]
    return ranks


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _ranks(np.asarray(p, dtype=np.float64))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), thresholds descending."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(-np.asarray(p), kind="mergesort")
    p_sorted, y_sorted = np.asarray(p)[order], y[order]
    last = np.concatenate([np.flatnonzero(np.diff(p_sorted)), [len(p_sorted) - 1]])
    tp = np.cumsum(y_sorted)[last]
    fp = np.cumsum(~y_sorted)[last]
    tpr = np.concatenate([[0.0], tp / max(y.sum(), 1)])
    fpr = np.concatenate([[0.0], fp / max((~y).sum(), 1)])
    return fpr, tpr, np.concatenate([[np.inf], p_sorted[last]])


def specificity_threshold(y: np.ndarray, p: np.ndarray, min_specificity: float = MIN_SPECIFICITY) -> float:
    """The lowest threshold that keeps specificity at or above ``min_specificity``.

    Chosen over Youden's J because with weak, rare labels J picked thresholds near zero
    that would flag most normal slices; this rule bounds the false flags per label.
    """
    y = np.asarray(y).astype(bool)
    negatives = np.sort(np.asarray(p, dtype=np.float64)[~y])[::-1]
    if not len(negatives):
        return 0.5
    allowed = int(np.floor((1.0 - min_specificity) * len(negatives)))  # false flags allowed
    threshold = np.nextafter(negatives[allowed], np.inf) if allowed < len(negatives) else negatives[-1]
    return float(np.clip(threshold, 1e-4, 1 - 1e-4))


def sens_spec(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    y = np.asarray(y).astype(bool)
    flagged = np.asarray(p) >= threshold
    sens = float(flagged[y].mean()) if y.any() else float("nan")
    spec = float((~flagged[~y]).mean()) if (~y).any() else float("nan")
    return sens, spec


def weighted_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """The RSNA 2019 metric: per-slice BCE averaged with weight 2 on "any"."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y, dtype=np.float64)
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float((per * LOGLOSS_WEIGHTS).sum(axis=1).mean() / LOGLOSS_WEIGHTS.sum())


def bootstrap_auc(y: np.ndarray, p: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                  seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the AUC, resampling patients with replacement."""
    patients, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(patients))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(patients), len(patients))
        index = np.concatenate([members[k] for k in pick])
        value = roc_auc(y[index], p[index])
        if not np.isnan(value):
            values.append(value)
    if len(values) < n_boot // 2:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def out_of_fold_thresholds(y: np.ndarray, p: np.ndarray, fold_of: np.ndarray) -> np.ndarray:
    """Threshold for each sample chosen on the other folds only (for honest sens/spec)."""
    out = np.zeros(len(y))
    for fold in np.unique(fold_of):
        held = fold_of == fold
        out[held] = specificity_threshold(y[~held], p[~held])
    return out


def evaluate(labels: np.ndarray, probs: np.ndarray, groups: np.ndarray, fold_of: np.ndarray | None = None,
             n_boot: int = 1000, seed: int = 0) -> dict:
    """Per-label AUC with CI, threshold, sensitivity/specificity, positives; plus log loss."""
    per_label = {}
    for k, label in enumerate(LABELS):
        y, p = labels[:, k].astype(bool), probs[:, k]
        threshold = specificity_threshold(y, p)
        entry = {
            "auc": roc_auc(y, p),
            "auc_ci95": list(bootstrap_auc(y, p, groups, n_boot=n_boot, seed=seed + k)),
            "positive_slices": int(y.sum()),
            "positive_patients": int(len(set(groups[y].tolist()))),
            "threshold": threshold,
        }
        if fold_of is not None:
            flagged = p >= out_of_fold_thresholds(y, p, fold_of)
            entry["sensitivity"] = float(flagged[y].mean()) if y.any() else float("nan")
            entry["specificity"] = float((~flagged[~y]).mean()) if (~y).any() else float("nan")
            entry["sens_spec_note"] = "thresholds chosen on the other folds' predictions"
        else:
            entry["sensitivity"], entry["specificity"] = sens_spec(y, p, threshold)
        per_label[label] = entry
    subtype_aucs = [per_label[label]["auc"] for label in LABELS[:-1]]
    return {
        "labels": per_label,
        "mean_subtype_auc": float(np.nanmean(subtype_aucs)),
        "weighted_log_loss": weighted_log_loss(labels, probs),
        "slices": int(len(labels)),
        "patients": int(len(set(groups.tolist()))),
    }


def exam_scores(labels: np.ndarray, probs: np.ndarray, groups: np.ndarray,
                label: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patients, exam label, exam score): a patient's score is its highest slice score."""
    patients = np.array(sorted(set(groups.tolist())))
    y = np.array([labels[groups == g, label].max() for g in patients]).astype(bool)
    score = np.array([probs[groups == g, label].max() for g in patients])
    return patients, y, score


def exam_level(labels: np.ndarray, probs: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
               seed: int = 0) -> dict:
    """Exam-level AUC of "any" (max over slices) with a bootstrap interval over patients."""
    patients, y, score = exam_scores(labels, probs, groups)
    return {"auc": roc_auc(y, score), "auc_ci95": list(bootstrap_auc(y, score, patients, n_boot, seed)),
            "positive_patients": int(y.sum()), "patients": int(len(patients))}


def threshold_for(y: np.ndarray, p: np.ndarray, rule: tuple[str, float]) -> float:
    """Threshold meeting ``("specificity", s)`` or ``("sensitivity", s)`` on (y, p)."""
    kind, target = rule
    if kind == "specificity":
        return specificity_threshold(y, p, target)
    y = np.asarray(y).astype(bool)
    positives = np.sort(np.asarray(p, dtype=np.float64)[y])
    if not len(positives):
        return 0.5
    missed = int(np.floor((1.0 - target) * len(positives)))  # positives allowed below the threshold
    return float(np.clip(positives[missed], 1e-4, 1 - 1e-4))


def operating_point(y: np.ndarray, p: np.ndarray, groups: np.ndarray, fold_of: np.ndarray,
                    rule: tuple[str, float], n_boot: int = 1000, seed: int = 0) -> dict:
    """Sensitivity and specificity at ``rule`` with thresholds chosen on the other folds,
    95% intervals by bootstrap over patients, and the threshold on all folds (the bundle's)."""
    y = np.asarray(y).astype(bool)
    flagged = np.zeros(len(y), dtype=bool)
    for fold in np.unique(fold_of):
        held = fold_of == fold
        flagged[held] = p[held] >= threshold_for(y[~held], p[~held], rule)
    patients, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(patients))]
    rng = np.random.default_rng(seed)
    sens, spec = [], []
    for _ in range(n_boot):
        index = np.concatenate([members[k] for k in rng.integers(0, len(patients), len(patients))])
        yy, ff = y[index], flagged[index]
        if yy.any() and (~yy).any():
            sens.append(ff[yy].mean())
            spec.append((~ff[~yy]).mean())
    return {
        "rule": f"{rule[0]} >= {rule[1]:.2f} on out-of-fold predictions",
        "threshold": threshold_for(y, p, rule),
        "sensitivity": float(flagged[y].mean()) if y.any() else float("nan"),
        "sensitivity_ci95": [float(v) for v in np.percentile(sens, [2.5, 97.5])] if sens else [float("nan")] * 2,
        "specificity": float((~flagged[~y]).mean()) if (~y).any() else float("nan"),
        "specificity_ci95": [float(v) for v in np.percentile(spec, [2.5, 97.5])] if spec else [float("nan")] * 2,
        "note": "thresholds chosen on the other folds' predictions",
    }


def series_position(groups: np.ndarray) -> np.ndarray:
    """Each slice's place in its patient's series, 0 (first, foot) .. 1 (last, head).

    Slices of a patient are stored in series order, so the order within a group is the order."""
    position = np.zeros(len(groups))
    for g in set(groups.tolist()):
        index = np.flatnonzero(groups == g)
        position[index] = np.arange(len(index)) / max(len(index) - 1, 1)
    return position


def false_positive_rate_by_level(y_any: np.ndarray, flagged: np.ndarray, groups: np.ndarray) -> dict:
    """Share of normal slices flagged in the lowest, middle and highest third of each series."""
    y_any = np.asarray(y_any).astype(bool)
    third = np.minimum((series_position(groups) * 3).astype(int), 2)
    out = {}
    for k, name in enumerate(("lowest", "middle", "highest")):
        normal = (third == k) & ~y_any
        out[name] = {"normal_slices": int(normal.sum()),
                     "false_positive_rate": float(flagged[normal].mean()) if normal.any() else float("nan")}
    return out


def auc_by_level(y_any: np.ndarray, p_any: np.ndarray, groups: np.ndarray) -> dict:
    """How much of the slice AUC is position: the AUC of "closeness to the middle of the
    series" alone, and the model's AUC within each third of the series."""
    y = np.asarray(y_any).astype(bool)
    position = series_position(groups)
    third = np.minimum((position * 3).astype(int), 2)
    out = {"position_only": roc_auc(y, -np.abs(position - 0.5))}
    for k, name in enumerate(("lowest", "middle", "highest")):
        inside = third == k
        both = 0 < y[inside].sum() < inside.sum()
        out[name] = roc_auc(y[inside], np.asarray(p_any)[inside]) if both else float("nan")
    return out
