"""Slice thickness and bleed volume: a thick slice's partial volume, and a thinner series to measure on.

A 5 mm slice averages the bleed's edge with the brain or bone above and below it. Where the edge
runs obliquely through the slab (the top and bottom of a crescent, a bleed lying on the skull base)
no threshold recovers which voxels are more than half blood. On the same phantom bleeds the outline
met Dice >= 0.85 and 10 % on 45 of 53 on 2.5 mm slices against 37 of 53 on 5 mm ones (seeds 288-335;
docs/measure.md, ``bench/bench_measure.py --thickness``). Scanners send a thin reconstruction beside
the thick one as a rule, so the reader is told when one covers the click.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ich_viewer.dicom.model import Series
from ich_viewer.measure.region import Region
from ich_viewer.measure.rim import THICK_SLICE_MM
from ich_viewer.measure.series import seed_from_mm, seed_to_mm

SAME_ORIENTATION = 0.99
"""Normals at least this parallel (cosine): an axial series is offered for an axial one, not a reformat."""


def slice_thickness_mm(series: Series) -> float | None:
    """The nominal thickness (SliceThickness), else the distance between slices."""
    first = series.slices[0]
    value = first.slice_thickness or series.spacing_mm
    return None if value is None else abs(float(value))


@dataclass(frozen=True)
class Thinner:
    """A thinner series of the study that holds the clicked point."""

    index: int
    """Its index among the study's image series (``ich-viewer measure --series``)."""
    series: Series = field(repr=False)
    thickness_mm: float
    seeds: tuple[tuple[int, int, int], ...]
    """The clicks moved there: (slice, row, col) nearest the same points in mm (a click that
    falls outside it is left out; the first is always there)."""

    @property
    def short_name(self) -> str:
        """Thickness and number, short enough for a button in the narrow side panel."""
        number = f" {self.series.series_number}" if self.series.series_number is not None else ""
        return f"the {self.thickness_mm:g} mm series{number}"

    @property
    def name(self) -> str:
        described = f" ({self.series.description})" if self.series.description else ""
        return self.short_name + described


def thick_slice_note(series: Series, thinner: Thinner | None = None) -> str | None:
    """What the reader is told about a volume measured on thick slices (None on thin ones)."""
    thickness = slice_thickness_mm(series)
    if thickness is None or thickness <= THICK_SLICE_MM:
        return None
    note = (f"measured on {thickness:g} mm slices: the bleed's edge is averaged through the slice, so the "
            "volume is less exact than on thin slices")
    if thinner is not None:
        return note + f"; {thinner.name} holds this point: measure there"
    return note


def _normal(series: Series) -> np.ndarray | None:
    orientation = series.slices[0].orientation
    if orientation is None:
        return None
    return np.cross(np.array(orientation[:3], float), np.array(orientation[3:], float))


def thinner_series(study_series: Sequence[Series], series: Series,
                   seeds: Sequence[tuple[int, int, int]]) -> Thinner | None:
    """The thinnest other series of the study, at most ``THICK_SLICE_MM`` thick, parallel to
    ``series``, whose slices and image hold the point the first of ``seeds`` is at; None when
    none does, or when ``series`` itself is thin. The same study shares its patient coordinates."""
    thickness = slice_thickness_mm(series)
    normal = _normal(series)
    if thickness is None or thickness <= THICK_SLICE_MM or normal is None or series.refusal is not None:
        return None
    try:
        points = [seed_to_mm(series, seed) for seed in seeds]
    except ValueError:
        return None
    best: Thinner | None = None
    for index, other in enumerate(study_series):
        other_thickness = slice_thickness_mm(other)
        other_normal = _normal(other)
        if (other is series or other.refusal is not None or other_thickness is None
                or other_thickness > THICK_SLICE_MM or other_normal is None
                or abs(float(np.dot(normal, other_normal))) < SAME_ORIENTATION):
            continue
        moved = _moved(other, points)
        if moved and (best is None or other_thickness < best.thickness_mm):
            best = Thinner(index, other, other_thickness, tuple(moved))
    return best


def _moved(series: Series, points: Sequence[tuple[float, float, float]]) -> list[tuple[int, int, int]]:
    """``points`` (mm) as voxels of ``series``; empty when the first lies outside it."""
    out = []
    for number, point in enumerate(points):
        try:
            out.append(seed_from_mm(series, point))
        except ValueError:
            if number == 0:
                return []
    return out


def note_thickness(region: Region, series: Series, study_series: Sequence[Series]) -> Thinner | None:
    """Add the thick-slice note to a grown ``region`` (the window and ``ich-viewer measure``) and
    return the thinner series that holds its click, if any."""
    if not region.ok:
        return None
    thinner = thinner_series(study_series, series, [region.seed, *region.more_seeds])
    note = thick_slice_note(series, thinner)
    if note is not None:
        region.notes.append(note)
    return thinner
