"""Everything measured on one arm's out-of-fold predictions beyond the per-label AUCs.

The post-hoc levers of the recipe are measured here, each against the plain out-of-fold
predictions of the same fold models: the "no brain on this slice" gate, slice context
(a nested second stage), the HU stage for "any" (nested, ``trainer.any_stage``),
calibration (cross-fitted Platt scaling). Then the operating
points, exam-level AUC and false flags by level are reported for what is bundled.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from ich_viewer import LABELS
from ich_viewer.inference.preprocess import InputSpec, brain_fraction
from ich_viewer.inference.hu_features import FEATURE_NAMES
from trainer.any_stage import NOISE_CHECK_HU, OFFSET_CHECK_HU, ROTATION_CHECK_DEG, fit_stage, nested_stage, series_turns
from trainer.any_stage import slice_features as stage_features
from trainer.cache import CachedSet, window_batch
from trainer.calibration import calibrate, calibration_report, cross_fitted, fit_calibration
from trainer.context import nested_context
from trainer.metrics import (auc_by_level, evaluate, exam_level, false_positive_rate_by_level, operating_point,
                             out_of_fold_thresholds, threshold_for)

STAGE = "with HU stage for any"
MIN_BRAIN_FRACTION = 0.02
"""Below this share of brain pixels a slice is not scored. On CT-ICH's 1,995 slices it
gates 3 normal slices and no slice with blood (the lowest bleeding slice has 0.034)."""
OPERATING_RULES: dict[str, tuple[str, float]] = {
    **{label: ("specificity", 0.95) for label in LABELS[:-1]},
    "any": ("sensitivity", 0.90),
}
"""Why: "any" marks the slices a reader should look at, so it is set to miss few bleeding
slices (sensitivity 0.90) and its specificity is reported; a subtype colour claims a
kind of blood, so each is set to flag at most about 1 in 20 slices without it."""
OPERATING_NOTE = ('"any": the threshold that keeps slice sensitivity at 0.90 on the out-of-fold '
                  'predictions (its specificity is reported); each subtype: the lowest threshold whose '
                  'specificity is at least 0.95 there. Thresholds are on the calibrated scale.')


def brain_fractions(data: CachedSet, spec: InputSpec, batch: int = 256) -> np.ndarray:
    """The app's brain fraction of every cached slice."""
    parts = []
    for start in range(0, len(data), batch):
        hu = torch.from_numpy(np.asarray(data.hu[start:start + batch], dtype=np.float32))
        parts.append(brain_fraction(window_batch(hu, spec), spec).numpy())
    return np.concatenate(parts)


def head_turn_report(data: CachedSet, spec: InputSpec) -> dict:
    """How far the patients' heads are turned and whether that alone tells who bleeds: a
    confound left-right features read about the image's centre line would learn."""
    turns = series_turns(data, spec)
    groups = list(turns)
    angle = np.abs([turns[g] for g in groups])
    bleeding = np.array([bool(data.labels[data.groups == g, -1].any()) for g in groups])
    both = bleeding.any() and not bleeding.all()
    return {"patients": len(groups), "median_abs_deg": float(np.median(angle)),
            "mean_abs_deg_bleeding": float(angle[bleeding].mean()) if bleeding.any() else None,
            "mean_abs_deg_normal": float(angle[~bleeding].mean()) if (~bleeding).any() else None,
            "exam_auc_of_angle_alone": float(roc_auc_score(bleeding, angle)) if both else None}


def gate(probs: np.ndarray, brain: np.ndarray, minimum: float = MIN_BRAIN_FRACTION) -> np.ndarray:
    """Slices without brain are not scored; for the metrics they rank as the least suspicious."""
    out = probs.copy()
    out[brain < minimum] = 0.0
    return out


def finite_or_none(value):
    """The same JSON data with NaN and infinities as null: cards and metrics are strict JSON
    (an AUC is NaN when a fold has no positive of a label)."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary(metrics: dict) -> dict:
    """The few numbers an ablation row shows."""
    return {"auc_any": metrics["labels"]["any"]["auc"], "mean_subtype_auc": metrics["mean_subtype_auc"],
            "auc": {label: metrics["labels"][label]["auc"] for label in LABELS},
            "auc_ci95": {label: metrics["labels"][label]["auc_ci95"] for label in LABELS},
            "sensitivity_any_at_spec90": metrics["labels"]["any"]["sensitivity"],
            "weighted_log_loss": metrics["weighted_log_loss"]}


def level_rates(labels: np.ndarray, probs: np.ndarray, groups: np.ndarray, fold_of: np.ndarray) -> dict:
    """False flags of "any" (specificity-0.90 rule, thresholds from other folds) by level."""
    y = labels[:, -1].astype(bool)
    flagged = probs[:, -1] >= out_of_fold_thresholds(y, probs[:, -1], fold_of)
    return false_positive_rate_by_level(y, flagged, groups)


def robustness_check(labels: np.ndarray, clean: np.ndarray, changed: np.ndarray) -> dict:
    """Normal slices flagged by "any" at the sensitivity-0.90 threshold of the clean scores, and
    the AUC of "any", without and with a change to the slices' HU in the stage's features
    (``changed``). The network's output is held fixed, so this measures the stage's own
    sensitivity, not the network's."""
    y = labels[:, -1].astype(bool)
    threshold = threshold_for(y, clean[:, -1], OPERATING_RULES["any"])
    return {"threshold": threshold,
            "normal_flag_rate_clean": float((clean[~y, -1] >= threshold).mean()),
            "normal_flag_rate_changed": float((changed[~y, -1] >= threshold).mean()),
            "auc_any_clean": float(roc_auc_score(y, clean[:, -1])),
            "auc_any_changed": float(roc_auc_score(y, changed[:, -1]))}


