"""ROC curves and the ablation chart as PNG files (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ich_viewer import LABELS
from trainer.metrics import roc_curve


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(labels: np.ndarray, probs: np.ndarray, metrics: dict, out: Path, title: str) -> Path:
    """One panel per label: ROC of the out-of-fold predictions with AUC and its interval."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(12, 8))
    for k, (label, ax) in enumerate(zip(LABELS, axes.ravel())):
        y = labels[:, k].astype(bool)
        entry = metrics["labels"][label]
        ax.plot([0, 1], [0, 1], color="0.8", lw=1)
        if y.any() and (~y).any():
            fpr, tpr, _ = roc_curve(y, probs[:, k])
            ax.plot(fpr, tpr, lw=2)
            low, high = entry["auc_ci95"]
            ax.set_title(f"{label}: AUC {entry['auc']:.3f} ({low:.3f}-{high:.3f})", fontsize=10)
        else:
            ax.set_title(f"{label}: no positives", fontsize=10)
        ax.text(0.98, 0.03, f"{entry['positive_slices']} pos. slices\n{entry['positive_patients']} patients",
                ha="right", va="bottom", fontsize=8, transform=ax.transAxes)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_aspect("equal")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_ablation(arms: dict[str, dict], out: Path, title: str) -> Path:
    """Grouped bars: AUC per label (with 95% interval) for each training-data arm."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4.5 + 0.2 * len(arms)))
    width = 0.8 / max(len(arms), 1)
    x = np.arange(len(LABELS))
    for i, (arm, metrics) in enumerate(arms.items()):
        aucs = np.array([metrics["labels"][label]["auc"] for label in LABELS])
        cis = np.array([metrics["labels"][label]["auc_ci95"] for label in LABELS], dtype=float)
        err = np.abs(np.vstack([aucs - cis[:, 0], cis[:, 1] - aucs]))
        ax.bar(x + (i - (len(arms) - 1) / 2) * width, aucs, width, yerr=np.nan_to_num(err), capsize=2,
               label=f"{arm} (mean subtype {metrics['mean_subtype_auc']:.3f})")
    ax.axhline(0.5, color="0.7", lw=1, ls="--")
    ax.set_xticks(x, LABELS)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("slice-level ROC AUC (real held-out slices)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)  # below: bars stay clear
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_reliability(labels: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, out: Path, title: str) -> Path:
    """One panel per label: observed rate against predicted probability, before and after."""
    from trainer.calibration import expected_calibration_error, reliability

    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(12, 8))
    for k, (label, ax) in enumerate(zip(LABELS, axes.ravel())):
        y = labels[:, k]
        ax.plot([0, 1], [0, 1], color="0.8", lw=1)
        for probs, name, style in ((raw, "uncalibrated", "o--"), (calibrated, "calibrated (cross-fitted)", "s-")):
            predicted, observed = reliability(y, probs[:, k])
            ece = expected_calibration_error(y, probs[:, k])
            ax.plot(predicted, observed, style, ms=4, label=f"{name}, ECE {ece:.3f}")
        ax.set_title(f"{label} ({int(y.sum())} positive slices)", fontsize=10)
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed share with blood")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
