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


def phantom_study(folder, *, n_slices: int = 12, matrix: int = 64, subtypes=("subdural",), seed: int = 3):
    """A phantom series written to ``folder`` and read back header by header (the loader's job,
    done here with plain pydicom so these tests depend only on the phantom writer)."""
    from pathlib import Path

    import pydicom

    from ich_viewer.dicom.model import SliceHeader
    from ich_viewer.phantom import generate_phantom
    from ich_viewer.phantom.writer import StudyInfo, write_series

    phantom = generate_phantom(seed=seed, subtypes=list(subtypes), n_slices=n_slices, matrix=matrix)
    info = StudyInfo(patient_name=PATIENT_NAME, patient_id=PATIENT_ID, accession_number="ACC4455",
                     institution="Test Hospital", study_date="20250301")
    paths = write_series(phantom.volume_hu, Path(folder), spacing_mm=phantom.spacing_mm,
                         pixel_spacing=phantom.pixel_spacing, study=info)
    headers, volume = [], []
    for path in paths:
        ds = pydicom.dcmread(path)
        volume.append(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
        del ds.PixelData
        headers.append(SliceHeader(
            path=str(path), sop_instance_uid=ds.SOPInstanceUID, instance_number=int(ds.InstanceNumber),
            position=tuple(float(v) for v in ds.ImagePositionPatient),
            orientation=tuple(float(v) for v in ds.ImageOrientationPatient), rows=ds.Rows, columns=ds.Columns,
            pixel_spacing=tuple(float(v) for v in ds.PixelSpacing), dataset=ds,
        ))
    order = sorted(range(len(headers)), key=lambda i: headers[i].position[2])
    headers = [headers[i] for i in order]
    stack = np.stack([volume[i] for i in order]).astype(np.float32)
    lookup = {h.path: i for i, h in enumerate(headers)}
    series = Series(series_uid=headers[0].dataset.SeriesInstanceUID, slices=headers,
                    pixel_source=lambda h: stack[lookup[h.path]], description="Head 5mm", modality="CT",
                    study_uid=info.study_uid, series_number=1,
                    positions_mm=[h.position[2] for h in headers], spacing_mm=phantom.spacing_mm)
    study = Study(source=str(folder), series=[series], patient_name=PATIENT_NAME, patient_id=PATIENT_ID,
                  patient_sex="O", patient_age="050Y", study_date=info.study_date, accession_number="ACC4455",
                  institution="Test Hospital", study_uid=info.study_uid, study_description=info.study_description)
    flagged = {i: tuple(LABELS[k] for k in range(5) if phantom.labels[i, k]) for i in range(n_slices)}
    return study, series, {i: v for i, v in flagged.items() if v}
