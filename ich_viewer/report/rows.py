"""One record per slice: the common content of the CSV, the JSON, the PDF table and the SR."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

from ich_viewer import LABELS
from ich_viewer.dicom.model import Series, Study
from ich_viewer.dicom.sources import safe_text
from ich_viewer.inference.results import ModelInfo, SeriesPrediction, SlicePrediction
from ich_viewer.report.decisions import UNDECIDED, Decision, StudyDecisions, slice_key

Results = Sequence[tuple[Series, SeriesPrediction]]
"""What analyze and the window hand to every writer: each series with its predictions."""

ROW_FIELDS: tuple[str, ...] = (
    "series_uid", "index", "instance_number", "file", "sop_instance_uid", "location_mm",
    *LABELS, "flagged", "decision", "note",
)
"""CSV column order; the JSON rows use the same names (probabilities nested by label)."""


@dataclass(frozen=True)
class SliceRow:
    series_uid: str
    index: int
    instance_number: int | None
    file: str
    sop_instance_uid: str
    location_mm: float | None
    probabilities: dict[str, float]
    flagged: tuple[str, ...]
    decision: str
    """"accepted", "rejected" or "undecided" for a reviewed or flagged slice, else ""."""
    note: str
    scored: bool = True
    """False for a slice without brain: its probabilities are written empty (null), never as 0."""

    def to_json(self) -> dict:
        return {
            "series_uid": self.series_uid,
            "index": self.index,
            "instance_number": self.instance_number,
            "file": self.file,
            "sop_instance_uid": self.sop_instance_uid,
            "location_mm": self.location_mm,
            "probabilities": ({label: self.probabilities[label] for label in LABELS} if self.scored else None),
            "flagged": list(self.flagged),
            "decision": self.decision,
            "note": self.note,
        }

    def to_csv(self) -> dict[str, str]:
        values: dict[str, object] = {
            "series_uid": self.series_uid,
            "index": self.index,
            "instance_number": "" if self.instance_number is None else self.instance_number,
            "file": self.file,
            "sop_instance_uid": self.sop_instance_uid,
            "location_mm": "" if self.location_mm is None else format_mm(self.location_mm),
            **{label: format_probability(self.probabilities[label]) if self.scored else "" for label in LABELS},
            "flagged": ";".join(self.flagged),
            "decision": self.decision,
            "note": self.note,
        }
        return {key: str(value) for key, value in values.items()}


def format_probability(value: float) -> str:
    """Six decimals: enough to reproduce a threshold comparison, short enough to read."""
    return f"{value:.6f}"


def format_mm(value: float) -> str:
    return f"{value:.2f}"


def slice_location_mm(series: Series, index: int) -> float | None:
    """Position along the slice normal (what the viewer shows), else the SliceLocation tag."""
    if len(series.positions_mm) == len(series.slices):
        return round(float(series.positions_mm[index]), 3)
    location = series.slices[index].slice_location
    return None if location is None else round(float(location), 3)


def build_rows(
    results: Results, decisions: StudyDecisions | None = None, *, deidentify: bool = False
) -> list[SliceRow]:
    """Every predicted slice of every series, in series then display order.

    A de-identified export leaves out file paths (folder names often carry the patient's
    name); SOP Instance UIDs stay so each finding can be traced to its image.
    """
    rows: list[SliceRow] = []
    for series, prediction in results:
        series_decisions = (decisions or {}).get(series.series_uid, {})
        for pred in sorted(prediction.slices, key=lambda p: p.index):
            rows.append(_row(series, pred, series_decisions, deidentify))
    return rows


def _row(series: Series, pred: SlicePrediction, decisions: dict | object, deidentify: bool) -> SliceRow:
    header = series.slices[pred.index] if 0 <= pred.index < len(series.slices) else None
    key = slice_key(header) if header is not None else pred.sop_instance_uid
    decision: Decision | None = decisions.get(key)  # type: ignore[union-attr]
    if decision is not None:
        state, note = decision.state, decision.note
    else:
        state, note = (UNDECIDED if pred.flagged else ""), ""
    return SliceRow(
        series_uid=series.series_uid,
        index=pred.index,
        instance_number=header.instance_number if header is not None else None,
        file="" if deidentify else pred.file,
        sop_instance_uid=pred.sop_instance_uid,
        location_mm=slice_location_mm(series, pred.index) if header is not None else None,
        probabilities={label: float(pred.probabilities[label]) for label in LABELS},
        flagged=tuple(pred.flagged),
        decision=state,
        note=note or pred.note,  # the reader's own words stay (clinical content); the dialog says so
        scored=pred.scored,
    )


def model_dict(model: ModelInfo) -> dict:
    return {
        "name": model.name,
        "version": model.version,
        "sha256": model.sha256,
        "architecture": model.architecture,
        "device": model.device,
        "thresholds": {label: float(model.thresholds[label]) for label in LABELS if label in model.thresholds},
    }


def study_dict(study: Study, *, deidentify: bool = False) -> dict:
    """The study block; de-identified, direct identifiers, dates and places are blanked."""
    def keep(value: str) -> str:
        return "" if deidentify else value

    return {
        "study_uid": study.study_uid,
        "patient_name": keep(study.patient_name),
        "patient_id": keep(study.patient_id),
        "patient_sex": study.patient_sex,
        "patient_age": deidentified_age(study.patient_age) if deidentify else study.patient_age,
        "study_date": keep(study.study_date),
        "accession_number": keep(study.accession_number),
        "institution": keep(study.institution),
        "study_description": keep(study.study_description),
        "source": keep(safe_text(study.source)),
        "deidentified": deidentify,
    }


def deidentified_age(age: str) -> str:
    """Ages above 89 years identify people on their own (HIPAA Safe Harbor): show "90Y+"."""
    text = age.strip().upper()
    if text.endswith("Y") and text[:-1].isdigit() and int(text[:-1]) > 89:
        return "90Y+"
    return age


def decision_counts(rows: Iterable[SliceRow]) -> dict[str, int]:
    """Review progress over flagged slices (the summary line of every report)."""
    flagged = [r for r in rows if r.flagged]
    counts = {"flagged": len(flagged), "accepted": 0, "rejected": 0, "undecided": 0}
    for row in flagged:
        counts[row.decision or UNDECIDED] += 1
    counts["reviewed"] = counts["accepted"] + counts["rejected"]
    return counts


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
