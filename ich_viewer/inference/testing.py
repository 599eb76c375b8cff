"""Randomly initialised models for tests and benchmarks. Never bundled, never evidence.

Their outputs mean nothing clinically; they exercise shapes, timing and plumbing.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ich_viewer import LABELS
from ich_viewer.inference.model import build_model, default_arch
from ich_viewer.inference.preprocess import InputSpec
from ich_viewer.inference.weights import export_model

SMALL_ARCH = {"stem_width": 8, "widths": [8, 16, 32], "blocks": [1, 1, 1], "strides": [2, 2, 2], "dropout": 0.0}
"""A tiny network for fast unit tests."""


def export_random_model(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    spec: InputSpec | None = None,
    arch_changes: dict | None = None,
    thresholds: dict[str, float] | None = None,
    any_bias: float | None = None,
    calibration: dict | None = None,
    any_stage: dict | None = None,
) -> Path:
    """Export an untrained network; returns the model folder.

    ``arch_changes=None`` gives the full-size default architecture (for benchmarks);
    pass ``SMALL_ARCH`` for tests. ``any_bias`` shifts every output bias so a test can
    make flags likely (positive) or unlikely (negative).
    """
    spec = spec or InputSpec()
    torch.manual_seed(seed)
    arch = default_arch(spec.n_channels, **(arch_changes or {}))
    model = build_model(arch).eval()
    with torch.no_grad():  # give BatchNorm non-trivial statistics so outputs vary by input
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        if any_bias is not None:
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.bias.fill_(float(any_bias))
    out = Path(out_dir)
    export_model(
        model, arch, spec,
        thresholds or {label: 0.5 for label in LABELS},
        {"untrained": True, "note": "random weights for tests and benchmarks; predictions are meaningless",
         "seed": seed},
        out, name="random-test-model", version=f"0.0.0+seed{seed}", calibration=calibration,
        any_stage=any_stage,
    )
    return out
