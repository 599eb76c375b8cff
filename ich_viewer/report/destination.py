"""Refuse export destinations inside the study that was read (the study stays untouched)."""
from __future__ import annotations

import os
from pathlib import Path

from ich_viewer.dicom.model import Study
from ich_viewer.report.atomic import ExportError


def study_folder(study: Study) -> Path | None:
    """The folder that holds the study's files, or None for a zip (nothing can go inside it)."""
    if not study.source:
        return None
    source = Path(study.source)
    if source.suffix.lower() == ".zip" and not source.is_dir():
        return None
    if source.is_file():
        return source.resolve().parent  # a DICOMDIR or a single image: its folder is the study
    return source.resolve()


def check_outside_study(path: str | os.PathLike, study: Study | None) -> Path:
    """Return ``path`` if it is not inside the study folder, else raise ``ExportError``."""
    target = Path(path)
    folder = study_folder(study) if study is not None else None
    if folder is None:
        return target
    resolved = target.resolve() if target.exists() else target.parent.resolve() / target.name
    if resolved == folder or folder in resolved.parents:
        raise ExportError(
            f"{target} is inside the study folder {folder}; exports are never written there - choose another folder"
        )
    return target
