"""Where a pixel is in the patient: DICOM image plane geometry (PS3.3 C.7.6.2.1.1).

ImageOrientationPatient holds the row direction (the way the column index grows) then
the column direction (the way the row index grows); PixelSpacing is (between rows,
between columns). Position P = IPP + col * dcol * row_dir + row * drow * col_dir.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def patient_position(header: Any, row: float, col: float) -> tuple[float, float, float] | None:
    """Patient coordinates (mm) of pixel (row, col), or None without IPP/IOP."""
    position = getattr(header, "position", None)
    orientation = getattr(header, "orientation", None)
    if position is None or orientation is None or len(orientation) != 6:
        return None
    row_spacing, col_spacing = header.pixel_spacing
    origin = np.asarray(position, dtype=np.float64)
    row_dir = np.asarray(orientation[:3], dtype=np.float64)
    col_dir = np.asarray(orientation[3:], dtype=np.float64)
    point = origin + col * col_spacing * row_dir + row * row_spacing * col_dir
    return float(point[0]), float(point[1]), float(point[2])


def physical_size(rows: int, columns: int, pixel_spacing: tuple[float, float]) -> tuple[float, float]:
    """(width, height) of the image in mm, so the display keeps the true aspect."""
    row_spacing, col_spacing = (float(v) if float(v) > 0 else 1.0 for v in pixel_spacing)
    return columns * col_spacing, rows * row_spacing
