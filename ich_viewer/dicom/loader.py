"""Open a folder, a file, a DICOMDIR or a zip as a ``Study`` (headers only; pixels stay lazy).

One bad file never stops the others: it lands in ``Study.skipped`` with the reason.
Nothing is ever written inside the opened path.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Callable, Iterator

from ich_viewer.dicom.grouping import assemble_series
from ich_viewer.dicom.headers import ImageFile, read_outcome
from ich_viewer.dicom.model import ProgressCallback, SkippedFile, Study
from ich_viewer.dicom.sources import FileRef, discover
from ich_viewer.tasks import Throttle

log = logging.getLogger(__name__)


def load_study(
    path: str | os.PathLike[str],
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Study:
    """Headers of every image under ``path``, grouped into series and ordered.

    Parameters
    ----------
    path
        A folder (searched recursively), a single DICOM file, a DICOMDIR or a zip file.
    progress
        Called as ``progress(files_done, files_total)`` at most every 50 ms and once at
        the end (``tasks.Throttle``), from the calling thread.
    cancel
        Asked before each file; when it returns True reading stops, and the study holds
        what was read so far plus a warning that loading was cancelled.

    Returns
    -------
    Study
        Its ``series`` sorted along the slice normal, pixels not yet decoded (each
        ``Series.hu(i)`` decodes on first use); ``skipped`` lists every file that was not
        an image, with the reason; ``warnings`` what the reader should know (mixed
        studies, gaps, tilt).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist. One unreadable file never raises: it is skipped. A study
        where nothing could be read has no series and says why in ``skipped``.

    Example
    -------
    >>> study = load_study("/data/head-ct")                      # doctest: +SKIP
    >>> series = study.image_series[0]                           # doctest: +SKIP
    >>> series.hu(len(series) // 2).shape                        # doctest: +SKIP
    (512, 512)
    """
    found = discover(path, cancel)
    study = Study(source=str(path), skipped=list(found.skipped), warnings=list(found.warnings))
    images: list[ImageFile] = []
    reporter = _Progress(progress, len(found.files))
    for done, outcome in _outcomes(found.files, cancel):
        if outcome is None:
            study.warnings.append(f"Loading cancelled after {done} of {len(found.files)} files")
            break
        if isinstance(outcome, SkippedFile):
            study.skipped.append(outcome)
        else:
            images.append(outcome)
        reporter(done)
    series, duplicates, notes = assemble_series(images)
    study.series = series
    study.skipped.extend(duplicates)
    study.warnings.extend(notes)
    _fill_study_fields(study, images)
    return study


class _Progress:
    """(done, total) to ``callback`` at most every ``tasks.PROGRESS_INTERVAL_S``, and the last."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback, self.total, self.throttle = callback, total, Throttle()

    def __call__(self, done: int) -> None:
        if self.callback is not None and self.throttle.ready(done, self.total):
            self.callback(done, self.total)


Outcome = ImageFile | SkippedFile


def _outcomes(files: list[FileRef], cancel: Callable[[], bool] | None) -> Iterator[tuple[int, Outcome | None]]:
    """(files done so far, what the file gave); None when cancelled.

    Headers are read here, one file after another: reading them in the decoder processes
    was measured twice as slow (sending pydicom data sets back costs more than parsing).
    """
    for done, ref in enumerate(files):
        if cancel is not None and cancel():
            yield done, None
            return
        outcome = read_outcome(ref, cancel)
        if cancel is not None and cancel():  # cancelled inside this file: its outcome is not used
            yield done, None
            return
        yield done + 1, outcome


def _fill_study_fields(study: Study, images: list[ImageFile]) -> None:
    if not images:
        return
    uids = Counter(image.study_uid for image in images)
    main_uid = uids.most_common(1)[0][0]
    if len(uids) > 1:
        study.warnings.append(
            f"Images from {len(uids)} different studies were found; patient details are those of the "
            "study with the most images"
        )
    ds = next(image.headers[0].dataset for image in images if image.study_uid == main_uid)

    def text(keyword: str) -> str:
        return _tag_text(ds, keyword)

    study.study_uid = main_uid
    study.patient_name = text("PatientName").replace("^", " ").strip()
    study.patient_id = text("PatientID")
    study.patient_sex = text("PatientSex")
    study.patient_age = text("PatientAge")
    study.study_date = text("StudyDate")
    study.study_description = text("StudyDescription")
    study.accession_number = text("AccessionNumber")
    study.institution = text("InstitutionName")
    patients = {_tag_text(image.headers[0].dataset, "PatientID") for image in images}
    if len(patients) > 1:
        study.warnings.append(f"Images of {len(patients)} different patient IDs were found in this path")


def _tag_text(ds: object, keyword: str) -> str:
    try:
        return str(ds.get(keyword, "") or "").strip()  # type: ignore[attr-defined]
    except Exception:  # an undecodable value leaves the field empty
        log.debug("%s of the study cannot be decoded", keyword, exc_info=True)
        return ""
