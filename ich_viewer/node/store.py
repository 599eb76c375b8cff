"""The node's own store: one folder per study, every name a hash of UIDs.

No value from a received file is ever used as a path component, so a crafted UID such
as ``../../etc`` cannot leave the store. Files are written to a temporary name on the
same file system and renamed into place, so a full disk or a crash never leaves a
half-written instance where the loader would find it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def valid_uid(value: object) -> bool:
    """A DICOM UID: digits and dots, no leading zeros, at most 64 characters (PS3.5 9.1)."""
    return isinstance(value, str) and 0 < len(value) <= 64 and bool(UID_RE.match(value))


def hashed(uid: str, length: int = 24) -> str:
    """A stable, path-safe name for a UID."""
    return hashlib.sha256(uid.encode("ascii", "replace")).hexdigest()[:length]


class StoreFullError(OSError):
    """Writing failed for lack of space or quota; nothing was left behind."""


@dataclass(frozen=True)
class StoredInstance:
    path: Path
    sha256: str
    size: int


class Store:
    """``<node>/studies/<hash(study)>/<hash(series)>/<hash(sop)>.dcm`` plus a scratch folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.studies = self.root / "studies"
        self.scratch = self.root / "incoming"
        self.results = self.root / "results"
        for folder in (self.studies, self.scratch, self.results):
            folder.mkdir(parents=True, exist_ok=True)
        for stale in self.scratch.glob("*.part"):  # left by a crash: never a valid instance
            stale.unlink(missing_ok=True)

    def study_folder(self, study_uid: str) -> Path:
        return self.studies / hashed(study_uid)

    def results_folder(self, study_uid: str) -> Path:
        return self.results / hashed(study_uid)

    def instance_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return self.study_folder(study_uid) / hashed(series_uid, 16) / f"{hashed(sop_uid, 32)}.dcm"

    def write(self, study_uid: str, series_uid: str, sop_uid: str, data: bytes) -> StoredInstance:
        """Write one encoded instance (a complete DICOM file) atomically.

        Raises ``StoreFullError`` when the disk (or a quota) is full, ``OSError`` for any
        other failure; in both cases nothing is left in the store.
        """
        for uid in (study_uid, series_uid, sop_uid):
            if not valid_uid(uid):
                raise ValueError(f"not a valid UID: {uid!r}")
        target = self.instance_path(study_uid, series_uid, sop_uid)
        fd, tmp_name = tempfile.mkstemp(dir=self.scratch, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, target)
        except OSError as exc:
            Path(tmp_name).unlink(missing_ok=True)
            if exc.errno in (28, 122, 27):  # ENOSPC, EDQUOT, EFBIG
                raise StoreFullError(exc.errno, f"store full: {exc.strerror}") from exc
            raise
        return StoredInstance(target, hashlib.sha256(data).hexdigest(), len(data))
