"""Write output files so that a reader never sees half a file.

Exports go to a temporary file in the destination folder (same file system, so the final
rename is atomic), are flushed to disk, then renamed into place. An existing file is
only replaced when the caller says so; any failure removes the temporary file and
raises ``ExportError`` with a reason a user can act on.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()
"""Read once at import (os.umask is process-wide): exports get the user's usual permissions,
not the private 0600 of a temporary file."""


class ExportError(Exception):
    """An export could not be written; the message says which file and why."""


class OutputExistsError(ExportError):
    """The target exists and overwriting was not allowed."""


def atomic_write(path: str | os.PathLike, write_fn: Callable[[BinaryIO], None], overwrite: bool = False) -> Path:
    """Call ``write_fn(binary_file)`` and move the result to ``path`` in one step.

    Returns the final path. Raises ``OutputExistsError`` when ``path`` exists and
    ``overwrite`` is false, ``ExportError`` for every other failure (nothing is left
    behind: no temporary file, no partial target).
    """
    target = Path(path)
    if target.is_dir():
        raise ExportError(f"cannot write {target}: it is a folder")
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists; choose another name or allow overwriting")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), _FILE_MODE)
            write_fn(handle)
            handle.flush()
            os.fsync(handle.fileno())
        _move_into_place(tmp, target, overwrite)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, ExportError):
            raise
        if isinstance(exc, Exception):
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
            raise ExportError(f"could not write {target}: {reason}") from exc
        raise
    _fsync_folder(target.parent)
    return target


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    return atomic_write(path, lambda handle: handle.write(data), overwrite=overwrite)


def _move_into_place(tmp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, target)
        return
    # A hard link refuses an existing name atomically, so a file created by someone else
    # while we were writing is not clobbered. File systems without links fall back to
    # check-then-rename.
    try:
        os.link(tmp, target)
    except FileExistsError as exc:
        raise OutputExistsError(f"{target} already exists; choose another name or allow overwriting") from exc
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EACCES):
            raise
        if target.exists():
            raise OutputExistsError(f"{target} already exists; choose another name or allow overwriting") from exc
        os.replace(tmp, target)
        return
    tmp.unlink()


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
