"""Slabs and reformats: a marker at a known patient position lands where it should in every view.

The phantoms are written by the project's DICOM writer (tilted like a real gantry when
asked) and read back by the loader, so the whole chain from ImagePositionPatient to the
pixel on screen is under test. Expected positions come from the writer's documented
geometry (table increment along z, slices tipped about x), not from the code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from ich_viewer.dicom.loader import load_study
from ich_viewer.imaging.reformat import AIR_HU, build_reformat, reformat_series
from ich_viewer.phantom.writer import write_series

N, SIZE, SPACING, PIXEL = 40, 48, 1.0, 0.5
MARKERS = [(8, 12, 30), (30, 36, 10)]
"""Acquired (slice, row, col) of two 3x3x3 bright cubes, far apart in every direction."""
MARKER_HU = 2000.0


def _phantom() -> np.ndarray:
    volume = np.zeros((N, SIZE, SIZE), np.float32)
    for k, r, c in MARKERS:
        volume[k - 1:k + 2, r - 1:r + 2, c - 1:c + 2] = MARKER_HU
    return volume


def _patient(k: int, r: int, c: int, tilt_deg: float) -> np.ndarray:
    """Where the writer puts acquired pixel (r, c) of slice k: rows tipped about x by the tilt."""
    t = math.radians(tilt_deg)
    x = -(SIZE - 1) * PIXEL / 2 + c * PIXEL
    along_column = -(SIZE - 1) * PIXEL / 2 + r * PIXEL
    return np.array([x, along_column * math.cos(t), k * SPACING - along_column * math.sin(t)])


def _load(tmp_path, tilt_deg: float, drop=()):
    write_series(_phantom(), tmp_path, spacing_mm=SPACING, pixel_spacing=(PIXEL, PIXEL), tilt_deg=tilt_deg,
                 drop_slices=drop)
    series = load_study(tmp_path).image_series[0]
    reformat = reformat_series(series)
    assert reformat is not None
    return series, reformat


@pytest.mark.parametrize("tilt_deg", [0.0, 20.0])
def test_a_marker_lands_where_it_should_in_all_three_views(tmp_path, tilt_deg):
    series, reformat = _load(tmp_path, tilt_deg)
    assert reformat.tilt_corrected == (tilt_deg != 0)
    assert series.gantry_tilt_deg == pytest.approx(tilt_deg, abs=0.1)
    for k, r, c in MARKERS:
        point = _patient(k, r, c, tilt_deg)
        plane, row, col = np.rint(reformat.grid.index(point)).astype(int)
        np.testing.assert_allclose(reformat.grid.index(point), reformat.grid_index(k, r, c), atol=1e-3)
        assert reformat.volume[plane, row, col] == MARKER_HU
        display = int(round(reformat.display_row(plane)))
        coronal, sagittal = reformat.coronal(row), reformat.sagittal(col)
        assert coronal.shape == (reformat.grid.shape[0], reformat.grid.shape[2])
        assert coronal[display, col] == MARKER_HU and sagittal[display, row] == MARKER_HU
        assert reformat.axial(k)[r, c] == MARKER_HU
        np.testing.assert_allclose(reformat.acquired_index(plane, row, col), (k, r, c), atol=0.5)
        np.testing.assert_allclose(reformat.grid.patient(reformat.grid.index(point)), point, atol=1e-6)
    (k1, *_), (k2, *_) = MARKERS
    rows = [reformat.display_row(reformat.grid_index(k, r, c)[0]) for k, r, c in MARKERS]
    assert (rows[1] < rows[0]) == (k2 > k1)  # head at the top: slice 30 is drawn above slice 8
    if not reformat.tilt_corrected:  # nothing resampled: only the phantom's own values
        assert set(np.unique(reformat.coronal(MARKERS[0][1]))) == {0.0, MARKER_HU}
    else:  # the sheared corners lie outside every slice: air
        assert reformat.volume[0, -1, 0] == AIR_HU or reformat.volume[0, 0, 0] == AIR_HU


def test_tilt_is_corrected_not_ignored(tmp_path):
    """In the raw stack the tilt moves a marker by rows; on the grid it sits at its true place."""
    series, reformat = _load(tmp_path, 20.0)
    k, r, c = MARKERS[1]
    naive_row = r  # where a stack read without the tilt would put it
    true_row = reformat.grid_index(k, r, c)[1]
    shift_mm = abs(true_row - naive_row - reformat.slice_offset[0, 0]) * PIXEL
    assert shift_mm == pytest.approx(k * SPACING * math.sin(math.radians(20)), abs=PIXEL)
    assert reformat.grid.spacing[0] == pytest.approx(SPACING * math.cos(math.radians(20)), abs=1e-3)
    # The grid is larger than one slice by the drift over the stack, so nothing is cut off.
    assert reformat.grid.shape[1] >= SIZE + int(N * SPACING * math.sin(math.radians(20)) / PIXEL) - 1


def test_missing_slices_are_respaced_and_markers_stay_put(tmp_path):
    series, reformat = _load(tmp_path, 0.0, drop=(20, 21))
    assert reformat.respaced and len(series) == N - 2
    assert reformat.grid.shape[0] == N  # the gap is filled by interpolated planes
    for k, r, c in MARKERS:
        index = k if k < 20 else k - 2  # the series index of slice k after the drop
        plane, row, col = np.rint(reformat.grid_index(index, r, c)).astype(int)
        assert plane == k and reformat.volume[plane, row, col] == MARKER_HU
        assert reformat.nearest_slice(plane) == index


def test_slabs_mip_and_average(tmp_path):
    _, reformat = _load(tmp_path, 0.0)
    k, r, c = MARKERS[0]
    assert reformat.planes_for(5.0) == 5
    assert reformat.axial(k + 2, 5.0, "mip")[r, c] == MARKER_HU  # two slices away, still in a 5 mm slab
    assert reformat.axial(k + 2, 0.0)[r, c] == 0.0  # a thin slice two away misses the 3-slice cube
    assert reformat.axial(k, 5.0, "average")[r, c] == pytest.approx(MARKER_HU * 3 / 5)
    assert reformat.coronal(r - 3, 5.0, "mip")[int(reformat.display_row(k)), c] == MARKER_HU
    with pytest.raises(ValueError, match="slab mode"):
        reformat.axial(k, 5.0, "median")


def test_bad_stacks_are_refused_with_a_reason():
    orientation = (1, 0, 0, 0, 1, 0)
    with pytest.raises(ValueError, match="at least two"):
        build_reformat(np.zeros((1, 4, 4)), [(0, 0, 0)], orientation, (1, 1))
    with pytest.raises(ValueError, match="in order"):
        build_reformat(np.zeros((2, 4, 4)), [(0, 0, 1), (0, 0, 0)], orientation, (1, 1))
    with pytest.raises(ValueError, match="positions"):
        build_reformat(np.zeros((2, 4, 4)), [(0, 0, 0)], orientation, (1, 1))


def test_a_thin_series_made_from_a_thick_one_keeps_its_extent_and_values():
    from ich_viewer.dicom.model import Series
    from ich_viewer.phantom.thin import resample_thin

    thick = np.stack([np.full((32, 32), 100.0 * k, np.float32) for k in range(5)])
    series = Series.from_array(thick, spacing_mm=5.0, pixel_spacing=(0.5, 0.5))
    thin, spacing, pixel = resample_thin(series, 21, size=32, noise_hu=0)
    assert thin.shape == (21, 32, 32) and spacing == pytest.approx(1.0) and pixel == pytest.approx(0.5)
    np.testing.assert_allclose(thin[:, 16, 16], 20.0 * np.arange(21), atol=1e-3)  # linear between 5 mm slices
