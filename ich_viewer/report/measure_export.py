"""Measurements in the exports: JSON block, CSV file, and the outline pictures of volumes.

The window keeps a volume as its seed and HU range (``measure.records``); exports regrow
it with the same function to draw the outline and list the slices, so the report shows
the region the reader accepted, not a copy that could drift from it. The PDF section
(``pdf.measurement_story``) and the SR groups (``dicom_export.sr_groups``) live with their
format and take what they need from here, never the other way round.
"""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ich_viewer.dicom.model import PixelDecodeError, Series, Study
from ich_viewer.imaging.windowing import window_to_uint8
from ich_viewer.measure.records import Measurement
from ich_viewer.measure.edit import strokes_of
from ich_viewer.measure.series import grow_record
from ich_viewer.report.atomic import atomic_write_bytes
from ich_viewer.report.destination import check_outside_study

CSV_FIELDS = ("series_uid", "slice_index", "slice_uid", "kind", "value", "unit", "text", "subtype", "volume_ml",
              "abc2_ml", "mean_hu", "sd_hu", "min_hu", "max_hu", "area", "area_unit", "hu_low", "hu_high",
              "slices", "created_at")
OUTLINE_RGB = (255, 40, 40)
ABC_RGB = (60, 200, 255)


def collect(study: Study, series_list: Sequence[Series],
            measurements: Mapping[str, Sequence[Measurement]] | None = None) -> list[Measurement]:
    """The measurements of the given series; ``None`` reads those stored for the study."""
    if measurements is None:
        from ich_viewer.report.measurements import stored_measurements

        measurements = stored_measurements(study)
    out: list[Measurement] = []
    for series in series_list:
        out.extend(measurements.get(series.series_uid, []))
    return out


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def measurement_dicts(records: Sequence[Measurement]) -> list[dict[str, Any]]:
    """Strict-JSON records (NaN of an empty ROI becomes null)."""
    return [_finite(record.to_dict()) for record in records]


def csv_rows(records: Sequence[Measurement]) -> list[dict[str, Any]]:
    rows = []
    for m in records:
        d = m.details
        hu = d.get("hu_range") or [None, None]
        rows.append({
            "series_uid": m.series_uid, "slice_index": m.slice_index, "slice_uid": m.slice_uid, "kind": m.kind,
            "value": _finite(m.value), "unit": m.unit, "text": m.text, "subtype": d.get("subtype", ""),
            "volume_ml": d.get("volume_ml", ""), "abc2_ml": d.get("abc2_ml", ""),
            "mean_hu": _finite(d.get("mean", d.get("mean_hu", ""))), "sd_hu": _finite(d.get("sd", "")),
            "min_hu": _finite(d.get("min", "")), "max_hu": _finite(d.get("max", "")), "area": d.get("area", ""),
            "area_unit": d.get("area_unit", ""), "hu_low": hu[0], "hu_high": hu[1],
            "slices": " ".join(str(s) for s in d.get("slices", [])), "created_at": m.created_at,
        })
    return rows


def write_csv(path: str | os.PathLike, study: Study, records: Sequence[Measurement], overwrite: bool = False) -> Path:
    """One row per measurement (UTF-8 with BOM, like the slice CSV)."""
    check_outside_study(path, study)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(records):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return atomic_write_bytes(path, buffer.getvalue().encode("utf-8-sig"), overwrite=overwrite)


def measurements_csv_path(csv_path: str | os.PathLike) -> Path:
    """``report.csv`` -> ``report-measurements.csv`` (the slice CSV keeps one row per slice)."""
    path = Path(csv_path)
    return path.with_name(f"{path.stem}-measurements{path.suffix or '.csv'}")


def regrow(series: Series, record: Measurement) -> np.ndarray | None:
    """The mask of a stored volume, brush edits included (None when it can no longer be grown)."""
    if record.kind != "volume":
        return None
    try:
        region = grow_record(series, record.seed, record.hu_range, strokes_of(record.details),
                             more_seeds=record.more_seeds)
    except (PixelDecodeError, ValueError):
        return None
    return region.mask


def volume_picture(series: Series, record: Measurement, mask: np.ndarray, *, max_side: int = 512,
                   center: float = 40.0, width: float = 80.0) -> np.ndarray:
    """The largest slice of the outline (red) with ABC/2's A line (blue), square pixels."""
    abc = record.details.get("abc2") or {}
    areas = mask.sum(axis=(1, 2))
    index = int(abc.get("slice", int(np.argmax(areas))))
    grey = window_to_uint8(series.hu(index), center, width)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    layer = mask[index]
    edge = layer.copy()
    edge[1:, :] &= layer[:-1, :]
    edge[:-1, :] &= layer[1:, :]
    edge[:, 1:] &= layer[:, :-1]
    edge[:, :-1] &= layer[:, 1:]
    rgb[layer & ~edge] = OUTLINE_RGB
    header = series.slices[index]
    row_mm, col_mm = header.pixel_spacing
    h_mm, w_mm = header.rows * row_mm, header.columns * col_mm
    scale = max_side / max(h_mm, w_mm)
    image = Image.fromarray(rgb).resize((max(1, round(w_mm * scale)), max(1, round(h_mm * scale))),
                                        Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    line = record.details.get("abc2_line")
    if line:
        sx, sy = image.width / header.columns, image.height / header.rows
        (r0, c0), (r1, c1) = line
        draw.line([((c0 + 0.5) * sx, (r0 + 0.5) * sy), ((c1 + 0.5) * sx, (r1 + 0.5) * sy)], fill=ABC_RGB, width=2)
    draw.text((6, 6), f"Im {index + 1}: {record.text}"[:90], fill=(255, 255, 0))
    return np.asarray(image)