def full_evaluation(data: CachedSet, probs: np.ndarray, fold_of: np.ndarray, spec: InputSpec,
                    seed: int = 0) -> dict:
    """Post-hoc levers, calibration, operating points and exam level for one arm.

    Returns a JSON-able ``report`` and the arrays the figures and the export need.
    """
    labels, groups = data.labels, data.groups
    brain = brain_fractions(data, spec)
    gated = gate(probs, brain)
    context = gate(nested_context(gated, brain, labels, groups, fold_of), brain)
    features = stage_features(data, spec)
    staged_raw, noisy_raw = nested_stage(probs, features, labels, fold_of,
                                         also=stage_features(data, spec, noise_hu=NOISE_CHECK_HU, seed=seed))
    _, offset_raw = nested_stage(probs, features, labels, fold_of,
                                 also=stage_features(data, spec, offset_hu=OFFSET_CHECK_HU))
    _, turned_raw = nested_stage(probs, features, labels, fold_of,
                                 also=stage_features(data, spec, rotate_deg=ROTATION_CHECK_DEG))
    staged = gate(staged_raw, brain)
    variants = {"first stage": gated, "with slice context": context, STAGE: staged}
    scored = {name: evaluate(labels, p, groups, fold_of, seed=seed) for name, p in variants.items()}
    exams = {name: exam_level(labels, p, groups, seed=seed) for name, p in variants.items()}
    use_context = scored["with slice context"]["weighted_log_loss"] < scored["first stage"]["weighted_log_loss"] \
        and scored["with slice context"]["labels"]["any"]["auc"] >= scored["first stage"]["labels"]["any"]["auc"]
    use_stage = scored[STAGE]["labels"]["any"]["auc"] > scored["first stage"]["labels"]["any"]["auc"] \
        and exams[STAGE]["auc"] > exams["first stage"]["auc"]
    chosen_name = STAGE if use_stage else "with slice context" if use_context else "first stage"
    chosen = variants[chosen_name]
    # Ranking metrics and operating points come from the uncalibrated out-of-fold scores:
    # the bundle's calibration is one monotone map per label, so it moves no slice past
    # another, whereas cross-fitted calibrations differ per fold and would distort a pooled
    # AUC. The cross-fitted calibration is used for what it measures: calibration error.
    calibrated_oof = cross_fitted(labels, chosen, fold_of, lift_any=not use_stage)
    calibration = fit_calibration(labels, chosen)
    final = calibrate(chosen, calibration, lift_any=not use_stage)
    final[brain < MIN_BRAIN_FRACTION] = 0.0
    metrics = scored[chosen_name]
    points = {label: operating_point(labels[:, k], chosen[:, k], groups, fold_of,
                                     OPERATING_RULES[label], seed=seed + k) for k, label in enumerate(LABELS)}
    # The bundle's thresholds: the same rules on the out-of-fold predictions calibrated as bundled.
    thresholds = {label: threshold_for(labels[:, k], final[:, k], OPERATING_RULES[label])
                  for k, label in enumerate(LABELS)}
    for label in LABELS:
        points[label]["threshold"] = thresholds[label]
    report = {
        "cross_validation": metrics,
        "exam_level": exams[chosen_name],
        "auc_by_level": auc_by_level(labels[:, -1], chosen[:, -1], groups),
        "operating_points": points,
        "operating_rule": OPERATING_NOTE,
        "calibration": calibration_report(labels, chosen, calibrated_oof),
        "post_hoc_levers": {
            "no brain gate": {"min_brain_fraction": MIN_BRAIN_FRACTION,
                              "gated_slices": int((brain < MIN_BRAIN_FRACTION).sum()),
                              "gated_positive_slices": int(((brain < MIN_BRAIN_FRACTION) & (labels[:, -1] == 1)).sum()),
                              "false_positive_rate_by_level_before": level_rates(labels, probs, groups, fold_of),
                              "false_positive_rate_by_level_after": level_rates(labels, gated, groups, fold_of),
                              "before": summary(evaluate(labels, probs, groups, fold_of, n_boot=200, seed=seed)),
                              "after": summary(scored["first stage"])},
            "slice context": {"without": summary(scored["first stage"]),
                              "with": summary(scored["with slice context"]),
                              "kept": bool(use_context)},
            STAGE: {"without": summary(scored["first stage"]), "with": summary(scored[STAGE]),
                    "exam_auc_without": exams["first stage"]["auc"], "exam_auc_with": exams[STAGE]["auc"],
                    "false_positive_rate_by_level_with": level_rates(labels, staged, groups, fold_of),
                    "noise_check": {"added_noise_hu": NOISE_CHECK_HU,
                                    **robustness_check(labels, staged, gate(noisy_raw, brain))},
                    "offset_check": {"added_offset_hu": OFFSET_CHECK_HU,
                                     **robustness_check(labels, staged, gate(offset_raw, brain))},
                    "rotation_check": {"rotated_deg": ROTATION_CHECK_DEG,
                                       **robustness_check(labels, staged, gate(turned_raw, brain))},
                    "head_turn": head_turn_report(data, spec),
                    "features": list(FEATURE_NAMES), "kept": bool(use_stage)},
        },
        "second_stage": chosen_name,
    }
    return {"report": report, "thresholds": thresholds, "calibration": calibration,
            "probs": chosen, "calibrated": calibrated_oof, "brain": brain, "use_context": use_context and not use_stage,
            "any_stage": fit_stage(probs[:, -1], features, labels[:, -1]) if use_stage else None}
