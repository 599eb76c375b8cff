"""Thick slabs and coronal/sagittal reformats of an axial stack, with the gantry tilt corrected.

A thin series (0.6 mm, 240 slices) is read as slabs (MIP or average of a few millimetres)
and in the two other planes. Both need the slices on a regular grid: a tilted gantry
shifts each slice in its own plane against the one before (the stack is a parallelepiped,
not a box), and missing or unevenly spaced slices break the spacing. ``build_reformat``
resamples the stack once with SimpleITK onto a grid whose axes are the slices' own row,
column and normal directions; grid plane ``k`` lies in the plane of acquired slice ``k``
(only shifted in it), so the slice the classifier scored and the plane the reformats show
are the same plane, and a flag on slice ``k`` is a line at plane ``k`` in the reformats.
The per-frame work is then numpy slicing of that grid (bench/bench_render.py measures it).

Coordinates: patient (LPS, mm), acquired ``(slice, row, col)`` and grid ``(plane, row,
col)``; ``Reformat`` converts between them. Images are row-major; reformat images have
the head at the top (patient's right on the left of a coronal, the face on the left of
a sagittal, as radiologists read them). Nothing here knows about DICOM files or Qt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

AIR_HU = -1024
"""Grid voxels outside every acquired slice."""
MODES = ("mip", "average")
DEFAULT_SLAB_MM = 5.0
EVEN_TOLERANCE = 0.05
"""Gaps within this fraction of the typical spacing count as even (no resampling along the normal)."""
TILT_TOLERANCE_PX = 0.01
"""In-plane drift per whole stack below this is rounding noise, not a tilt."""


@dataclass(frozen=True)
class Grid:
    """A regular grid in the patient: voxel ``(plane, row, col)`` at ``origin + sum(i * spacing * axis)``."""

    origin: np.ndarray
    """Patient position (mm) of voxel (0, 0, 0)."""
    axes: np.ndarray
    """3 x 3; row 0 the plane direction (slice normal), row 1 the row direction (the way the
    row index grows: DICOM's column cosines), row 2 the column direction (DICOM's row cosines)."""
    spacing: tuple[float, float, float]
    """(between planes, between rows, between columns) in mm."""
    shape: tuple[int, int, int]

    def patient(self, index: Sequence[float]) -> np.ndarray:
        """Patient position (mm) of grid index ``(plane, row, col)`` (fractional allowed)."""
        scaled = np.asarray(index, dtype=np.float64) * np.asarray(self.spacing)
        return self.origin + scaled @ self.axes

    def index(self, point: Sequence[float]) -> np.ndarray:
        """Fractional grid index ``(plane, row, col)`` of a patient position (mm)."""
        offset = np.asarray(point, dtype=np.float64) - self.origin
        return (self.axes @ offset) / np.asarray(self.spacing)


@dataclass
class Reformat:
    """An axial stack on a regular grid, and the slabs and reformats cut from it."""

    volume: np.ndarray
    """(planes, rows, cols) HU on ``grid`` (int16 or float32)."""
    grid: Grid
    slice_plane: np.ndarray
    """Fractional grid plane of each acquired slice (``k`` when the spacing is even)."""
    slice_offset: np.ndarray
    """(n, 2): grid (row, col) of pixel (0, 0) of each acquired slice."""
    slice_shape: tuple[int, int]
    tilt_corrected: bool
    """True when the stack was resampled to undo a gantry tilt."""
    respaced: bool
    """True when uneven or missing slices were interpolated onto even planes."""

    @property
    def n_slices(self) -> int:
        return len(self.slice_plane)

    # -- between acquired slices and the grid -----------------------------------------
    def grid_index(self, slice_index: float, row: float, col: float) -> np.ndarray:
        """Grid ``(plane, row, col)`` of acquired pixel ``(row, col)`` on slice ``slice_index``."""
        k = int(round(slice_index))
        return np.array([self.slice_plane[k], row + self.slice_offset[k, 0], col + self.slice_offset[k, 1]])

    def nearest_slice(self, plane: float) -> int:
        """The acquired slice closest to grid plane ``plane`` (what clicking a reformat opens)."""
        return int(np.argmin(np.abs(self.slice_plane - plane)))

    def acquired_index(self, plane: float, row: float, col: float) -> np.ndarray:
        """Acquired ``(slice, row, col)`` nearest to grid ``(plane, row, col)``."""
        k = self.nearest_slice(plane)
        return np.array([k, row - self.slice_offset[k, 0], col - self.slice_offset[k, 1]])

    # -- what is shown ------------------------------------------------------------------
    def planes_for(self, thickness_mm: float) -> int:
        """Grid planes in a slab ``thickness_mm`` thick (at least one)."""
        return _count(thickness_mm, self.grid.spacing[0])

    def axial(self, slice_index: int, thickness_mm: float = 0.0, mode: str = "mip") -> np.ndarray:
        """A slab centred on acquired slice ``slice_index``, in that slice's own pixels.

        Same shape as the acquired slice, so everything drawn over it (attention map,
        measurements, the cursor's position) stays in place. With a tilt the slab follows
        the slice normal: each neighbour is read where it lies over this slice's pixels
        (to the nearest grid row and column).
        """
        k = int(slice_index)
        plane = int(round(float(self.slice_plane[k])))
        rows, cols = self.slice_shape
        top, left = (int(round(float(v))) for v in self.slice_offset[k])
        start, stop = _span(plane, self.planes_for(thickness_mm), self.grid.shape[0])
        block = self.volume[start:stop, max(top, 0):top + rows, max(left, 0):left + cols]
        image = _reduce(block, 0, mode)
        if image.shape != (rows, cols):  # the crop reached past the grid: pad with air
            padded = np.full((rows, cols), AIR_HU, np.float32)
            padded[max(-top, 0):max(-top, 0) + image.shape[0], max(-left, 0):max(-left, 0) + image.shape[1]] = image
            image = padded
        return image

    def coronal(self, row: int, thickness_mm: float = 0.0, mode: str = "mip") -> np.ndarray:
        """(planes, cols) slab through grid row ``row``, head at the top."""
        start, stop = _span(int(row), _count(thickness_mm, self.grid.spacing[1]), self.grid.shape[1])
        return self._head_up(_reduce(self.volume[:, start:stop, :], 1, mode))

    def sagittal(self, col: int, thickness_mm: float = 0.0, mode: str = "mip") -> np.ndarray:
        """(planes, rows) slab through grid column ``col``, head at the top."""
        start, stop = _span(int(col), _count(thickness_mm, self.grid.spacing[2]), self.grid.shape[2])
        return self._head_up(_reduce(self.volume[:, :, start:stop], 2, mode))

    def head_up(self) -> bool:
        """True when grid planes run towards the head (then reformats are flipped to put it on top)."""
        return bool(self.grid.axes[0, 2] >= 0)

    def display_row(self, plane: float) -> float:
        """Row of a coronal or sagittal image where grid plane ``plane`` is drawn."""
        return (self.grid.shape[0] - 1 - plane) if self.head_up() else plane

    def plane_of_row(self, display_row: float) -> float:
        """The grid plane drawn on row ``display_row`` of a coronal or sagittal image."""
        return self.display_row(display_row)  # the flip is its own inverse

    def _head_up(self, image: np.ndarray) -> np.ndarray:
        return image[::-1] if self.head_up() else image


def _count(thickness_mm: float, spacing_mm: float) -> int:
    return max(1, int(round(float(thickness_mm) / spacing_mm))) if spacing_mm > 0 else 1


def _span(centre: int, count: int, size: int) -> tuple[int, int]:
    """[start, stop) of ``count`` indices centred on ``centre``, kept inside 0..size."""
    start = min(max(centre - (count - 1) // 2, 0), max(size - count, 0))
    return start, min(start + count, size)


def _reduce(block: np.ndarray, axis: int, mode: str) -> np.ndarray:
    if mode not in MODES:
        raise ValueError(f"slab mode must be one of {MODES}, not {mode!r}")
    if block.shape[axis] == 1:
        return np.take(block, 0, axis=axis).astype(np.float32)
    if mode == "mip":
        return block.max(axis=axis).astype(np.float32)
    return block.mean(axis=axis, dtype=np.float32)


# -- building the grid ---------------------------------------------------------------------


def build_reformat(
    stack: np.ndarray,
    origins: Sequence[Sequence[float]],
    orientation: Sequence[float],
    pixel_spacing: Sequence[float],
) -> Reformat:
    """Put an acquired stack on a regular grid (SimpleITK resampling when it is tilted).

    Parameters
    ----------
    stack
        (slices, rows, cols) HU, slices in order along the normal (as ``Series`` holds them).
    origins
        ImagePositionPatient of each slice (mm).
    orientation
        ImageOrientationPatient shared by the slices (row cosines, then column cosines).
    pixel_spacing
        (between rows, between columns) in mm, DICOM order.

    Raises
    ------
    ValueError
        Fewer than two slices, slices out of order or at one place, or shapes that disagree:
        there is no third dimension to reformat.
    """
    stack = np.asarray(stack)
    points = np.asarray(origins, dtype=np.float64)
    if stack.ndim != 3 or stack.shape[0] < 2:
        raise ValueError("reformats need a stack of at least two slices")
    if points.shape != (stack.shape[0], 3):
        raise ValueError(f"{stack.shape[0]} slices but {len(points)} positions")
    row_dir, col_dir, normal = _axes(orientation)
    row_mm, col_mm = (float(v) for v in pixel_spacing)
    along = points @ normal
    gaps = np.diff(along)
    if np.any(gaps <= 0):
        raise ValueError("slices must be in order along the slice normal, each at its own position")
    spacing = float(np.median(gaps))
    respaced = bool(np.any(np.abs(gaps - spacing) > EVEN_TOLERANCE * spacing))
    if respaced:
        stack, points = _respace(stack, points, along, spacing)
    planes = (along - along[0]) / spacing  # fractional grid plane of each acquired slice
    # In-plane drift per plane (a tilted gantry moves each slice along its own plane).
    step = (points[-1] - points[0]) / (len(points) - 1)
    drift = np.array([step @ col_dir / row_mm, step @ row_dir / col_mm])  # (rows, cols) per plane
    n, rows, cols = stack.shape
    tilted = bool(np.any(np.abs(drift) * (n - 1) > TILT_TOLERANCE_PX))
    low = np.minimum(drift * (n - 1), 0.0)  # grid index of acquired (0, 0) on plane 0 is -low
    if tilted:
        extra = np.ceil(np.abs(drift) * (n - 1) - 1e-6).astype(int)
        volume = _resample_sheared(stack, drift, low, (rows + int(extra[0]), cols + int(extra[1])))
    else:
        volume, drift, low = stack, np.zeros(2), np.zeros(2)
    origin = points[0] + low[0] * row_mm * col_dir + low[1] * col_mm * row_dir
    grid = Grid(
        origin=origin,
        axes=np.stack([normal, col_dir, row_dir]),
        spacing=(spacing, row_mm, col_mm),
        shape=(int(volume.shape[0]), int(volume.shape[1]), int(volume.shape[2])),
    )
    offsets = planes[:, None] * drift[None, :] - low[None, :]
    return Reformat(volume, grid, planes, offsets, (rows, cols), tilted, respaced)


def _axes(orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.asarray(orientation, dtype=np.float64)
    if values.shape != (6,):
        raise ValueError("ImageOrientationPatient must hold six numbers")
    row_dir, col_dir = values[:3], values[3:]
    row_dir = row_dir / np.linalg.norm(row_dir)
    col_dir = col_dir - (col_dir @ row_dir) * row_dir  # scanners write rounded cosines
    col_dir = col_dir / np.linalg.norm(col_dir)
    return row_dir, col_dir, np.cross(row_dir, col_dir)


def _respace(stack: np.ndarray, points: np.ndarray, along: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Even planes from uneven or missing slices: each a blend of the two acquired neighbours."""
    count = int(round((along[-1] - along[0]) / spacing)) + 1
    wanted = along[0] + spacing * np.arange(count)
    where = np.interp(wanted, along, np.arange(len(along)))
    lower = np.minimum(np.floor(where).astype(int), len(along) - 2)
    weight = (where - lower).astype(np.float32)
    even = np.empty((count, *stack.shape[1:]), np.float32)
    for j, (k, t) in enumerate(zip(lower, weight)):
        even[j] = stack[k] if t == 0 else (1 - t) * stack[k] + t * stack[k + 1]
    blended = (1 - weight[:, None]) * points[lower] + weight[:, None] * points[lower + 1]
    return even, blended


def _resample_sheared(stack: np.ndarray, drift: np.ndarray, low: np.ndarray, size_rc: tuple[int, int]) -> np.ndarray:
    """Undo the in-plane drift with one SimpleITK resample (linear), keeping the pixel type.

    Both images live in index space (origin 0, spacing 1): grid voxel (col, row, plane)
    reads the stack at (col + low_c - plane * drift_c, row + low_r - plane * drift_r, plane).
    """
    import SimpleITK as sitk

    source = sitk.GetImageFromArray(stack)
    shear = sitk.AffineTransform(3)
    shear.SetMatrix([1.0, 0.0, -float(drift[1]), 0.0, 1.0, -float(drift[0]), 0.0, 0.0, 1.0])
    shear.SetTranslation([float(low[1]), float(low[0]), 0.0])
    size = [int(size_rc[1]), int(size_rc[0]), int(stack.shape[0])]
    resampled = sitk.Resample(source, size, shear, sitk.sitkLinear, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0),
                              (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), float(AIR_HU), source.GetPixelID())
    return sitk.GetArrayFromImage(resampled)


def reformat_series(series: Any, cancelled: Any = None) -> Reformat | None:
    """``build_reformat`` of a loaded ``dicom.model.Series`` (decodes what is not yet decoded).

    Returns None when ``cancelled()`` turns true on the way. Raises ValueError when the
    series has no usable geometry (positions, orientation) or a single slice.
    """
    headers = series.slices
    if len(headers) < 2:
        raise ValueError("a single image has no third dimension to reformat")
    if any(h.position is None for h in headers) or headers[0].orientation is None:
        raise ValueError("the images lack ImagePositionPatient or ImageOrientationPatient")
    if len({(h.rows, h.columns) for h in headers}) != 1:
        raise ValueError("the images differ in size")
    rows, cols = headers[0].rows, headers[0].columns
    stack = np.empty((len(headers), rows, cols), np.int16)
    for i in range(len(headers)):
        if cancelled is not None and cancelled():
            return None
        stack[i] = np.clip(np.rint(series.hu(i)), -32768, 32767)
    return build_reformat(stack, [h.position for h in headers], headers[0].orientation, headers[0].pixel_spacing)
