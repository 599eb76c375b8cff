"""ABC/2, the bedside estimate of a bleed's volume, beside the planimetric one.

From the slice with the largest area: A its longest diameter, B the longest extent
perpendicular to A, C the number of slices with blood x the slice spacing. An ellipsoid
formula for intraparenchymal hematomas: it over-estimates irregular bleeds and crescents.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ich_viewer.measure.voxels import convex_hull, row_ends


@dataclass(frozen=True)
class ABC2:
    """The bedside ellipsoid estimate: A x B x C / 2 (cm -> mL)."""

    a_mm: float
    b_mm: float
    c_mm: float
    slice_index: int
    """The slice with the largest area, where A and B were measured."""
    a_line: tuple[tuple[float, float], tuple[float, float]]
    """A's end points (row, col) on that slice, to draw it."""

    @property
    def ml(self) -> float:
        return self.a_mm * self.b_mm * self.c_mm / 2.0 / 1000.0


def abc2(mask: np.ndarray, spacing: tuple[float, float, float]) -> ABC2:
    """ABC/2 from the slice with the largest area (see module notes)."""
    areas = mask.sum(axis=(1, 2))
    k = int(np.argmax(areas))
    layer = np.pad(mask[k], 1)
    inner = layer[1:-1, 1:-1] & layer[:-2, 1:-1] & layer[2:, 1:-1] & layer[1:-1, :-2] & layer[1:-1, 2:]
    rows, cols = np.nonzero(mask[k] & ~inner)  # the edge holds every extreme point: fewer points, same answer
    dz, dr, dc = spacing
    pts = np.column_stack([rows * dr, cols * dc]).astype(np.float64)
    hull = convex_hull(pts[row_ends(rows)])
    if len(hull) == 1:
        a_len, (p, q) = 0.0, (hull[0], hull[0])
    else:
        d = ((hull[:, None, :] - hull[None, :, :]) ** 2).sum(-1)
        a_idx, b_idx = np.unravel_index(int(np.argmax(d)), d.shape)
        p, q = hull[a_idx], hull[b_idx]
        a_len = float(np.sqrt(d[a_idx, b_idx]))
    if a_len > 0:
        u = (q - p) / a_len
        normal = np.array([-u[1], u[0]])
        proj = pts @ normal
        b_len = float(proj.max() - proj.min())
        # Extent of pixels, not of their centres: add one pixel along each direction.
        a_len += float(np.hypot(u[0] * dr, u[1] * dc))
        b_len += float(np.hypot(normal[0] * dr, normal[1] * dc))
    else:
        a_len, b_len = dc, dr
    c_len = float(np.count_nonzero(areas)) * dz
    line = ((float(p[0] / dr), float(p[1] / dc)), (float(q[0] / dr), float(q[1] / dc)))
    return ABC2(a_len, b_len, c_len, k, line)
