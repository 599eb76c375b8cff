"""One JSON file per study in the program's data folder: what the review decisions and the
measurements have in common.

Each store reads a study's file once and writes it atomically on every change, so a crash
loses at most the change being made. A file that cannot be read (damaged, or another study's)
is set aside beside itself with a ``.damaged-<time>`` suffix, never lost, and the store starts
empty for that study, saying so in ``warnings``. Nothing is ever written into a study folder.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from ich_viewer import paths
from ich_viewer.report.atomic import ExportError, atomic_write_bytes

log = logging.getLogger(__name__)

FILE_VERSION = 1
_UID_RE = re.compile(r"^[0-9][0-9.]{0,63}$")

Items = TypeVar("Items")
"""What a store keeps for one series (a list of records, a dict of decisions)."""


class StudyFileStore(Generic[Items]):
    """The file handling; a subclass says what its series hold and how they are written."""

    subfolder = ""
    """The store's folder under the data folder."""
    study_field = "study"
    """The document's key for the study it belongs to (each store's files keep their format)."""
    what = ""
    """What the file holds, for messages ("measurements", "review decisions")."""
    not_saved = ""
    """The start of the error when a change cannot be written."""
    allow_nan = False

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = Path(folder) if folder is not None else None
        self._studies: dict[str, dict[str, Items]] = {}
        self.warnings: list[str] = []
        """Problems met while reading (a damaged file is set aside, not lost)."""

    @property
    def folder(self) -> Path:
        return self._folder if self._folder is not None else paths.data_dir() / self.subfolder

    def file_for(self, study: str) -> Path:
        """UIDs are safe file names; anything else is hashed so no path can be built from it."""
        name = study if _UID_RE.match(study) else "sha1-" + hashlib.sha1(study.encode()).hexdigest()
        return self.folder / f"{name}.json"

    def forget_cache(self) -> None:
        """Re-read from disk next time (another window may have changed the files)."""
        self._studies.clear()

    def _decode(self, items: Any) -> Items:
        """One series' items as the file holds them, read back."""
        raise NotImplementedError

    def _encode(self, items: Items) -> Any:
        """One series' items as the file holds them (JSON-ready)."""
        raise NotImplementedError

    def _load(self, study: str) -> dict[str, Items]:
        if study in self._studies:
            return self._studies[study]
        path = self.file_for(study)
        loaded: dict[str, Items] = {}
        if path.exists():
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                if document.get(self.study_field) != study:
                    raise ValueError(f"it belongs to study {document.get(self.study_field)!r}")
                loaded = {series_uid: self._decode(items) for series_uid, items in document.get("series", {}).items()}
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                aside = path.with_name(path.name + f".damaged-{datetime.now():%Y%m%d-%H%M%S}")
                message = f"{self.what} in {path} could not be read ({exc}); kept as {aside.name}, starting empty"
                try:
                    path.rename(aside)
                except OSError:
                    message = f"{self.what} in {path} could not be read ({exc}); starting empty"
                log.warning(message)
                self.warnings.append(message)
                loaded = {}
        self._studies[study] = loaded
        return loaded

    def _save(self, study: str, data: dict[str, Items]) -> None:
        document = {"format_version": FILE_VERSION, self.study_field: study,
                    "series": {uid: self._encode(items) for uid, items in data.items() if items}}
        payload = (json.dumps(document, indent=1, ensure_ascii=False, allow_nan=self.allow_nan) + "\n").encode("utf-8")
        try:
            atomic_write_bytes(self.file_for(study), payload, overwrite=True)
        except ExportError as exc:
            raise ExportError(f"{self.not_saved}: {exc}") from exc
