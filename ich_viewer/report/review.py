"""The reader's accept / reject decisions, kept in the program's data folder.

One small JSON file per study (``<data_dir>/reviews/<study UID>.json``), keyed by series
UID and slice key. Every change is written at once (atomically), so a crash loses at
most the keystroke being made, and the decisions come back when the study is reopened.
Nothing is ever written into the study folder.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path

from ich_viewer import paths
from ich_viewer.report.atomic import ExportError, atomic_write_bytes
from ich_viewer.report.decisions import NOTE_MAX_CHARS, UNDECIDED, Decision

log = logging.getLogger(__name__)

FILE_VERSION = 1
_UID_RE = re.compile(r"^[0-9][0-9.]{0,63}$")


def reviews_dir() -> Path:
    return paths.data_dir() / "reviews"


class ReviewStore:
    """Decisions per study; reads each study's file once and writes it on every change."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = Path(folder) if folder is not None else None
        self._studies: dict[str, dict[str, dict[str, Decision]]] = {}
        self.warnings: list[str] = []
        """Problems met while reading (a damaged file is set aside, not lost)."""

    @property
    def folder(self) -> Path:
        return self._folder if self._folder is not None else reviews_dir()

    def file_for(self, study_uid: str) -> Path:
        """UIDs are safe file names; anything else is hashed so no path can be built from it."""
        name = study_uid if _UID_RE.match(study_uid) else "sha1-" + hashlib.sha1(study_uid.encode()).hexdigest()
        return self.folder / f"{name}.json"

    def study_decisions(self, study_uid: str) -> dict[str, dict[str, Decision]]:
        """All decisions of a study: series UID -> slice key -> Decision (a copy)."""
        return {series: dict(items) for series, items in self._load(study_uid).items()}

    def series_decisions(self, study_uid: str, series_uid: str) -> dict[str, Decision]:
        return dict(self._load(study_uid).get(series_uid, {}))

    def decision(self, study_uid: str, series_uid: str, key: str) -> Decision:
        return self._load(study_uid).get(series_uid, {}).get(key, Decision())

    def set_decision(
        self, study_uid: str, series_uid: str, key: str, *, state: str | None = None, note: str | None = None
    ) -> Decision:
        """Change the state and/or the note of one slice and save the study's file.

        Raises ``ExportError`` when the file cannot be written (the change is then not kept).
        """
        study = self._load(study_uid)
        old = study.get(series_uid, {}).get(key, Decision())
        new = Decision(
            state=old.state if state is None else state,
            note=old.note if note is None else note.strip()[:NOTE_MAX_CHARS],
            updated_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        )
        if (new.state, new.note) == (old.state, old.note):
            return old
        updated = {series: dict(items) for series, items in study.items()}
        if new.state == UNDECIDED and not new.note:
            updated.get(series_uid, {}).pop(key, None)
        else:
            updated.setdefault(series_uid, {})[key] = new
        self._save(study_uid, updated)
        self._studies[study_uid] = updated
        return new

    def forget_cache(self) -> None:
        """Re-read from disk next time (another window may have changed the files)."""
        self._studies.clear()

    def _load(self, study_uid: str) -> dict[str, dict[str, Decision]]:
        if study_uid in self._studies:
            return self._studies[study_uid]
        path = self.file_for(study_uid)
        loaded: dict[str, dict[str, Decision]] = {}
        if path.exists():
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                if document.get("study_uid") != study_uid:
                    raise ValueError(f"it belongs to study {document.get('study_uid')!r}")
                for series_uid, items in document.get("series", {}).items():
                    loaded[series_uid] = {
                        key: Decision(item.get("state", UNDECIDED), item.get("note", ""), item.get("updated_at", ""))
                        for key, item in items.items()
                    }
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                aside = path.with_name(path.name + f".damaged-{datetime.now():%Y%m%d-%H%M%S}")
                message = f"review decisions in {path} could not be read ({exc}); kept as {aside.name}, starting empty"
                try:
                    path.rename(aside)
                except OSError:
                    message = f"review decisions in {path} could not be read ({exc}); starting empty"
                log.warning(message)
                self.warnings.append(message)
                loaded = {}
        self._studies[study_uid] = loaded
        return loaded

    def _save(self, study_uid: str, study: dict[str, dict[str, Decision]]) -> None:
        document = {
            "format_version": FILE_VERSION,
            "study_uid": study_uid,
            "series": {
                series_uid: {
                    key: {"state": d.state, "note": d.note, "updated_at": d.updated_at} for key, d in items.items()
                }
                for series_uid, items in study.items()
                if items
            },
        }
        data = (json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        try:
            atomic_write_bytes(self.file_for(study_uid), data, overwrite=True)
        except ExportError as exc:
            raise ExportError(f"review decision not saved: {exc}") from exc


def study_key(study_uid: str, source: str) -> str:
    """The key a study's decisions are stored under: its UID, or its location when it has none."""
    if study_uid:
        return study_uid
    return f"source:{Path(source).resolve()}" if source else ""


def stored_decisions(study) -> dict[str, dict[str, Decision]]:
    """The decisions saved for a loaded ``Study`` (what an export uses unless told otherwise)."""
    key = study_key(study.study_uid, study.source)
    return ReviewStore().study_decisions(key) if key else {}
