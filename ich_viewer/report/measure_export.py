"""Measurements in the exports: JSON block, CSV file, PDF section with outline images, SR groups.

The window keeps a volume as its seed and HU range (``measure.records``); exports regrow
it with the same function to draw the outline and list the slices, so the report shows
the region the reader accepted, not a copy that could drift from it.
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
        region = grow_record(series, record.seed, record.hu_range, strokes_of(record.details))
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


# --- PDF ----------------------------------------------------------------------------------
def measurement_story(content: Any, styles: Any, width: float) -> list:
    """The PDF's "Measurements" section: a table, and the outline of every bleed volume."""
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Table, TableStyle

    from ich_viewer.report.pdf import _p, _pdf_image

    records: list[Measurement] = list(getattr(content, "measurements", []) or [])
    if not records:
        return []
    story: list = [_p(f"Measurements ({len(records)})", styles.h2),
                   _p("Drawn or grown by the reader in ICH Viewer; volumes are planimetric (voxels x voxel volume), "
                      "ABC/2 beside them for comparison (an ellipsoid formula for intraparenchymal hematomas: it "
                      "over-estimates subdural and epidural crescents several-fold). Confirm every outline on the "
                      "images.", styles.small)]
    data = [[_p(h, styles.cell) for h in ("Im", "Measurement", "Value")]]
    for m in records:
        data.append([_p(str(m.slice_index + 1), styles.cell), _p(m.label, styles.cell), _p(m.text, styles.cell)])
    table = Table(data, colWidths=[12 * mm, 32 * mm, width - 44 * mm], repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(table)
    series_by_uid = {s.series.series_uid: s.series for s in content.sections}
    for m in records:
        series = series_by_uid.get(m.series_uid)
        if m.kind != "volume" or series is None:
            continue
        mask = content.volume_masks.get(m.id) if hasattr(content, "volume_masks") else None
        if mask is None:
            mask = regrow(series, m)
        if mask is None or not mask.any():
            story.append(_p(f"{m.label}: the outline could not be regrown for the picture.", styles.small))
            continue
        picture = volume_picture(series, m, mask)
        story.append(KeepTogether([_p(f"{m.label} — {m.text}", styles.h3), _pdf_image(picture, min(110 * mm, width)),
                                   _p("Red: outline on the slice with the largest area; blue: ABC/2's A diameter.",
                                      styles.small)]))
    return story


# --- DICOM SR (TID 1500) ------------------------------------------------------------------
def sr_groups(content: Any, study: Study) -> tuple[list, list]:
    """TID 1501 measurement groups for the measurements, and the referenced image headers."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from ich_viewer.report.dicom_export import FINDING_ICH, SCHEME, SUBTYPE_CONCEPT, _frames, _reference_dataset

    ml = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
    mm_unit = hd.sr.CodedConcept("mm", "UCUM", "millimeter")
    px_unit = hd.sr.CodedConcept("{px}", "UCUM", "pixels")
    hu_unit = hd.sr.CodedConcept("[hnsf'U]", "UCUM", "Hounsfield unit")
    planimetric = hd.sr.CodedConcept("PLANIMETRIC", SCHEME, "Voxel count x voxel volume (3D region growing)")
    abc2_method = hd.sr.CodedConcept("ABC2", SCHEME, "ABC/2 ellipsoid estimate")
    subtype_codes = {name: hd.sr.CodedConcept(f"READER-{name[:8].upper()}", SCHEME, f"{name.capitalize()} hemorrhage")
                     for name in ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")}
    series_by_uid = {s.series.series_uid: s.series for s in content.sections}
    groups, evidence = [], []
    for number, m in enumerate(getattr(content, "measurements", []) or [], start=1):
        series = series_by_uid.get(m.series_uid)
        if series is None:
            continue
        d = m.details
        indices = [int(i) for i in d.get("slices", [])] if m.kind == "volume" else [m.slice_index]
        indices = [i for i in indices if 0 <= i < len(series.slices)] or [min(m.slice_index, len(series.slices) - 1)]
        references = [_reference_dataset(study, series, series.slices[i]) for i in indices]
        evidence.extend(references)
        length_unit = mm_unit if m.unit == "mm" else px_unit
        measurements = []
        if m.kind == "volume":
            measurements.append(hd.sr.Measurement(name=codes.SCT.Volume, value=round(m.value, 3), unit=ml,
                                                  method=planimetric))
            if d.get("abc2_ml") is not None:
                measurements.append(hd.sr.Measurement(name=codes.SCT.Volume, value=round(float(d["abc2_ml"]), 3),
                                                      unit=ml, method=abc2_method))
        elif m.kind in ("distance", "midline"):
            measurements.append(hd.sr.Measurement(name=codes.SCT.Length, value=round(m.value, 3), unit=length_unit))
        elif m.kind == "angle":
            measurements.append(hd.sr.Measurement(name=codes.SCT.Angle, value=round(m.value, 3),
                                                  unit=hd.sr.CodedConcept("deg", "UCUM", "degree")))
        elif d.get("pixels"):
            for name, key in ((codes.SCT.Mean, "mean"), (codes.SCT.StandardDeviation, "sd"),
                              (codes.SCT.Minimum, "min"), (codes.SCT.Maximum, "max")):
                measurements.append(hd.sr.Measurement(name=name, value=round(float(d[key]), 3), unit=hu_unit))
            area_unit = hd.sr.CodedConcept("mm2", "UCUM", "square millimeter") if d.get("area_unit") == "mm²" \
                else hd.sr.CodedConcept("{px2}", "UCUM", "square pixels")
            measurements.append(hd.sr.Measurement(name=codes.SCT.Area, value=round(float(d["area"]), 3),
                                                  unit=area_unit))
        if not measurements:
            continue
        subtype = str(d.get("subtype", "unspecified"))
        evaluations = [hd.sr.QualitativeEvaluation(SUBTYPE_CONCEPT, subtype_codes[subtype])] \
            if subtype in subtype_codes else None
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(),
                                                         identifier=f"{m.label} {number} ({m.id})"),
            finding_type=FINDING_ICH if m.kind == "volume" else None,
            finding_sites=[hd.sr.FindingSite(codes.SCT.Brain)],
            measurements=measurements,
            qualitative_evaluations=evaluations,
            source_images=[hd.sr.SourceImageForMeasurementGroup(ref.SOPClassUID, ref.SOPInstanceUID,
                                                                referenced_frame_numbers=_frames(series.slices[i]))
                           for ref, i in zip(references, indices)],
        ))
    return groups, evidence
