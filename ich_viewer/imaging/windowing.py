"""The DICOM VOI LINEAR window (PS3.3 C.11.2.1.2.1) as plain numpy.

The display never recomputes pixels on a window change: pyqtgraph's ImageItem maps its
``levels`` (lo, hi) linearly to black..white with clipping, and ``window_bounds`` gives
exactly the black and white points of the LINEAR function, so ``setLevels`` alone
reproduces ``apply_window``. ``apply_window`` is the reference the tests (and any
non-Qt consumer, e.g. report images) use.
"""
from __future__ import annotations

import numpy as np

MIN_WIDTH = 1.0
"""DICOM requires WindowWidth >= 1; narrower windows are clamped to it."""

_STEP_EPSILON = 1e-3
"""Span given to pyqtgraph for a width-1 window (a step), which would divide by zero."""


def _checked_width(width: float) -> float:
    return max(float(width), MIN_WIDTH)


def window_bounds(center: float, width: float) -> tuple[float, float]:
    """Black and white points (lo, hi) of the LINEAR function, for ``ImageItem.setLevels``.

    x <= lo is black, x > hi is white, linear between. For width 1 (a step at
    c - 0.5) hi is nudged by a thousandth of a HU so the span is never zero.
    """
    w = _checked_width(width)
    lo = float(center) - 0.5 - (w - 1.0) / 2.0
    hi = float(center) - 0.5 + (w - 1.0) / 2.0
    if hi - lo < _STEP_EPSILON:
        hi = lo + _STEP_EPSILON
    return lo, hi


def apply_window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """HU -> display value in [0, 1] by the DICOM LINEAR function (float32)."""
    x = np.asarray(hu, dtype=np.float64)
    c = float(center)
    w = _checked_width(width)
    if w == 1.0:
        return (x > c - 0.5).astype(np.float32)
    y = (x - (c - 0.5)) / (w - 1.0) + 0.5
    lo = c - 0.5 - (w - 1.0) / 2.0
    hi = c - 0.5 + (w - 1.0) / 2.0
    y = np.where(x <= lo, 0.0, np.where(x > hi, 1.0, y))
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def window_to_uint8(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """8-bit greyscale of a windowed slice, for thumbnails and exported key images."""
    return np.round(apply_window(hu, center, width) * 255.0).astype(np.uint8)


def adjust_window(
    center: float, width: float, dx: float, dy: float, hu_per_pixel: float = 1.0
) -> tuple[float, float]:
    """Window after a mouse drag of (dx, dy) screen pixels.

    Right widens, left narrows; up raises the centre (image darker), down lowers it.
    ``hu_per_pixel`` is the sensitivity (the UI uses a fine and a coarse value).
    """
    new_width = _checked_width(width + dx * hu_per_pixel)
    new_center = center - dy * hu_per_pixel
    return float(new_center), float(new_width)
