"""Open a folder, a file, a DICOMDIR or a zip as a ``Study`` (headers only; pixels stay lazy).

One bad file never stops the others: it lands in ``Study.skipped`` with the reason.
Nothing is ever written inside the opened path.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import partial
from typing import Callable, Iterator

from ich_viewer.dicom import workers as worker_pool
from ich_viewer.dicom.grouping import assemble_series
from ich_viewer.dicom.headers import ImageFile, read_outcome, read_outcomes_lean, reread_dataset
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


PARALLEL_MIN_FILES = 500
"""From this many files on, headers are read by the warm decoder processes when they are running.

With the fast header pass a plain file costs ~0.4 ms here; through the pool the main
process still spends ~0.15 ms per file receiving it, and the round trips add latency: at
270 files reading here was faster (0.10 s against 0.17 s, 2 cores, bench_load data), and
only large folders on more cores gain from the workers."""
CHUNK_FILES = 12
"""Files per worker job: large enough that a round trip costs little, small enough for a prompt cancel."""


def _outcomes(files: list[FileRef], cancel: Callable[[], bool] | None) -> Iterator[tuple[int, Outcome | None]]:
    """(files done so far, what the file gave), in file order; None when cancelled.

    Many files are parsed in the decoder processes (``workers.py``) when they are already
    running, which the viewer starts at program start: they send back everything but the
    pydicom data sets (sending those costs more than parsing them; ``SliceHeader.full_dataset``
    reads one again when the tag browser or a report needs it). Few files, or no running
    pool (the command line), are read here, one after another.
    """
    pool = worker_pool.ready_pool() if len(files) >= PARALLEL_MIN_FILES else None
    if pool is None:
        yield from _read_here(files, 0, cancel)
        return
    try:
        yield from _read_in_workers(pool, files, cancel)
    except _PoolFailed as failed:  # a dead pool never loses the study: the rest is read here
        worker_pool.discard_pool(pool)
        log.warning("header workers failed (%s); reading the rest here", failed.reason)
        yield from _read_here(files[failed.done:], failed.done, cancel)


def _read_here(files: list[FileRef], offset: int, cancel: Callable[[], bool] | None) -> Iterator[tuple[int, Outcome | None]]:
    for done, ref in enumerate(files, start=offset):
        if cancel is not None and cancel():
            yield done, None
            return
        outcome = read_outcome(ref, cancel)
        if cancel is not None and cancel():  # cancelled inside this file: its outcome is not used
            yield done, None
            return
        yield done + 1, outcome


class _PoolFailed(Exception):
    def __init__(self, done: int, reason: str) -> None:
        super().__init__(reason)
        self.done, self.reason = done, reason


def _read_in_workers(pool: ProcessPoolExecutor, files: list[FileRef],
                     cancel: Callable[[], bool] | None) -> Iterator[tuple[int, Outcome | None]]:
    """Chunks of files parsed by the pool, a few in flight, handed on in file order."""
    chunks = [files[i:i + CHUNK_FILES] for i in range(0, len(files), CHUNK_FILES)]
    window = 2 * worker_pool.default_workers()
    in_flight: dict[Future, int] = {}
    finished: dict[int, list[Outcome]] = {}
    submitted = handed = done = 0
    try:
        while handed < len(chunks):
            if cancel is not None and cancel():
                yield done, None
                return
            while submitted < len(chunks) and len(in_flight) < window:
                try:
                    in_flight[pool.submit(read_outcomes_lean, chunks[submitted])] = submitted
                except Exception as exc:  # BrokenProcessPool, or a pool shut down meanwhile
                    raise _PoolFailed(done, f"{type(exc).__name__}: {exc}") from exc
                submitted += 1
            ready, _ = wait(in_flight, timeout=0.1, return_when=FIRST_COMPLETED)
            for future in ready:
                index = in_flight.pop(future)
                try:
                    finished[index] = future.result()
                except Exception as exc:  # BrokenProcessPool, or a worker that could not start
                    raise _PoolFailed(done, f"{type(exc).__name__}: {exc}") from exc
            while handed in finished:
                for outcome in finished.pop(handed):
                    if isinstance(outcome, ImageFile):
                        for header in outcome.headers:
                            header.reread = partial(reread_dataset, outcome.ref)
                    done += 1
                    yield done, outcome
                handed += 1
    finally:
        for future in in_flight:
            future.cancel()


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
    ds = next(image.headers[0].full_dataset() for image in images if image.study_uid == main_uid)

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
    patients = {image.patient_id for image in images}
    if len(patients) > 1:
        study.warnings.append(f"Images of {len(patients)} different patient IDs were found in this path")


def _tag_text(ds: object, keyword: str) -> str:
    try:
        return str(ds.get(keyword, "") or "").strip()  # type: ignore[attr-defined]
    except Exception:  # an undecodable value leaves the field empty
        log.debug("%s of the study cannot be decoded", keyword, exc_info=True)
        return ""
