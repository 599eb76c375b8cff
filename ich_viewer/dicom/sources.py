"""Where the bytes of each candidate file come from: a folder, one file, a DICOMDIR or a zip.

Everything here only reads. Zip members are streamed on demand (never extracted, never
held whole in memory), so opening a study leaves its folder exactly as it was and a zip
bomb costs no more than its header.
"""
from __future__ import annotations

import os
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ich_viewer.dicom.model import SkippedFile

ZIP_SEPARATOR = "!/"
MAX_MEMBER_BYTES = 2 * 1024**3
"""Zip members larger than this are skipped."""
BOMB_RATIO = 100
BOMB_MIN_BYTES = 64 * 1024**2
"""A member that expands above BOMB_MIN_BYTES at more than BOMB_RATIO times its compressed
size is refused as a zip bomb (CT images compress 2-10 times; zeros 1,000 times)."""

DICOMDIR_NAME = "DICOMDIR"
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


def safe_text(text: str) -> str:
    """``text`` that any UTF-8 writer accepts: undecodable bytes of a file name (kept by
    Python as lone surrogates) are shown as ``\\xNN`` escapes, so printing or saving a
    name never fails (the raw bytes stay recoverable with ``os.fsencode`` on the original)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:  # surrogates that did not come from a file name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


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
        # streamed: a forward seek decompresses and discards, so memory stays bounded
        return _archive(self.path).open(self.member)  # type: ignore[return-value]

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
        skipped: list[SkippedFile] = []
        return Discovery(list(_walk_folder(root, cancel, skipped)), skipped, [])
    if root.name.upper() == DICOMDIR_NAME or _is_dicomdir(root):
        return _from_dicomdir(root, cancel)
    if not _has_dicm_marker(root) and zipfile.is_zipfile(root):
        return _from_zip(root)
    return Discovery([FileRef(str(root))], [], [])


def _walk_folder(root: Path, cancel: CancelCheck | None, skipped: list[SkippedFile] | None = None) -> Iterator[FileRef]:
    """Every regular file below ``root`` in a stable order (symlinked folders not followed).

    A folder that cannot be listed lands in ``skipped`` with the reason, like a file.
    """
    def unreadable(exc: OSError) -> None:
        if skipped is not None:
            where = exc.filename if exc.filename is not None else str(root)
            skipped.append(SkippedFile(os.fsdecode(where), f"cannot read the folder: {exc.strerror or exc}"))

    for folder, dirs, names in os.walk(root, onerror=unreadable):
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
        elif info.file_size > BOMB_MIN_BYTES and info.file_size > BOMB_RATIO * max(1, info.compress_size):
            ratio = info.file_size / max(1, info.compress_size)
            skipped.append(SkippedFile(ref.display, f"zip member expands {ratio:.0f} times to {info.file_size} bytes "
                                                    "(a zip bomb, or not an image); not read"))
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
        escape = _leaves_folder(folder, parts)
        if escape:
            shown = "\\".join(parts)
            skipped.append(SkippedFile(f"{path} -> {shown}", f"DICOMDIR reference not followed: {escape}"))
            continue
        found = _resolve_case_insensitive(folder, parts)
        if found is not None and _leaves_folder(folder, parts, found):
            skipped.append(SkippedFile(str(found), "DICOMDIR reference not followed: it resolves (through a link) "
                                                   "outside the DICOMDIR's folder"))
            continue
        if found is None:
            skipped.append(SkippedFile(str(folder.joinpath(*parts)), "listed in the DICOMDIR but missing"))
        else:
            files.append(FileRef(str(found)))
    return Discovery(files, skipped, [])


def _leaves_folder(folder: Path, parts: tuple[str, ...], found: Path | None = None) -> str | None:
    """Why a DICOMDIR reference would reach outside the DICOMDIR's folder, or None.

    PS3.10 file IDs are relative components of upper-case letters, digits and '_'; a
    component that is absolute, '..', or holds a path separator is refused outright, and
    a file found through a link must still lie inside the folder.
    """
    if found is None:
        for part in parts:
            if part in (".", "..") or "/" in part or "\\" in part or ":" in part or "\x00" in part:
                return f"component {part!r} would leave the DICOMDIR's folder"
        return None
    base = os.path.realpath(folder)
    real = os.path.realpath(found)
    return None if real.startswith(base.rstrip(os.sep) + os.sep) else "outside the DICOMDIR's folder"


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
