"""One ordered stack of slices with labels: the unit every reader produces.

A volume keeps its slices in anatomical order so that a slice's neighbours are real
neighbours; the ``group`` is what cross-validation splits on (a patient), never a slice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Volume:
    """Slices of one series in order, loaded lazily (HU, float32) with their labels."""

    group: str
    """Split key: the patient. Two volumes of one patient share it."""
    source: str
    """Data set name: "ct-ich", "rsna" or "synthetic"."""
    names: list[str]
    """A readable id per slice (file or index), same order as the slices."""
    labels: np.ndarray
    """(n, 6) uint8 in LABELS order."""
    load_hu: Callable[[], list[np.ndarray | None]]
    """Returns every slice in HU (None for a slice that cannot be read)."""
    spacing_mm: float | None = None
    """Distance between neighbouring slices when known (None: take adjacent slices)."""
    thickness_mm: float | None = None
    """SliceThickness when known: with the spacing it sets how thin slices are averaged
    into slabs (``preprocess.slab_weights``), as in the app."""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)
