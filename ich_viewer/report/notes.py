"""What the loader and the classifier could not do, for every export to carry.

A report that lists flagged slices but not the 35 files that were skipped, the second
patient in the folder or the series refused for a broken HU scale lets a reader take
"nothing flagged" for "nothing there". So every export (console, JSON, CSV, PDF) gets
the same notes from here. File names are escaped where they are not valid UTF-8, and a
de-identified export has paths, names and descriptions taken out of the notes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import PurePath

from ich_viewer.dicom.model import Series, Study
from ich_viewer.dicom.sources import safe_text
from ich_viewer.report.rows import Results

REMOVED = "[removed]"


def _fs_round_trips(text: str) -> bool:
    try:
        os.fsencode(text)
        return True
    except UnicodeEncodeError:
        return False


def raw_bytes_hex(text: str) -> str | None:
    """The file name's bytes as hex when its text had to be escaped (so they are never lost)."""
    if safe_text(text) == text or not _fs_round_trips(text):
        return None
    return os.fsencode(text).hex()


@dataclass
class StudyNotes:
    warnings: list[str] = field(default_factory=list)
    """Study warnings, then each series' warnings and unreadable slices, labelled."""
    skipped: list[dict] = field(default_factory=list)
    """{"path", "reason"} for each file left out (path blank when de-identified)."""
    not_analysed: list[dict] = field(default_factory=list)
    """{"series_uid", "series_number", "description", "reason"} for image series without results."""

    def lines(self) -> list[str]:
        """Everything as sentences, for the console and the PDF."""
        out = [f"warning: {w}" for w in self.warnings]
        out += [f"series {_series_name(n['series_number'], n['description'])} not analysed: {n['reason']}"
                for n in self.not_analysed]
        out += [f"skipped {s['path'] or '(file)'}: {s['reason']}" for s in self.skipped]
        return out


def _series_name(number: int | None, description: str) -> str:
    label = f"{number}" if number is not None else "-"
    return f"{label} {description!r}" if description else label


def series_label(series: Series, deidentify: bool = False) -> str:
    return _series_name(series.series_number, "" if deidentify else series.description)


class _Scrubber:
    """Takes paths, names and descriptions out of free text for a de-identified export."""

    def __init__(self, study: Study, active: bool) -> None:
        self.active = active
        words: set[str] = set()
        if active:
            folders = {str(PurePath(h.path.split("!/")[0]).parent) for s in study.series for h in s.slices}
            folders |= {str(PurePath(f.path.split("!/")[0]).parent) for f in study.skipped}
            words |= {f for f in folders if f not in ("", ".", "/")}
            words |= {study.source, study.patient_name, study.patient_id, study.study_description,
                      study.accession_number, study.institution}
            words |= {s.description for s in study.series}
            words |= {part for part in study.patient_name.split() if len(part) > 2}
        self.words = sorted((w for w in words if w and len(w.strip()) > 1), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = safe_text(text)
        for word in self.words:
            text = text.replace(safe_text(word), REMOVED)
        return text


def study_notes(study: Study, results: Results, *, deidentify: bool = False) -> StudyNotes:
    """The notes of ``study`` and of the predictions made on it."""
    scrub = _Scrubber(study, deidentify)
    notes = StudyNotes()
    notes.warnings += [scrub(w) for w in study.warnings]
    predicted = {series.series_uid: prediction for series, prediction in results}
    for series in study.series:
        name = series_label(series, deidentify)
        notes.warnings += [f"series {name}: {scrub(w)}" for w in series.warnings]
        prediction = predicted.get(series.series_uid)
        if prediction is not None:
            notes.warnings += [f"series {name} slice {index + 1}: {scrub(reason)}"
                               for index, reason in sorted(prediction.errors.items())]
        elif not series.is_localizer:
            notes.not_analysed.append({
                "series_uid": series.series_uid,
                "series_number": series.series_number,
                "description": "" if deidentify else safe_text(series.description),
                "reason": scrub(_why_not(series)),
            })
    for skipped in study.skipped:
        entry = {"path": "" if deidentify else safe_text(skipped.path), "reason": scrub(skipped.reason)}
        raw = None if deidentify else raw_bytes_hex(skipped.path)
        if raw is not None:
            entry["path_bytes_hex"] = raw  # the escaped text alone could not give the name back
        notes.skipped.append(entry)
    return notes


def series_notes(series: Series, errors: dict[int, str], study: Study, *, deidentify: bool = False) -> list[str]:
    """The warnings of one series (and its unreadable slices) for its block in the JSON."""
    scrub = _Scrubber(study, deidentify)
    return [scrub(w) for w in series.warnings] + [f"slice {i + 1}: {scrub(r)}" for i, r in sorted(errors.items())]


def _why_not(series: Series) -> str:
    if series.refusal:
        return series.refusal
    if series.modality and series.modality.upper() != "CT":
        return f"modality {series.modality}, not CT"
    return "no slice could be analysed (see the warnings)"
