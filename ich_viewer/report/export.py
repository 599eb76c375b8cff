"""One entry point for every export, used by the window's dialog and by ``ich-viewer analyze``.

Checks every destination before writing anything (not inside the study, no silent
overwrite), then writes each file atomically. Decisions default to the ones stored for
the study, so an export always carries the reader's review.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
import logging
from pathlib import Path
from typing import Mapping, Sequence

from ich_viewer.dicom.model import Study
from ich_viewer.measure.records import Measurement
from ich_viewer.options import AnalyzeOptions
from ich_viewer.report.atomic import ExportError, OutputExistsError
from ich_viewer.report.data import build_report
from ich_viewer.report.key_images import OverlayFn
from ich_viewer.report.decisions import StudyDecisions
from ich_viewer.report.destination import check_outside_study
from ich_viewer.report.measure_export import collect, measurements_csv_path
from ich_viewer.report.measure_export import write_csv as write_measurements_csv
from ich_viewer.report.measurements import stored_measurements
from ich_viewer.report.review import stored_decisions
from ich_viewer.report.rows import Results

log = logging.getLogger(__name__)


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
    segs: list[Path] = field(default_factory=list)
    """DICOM SEG of the bleed outlines (one per series with volumes), beside the SR."""
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
    measurements: Mapping[str, Sequence[Measurement]] | None = None,
) -> ExportResult:
    """Write the requested exports; raises ``ExportError`` (nothing half-written) with the reason.

    Every destination is checked before anything is written, then each file is written
    atomically (a temporary file renamed into place).

    Parameters
    ----------
    study
        The study the results belong to (identity, dates, the folder nothing may be
        written into).
    results
        ``[(Series, SeriesPrediction), ...]`` as ``analyze_study`` or the window's
        ``results_for_study()`` give them; must not be empty.
    pdf, csv, json
        Output file paths, or None to skip that format.
    dicom_dir
        Folder for the DICOM objects (created when missing); None writes none of them.
    sr, key_images
        With ``dicom_dir``: write the Comprehensive SR, and a key-object selection with
        secondary-capture key images of the flagged slices.
    decisions
        The reader's accept / reject decisions and notes; None uses those stored for
        this study (``report.review``), so an export always carries the review.
    deidentify
        Applies to every output: names, IDs, dates, places, descriptions and file paths
        leave the PDF, CSV and JSON (reader notes stay as written), and the DICOM objects
        follow PS3.15's Basic Profile with the Retain UIDs Option (so they still join the
        study in the PACS).
    overwrite
        Replace existing files; without it an existing file is an ``OutputExistsError``.
    overlay
        ``overlay(series, index) -> heat map in [0, 1]`` blended over the report's slice
        pictures (``attention_overlay(loaded)`` for Grad-CAM); None draws none.
    paper
        "A4" or "Letter" for the PDF (default: by locale).
    measurements
        The reader's measurements by series UID; None uses those stored for this study
        (``report.measurements``). They go into the JSON, a ``<csv>-measurements.csv``
        beside the CSV, the PDF (with outline pictures) and the SR (TID 1500 groups).

    Returns
    -------
    ExportResult
        The paths written (``written`` in order, and per format) and the number of
        flagged slices reported.

    Raises
    ------
    ExportError
        No results, a destination inside the study folder, a DICOM folder that is a
        file, or a write that failed; ``OutputExistsError`` (a subclass) for a file that
        exists without ``overwrite``. Nothing is left half-written.

    Example
    -------
    >>> export_report(study, results, pdf="out/report.pdf", json="out/report.json",  # doctest: +SKIP
    ...               dicom_dir="out/dicom", deidentify=True).written
    [PosixPath('out/report.json'), PosixPath('out/report.pdf'), ...]
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
    if measurements is None:
        measurements = stored_measurements(study)
    measured = collect(study, [series for series, _ in results], measurements)
    if csv is not None and measured and measurements_csv_path(csv).exists() and not overwrite:
        raise OutputExistsError(f"{measurements_csv_path(csv)} already exists; choose another name or allow overwriting")

    from ich_viewer.report import tabular  # local imports keep `analyze --json` light

    result = ExportResult()
    if json is not None:
        result.json = tabular.write_json(json, study, results, decisions, overwrite, deidentify=deidentify,
                                         measurements=measurements)
        result.written.append(result.json)
    if csv is not None:
        result.csv = tabular.write_csv(csv, study, results, decisions, overwrite, deidentify=deidentify)
        result.written.append(result.csv)
        if measured:
            result.written.append(write_measurements_csv(measurements_csv_path(csv), study, measured, overwrite))
    if pdf is not None or dicom_dir is not None:
        content = build_report(study, results, decisions, deidentify=deidentify, overlay=overlay,
                               measurements=measurements)
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
            result.sr, result.key_images, result.kos, result.segs = dicom.sr, dicom.key_images, dicom.kos, dicom.segs
            result.written.extend(p for p in (dicom.sr, *dicom.segs, *dicom.key_images, dicom.kos) if p is not None)
    return result


def attention_overlay(loaded) -> OverlayFn:
    """Grad-CAM of the inference core as a report overlay (``loaded``: weights.LoadedModel)."""
    from ich_viewer.inference.gradcam import attention_map

    def overlay(series, index):
        return attention_map(loaded, series, index).heat

    return overlay


def export_from_analyze(args: AnalyzeOptions, study: Study, results: Results) -> list[Path]:
    """``ich-viewer analyze --report F.pdf --sr DIR``: the same export as the window's dialog.

    The attention overlay is added when the model loads again here; without it the
    report is still complete.
    """
    overlay = None
    if args.report:
        try:
            from ich_viewer.inference.weights import load_model

            overlay = attention_overlay(load_model(args.model_dir, device=args.device))
        except Exception:  # the overlay is an extra; the report stands without it
            log.warning("report without attention maps: the model could not be loaded again", exc_info=True)
            overlay = None
    result = export_report(
        study, results, pdf=args.report, dicom_dir=args.sr, overwrite=args.overwrite, deidentify=args.deidentify,
        overlay=overlay,
    )
    return result.written
