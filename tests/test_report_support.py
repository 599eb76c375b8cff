"""Builders shared by the report tests: a small in-memory study and hand-made predictions.

The predictions are written by hand to exercise the writers; they say nothing about how
accurate the classifier is.
"""
from __future__ import annotations

import numpy as np

from ich_viewer import LABELS
from ich_viewer.dicom.model import Series, Study
from ich_viewer.inference.results import ModelInfo, SeriesPrediction, SlicePrediction, flagged_labels

PATIENT_NAME = "Zyxwv^Quentin"
PATIENT_ID = "PID-778899"
THRESHOLDS = {label: 0.5 for label in LABELS}
MODEL = ModelInfo(name="ich-test-net", version="0.0-test", sha256="ab" * 32, device="cpu",
                  thresholds=THRESHOLDS, architecture="tiny")


def make_study(n_slices: int = 8, size: int = 64, source: str = "") -> tuple[Study, Series]:
    volume = np.full((n_slices, size, size), -1000.0, dtype=np.float32)
    yy, xx = np.mgrid[:size, :size]
    head = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size * 0.4) ** 2
    volume[:, head] = 35.0
    series = Series.from_array(volume, series_uid="1.2.826.0.1.3680043.8.498.77", description="Head 5mm")
    series.study_uid = "1.2.826.0.1.3680043.8.498.76"
    study = Study(source=source, series=[series], patient_name=PATIENT_NAME, patient_id=PATIENT_ID,
                  patient_sex="F", patient_age="093Y", study_date="20260301", accession_number="ACC4455",
                  institution="Test Hospital", study_uid=series.study_uid, study_description="CT head")
    return study, series


def make_prediction(series: Series, flagged_at: dict[int, tuple[str, ...]]) -> SeriesPrediction:
    """Low probabilities everywhere except the given slices, where the named subtypes (and any) are high."""
    slices = []
    for i, header in enumerate(series.slices):
        probs = {label: round(0.02 + 0.001 * i + 0.0001 * k, 6) for k, label in enumerate(LABELS)}
        for label in flagged_at.get(i, ()):
            probs[label] = round(0.7 + 0.01 * i, 6)
        if flagged_at.get(i):
            probs["any"] = max(probs[label] for label in LABELS[:-1]) + 0.01
        slices.append(SlicePrediction(index=i, sop_instance_uid=header.sop_instance_uid, file=header.path,
                                      probabilities=probs, flagged=flagged_labels(probs, THRESHOLDS)))
    return SeriesPrediction(series_uid=series.series_uid, model=MODEL, slices=slices,
                            started_at="2026-11-22T10:00:00+00:00", finished_at="2026-11-22T10:00:02+00:00")
