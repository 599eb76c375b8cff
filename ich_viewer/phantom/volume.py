"""The generated phantom as plain data: HU volume, per-slice labels, voxel masks."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ich_viewer import LABELS

SUBTYPES: tuple[str, ...] = LABELS[:5]
"""The five hemorrhage subtypes; mask value k means SUBTYPES[k - 1]."""


@dataclass
class Phantom:
    """A synthetic head CT: slice 0 is the most inferior (foot to head, like a Series)."""

    volume_hu: np.ndarray
    """float32 (n, rows, cols) in HU."""
    labels: np.ndarray
    """uint8 (n, 6) in LABELS order; "any" is 1 when any subtype is present on the slice."""
    masks: np.ndarray
    """uint8 (n, rows, cols); 0 none, k = 1..5 the subtype SUBTYPES[k - 1]."""
    thickness_mm: float
    spacing_mm: float
    pixel_spacing: tuple[float, float]
    """(row, col) mm, DICOM PixelSpacing order."""
    seed: int = 0
    subtypes: tuple[str, ...] = ()
    """The subtypes that were asked for (each appears in ``labels`` unless too small to survive)."""
    z_mm: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    """Slice centres in head coordinates (mm above the skull base plane)."""
    tissue: np.ndarray | None = None
    """uint8 (n, rows, cols) tissue class map before blur and noise (see anatomy.TISSUE)."""
    info: dict = field(default_factory=dict)
    """Generation parameters (head size, rotation, atrophy, lesion descriptions)."""

    @property
    def n_slices(self) -> int:
        return int(self.volume_hu.shape[0])

    def present_subtypes(self) -> list[str]:
        return [name for k, name in enumerate(SUBTYPES) if self.labels[:, k].any()]
