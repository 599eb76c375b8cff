"""What a flagged-slice report says, as plain data (no layout, no Qt).

The PDF lays this out; the SR and the key-image writers read the same flagged rows, so
every export tells the same story: the study, the model, the summary, the table of
flagged slices with the reader's decisions, and the key images.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ich_viewer import LABELS, RESEARCH_NOTICE, __version__
from ich_viewer.demo import source_notes
from ich_viewer.dicom.model import Series, Study
from ich_viewer.imaging.palette import SHORT_NAMES
from ich_viewer.inference.results import ModelInfo, SeriesPrediction
from ich_viewer.measure.records import Measurement
from ich_viewer.report.decisions import REJECTED, StudyDecisions
from ich_viewer.report.key_images import OverlayFn, render_key_image
from ich_viewer.report.measure_export import collect
from ich_viewer.report.notes import study_notes
from ich_viewer.report.rows import Results, SliceRow, build_rows, decision_counts, study_dict, utc_now_iso

LABEL_ABBREVIATIONS: dict[str, str] = SHORT_NAMES
"""The window's abbreviations (EDH ... SDH, ICH for "any"), so report and screen agree."""

KEY_IMAGE_PIXELS = 512
"""Longest side of a rendered key image: sharp at 70 mm on paper (~190 dpi), small as DICOM."""

MAX_KEY_IMAGES_PER_SERIES = 40
"""More than this is a print-out nobody reads; the table still lists every flagged slice."""


@dataclass(frozen=True)
class KeyImage:
    """One flagged slice to show in the report and to export as a key image."""

    series: Series
    row: SliceRow

    @property
    def index(self) -> int:
        return self.row.index


@dataclass
class SeriesSection:
    series: Series
    prediction: SeriesPrediction
    rows: list[SliceRow]
    """Every predicted slice (display order)."""
    flagged_rows: list[SliceRow]
    key_images: list[KeyImage]
    key_images_left_out: int
    counts: dict[str, int]
    """flagged / accepted / rejected / undecided / reviewed."""

    @property
    def model(self) -> ModelInfo:
        return self.prediction.model

    @property
    def suspected(self) -> list[str]:
        """Subtypes flagged on a slice the reader has not rejected, in ``LABELS`` order."""
        found = {label for row in self.flagged_rows if row.decision != REJECTED for label in row.flagged}
        return [label for label in LABELS if label in found]

    @property
    def flagged_by_model(self) -> list[str]:
        return self.prediction.suspected_labels()


@dataclass
class ReportContent:
    study: dict
    """``rows.study_dict`` (blanked when de-identified)."""
    sections: list[SeriesSection]
    generated_at: str
    notice: str = RESEARCH_NOTICE
    software: str = f"ICH Viewer {__version__}"
    deidentified: bool = False
    overlay: OverlayFn | None = None
    warnings: list[str] = field(default_factory=list)
    source_notes: list[str] = field(default_factory=list)
    """Where the images come from, when that must be said (the bundled demo's credit and training note)."""
    measurements: list = field(default_factory=list)
    """The reader's measurements of the reported series (``measure.records.Measurement``)."""
    volume_masks: dict = field(default_factory=dict, repr=False)
    """Grown masks by measurement id, when the caller has them (else exports regrow them)."""

    _pictures: dict = field(default_factory=dict, repr=False)

    @property
    def n_flagged(self) -> int:
        return sum(section.counts["flagged"] for section in self.sections)

    def key_picture(self, series: Series, index: int, window, flagged, *, attention: bool = False) -> np.ndarray:
        """A rendered key image, made once and shared by the PDF and the DICOM key images."""
        key = (series.series_uid, index, window.name, attention)
        if key not in self._pictures:
            self._pictures[key] = render_key_image(series, index, window, flagged, max_side=KEY_IMAGE_PIXELS,
                                                   overlay=self.overlay if attention else None)
        return self._pictures[key]


def build_report(
    study: Study,
    results: Results,
    decisions: StudyDecisions | None = None,
    *,
    deidentify: bool = False,
    overlay: OverlayFn | None = None,
    max_key_images: int = MAX_KEY_IMAGES_PER_SERIES,
    measurements: Mapping[str, Sequence[Measurement]] | None = None,
) -> ReportContent:
    """Collect the report content; key images are flagged slices the reader has not rejected."""
    sections = []
    for series, prediction in results:
        rows = build_rows([(series, prediction)], decisions, deidentify=deidentify)
        flagged = [row for row in rows if row.flagged]
        shown = [row for row in flagged if row.decision != REJECTED]
        sections.append(SeriesSection(
            series=series,
            prediction=prediction,
            rows=rows,
            flagged_rows=flagged,
            key_images=[KeyImage(series, row) for row in shown[:max_key_images]],
            key_images_left_out=max(0, len(shown) - max_key_images),
            counts=decision_counts(rows),
        ))
    return ReportContent(
        study=study_dict(study, deidentify=deidentify),
        sections=sections,
        generated_at=utc_now_iso(),
        deidentified=deidentify,
        overlay=overlay,
        warnings=study_notes(study, results, deidentify=deidentify).lines(),
        source_notes=source_notes(study),
        measurements=collect(study, [series for series, _ in results], measurements),
    )


def summary_lines(section: SeriesSection) -> list[str]:
    """The few sentences a reader sees first: what was flagged and how far review got."""
    counts = section.counts
    n = len(section.series.slices)
    analysed = len(section.prediction.slices)
    partial = [] if analysed >= n else [f"Incomplete: only {analysed} of {n} slices were analysed."]
    if not counts["flagged"]:
        return [f"No slice above any threshold ({analysed} of {n} slices analysed)." if partial
                else f"No slice above any threshold ({n} slices analysed).", *partial[1:]]
    suspected = [label for label in section.suspected if label != "any"]
    lines = []
    if suspected:
        lines.append("Suspected: " + ", ".join(suspected) + ".")
    elif section.suspected:
        lines.append("Suspected: hemorrhage (subtype not determined).")
    else:
        lines.append("All flags were rejected by the reader.")
    lines.append(f"Flagged: {counts['flagged']} of {n} slices.")
    lines.append(
        f"Reviewed: {counts['reviewed']} of {counts['flagged']} "
        f"(accepted {counts['accepted']}, rejected {counts['rejected']}, undecided {counts['undecided']})."
    )
    rejected_only = [label for label in section.flagged_by_model if label not in section.suspected and label != "any"]
    if rejected_only:
        lines.append("Flagged by the model but every such slice rejected: " + ", ".join(rejected_only) + ".")
    return lines + partial
