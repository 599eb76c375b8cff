"""RSNA 2019 Intracranial Hemorrhage Detection, as Kaggle publishes it.

``stage_2_train.csv`` holds rows ``ID_<sop>_<label>,<0|1>``; the DICOM files (any names,
any folder depth) are read with the project's own loader, which groups them into series
from the headers, orders them along the slice normal and decodes HU (including the
wrapped 12-bit values some RSNA files hold). Neighbours are therefore real neighbours.
Slices without a label row are kept as neighbours but are not samples (label 255).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ich_viewer import LABELS
from ich_viewer.inference.preprocess import series_thickness
from trainer.data.ctich import DatasetError
from trainer.data.volume import Volume

UNLABELLED = 255


def read_rsna_labels(csv_path: str | Path) -> dict[str, list[int]]:
    """SOP instance UID (the ``ID_...`` part) -> six labels in LABELS order."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path} not found (expected stage_2_train.csv)")
    table: dict[str, list[int]] = {}
    with csv_path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or [h.strip() for h in header[:2]] != ["ID", "Label"]:
            raise DatasetError(f"{csv_path}: first row must be 'ID,Label', found {header}")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            sop, _, label = row[0].rpartition("_")
            if label not in LABELS or not sop:
                raise DatasetError(f"{csv_path}:{line_no}: cannot read ID {row[0]!r}")
            sop = sop[3:] if sop.startswith("ID_") else sop
            table.setdefault(sop, [UNLABELLED] * len(LABELS))[LABELS.index(label)] = int(float(row[1]))
    return {sop: values for sop, values in table.items() if UNLABELLED not in values}


def _patient_of(series) -> str:
    for header in series.slices:  # (the loader keeps no data set for most files: read again on demand)
        dataset = header.full_dataset()
        patient = getattr(dataset, "PatientID", "") if dataset is not None else ""
        if patient:
            return str(patient)
    return series.study_uid or series.series_uid


def read_rsna(csv_path: str | Path, dicom_dir: str | Path, progress=None) -> list[Volume]:
    """One volume per series that has at least one labelled slice, grouped by patient."""
    from ich_viewer.dicom.loader import load_study

    labels = read_rsna_labels(csv_path)
    study = load_study(Path(dicom_dir), progress=progress)
    volumes = labelled_volumes(study.series, labels)
    if not volumes:
        raise DatasetError(f"no DICOM slice under {dicom_dir} has a label in {csv_path}")
    return volumes


def labelled_volumes(series_list, labels: dict[str, list[int]], source: str = "rsna") -> list[Volume]:
    """One volume per loaded series with at least one labelled slice (``labels``: SOP UID -> six)."""
    volumes = []
    for series in series_list:
        if series.is_localizer:
            continue
        rows = [labels.get(uid_key(h.sop_instance_uid), [UNLABELLED] * len(LABELS)) for h in series.slices]
        if all(row[0] == UNLABELLED for row in rows):
            continue
        volumes.append(
            Volume(
                group=f"{source}:{_patient_of(series)}",
                source=source,
                names=[h.sop_instance_uid for h in series.slices],
                labels=np.array(rows, dtype=np.uint8),
                load_hu=_loader(series),
                spacing_mm=series.spacing_mm,
                thickness_mm=series_thickness(series),
                notes=list(series.warnings),
            )
        )
    return volumes


def uid_key(uid: str) -> str:
    """The label-table key of a SOP instance UID: RSNA writes its UIDs as ID_<hex>, its CSV without ID_."""
    return uid[3:] if uid.startswith("ID_") else uid


def _loader(series):
    def load() -> list[np.ndarray | None]:
        slices: list[np.ndarray | None] = []
        for i in range(len(series)):
            try:
                slices.append(series.hu(i))
            except Exception:  # an undecodable slice becomes a missing neighbour
                slices.append(None)
        return slices

    return load
