"""Where the bytes of each candidate file come from: a folder, one file, a DICOMDIR or a zip.

Everything here only reads. Zip members are read into memory on demand and never
extracted, so opening a study leaves its folder exactly as it was.
"""
from __future__ import annotations

import io
import os
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ich_viewer.dicom.model import SkippedFile

ZIP_SEPARATOR = "!/"
MAX_MEMBER_BYTES = 2 * 1024**3
"""Zip members larger than this are skipped instead of being read into memory."""

DICOMDIR_NAME = "DICOMDIR"
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class FileRef:
    """One candidate file; picklable so worker processes can re-open it."""

    path: str
    """A file on disk, or the zip file holding ``member``."""
    member: str | None = None

    @property
    def display(self) -> str:
        """The name shown to the user (``<zip>!/<member>`` for zip members)."""
        return self.path if self.member is None else f"{self.path}{ZIP_SEPARATOR}{self.member}"

    def open(self) -> BinaryIO:
        """A seekable, read-only stream over the file's bytes."""
        if self.member is None:
            return open(self.path, "rb")
        return io.BytesIO(_archive(self.path).read(self.member))

    def size(self) -> int:
        if self.member is None:
            return os.path.getsize(self.path)
        return _archive(self.path).getinfo(self.member).file_size


_ARCHIVES: dict[str, tuple[tuple[int, int], zipfile.ZipFile]] = {}
_ARCHIVES_LOCK = threading.Lock()


def _archive(path: str) -> zipfile.ZipFile:
    """An open zip file, kept for re-use: parsing the directory of a big zip per member is slow.

    (zipfile reads members of one open archive safely from several threads.)
    """
    stat = os.stat(path)
    key = (stat.st_mtime_ns, stat.st_size)
    with _ARCHIVES_LOCK:
        known = _ARCHIVES.get(path)
        if known is not None and known[0] == key:
            return known[1]
        if known is not None:
            known[1].close()
        if len(_ARCHIVES) >= 4:
            _ARCHIVES.pop(next(iter(_ARCHIVES)))[1].close()
        archive = zipfile.ZipFile(path)
        _ARCHIVES[path] = (key, archive)
        return archive


@dataclass
class Discovery:
    """What a path holds before any DICOM is parsed."""

    files: list[FileRef]
    skipped: list[SkippedFile]
    warnings: list[str]


CancelCheck = Callable[[], bool]


def discover(path: str | os.PathLike[str], cancel: CancelCheck | None = None) -> Discovery:
    """List the candidate files under ``path`` (raises FileNotFoundError if it is missing)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such file or folder: {root}")
    if root.is_dir():
        return Discovery(list(_walk_folder(root, cancel)), [], [])
    if root.name.upper() == DICOMDIR_NAME or _is_dicomdir(root):
        return _from_dicomdir(root, cancel)
    if not _has_dicm_marker(root) and zipfile.is_zipfile(root):
        return _from_zip(root)
    return Discovery([FileRef(str(root))], [], [])


def _walk_folder(root: Path, cancel: CancelCheck | None) -> Iterator[FileRef]:
    """Every regular file below ``root`` in a stable order (symlinked folders not followed)."""
    for folder, dirs, names in os.walk(root):
        if cancel is not None and cancel():
            return
        dirs.sort()
        for name in sorted(names):
            if name.upper() == DICOMDIR_NAME:
                continue  # the index of files this walk finds anyway
            full = os.path.join(folder, name)
            if os.path.isfile(full):
                yield FileRef(full)


def _has_dicm_marker(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _is_dicomdir(path: Path) -> bool:
    """A DICOMDIR under another name (its media storage SOP class says so)."""
    if not _has_dicm_marker(path):
        return False
    try:
        from pydicom.filereader import read_file_meta_info

        meta = read_file_meta_info(path)
        return str(meta.get("MediaStorageSOPClassUID", "")) == _DICOMDIR_SOP_CLASS
    except Exception:
        return False


def _from_zip(path: Path) -> Discovery:
    files: list[FileRef] = []
    skipped: list[SkippedFile] = []
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        return Discovery([], [SkippedFile(str(path), f"unreadable zip file: {exc}")], [])
    for info in sorted(infos, key=lambda i: i.filename):
        if info.is_dir():
            continue
        ref = FileRef(str(path), info.filename)
        if _member_name(info.filename).upper() == DICOMDIR_NAME:
            continue
        if info.flag_bits & 0x1:
            skipped.append(SkippedFile(ref.display, "encrypted zip member (password protected)"))
        elif info.file_size > MAX_MEMBER_BYTES:
            skipped.append(SkippedFile(ref.display, f"zip member too large to read ({info.file_size} bytes)"))
        else:
            files.append(ref)
    return Discovery(files, skipped, [])


def _member_name(member: str) -> str:
    """The last component of a zip member name."""
    return member.rstrip("/").rsplit("/", 1)[-1]


def _from_dicomdir(path: Path, cancel: CancelCheck | None) -> Discovery:
    """The images a DICOMDIR lists; its folder is scanned instead if it cannot be used."""
    folder = path.parent
    try:
        referenced = _dicomdir_references(path)
    except Exception as exc:  # a broken index must not stop the study from opening
        warning = f"DICOMDIR {path} could not be read ({type(exc).__name__}: {exc}); scanned its folder instead"
        return Discovery(list(_walk_folder(folder, cancel)), [], [warning])
    if not referenced:
        warning = f"DICOMDIR {path} lists no images; scanned its folder instead"
        return Discovery(list(_walk_folder(folder, cancel)), [], [warning])
    files: list[FileRef] = []
    skipped: list[SkippedFile] = []
    for parts in referenced:
        found = _resolve_case_insensitive(folder, parts)
        if found is None:
            skipped.append(SkippedFile(str(folder.joinpath(*parts)), "listed in the DICOMDIR but missing"))
        else:
            files.append(FileRef(str(found)))
    return Discovery(files, skipped, [])


def _dicomdir_references(path: Path) -> list[tuple[str, ...]]:
    import pydicom

    ds = pydicom.dcmread(path, force=True)
    refs: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    for record in ds.get("DirectoryRecordSequence", []):
        value = record.get("ReferencedFileID")
        if not value:
            continue
        parts = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
        parts = tuple(p for p in parts if p)
        if parts and parts not in seen:
            seen.add(parts)
            refs.append(parts)
    return refs


def _resolve_case_insensitive(folder: Path, parts: tuple[str, ...]) -> Path | None:
    """CD file names are upper case; a copied study may have changed their case."""
    direct = folder.joinpath(*parts)
    if direct.is_file():
        return direct
    current = folder
    for part in parts:
        try:
            match = next((c for c in current.iterdir() if c.name.upper() == part.upper()), None)
        except OSError:
            return None
        if match is None:
            return None
        current = match
    return current if current.is_file() else None
