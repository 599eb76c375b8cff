"""One entry point for every export, used by the window's dialog and by ``ich-viewer analyze``.

Checks every destination before writing anything (not inside the study, no silent
overwrite), then writes each file atomically. Decisions default to the ones stored for
the study, so an export always carries the reader's review.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from ich_viewer.dicom.model import Study
from ich_viewer.report.atomic import ExportError, OutputExistsError
from ich_viewer.report.data import OverlayFn, build_report
from ich_viewer.report.decisions import StudyDecisions
from ich_viewer.report.destination import check_outside_study
from ich_viewer.report.review import stored_decisions
from ich_viewer.report.rows import Results


@dataclass
class ExportResult:
    written: list[Path] = field(default_factory=list)
    """Every file written, in the order written."""
    pdf: Path | None = None
    csv: Path | None = None
    json: Path | None = None
    sr: Path | None = None
    key_images: list[Path] = field(default_factory=list)
    kos: Path | None = None
    n_flagged: int = 0


def export_report(
    study: Study,
    results: Results,
    *,
    pdf: str | os.PathLike | None = None,
    csv: str | os.PathLike | None = None,
    json: str | os.PathLike | None = None,
    dicom_dir: str | os.PathLike | None = None,
    sr: bool = True,
    key_images: bool = True,
    decisions: StudyDecisions | None = None,
    deidentify: bool = False,
    overwrite: bool = False,
    overlay: OverlayFn | None = None,
    paper: str | None = None,
) -> ExportResult:
    """Write the requested exports; raises ``ExportError`` (nothing half-written) with the reason.

    ``decisions=None`` uses the decisions stored for this study. ``deidentify`` applies
    to every output: names, IDs, dates, places, descriptions and file paths leave the
    PDF, CSV and JSON (reader notes stay as written), and the DICOM objects follow PS3.15's Basic Profile
    with the Retain UIDs Option (so they still join the study in the PACS).
    ``paper`` is "A4" or "Letter" (default: by locale).
    """
    if not results:
        raise ExportError("there are no predictions to export (the classifier has not run on this study)")
    files = [Path(p) for p in (pdf, csv, json) if p is not None]
    for path in [*files, *([Path(dicom_dir)] if dicom_dir is not None else [])]:
        check_outside_study(path, study)
    for path in files:
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} already exists; choose another name or allow overwriting")
    if dicom_dir is not None and Path(dicom_dir).exists() and not Path(dicom_dir).is_dir():
        raise ExportError(f"{dicom_dir} is a file, not a folder for the DICOM objects")
    if decisions is None:
        decisions = stored_decisions(study)

    from ich_viewer.report import tabular  # local imports keep `analyze --json` light

    result = ExportResult()
    if json is not None:
        result.json = tabular.write_json(json, study, results, decisions, overwrite, deidentify=deidentify)
        result.written.append(result.json)
    if csv is not None:
        result.csv = tabular.write_csv(csv, study, results, decisions, overwrite, deidentify=deidentify)
        result.written.append(result.csv)
    if pdf is not None or dicom_dir is not None:
        content = build_report(study, results, decisions, deidentify=deidentify, overlay=overlay)
        result.n_flagged = content.n_flagged
        if pdf is not None:
            from ich_viewer.report.pdf import write_pdf

            result.pdf = write_pdf(pdf, content, overwrite=overwrite, paper=paper)
            result.written.append(result.pdf)
        if dicom_dir is not None:
            from ich_viewer.report.dicom_export import write_dicom

            # still joined to the study by its UIDs (PS3.15 Retain UIDs Option) when de-identified
            dicom = write_dicom(dicom_dir, content, study, sr=sr, key_images=key_images, overwrite=overwrite,
                                deidentify=deidentify)
            result.sr, result.key_images, result.kos = dicom.sr, dicom.key_images, dicom.kos
            result.written.extend(p for p in (dicom.sr, *dicom.key_images, dicom.kos) if p is not None)
    return result


def attention_overlay(loaded) -> OverlayFn:
    """Grad-CAM of the inference core as a report overlay (``loaded``: weights.LoadedModel)."""
    from ich_viewer.inference.gradcam import attention_map

    def overlay(series, index):
        return attention_map(loaded, series, index).heat

    return overlay


def export_from_analyze(args: argparse.Namespace, study: Study, results: Results) -> list[Path]:
    """``ich-viewer analyze --report F.pdf --sr DIR``: the same export as the window's dialog.

    The attention overlay is added when the model loads again here; without it the
    report is still complete.
    """
    overlay = None
    if getattr(args, "report", None):
        try:
            from ich_viewer.inference.weights import load_model

            overlay = attention_overlay(load_model(getattr(args, "model_dir", None), device=getattr(args, "device", None)))
        except Exception:  # the overlay is an extra; the report stands without it
            overlay = None
    result = export_report(
        study, results,
        pdf=getattr(args, "report", None),
        dicom_dir=getattr(args, "sr", None),
        overwrite=bool(getattr(args, "overwrite", False)),
        deidentify=bool(getattr(args, "deidentify", False)),
        overlay=overlay,
    )
    return result.written
