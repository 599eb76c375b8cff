"""``ich-viewer analyze PATH``: the classifier without a window, same code path as the window.

Exit codes: 0 success; 1 nothing could be analysed (no readable image series);
2 no usable model / device, unreadable input or an output that cannot be written;
3 results written but ``--report``/``--sr`` could not be produced.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from ich_viewer import RESEARCH_NOTICE
from ich_viewer.dicom.model import Series
from ich_viewer.inference.device import DeviceError, describe_device
from ich_viewer.inference.predict import PredictState, not_analysable, predict_series
from ich_viewer.inference.results import SeriesPrediction
from ich_viewer.inference.weights import LoadedModel, ModelLoadError, load_model
from ich_viewer.options import AnalyzeOptions

EXIT_OK, EXIT_NOTHING, EXIT_INPUT, EXIT_DOCUMENTS = 0, 1, 2, 3


def _say(text: str, stream: TextIO | None = None) -> None:
    from ich_viewer.dicom.sources import safe_text  # a non-UTF-8 file name must not crash the console

    print(safe_text(text), file=stream or sys.stdout, flush=True)


def _fail(text: str) -> None:
    _say(f"ich-viewer analyze: {text}", sys.stderr)


def analyze_study(study, loaded: LoadedModel, *, batch_size: int = 16, log: TextIO | None = None) -> list[tuple]:
    """(Series, SeriesPrediction) for every image series with at least one readable slice.

    Parameters
    ----------
    study
        A ``Study`` from ``dicom.loader.load_study``.
    loaded
        The model (``inference.weights.load_model``).
    batch_size
        Slices per forward pass.
    log
        Where skipped series and unreadable slices are reported (default: stderr).

    Returns
    -------
    list of (Series, SeriesPrediction)
        In study order; localizers and non-CT series are left out (reported to ``log``).

    Raises
    ------
    RuntimeError
        From torch; unreadable slices never raise.

    Example
    -------
    >>> results = analyze_study(load_study(path), load_model(None, "cpu"))  # doctest: +SKIP
    >>> export_report(study, results, pdf="report.pdf")                    # doctest: +SKIP
    """
    results: list[tuple] = []
    for series in study.image_series:
        reason = not_analysable(series)
        if reason:
            _say(f"  skipped series {series.series_number or ''} {series.description!r}: {reason}", log or sys.stderr)
            continue
        state = PredictState(loaded, batch_size=batch_size)
        prediction = predict_series(series, state)
        for index, reason in sorted(state.errors.items()):
            _say(f"  warning: series {series.series_number or ''} {series.description!r} slice {index}: {reason}",
                 log or sys.stderr)
        if prediction.slices:
            results.append((series, prediction))
    return results


def summary_lines(results: list[tuple[Series, SeriesPrediction]], device_text: str,
                  untrained: bool = False) -> list[str]:
    """What the terminal shows: model, device and per series the suspected subtypes."""
    lines = ["WARNING: untrained test weights - these predictions mean nothing."] if untrained else []
    if results:
        info = results[0][1].model
        lines.append(f"Model {info.name} {info.version} (sha256 {info.sha256[:12]}) on {device_text}")
    for series, prediction in results:
        flagged = prediction.flagged_slices
        suspected = [label for label in prediction.suspected_labels() if label != "any"]
        what = ", ".join(suspected) if suspected else ("hemorrhage (no subtype)" if flagged else "none")
        lines.append(f"Series {series.series_number if series.series_number is not None else '-'} "
                     f"{series.description!r}: {len(prediction.slices)}/{len(series)} slices analysed, "
                     f"{len(flagged)} flagged; suspected: {what}")
    lines.append(RESEARCH_NOTICE)
    return lines


def _check_outputs(args: AnalyzeOptions, study) -> str | None:
    """Refuse early (before minutes of inference) an output that will not be writable.

    Every destination gets the same checks: not inside any folder the study's images came
    from, no silent overwrite, and an existing folder to write into (``--sr DIR`` itself
    may be new; its parent must exist).
    """
    from ich_viewer.report.atomic import ExportError
    from ich_viewer.report.destination import check_outside_study

    overwrite = args.overwrite
    targets = [(t, "file") for t in (args.json_out, args.csv_out, args.report) if t]
    if args.sr:
        targets.append((args.sr, "folder"))
    for target, kind in targets:
        path = Path(target)
        try:
            check_outside_study(path, study)
        except ExportError as exc:
            return str(exc)
        if kind == "file":
            if path.is_dir():
                return f"cannot write {path}: it is a folder"
            if path.exists() and not overwrite:
                return f"{path} already exists; choose another name or pass --overwrite"
        elif path.exists() and not path.is_dir():
            return f"{path} is a file, not a folder for the DICOM objects"
        if not path.parent.is_dir():
            return f"cannot write {path}: the folder {path.parent} does not exist"
    return None


def write_documents(args: AnalyzeOptions, study, results: list[tuple]) -> int:
    """``--report F.pdf`` / ``--sr DIR`` through the window's export (``report.export``)."""
    if not (args.report or args.sr):
        return EXIT_OK
    from ich_viewer.report.atomic import ExportError
    from ich_viewer.report.export import export_from_analyze

    try:
        for written in export_from_analyze(args, study, results):
            _say(f"wrote {written}")
    except ExportError as exc:
        _fail(str(exc))
        return EXIT_DOCUMENTS
    return EXIT_OK


