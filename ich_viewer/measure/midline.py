"""The head's midline as the growing reads it: how far, and on which side, a voxel lies from it.

A bleed seeded well off the midline does not cross the falx (``measure.region.leak_guard``),
its grey matter and its inner table's normal band are read on the other hemisphere
(``measure.region``, ``measure.follow``), and a sheet along the falx is read across it
(``measure.sheet``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

MIDLINE_SEED_MM = 15.0
"""The falx guard applies to seeds at least this far from the midline (a bleed centred near
the midline, thalamic or intraventricular, may rightly reach the other side)."""
MIDLINE_MARGIN_MM = 5.0
"""The region may pass the cavity's midline by this much (the falx is not exactly there)."""


def midline_side(cavity: np.ndarray, spacing: tuple[float, float, float]) -> Any:
    """A function slice -> signed in-plane distance (mm) of each pixel from the cavity's midline.

    The midline is the cavity's long (antero-posterior) axis: its direction from the whole
    cavity (one for the series), through each slice's own centroid. None without a cavity.
    """
    coords = np.argwhere(cavity[:, ::4, ::4])
    if len(coords) < 50:
        return None
    pts = coords[:, 1:].astype(np.float64) * 4 * np.array([spacing[1], spacing[2]])
    axis = np.linalg.eigh(np.cov(pts.T))[1][:, -1]  # the long axis
    counts = np.bincount(coords[:, 0], minlength=cavity.shape[0])
    sums = np.stack([np.bincount(coords[:, 0], pts[:, d], minlength=cavity.shape[0]) for d in (0, 1)], axis=1)
    centres = sums.astype(np.float64) / np.maximum(counts, 1)[:, None]
    normal = np.array([-axis[1], axis[0]])
    if normal[1] < 0:  # positive towards higher columns
        normal = -normal
    rows = np.arange(cavity.shape[1])[:, None] * spacing[1]
    cols = np.arange(cavity.shape[2])[None, :] * spacing[2]

    def side(k: int, at: tuple[slice, slice] = (slice(None), slice(None))) -> np.ndarray:
        """Slice ``k``'s distances, over the rows and columns ``at`` only when given (a box, a grid
        step): the same numbers without a pass over the whole slice."""
        if counts[k] == 0:
            return np.zeros(cavity.shape[1:])[at]
        cr, cc = centres[k]
        return (rows[at[0]] - cr) * normal[0] + (cols[:, at[1]] - cc) * normal[1]

    return side
