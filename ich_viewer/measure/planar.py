"""Measurements on one slice: ruler, angle, ellipse and polygon ROIs, midline shift.

Points are (row, col) in pixel coordinates of the slice (pixel centres at integers), the
way the image arrays are indexed. Millimetres come from PixelSpacing; when a series has
none the values stay in pixels and say so (``Calibration.unit``), never a silent guess.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

Point = tuple[float, float]
"""(row, col) in pixels."""


@dataclass(frozen=True)
class Calibration:
    """Pixel size of a slice: (row spacing, column spacing) in mm, or pixels when unknown."""

    row_mm: float = 1.0
    col_mm: float = 1.0
    known: bool = True

    @classmethod
    def pixels(cls) -> "Calibration":
        return cls(1.0, 1.0, False)

    @property
    def unit(self) -> str:
        return "mm" if self.known else "px"

    @property
    def area_unit(self) -> str:
        return "mm²" if self.known else "px²"

    @property
    def note(self) -> str:
        """What the reader must be told when lengths are not in mm."""
        return "" if self.known else "no PixelSpacing in this series: lengths in pixels, not mm"

    def vector(self, p0: Point, p1: Point) -> np.ndarray:
        """p1 - p0 in physical units (row, col)."""
        return np.array([(p1[0] - p0[0]) * self.row_mm, (p1[1] - p0[1]) * self.col_mm])


def distance(p0: Point, p1: Point, cal: Calibration) -> float:
    """Length of the ruler from ``p0`` to ``p1`` in ``cal.unit``."""
    return float(np.hypot(*cal.vector(p0, p1)))


def angle_deg(p0: Point, vertex: Point, p1: Point, cal: Calibration) -> float:
    """Angle at ``vertex`` between the arms to ``p0`` and ``p1`` (0-180 degrees, physical space)."""
    a, b = cal.vector(vertex, p0), cal.vector(vertex, p1)
    na, nb = float(np.hypot(*a)), float(np.hypot(*b))
    if na == 0 or nb == 0:
        raise ValueError("an angle needs two arms of non-zero length")
    cosine = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return math.degrees(math.acos(cosine))


@dataclass(frozen=True)
class MidlineShift:
    """Perpendicular distance of a point (septum pellucidum) from the expected midline."""

    shift: float
    """Unsigned distance in ``unit``."""
    side: str
    """"image left" or "image right" of the line, or "on the line"."""
    unit: str


def midline_shift(line_start: Point, line_end: Point, point: Point, cal: Calibration) -> MidlineShift:
    """Distance of ``point`` from the line through ``line_start`` and ``line_end``.

    The reader draws the line along the falx's expected course (anterior to posterior
    attachment) and clicks the displaced septum pellucidum; the shift is the
    perpendicular distance, as the ICH literature measures it.
    """
    d = cal.vector(line_start, line_end)
    length = float(np.hypot(*d))
    if length == 0:
        raise ValueError("the midline needs two different points")
    v = cal.vector(line_start, point)
    cross = float(d[0] * v[1] - d[1] * v[0]) / length  # >0: point to the image right of the line (row down)
    side = "on the line" if abs(cross) < 1e-9 else ("image right" if cross < 0 else "image left")
    return MidlineShift(abs(cross), side, cal.unit)


def polygon_area(vertices: Sequence[Point], cal: Calibration) -> float:
    """Area enclosed by the polygon (shoelace formula) in ``cal.area_unit``."""
    pts = np.asarray(vertices, float)
    if len(pts) < 3:
        return 0.0
    r, c = pts[:, 0] * cal.row_mm, pts[:, 1] * cal.col_mm
    return float(abs(np.dot(r, np.roll(c, -1)) - np.dot(c, np.roll(r, -1))) / 2.0)


def polygon_mask(shape: tuple[int, int], vertices: Sequence[Point]) -> np.ndarray:
    """Pixels whose centre lies inside the polygon (even-odd rule), as a bool image."""
    pts = np.asarray(vertices, float)
    mask = np.zeros(shape, bool)
    if len(pts) < 3:
        return mask
    r0 = max(0, int(math.floor(pts[:, 0].min())))
    r1 = min(shape[0] - 1, int(math.ceil(pts[:, 0].max())))
    c0 = max(0, int(math.floor(pts[:, 1].min())))
    c1 = min(shape[1] - 1, int(math.ceil(pts[:, 1].max())))
    if r1 < r0 or c1 < c0:
        return mask
    rr, cc = np.mgrid[r0 : r1 + 1, c0 : c1 + 1].astype(float)
    inside = np.zeros(rr.shape, bool)
    for (ar, ac), (br, bc) in zip(pts, np.roll(pts, -1, axis=0)):
        if ar == br:
            continue
        crosses = (ar > rr) != (br > rr)
        col_at = ac + (rr - ar) * (bc - ac) / (br - ar)
        inside ^= crosses & (cc < col_at)
    mask[r0 : r1 + 1, c0 : c1 + 1] = inside
    return mask


def ellipse_mask(shape: tuple[int, int], center: Point, radii: Point) -> np.ndarray:
    """Pixels whose centre lies inside the axis-aligned ellipse (radii in pixels, row then col)."""
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    ry, rx = max(abs(radii[0]), 1e-9), max(abs(radii[1]), 1e-9)
    return ((rr - center[0]) / ry) ** 2 + ((cc - center[1]) / rx) ** 2 <= 1.0


def ellipse_area(radii: Point, cal: Calibration) -> float:
    """pi * a * b in ``cal.area_unit``."""
    return math.pi * abs(radii[0]) * cal.row_mm * abs(radii[1]) * cal.col_mm


@dataclass(frozen=True)
class RoiStats:
    """HU statistics of the pixels inside a region, and the region's drawn area."""

    pixels: int
    mean: float
    sd: float
    min: float
    max: float
    area: float
    """Geometric area of the drawn shape in ``area_unit`` (not the pixel count)."""
    area_unit: str

    def text(self) -> str:
        if self.pixels == 0:
            return f"no pixel inside · area {self.area:.1f} {self.area_unit}"
        return (f"mean {self.mean:.1f} HU · SD {self.sd:.1f} · min {self.min:.0f} · max {self.max:.0f} · "
                f"area {self.area:.1f} {self.area_unit} ({self.pixels} px)")


def roi_stats(image: np.ndarray, mask: np.ndarray, area: float, cal: Calibration) -> RoiStats:
    """Mean, SD (population), min and max of ``image`` under ``mask``; ``area`` as drawn."""
    values = np.asarray(image, np.float64)[mask]
    if values.size == 0:
        nan = float("nan")
        return RoiStats(0, nan, nan, nan, nan, area, cal.area_unit)
    return RoiStats(int(values.size), float(values.mean()), float(values.std()), float(values.min()),
                    float(values.max()), area, cal.area_unit)


def polygon_stats(image: np.ndarray, vertices: Sequence[Point], cal: Calibration) -> RoiStats:
    return roi_stats(image, polygon_mask(image.shape, vertices), polygon_area(vertices, cal), cal)


def ellipse_stats(image: np.ndarray, center: Point, radii: Point, cal: Calibration) -> RoiStats:
    return roi_stats(image, ellipse_mask(image.shape, center, radii), ellipse_area(radii, cal), cal)
