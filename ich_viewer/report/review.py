"""The reader's accept / reject decisions, kept in the program's data folder.

One small JSON file per study (``<data_dir>/reviews/<study UID>.json``), keyed by series
UID and slice key. Every change is written at once (atomically), so a crash loses at
most the keystroke being made, and the decisions come back when the study is reopened.
Nothing is ever written into the study folder.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ich_viewer.report.decisions import NOTE_MAX_CHARS, UNDECIDED, Decision
from ich_viewer.report.study_files import StudyFileStore


class ReviewStore(StudyFileStore[dict[str, Decision]]):
    """Decisions per study; reads each study's file once and writes it on every change."""

    subfolder = "reviews"
    study_field = "study_uid"
    what = "review decisions"
    not_saved = "review decision not saved"

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

    def _decode(self, items: Any) -> dict[str, Decision]:
        return {key: Decision(item.get("state", UNDECIDED), item.get("note", ""), item.get("updated_at", ""))
                for key, item in items.items()}

    def _encode(self, items: dict[str, Decision]) -> Any:
        return {key: {"state": d.state, "note": d.note, "updated_at": d.updated_at} for key, d in items.items()}


def study_key(study_uid: str, source: str) -> str:
    """The key a study's decisions are stored under: its UID, or its location when it has none."""
    if study_uid:
        return study_uid
    return f"source:{Path(source).resolve()}" if source else ""


def stored_decisions(study) -> dict[str, dict[str, Decision]]:
    """The decisions saved for a loaded ``Study`` (what an export uses unless told otherwise)."""
    key = study_key(study.study_uid, study.source)
    return ReviewStore().study_decisions(key) if key else {}
