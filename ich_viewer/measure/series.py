"""Measurement on a loaded ``Series``: its spacing, calibration, and seeds in mm."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ich_viewer.dicom.model import Series
from ich_viewer.measure.clicks import Seed, grow_clicks
from ich_viewer.measure.planar import Calibration
from ich_viewer.measure.edit import Stroke, replay
from ich_viewer.measure.head import Head
from ich_viewer.measure.region import DEFAULT_HU, Region, describe
from ich_viewer.tasks import TaskState


def calibration(series: Series) -> Calibration:
    """mm from PixelSpacing, or pixels (and a note saying so) when the files had none."""
    first = series.slices[0]
    if not getattr(first, "pixel_spacing_known", True):
        return Calibration.pixels()
    row, col = first.pixel_spacing
    return Calibration(float(row), float(col), True)


def voxel_spacing(series: Series) -> tuple[float, float, float]:
    """(slice, row, col) spacing in mm; slice spacing from positions, else SliceThickness, else 1."""
    cal = calibration(series)
    dz = series.spacing_mm or series.slices[0].slice_thickness or 1.0
    return float(abs(dz)), cal.row_mm, cal.col_mm


def seed_from_mm(series: Series, xyz: Sequence[float]) -> tuple[int, int, int]:
    """(slice, row, col) of the voxel nearest a patient-coordinate point (mm).

    Raises ``ValueError`` when the series has no position/orientation or the point lies
    outside it.
    """
    first = series.slices[0]
    if first.orientation is None or any(h.position is None for h in series.slices):
        raise ValueError("this series has no ImagePositionPatient/ImageOrientationPatient: give --seed in voxels")
    row_dir = np.array(first.orientation[:3], float)  # along a row: the column index grows
    col_dir = np.array(first.orientation[3:], float)
    normal = np.cross(row_dir, col_dir)
    point = np.array(xyz, float)
    depths = np.array([float(np.dot(np.array(h.position, float), normal)) for h in series.slices])
    k = int(np.argmin(np.abs(depths - float(np.dot(point, normal)))))
    spacing = series.spacing_mm or first.slice_thickness or 1.0
    if abs(depths[k] - float(np.dot(point, normal))) > abs(spacing):
        raise ValueError(f"the point {tuple(xyz)} mm lies outside the series' slices")
    offset = point - np.array(series.slices[k].position, float)
    row_mm, col_mm = first.pixel_spacing
    col = int(round(float(np.dot(offset, row_dir)) / col_mm))
    row = int(round(float(np.dot(offset, col_dir)) / row_mm))
    if not (0 <= row < first.rows and 0 <= col < first.columns):
        raise ValueError(f"the point {tuple(xyz)} mm lies outside the image (row {row}, column {col})")
    return k, row, col


def seed_to_mm(series: Series, seed: Sequence[int]) -> tuple[float, float, float]:
    """The patient-coordinate point (mm) of voxel ``seed`` (slice, row, col): ``seed_from_mm`` reversed.

    Raises ``ValueError`` when the series has no position/orientation or the voxel lies outside it.
    """
    k, row, col = (int(v) for v in seed)
    first = series.slices[0]
    if not 0 <= k < len(series.slices) or not (0 <= row < first.rows and 0 <= col < first.columns):
        raise ValueError(f"voxel {k},{row},{col} lies outside the series")
    position = series.slices[k].position
    if first.orientation is None or position is None:
        raise ValueError("this series has no ImagePositionPatient/ImageOrientationPatient")
    row_mm, col_mm = first.pixel_spacing
    point = (np.array(position, float) + col * col_mm * np.array(first.orientation[:3], float)
             + row * row_mm * np.array(first.orientation[3:], float))
    return float(point[0]), float(point[1]), float(point[2])


def grow_in_series(series: Series, seed: tuple[int, int, int], hu_range: tuple[float, float] = DEFAULT_HU,
                   state: TaskState | None = None, cavity: np.ndarray | Head | None = None,
                   volume: np.ndarray | None = None, more_seeds: Sequence[Seed] = ()) -> Region:
    """``grow_clicks`` on a series: the same call the window and ``ich-viewer measure`` make;
    ``more_seeds`` are further clicks on pieces of the same bleed (``measure.clicks``)."""
    if state is not None:
        state.set_status("reading the series")
    if volume is None:
        volume = series.volume_hu()
    cal = calibration(series)
    return grow_clicks(volume, voxel_spacing(series), [seed, *more_seeds], hu_range, state,
                       calibrated=cal.known, cavity=cavity)


def grow_record(series: Series, seed: tuple[int, int, int], hu_range: tuple[float, float],
                edits: Sequence[Stroke] = (), state: TaskState | None = None, cavity: np.ndarray | Head | None = None,
                volume: np.ndarray | None = None, more_seeds: Sequence[Seed] = ()) -> Region:
    """A stored volume rebuilt: grown from its seeds and range, then the reader's brush strokes
    replayed (the window after a reopen or a threshold change, and every export)."""
    if volume is None:
        volume = series.volume_hu()
    region = grow_in_series(series, seed, hu_range, state, cavity=cavity, volume=volume, more_seeds=more_seeds)
    if region.ok and edits:
        assert region.mask is not None
        describe(region, volume, replay(region.mask, edits, region.spacing_mm, volume))
    return region
