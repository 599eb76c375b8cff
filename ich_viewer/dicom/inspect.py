"""``ich-viewer inspect PATH [--json]``: what the loader found, without opening a window."""
from __future__ import annotations

import json
import sys
from typing import Any

from ich_viewer.dicom.model import Series, Study
from ich_viewer.dicom.pixels import syntax_label
from ich_viewer.options import InspectOptions
from ich_viewer.dicom.sources import safe_text


def series_summary(series: Series) -> dict[str, Any]:
    first = series.slices[0]
    syntaxes = sorted({h.transfer_syntax_uid for h in series.slices})
    return {
        "series_uid": series.series_uid,
        "series_number": series.series_number,
        "description": series.description,
        "modality": series.modality,
        "is_localizer": series.is_localizer,
        "n_slices": series.n_slices,
        "rows": first.rows,
        "columns": first.columns,
        "pixel_spacing_mm": list(series.pixel_spacing),
        "slice_thickness_mm": first.slice_thickness,
        "spacing_mm": _round(series.spacing_mm),
        "gantry_tilt_deg": series.gantry_tilt_deg,
        "transfer_syntaxes": [{"uid": uid, "name": syntax_label(uid)} for uid in syntaxes],
        "files": [h.path if h.frame is None else f"{h.path}#frame={h.frame + 1}" for h in series.slices],
        "positions_mm": [_round(p) for p in series.positions_mm],
        "warnings": list(series.warnings),
        "not_analysed_reason": series.refusal,
    }


def study_summary(study: Study) -> dict[str, Any]:
    """The JSON of ``ich-viewer inspect --json``."""
    return {
        "source": study.source,
        "study_uid": study.study_uid,
        "patient_name": study.patient_name,
        "patient_id": study.patient_id,
        "study_date": study.study_date,
        "study_description": study.study_description,
        "n_series": len(study.series),
        "n_images": sum(s.n_slices for s in study.series),
        "series": [series_summary(s) for s in study.series],
        "warnings": list(study.warnings),
        "skipped": [{"path": f.path, "reason": f.reason} for f in study.skipped],
    }


def _printable(value: Any) -> Any:
    """The summary with every text escaped where a file name is not valid UTF-8."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_printable(item) for item in value]
    return value


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def format_text(summary: dict[str, Any]) -> str:
    lines = [f"{summary['source']}: {summary['n_series']} series, {summary['n_images']} images"]
    if summary["patient_name"] or summary["study_date"]:
        lines.append(f"  patient {summary['patient_name'] or '?'}  study date {summary['study_date'] or '?'}")
    for k, s in enumerate(summary["series"], 1):
        kind = " (localizer)" if s["is_localizer"] else ""
        number = f"#{s['series_number']} " if s["series_number"] is not None else ""
        lines.append("")
        lines.append(f"[{k}] {number}{s['description'] or '(no description)'}{kind}  {s['modality']}")
        spacing = f"{s['spacing_mm']} mm" if s["spacing_mm"] is not None else "n/a"
        lines.append(
            f"    {s['n_slices']} slice{'s' if s['n_slices'] != 1 else ''} {s['rows']}x{s['columns']}, spacing {spacing}, "
            f"tilt {s['gantry_tilt_deg']} deg, {', '.join(t['name'] for t in s['transfer_syntaxes'])}"
        )
        if s["positions_mm"]:
            lines.append(f"    positions {s['positions_mm'][0]} .. {s['positions_mm'][-1]} mm")
        lines.append(f"    uid {s['series_uid']}")
        lines.append(f"    first file {s['files'][0]}")
        lines.extend(f"    warning: {w}" for w in s["warnings"])
    if summary["warnings"]:
        lines.append("")
        lines.extend(f"warning: {w}" for w in summary["warnings"])
    if summary["skipped"]:
        lines.append("")
        lines.append(f"{len(summary['skipped'])} file(s) skipped:")
        lines.extend(f"  {f['path']}: {f['reason']}" for f in summary["skipped"])
    return "\n".join(lines)


def run_inspect(args: InspectOptions) -> int:
    """``ich-viewer inspect PATH [--json]``: print what the loader found.

    Parameters
    ----------
    args
        ``InspectOptions``: the path, and ``json`` for a JSON document instead of text.

    Returns
    -------
    int
        0 when at least one image series was found, 1 when nothing readable, 2 for a
        path that does not exist or cannot be read (the reason goes to stderr).

    Example
    -------
    >>> run_inspect(InspectOptions(path="/data/head-ct", json=True))  # doctest: +SKIP
    0
    """
    from ich_viewer.dicom.loader import load_study

    try:
        study = load_study(args.path)
    except FileNotFoundError as exc:
        print(f"ich-viewer inspect: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ich-viewer inspect: cannot read {args.path}: {exc}", file=sys.stderr)
        return 2
    summary = _printable(study_summary(study))
    if args.json:
        print(json.dumps(summary, indent=2, allow_nan=False))
    else:
        print(format_text(summary))
    if not study.series:
        print(
            f"ich-viewer inspect: no readable DICOM images under {args.path} "
            f"({len(study.skipped)} file(s) skipped, see the list)",
            file=sys.stderr,
        )
        return 1
    return 0
