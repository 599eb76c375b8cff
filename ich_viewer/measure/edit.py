"""The reader's corrections of a grown outline: add and erase brush strokes.

A stroke is data (slice, centre, radius, add or erase), kept in the volume's record
with its seed and HU range, so the window, a reopened study and every export rebuild the
same outline: regrow, then replay the strokes in order. Qt-free.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ich_viewer.measure.voxels import AIR_HU, BONE_HU

BRUSH_MM = 3.0
"""Default brush radius: about the width of a thin subdural on a 5 mm slice."""
MAX_BRUSH_MM = 30.0


@dataclass(frozen=True)
class Stroke:
    """One dab of the brush on one slice (a drag is a run of dabs)."""

    slice_index: int
    row: float
    col: float
    radius_mm: float
    add: bool

    def to_list(self) -> list[Any]:
        return [self.slice_index, self.row, self.col, self.radius_mm, int(self.add)]  # exact: replays the same pixels

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> "Stroke":
        if len(data) != 5:
            raise ValueError(f"a brush stroke has 5 values (slice, row, col, radius mm, add), got {list(data)!r}")
        radius = float(data[3])
        if not 0 < radius <= MAX_BRUSH_MM:
            raise ValueError(f"brush radius {radius:g} mm is outside 0-{MAX_BRUSH_MM:g} mm")
        return cls(int(data[0]), float(data[1]), float(data[2]), radius, bool(data[4]))


def disc(shape: tuple[int, int], row: float, col: float, radius_mm: float,
         pixel_mm: tuple[float, float]) -> tuple[tuple[slice, slice], np.ndarray]:
    """The brush's footprint: a box of the slice and the disc (in mm, so round on screen) inside it."""
    reach_r = int(np.ceil(radius_mm / pixel_mm[0]))
    reach_c = int(np.ceil(radius_mm / pixel_mm[1]))
    r0, r1 = max(0, int(round(row)) - reach_r), min(shape[0], int(round(row)) + reach_r + 1)
    c0, c1 = max(0, int(round(col)) - reach_c), min(shape[1], int(round(col)) + reach_c + 1)
    rr = (np.arange(r0, r1)[:, None] - row) * pixel_mm[0]
    cc = (np.arange(c0, c1)[None, :] - col) * pixel_mm[1]
    return (slice(r0, r1), slice(c0, c1)), rr * rr + cc * cc <= radius_mm * radius_mm


def apply_stroke(mask: np.ndarray, stroke: Stroke, spacing: tuple[float, float, float],
                 volume: np.ndarray | None = None) -> int:
    """Paint one stroke into ``mask`` in place; returns the change in voxels (+ added, - erased).

    The add brush never paints bone or air (when the HU are given): a quick stroke along
    the inner table should not add the skull to the bleed.
    """
    k = stroke.slice_index
    if not 0 <= k < mask.shape[0]:
        return 0
    box, inside = disc(mask.shape[1:], stroke.row, stroke.col, stroke.radius_mm, (spacing[1], spacing[2]))
    layer = mask[k][box]
    before = int(layer.sum())
    if stroke.add:
        allowed = inside.copy()
        if volume is not None:
            hu = volume[k][box]
            allowed &= (hu > AIR_HU) & (hu < BONE_HU)
        layer |= allowed
    else:
        layer &= ~inside
    return int(layer.sum()) - before


def replay(mask: np.ndarray, strokes: Iterable[Stroke], spacing: tuple[float, float, float],
           volume: np.ndarray | None = None) -> np.ndarray:
    """A copy of ``mask`` with the strokes applied in order."""
    out = mask.copy()
    for stroke in strokes:
        apply_stroke(out, stroke, spacing, volume)
    return out


def strokes_of(details: dict[str, Any]) -> list[Stroke]:
    """The strokes stored in a volume record's details (none when it was never edited)."""
    return [Stroke.from_list(s) for s in details.get("edits", [])]
