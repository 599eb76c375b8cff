"""Machine-readable results: JSON and CSV with one row per slice and the same content.

``ich-viewer analyze --json/--csv`` and the window's export both call these. The JSON
adds the study, series and model blocks around the rows; every CSV row carries the
model identity so a row still says where it came from when copied elsewhere.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Mapping, Sequence

from ich_viewer import LABELS, RESEARCH_NOTICE, __version__
from ich_viewer.demo import source_notes
from ich_viewer.dicom.model import Study
from ich_viewer.measure.records import Measurement
from ich_viewer.report.atomic import ExportError, atomic_write_bytes
from ich_viewer.report.measure_export import collect, measurement_dicts
from ich_viewer.report.notes import raw_bytes_hex, safe_text, series_notes, study_notes
from ich_viewer.report.decisions import StudyDecisions
from ich_viewer.report.destination import check_outside_study
from ich_viewer.report.review import stored_decisions
from ich_viewer.report.rows import (
    ROW_FIELDS, Results, build_rows, decision_counts, model_dict, study_dict, utc_now_iso,
)

FORMAT_NAME = "ich-viewer-slice-results"
FORMAT_VERSION = 1
CSV_MODEL_FIELDS: tuple[str, ...] = ("model_name", "model_version", "model_sha256", "device", "analyzed_at")
CSV_FIELDS: tuple[str, ...] = (*ROW_FIELDS, *CSV_MODEL_FIELDS, "warnings")
"""``warnings``: every warning of the study and its series, unanalysed slices and series,
and skipped files; the same on every row, so a filtered sheet still shows them."""


def results_document(
    study: Study, results: Results, decisions: StudyDecisions | None = None, *, deidentify: bool = False,
    measurements: Mapping[str, Sequence[Measurement]] | None = None,
) -> dict:
    """The JSON content as a dict. ``decisions=None`` uses the ones stored for the study
    (pass ``{}`` for none), so every export carries the reader's review."""
    decisions = stored_decisions(study) if decisions is None else decisions
    rows = build_rows(results, decisions, deidentify=deidentify)
    series_blocks = []
    for series, prediction in results:
        series_rows = [r for r in rows if r.series_uid == series.series_uid]
        series_blocks.append({
            "series_uid": series.series_uid,
            "series_number": series.series_number,
            "description": "" if deidentify else safe_text(series.description),
            "n_slices": len(series.slices),
            "n_predicted": len(prediction.slices),
            "model": model_dict(prediction.model),
            "started_at": prediction.started_at,
            "finished_at": prediction.finished_at,
            "input_note": prediction.input_note,
            "suspected": prediction.suspected_labels(),
            "review": decision_counts(series_rows),
            "warnings": series_notes(series, prediction.errors, study, deidentify=deidentify),
        })
    notes = study_notes(study, results, deidentify=deidentify)
    first = results[0][1] if results else None
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "software": {"name": "ICH Viewer", "version": __version__},
        "notice": RESEARCH_NOTICE,
        "exported_at": utc_now_iso(),
        "labels": list(LABELS),
        "model": model_dict(first.model) if first else None,
        "analyzed_at": first.started_at if first else "",
        "study": study_dict(study, deidentify=deidentify),
        "source_notes": source_notes(study),
        "series": series_blocks,
        "slices": [_json_row(row) for row in rows],
        "warnings": notes.warnings,
        "not_analysed": notes.not_analysed,
        "skipped": notes.skipped,
        "measurements": measurement_dicts(collect(study, [series for series, _ in results], measurements)),
    }


def _json_row(row) -> dict:
    """A row with its file name escaped where needed and the raw bytes kept beside it."""
    data = row.to_json()
    raw = raw_bytes_hex(row.file)
    data["file"] = safe_text(row.file)
    if raw is not None:
        data["file_bytes_hex"] = raw
    return data


def json_bytes(document: dict) -> bytes:
    """Strict JSON (no NaN or Infinity, which other programs reject) as UTF-8."""
    try:
        text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise ExportError(f"the results hold a value that is not a finite number; nothing was written ({exc})") from exc
    return (text + "\n").encode("utf-8")


def write_json(
    path: str | os.PathLike, study: Study, results: Results, decisions: StudyDecisions | None = None,
    overwrite: bool = False, *, deidentify: bool = False,
    measurements: Mapping[str, Sequence[Measurement]] | None = None,
) -> Path:
    check_outside_study(path, study)
    document = results_document(study, results, decisions, deidentify=deidentify, measurements=measurements)
    return atomic_write_bytes(path, json_bytes(document), overwrite=overwrite)


def csv_text(study: Study, results: Results, decisions: StudyDecisions | None = None, *, deidentify: bool = False) -> str:
    decisions = stored_decisions(study) if decisions is None else decisions
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    models = {series.series_uid: prediction for series, prediction in results}
    warnings = " | ".join(study_notes(study, results, deidentify=deidentify).lines())
    for row in build_rows(results, decisions, deidentify=deidentify):
        prediction = models[row.series_uid]
        values = row.to_csv()
        values["file"] = safe_text(values["file"])
        writer.writerow({
            **values,
            "warnings": warnings,
            "model_name": prediction.model.name,
            "model_version": prediction.model.version,
            "model_sha256": prediction.model.sha256,
            "device": prediction.model.device,
            "analyzed_at": prediction.started_at,
        })
    return buffer.getvalue()


def write_csv(
    path: str | os.PathLike, study: Study, results: Results, decisions: StudyDecisions | None = None,
    overwrite: bool = False, *, deidentify: bool = False,
) -> Path:
    """UTF-8 with a byte-order mark so spreadsheet programs read accented names right."""
    check_outside_study(path, study)
    data = csv_text(study, results, decisions, deidentify=deidentify).encode("utf-8-sig")
    return atomic_write_bytes(path, data, overwrite=overwrite)
