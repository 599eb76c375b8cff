"""Refuse export destinations inside the study (the study stays untouched).

"The study" is every folder an image of it was read from, not only the path that was
opened: a DICOMDIR or a folder of links can pull images from elsewhere, and a report
must not land beside those images either.
"""
from __future__ import annotations

import os
from pathlib import Path

from ich_viewer.dicom.model import Study
from ich_viewer.dicom.sources import ZIP_SEPARATOR
from ich_viewer.report.atomic import ExportError


def study_folder(study: Study) -> Path | None:
    """The folder that was opened, or None for a zip (nothing can go inside it)."""
    if not study.source:
        return None
    source = Path(study.source)
    if source.suffix.lower() == ".zip" and not source.is_dir():
        return None
    if source.is_file():
        return source.resolve().parent  # a DICOMDIR or a single image: its folder is the study
    return source.resolve()


def study_folders(study: Study) -> set[Path]:
    """The opened folder and the (resolved) folder of every image file of the study."""
    folders = set()
    opened = study_folder(study)
    if opened is not None:
        folders.add(opened)
    for series in study.series:
        for header in series.slices:
            if ZIP_SEPARATOR in header.path or header.path.startswith("<memory>"):
                continue  # inside a zip file or in memory: nothing can be written there
            folders.add(Path(os.path.realpath(header.path)).parent)  # a linked image: its real folder
    return {Path(os.path.realpath(folder)) for folder in folders}


def check_outside_study(path: str | os.PathLike, study: Study | None) -> Path:
    """Return ``path`` if it is not inside any study folder, else raise ``ExportError``."""
    target = Path(path)
    if study is None:
        return target
    folders = study_folders(study)
    if not folders:
        return target
    resolved = Path(os.path.realpath(target)) if target.exists() else Path(os.path.realpath(target.parent)) / target.name
    for folder in sorted(folders):
        if resolved == folder or folder in resolved.parents:
            raise ExportError(
                f"{target} is inside the study folder {folder}; exports are never written there - choose another folder"
            )
    return target
