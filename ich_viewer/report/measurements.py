"""The reader's measurements, kept in the program's data folder beside the review decisions.

One JSON file per study (``<data_dir>/measurements/<study>.json``) holding each series'
records (``measure.records.Measurement``). Written atomically on every change, read
once per study; a damaged file is set aside, never lost. Nothing goes into the study folder.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime
from pathlib import Path

from ich_viewer import paths
from ich_viewer.measure.records import Measurement
from ich_viewer.report.atomic import ExportError, atomic_write_bytes
from ich_viewer.report.review import study_key

log = logging.getLogger(__name__)

FILE_VERSION = 1
_UID_RE = re.compile(r"^[0-9][0-9.]{0,63}$")


def measurements_dir() -> Path:
    return paths.data_dir() / "measurements"


class MeasurementStore:
    """Measurements per study and series."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = Path(folder) if folder is not None else None
        self._studies: dict[str, dict[str, list[Measurement]]] = {}
        self.warnings: list[str] = []

    @property
    def folder(self) -> Path:
        return self._folder if self._folder is not None else measurements_dir()

    def file_for(self, study: str) -> Path:
        name = study if _UID_RE.match(study) else "sha1-" + hashlib.sha1(study.encode()).hexdigest()
        return self.folder / f"{name}.json"

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

    def forget_cache(self) -> None:
        self._studies.clear()

    def _load(self, study: str) -> dict[str, list[Measurement]]:
        if study in self._studies:
            return self._studies[study]
        path = self.file_for(study)
        loaded: dict[str, list[Measurement]] = {}
        if path.exists():
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                if document.get("study") != study:
                    raise ValueError(f"it belongs to study {document.get('study')!r}")
                for series_uid, items in document.get("series", {}).items():
                    loaded[series_uid] = [Measurement.from_dict(item) for item in items]
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                aside = path.with_name(path.name + f".damaged-{datetime.now():%Y%m%d-%H%M%S}")
                message = f"measurements in {path} could not be read ({exc}); kept as {aside.name}, starting empty"
                try:
                    path.rename(aside)
                except OSError:
                    message = f"measurements in {path} could not be read ({exc}); starting empty"
                log.warning(message)
                self.warnings.append(message)
                loaded = {}
        self._studies[study] = loaded
        return loaded

    def _save(self, study: str, data: dict[str, list[Measurement]]) -> None:
        document = {"format_version": FILE_VERSION, "study": study,
                    "series": {uid: [m.to_dict() for m in items] for uid, items in data.items() if items}}
        payload = (json.dumps(document, indent=1, ensure_ascii=False, allow_nan=True) + "\n").encode("utf-8")
        try:
            atomic_write_bytes(self.file_for(study), payload, overwrite=True)
        except ExportError as exc:
            raise ExportError(f"measurement not saved: {exc}") from exc


def stored_measurements(study) -> dict[str, list[Measurement]]:
    """The measurements saved for a loaded ``Study`` (series UID -> records), for exports."""
    key = study_key(study.study_uid, study.source)
    return MeasurementStore().study_measurements(key) if key else {}
