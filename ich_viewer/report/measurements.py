"""The reader's measurements, kept in the program's data folder beside the review decisions.

One JSON file per study (``<data_dir>/measurements/<study>.json``) holding each series'
records (``measure.records.Measurement``). Written atomically on every change, read
once per study; a damaged file is set aside, never lost. Nothing goes into the study folder.
"""
from __future__ import annotations

from typing import Any

from ich_viewer.measure.records import Measurement
from ich_viewer.report.review import study_key
from ich_viewer.report.study_files import StudyFileStore


class MeasurementStore(StudyFileStore[list[Measurement]]):
    """Measurements per study and series."""

    subfolder = "measurements"
    study_field = "study"
    what = "measurements"
    not_saved = "measurement not saved"
    allow_nan = True  # an empty ROI's statistics

    def series_measurements(self, study: str, series_uid: str) -> list[Measurement]:
        return list(self._load(study).get(series_uid, []))

    def study_measurements(self, study: str) -> dict[str, list[Measurement]]:
        return {uid: list(items) for uid, items in self._load(study).items()}

    def add(self, study: str, item: Measurement) -> None:
        data = self._load(study)
        data.setdefault(item.series_uid, []).append(item)
        self._save(study, data)

    def remove(self, study: str, series_uid: str, measurement_id: str) -> bool:
        data = self._load(study)
        items = data.get(series_uid, [])
        kept = [m for m in items if m.id != measurement_id]
        if len(kept) == len(items):
            return False
        data[series_uid] = kept
        self._save(study, data)
        return True

    def replace(self, study: str, item: Measurement) -> None:
        """Put ``item`` in place of the record with the same id (an edited volume)."""
        data = self._load(study)
        items = data.setdefault(item.series_uid, [])
        data[item.series_uid] = [item if m.id == item.id else m for m in items]
        if item not in data[item.series_uid]:
            data[item.series_uid].append(item)
        self._save(study, data)

    def _decode(self, items: Any) -> list[Measurement]:
        return [Measurement.from_dict(item) for item in items]

    def _encode(self, items: list[Measurement]) -> Any:
        return [m.to_dict() for m in items]


def stored_measurements(study) -> dict[str, list[Measurement]]:
    """The measurements saved for a loaded ``Study`` (series UID -> records), for exports."""
    key = study_key(study.study_uid, study.source)
    return MeasurementStore().study_measurements(key) if key else {}
