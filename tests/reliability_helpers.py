"""Generated hostile input for the reliability tests: a small phantom study and edits of it."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pydicom

from ich_viewer.phantom.study import write_phantom_study

DELETE = object()
"""Value for ``edit_series``: remove the attribute."""


def small_study(folder: Path, *, n_slices: int = 10, signed: bool = False, seed: int = 3) -> Path:
    """A phantom head with a subdural bleed, 96x96, unsigned 12-bit with intercept -1024 by default."""
    return write_phantom_study(folder, seed=seed, subtypes=["subdural"], matrix=96, n_slices=n_slices,
                               signed=signed)


def dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name.upper() != "DICOMDIR")


def edit_series(source: Path, target: Path, edit: Callable[[pydicom.Dataset, int], None] | None = None,
                **values: Any) -> Path:
    """Copy a study folder and change header values in every image (``DELETE`` removes one)."""
    shutil.copytree(source, target)
    for k, path in enumerate(dicom_files(target)):
        try:
            ds = pydicom.dcmread(path)
        except Exception:
            continue
        for keyword, value in values.items():
            if value is DELETE:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        if edit is not None:
            edit(ds, k)
        ds.save_as(path)
    return target
