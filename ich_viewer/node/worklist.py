"""The worklist index: one SQLite row per study the node received (or the reader opened).

SQLite in WAL mode, so ``ich-viewer worklist`` and the window's panel read while a node
(in this process or another) writes. Every write is one short transaction; status moves
receiving -> analysing -> flagged | negative | failed, and back to receiving when more
instances of an analysed study arrive (it is then analysed again after the quiet time).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("receiving", "analysing", "flagged", "negative", "failed")
OPENED = "opened"
"""``source`` of a study the reader opened from a folder (not received): the window's
classifier gives its status, and the node never analyses it."""
REVIEW_STATES = ("unread", "read")
SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    patient_id TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    received_at REAL NOT NULL,
    last_received_at REAL NOT NULL,
    instances INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    suspected TEXT NOT NULL DEFAULT '[]',
    flagged_slices INTEGER NOT NULL DEFAULT 0,
    analysed_at REAL,
    analyses INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    review TEXT NOT NULL DEFAULT 'unread'
);
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_by_study ON instances(study_uid);
"""


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


@dataclass
class StudyEntry:
    """One worklist row as the panel and ``worklist --json`` show it."""

    study_instance_uid: str
    folder: str
    patient_id: str
    patient_name: str
    study_date: str
    study_time: str
    description: str
    source: str
    received_at: float
    last_received_at: float
    instances: int
    status: str
    suspected: list[str] = field(default_factory=list)
    flagged_slices: int = 0
    analysed_at: float | None = None
    analyses: int = 0
    reason: str = ""
    review: str = "unread"

    @property
    def flagged(self) -> bool:
        return self.status == "flagged"

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (times as ISO 8601 UTC, plus the raw epoch seconds)."""
        data = asdict(self)
        data["received_at"] = _iso(self.received_at)
        data["last_received_at"] = _iso(self.last_received_at)
        data["analysed_at"] = _iso(self.analysed_at)
        data["received_at_epoch"] = self.received_at
        data["analysed_at_epoch"] = self.analysed_at
        data["reason"] = self.reason if self.status == "failed" else (self.reason or None)
        return data


def sort_key(entry: StudyEntry) -> tuple:
    """Flagged first, then newest arrival first (what needs a reader now comes on top)."""
    return (0 if entry.flagged else 1, -entry.received_at)


class Worklist:
    """The index in ``<node>/worklist.sqlite``; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> "_Transaction":
        return _Transaction(self)

    # -- instances -----------------------------------------------------------------
    def has_instance(self, sop_uid: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM instances WHERE sop_uid=?", (sop_uid,)).fetchone() is not None

    def add_instance(self, *, study_uid: str, series_uid: str, sop_uid: str, path: str, sha256: str,
                     folder: str, identity: dict[str, str], source: str, now: float | None = None) -> bool:
        """Record a stored instance; False when it was already known (stored once)."""
        now = time.time() if now is None else now
        with self._tx() as db:
            if db.execute("SELECT 1 FROM instances WHERE sop_uid=?", (sop_uid,)).fetchone():
                return False
            db.execute("INSERT INTO instances VALUES (?,?,?,?,?,?)", (sop_uid, study_uid, series_uid, path, sha256, now))
            row = db.execute("SELECT source FROM studies WHERE study_uid=?", (study_uid,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO studies (study_uid, folder, patient_id, patient_name, study_date, study_time,"
                    " description, source, received_at, last_received_at, instances, status)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,1,'receiving')",
                    (study_uid, folder, identity.get("patient_id", ""), identity.get("patient_name", ""),
                     identity.get("study_date", ""), identity.get("study_time", ""),
                     identity.get("description", ""), source, now, now))
            elif row["source"] == OPENED:  # opened here first, now received: the store's copy wins
                db.execute("UPDATE studies SET folder=?, source=?, instances=1, last_received_at=?,"
                           " status='receiving', reason='' WHERE study_uid=?", (folder, source, now, study_uid))
            else:
                db.execute("UPDATE studies SET instances=instances+1, last_received_at=?, status='receiving',"
                           " reason='' WHERE study_uid=?", (now, study_uid))
            return True

    def instance_hashes(self, study_uid: str) -> dict[str, str]:
        with self._lock:
            rows = self._db.execute("SELECT sop_uid, sha256 FROM instances WHERE study_uid=?", (study_uid,))
            return {r["sop_uid"]: r["sha256"] for r in rows}

    # -- analysis --------------------------------------------------------------------
    def take_due(self, quiet_s: float, now: float | None = None) -> StudyEntry | None:
        """The oldest study quiet for ``quiet_s``, marked "analysing" (None when none is due)."""
        now = time.time() if now is None else now
        with self._tx() as db:
            row = db.execute("SELECT * FROM studies WHERE status='receiving' AND last_received_at<=?"
                             " ORDER BY last_received_at LIMIT 1", (now - quiet_s,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE studies SET status='analysing', analyses=analyses+1 WHERE study_uid=?",
                       (row["study_uid"],))
        entry = self.get(row["study_uid"])
        return entry

    def take(self, study_uid: str) -> StudyEntry | None:
        """This study, marked "analysing" when it was "receiving" (None otherwise): analyse it now."""
        with self._tx() as db:
            if db.execute("UPDATE studies SET status='analysing', analyses=analyses+1"
                          " WHERE study_uid=? AND status='receiving'", (study_uid,)).rowcount != 1:
                return None
        return self.get(study_uid)

    def finish(self, study_uid: str, status: str, *, suspected: list[str] | None = None, flagged_slices: int = 0,
               reason: str = "", now: float | None = None) -> bool:
        """Store an analysis result; False when the study changed meanwhile (it will run again)."""
        if status not in STATUSES[2:]:
            raise ValueError(f"not a final status: {status}")
        now = time.time() if now is None else now
        with self._tx() as db:
            cur = db.execute("UPDATE studies SET status=?, suspected=?, flagged_slices=?, reason=?, analysed_at=?"
                             " WHERE study_uid=? AND status='analysing'",
                             (status, json.dumps(suspected or []), flagged_slices, reason, now, study_uid))
            return cur.rowcount == 1

    def requeue_interrupted(self) -> int:
        """Studies left "analysing" by a node that stopped: analyse them again (never an opened
        one: the node does not read the reader's folders)."""
        with self._tx() as db:
            return db.execute("UPDATE studies SET status='receiving' WHERE status='analysing' AND source!=?",
                              (OPENED,)).rowcount

    # -- studies opened in the window -------------------------------------------------
    def add_opened(self, *, study_uid: str, folder: str, identity: dict[str, str], images: int,
                   now: float | None = None) -> bool:
        """Index a study the reader opened from ``folder``; False when a received study has this UID
        (it keeps its own row, folder and status).

        The first opening is its arrival; opening it again updates the folder and identity but
        keeps the last result the classifier gave (a failed one becomes "analysing" again).
        """
        if not study_uid:
            raise ValueError("a study without a Study Instance UID cannot be indexed")
        now = time.time() if now is None else now
        values = (folder, identity.get("patient_id", ""), identity.get("patient_name", ""),
                  identity.get("study_date", ""), identity.get("study_time", ""), identity.get("description", ""))
        with self._tx() as db:
            source = row_source(db, study_uid)
            if source is None:
                db.execute(
                    "INSERT INTO studies (folder, patient_id, patient_name, study_date, study_time, description,"
                    " study_uid, source, received_at, last_received_at, instances, status)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,'analysing')", (*values, study_uid, OPENED, now, now, images))
                return True
            if source != OPENED:
                return False
            db.execute("UPDATE studies SET folder=?, patient_id=?, patient_name=?, study_date=?, study_time=?,"
                       " description=?, last_received_at=?, instances=?,"
                       " status=CASE WHEN status='failed' THEN 'analysing' ELSE status END"
                       " WHERE study_uid=?", (*values, now, images, study_uid))
            return True

    def record_opened(self, study_uid: str, status: str, *, suspected: list[str] | None = None,
                      flagged_slices: int = 0, reason: str = "", only_if_analysing: bool = False,
                      now: float | None = None) -> bool:
        """The window's classifier result for an opened study; False when there is no such row
        (or, with ``only_if_analysing``, when it has a result already)."""
        if status not in STATUSES[2:]:
            raise ValueError(f"not a final status: {status}")
        now = time.time() if now is None else now
        condition = " AND status='analysing'" if only_if_analysing else ""
        with self._tx() as db:
            cur = db.execute("UPDATE studies SET status=?, suspected=?, flagged_slices=?, reason=?, analysed_at=?,"
                             " analyses=analyses+1 WHERE study_uid=? AND source=?" + condition,
                             (status, json.dumps(suspected or []), flagged_slices, reason, now, study_uid, OPENED))
            return cur.rowcount == 1

    def set_review(self, study_uid: str, review: str) -> None:
        if review not in REVIEW_STATES:
            raise ValueError(review)
        with self._tx() as db:
            db.execute("UPDATE studies SET review=? WHERE study_uid=?", (review, study_uid))

    # -- reading -----------------------------------------------------------------------
    def get(self, study_uid: str) -> StudyEntry | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM studies WHERE study_uid=?", (study_uid,)).fetchone()
        return _entry(row) if row is not None else None

    def entries(self) -> list[StudyEntry]:
        """Every study, flagged first, then newest arrival first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM studies").fetchall()
        return sorted((_entry(r) for r in rows), key=sort_key)

    def version(self) -> tuple[int, float, int, int]:
        """Cheap change marker for a panel that polls: (row count, latest change time)."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*), MAX(MAX(last_received_at), COALESCE(MAX(analysed_at), 0)),"
                                   " SUM(analyses), GROUP_CONCAT(status || review) FROM studies").fetchone()
        return (int(row[0]), float(row[1] or 0.0), int(row[2] or 0), hash(row[3] or ""))


def row_source(db: sqlite3.Connection, study_uid: str) -> str | None:
    """The ``source`` of a study's row (None when it has none)."""
    row = db.execute("SELECT source FROM studies WHERE study_uid=?", (study_uid,)).fetchone()
    return None if row is None else str(row["source"])


def _entry(row: sqlite3.Row) -> StudyEntry:
    data = {k: row[k] for k in row.keys()}
    data["study_instance_uid"] = data.pop("study_uid")
    data["suspected"] = json.loads(data["suspected"] or "[]")
    return StudyEntry(**data)


class _Transaction:
    """``with worklist._tx() as db``: one IMMEDIATE transaction under the worklist's lock."""

    def __init__(self, worklist: Worklist) -> None:
        self._worklist = worklist

    def __enter__(self) -> sqlite3.Connection:
        self._worklist._lock.acquire()
        self._worklist._db.execute("BEGIN IMMEDIATE")
        return self._worklist._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self._worklist._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._worklist._lock.release()