def run_analyze(args: AnalyzeOptions) -> int:
    """``ich-viewer analyze``: load the model and the study, classify, write what was asked.

    Parameters
    ----------
    args
        ``AnalyzeOptions`` (from the command line, or built directly in a script).

    Returns
    -------
    int
        The exit code: 0 success, 1 nothing to analyse, 2 no model / bad input / an
        output that cannot be written (checked before inference starts), 3 results
        written but the PDF or DICOM export failed. Errors are printed, never raised.

    Example
    -------
    >>> run_analyze(AnalyzeOptions(path="/data/ct", json_out="r.json", device="cpu"))  # doctest: +SKIP
    0
    """
    try:
        loaded = load_model(args.model_dir, device=args.device)
    except (ModelLoadError, DeviceError) as exc:
        _fail(f"no predictions: {exc}")
        return EXIT_INPUT
    device_text = describe_device(loaded.device)

    from ich_viewer.dicom.loader import load_study

    path = Path(args.path)
    if not path.exists():
        _fail(f"{path} does not exist")
        return EXIT_INPUT
    try:
        study = load_study(path)
    except Exception as exc:  # the loader's message is the useful part
        _fail(f"cannot read {path}: {exc}")
        return EXIT_INPUT
    problem = _check_outputs(args, study)
    if problem:
        _fail(problem)
        return EXIT_INPUT
    if not study.image_series:
        skipped = len(study.skipped)
        _fail(f"nothing to analyse in {path}: no image series found"
              + (f" ({skipped} file(s) skipped; see `ich-viewer inspect`)" if skipped else ""))
        return EXIT_NOTHING

    from ich_viewer.inference.guards import NonFiniteOutputError
    from ich_viewer.report.atomic import ExportError
    from ich_viewer.report.notes import study_notes
    from ich_viewer.report.tabular import write_csv, write_json

    try:
        results = analyze_study(study, loaded)
    except NonFiniteOutputError as exc:
        _fail(f"no predictions: {exc}")
        return EXIT_INPUT
    overwrite = args.overwrite
    deidentify = args.deidentify
    notes = study_notes(study, results, deidentify=deidentify).lines()
    if not results:
        _fail(f"nothing could be analysed in {path}:")
        for line in notes:
            _say(f"  {line}", sys.stderr)
        if args.json_out:  # a pipeline reading the JSON learns why instead of finding no file
            try:
                _say(f"wrote {write_json(args.json_out, study, results, overwrite=overwrite, deidentify=deidentify)}"
                     " (no results; it says why)")
            except ExportError as exc:
                _fail(str(exc))
        return EXIT_NOTHING

    try:
        if args.json_out:
            _say(f"wrote {write_json(args.json_out, study, results, overwrite=overwrite, deidentify=deidentify)}")
        if args.csv_out:
            _say(f"wrote {write_csv(args.csv_out, study, results, overwrite=overwrite, deidentify=deidentify)}")
    except ExportError as exc:
        _fail(str(exc))
        return EXIT_INPUT
    for line in summary_lines(results, device_text, untrained=bool(loaded.card.get("untrained"))):
        _say(line)
    if notes:
        _say(f"{len(notes)} warning(s), series not analysed or files left out:")
        for line in notes:
            _say(f"  {line}")
    return write_documents(args, study, results)
