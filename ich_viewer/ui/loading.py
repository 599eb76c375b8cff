"""Loading off the UI thread: headers, thumbnails, the slice on screen, the whole series.

Each is a plain function run by its own ``TaskRunner``; ``cancel`` (a new study) cancels
all four, and a runner drops every late report of a cancelled task, so a slow old load
can never overwrite a new study. ``shutdown`` cancels everything and waits (bounded) so
no thread outlives the window.
"""
from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from ich_viewer.dicom.background import BackgroundDecoder
from ich_viewer.imaging.presets import default_window
from ich_viewer.imaging.windowing import window_to_uint8
from ich_viewer.tasks import TaskState
from ich_viewer.ui.tasks import TaskRunner

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 96
DECODE_POLL_S = 0.05


_gc_lock = threading.Lock()
_gc_pauses = 0


class _CollectorPaused:
    """No automatic garbage collection while headers are read, then freeze what is left.

    Reading thousands of headers allocates millions of small objects; Python's full
    collections over them grow with the heap and hold the GIL for up to half a second
    each, which froze the window (bench_render.py, big folder). The study itself holds
    no reference cycles (it is freed by reference counting), so freezing it after the
    load only spares later collections from rescanning it.
    """

    def __enter__(self) -> None:
        global _gc_pauses
        with _gc_lock:
            _gc_pauses += 1
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        global _gc_pauses
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0:
                gc.freeze()
                gc.enable()


def thumbnail_of(series: Any) -> np.ndarray:
    """8-bit thumbnail of the middle slice in the slice's own window (decodes it)."""
    index = series.n_slices // 2
    hu = series.hu(index)
    center, width = default_window(series.slices[index])
    step = max(1, int(np.ceil(max(hu.shape) / THUMBNAIL_SIZE)))
    return np.ascontiguousarray(window_to_uint8(hu[::step, ::step], center, width))


class StudyLoader(QObject):
    """Headers, thumbnails, the slice on screen and background decoding for one window."""

    progress = Signal(int, int)
    """files done, files total."""
    loaded = Signal(object)
    """Study."""
    failed = Signal(str)
    """readable reason."""
    slice_decoded = Signal(str, int)
    """series UID, slice index (the pixels are now in the series cache, or its error is)."""
    thumbnail_ready = Signal(str, object)
    """series UID, uint8 thumbnail (or None when it cannot be decoded)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.headers = TaskRunner(self)
        self.headers.progress.connect(self.progress)
        self.headers.done.connect(self.loaded)
        self.headers.failed.connect(self.failed)
        self.thumbnails = TaskRunner(self)
        self.thumbnails.partial.connect(self._on_thumbnail)
        self.slice = TaskRunner(self)
        self.slice.done.connect(lambda item: self.slice_decoded.emit(*item))
        self.decoder = TaskRunner(self, threads=2)  # a cancelled decoder winds down while the next starts
        self.decoder.partial.connect(lambda item: self.slice_decoded.emit(*item))
        self._runners = (self.headers, self.thumbnails, self.slice, self.decoder)
        self._decoding: tuple[Any, int, TaskState] | None = None

    def _on_thumbnail(self, item: tuple[str, Any, int]) -> None:
        uid, image, index = item
        self.thumbnail_ready.emit(uid, image)
        # The thumbnail decoded its slice (the middle one, where a series opens): a decoder
        # that started meanwhile skips it, so this is the only news that it is ready.
        self.slice_decoded.emit(uid, index)

    # -- headers ---------------------------------------------------------------------
    def start(self, path: str | Callable[[], Any]) -> TaskState:
        """Cancel whatever runs and start reading ``path``.

        ``path`` may be a function that first produces the path (e.g. generating the
        demo study), so that work also stays off the UI thread.
        """
        self.cancel()
        return self.headers.start(lambda state: _load(path, state))

    # -- pixels ----------------------------------------------------------------------
    def decode_series(self, series: Any, start_index: int) -> None:
        """Decode every slice of ``series`` in the background, nearest ``start_index`` first."""
        self.decoder.cancel()
        self._decoding = None
        if all(series.is_decoded(i) for i in range(series.n_slices)):
            return
        state = self.decoder.start(lambda state: _decode_all(series, start_index, state))
        self._decoding = (series, start_index, state)

    def request_slice(self, series: Any, index: int) -> None:
        """Decode one slice soon (the one on screen); only the latest request is kept.

        Skipped for the slice a running decoder of this series starts with: it is
        decoded first there, and decoding it twice would only slow both down.
        """
        if self._decoding is not None:
            decoding, start, state = self._decoding
            if decoding is series and start == index and not state.cancelled() and not self.decoder.is_idle():
                return
        self.slice.start(lambda state: _decode_one(series, index))

    def request_thumbnails(self, series_list: list[Any]) -> None:
        series_list = list(series_list)
        self.thumbnails.start(lambda state: _thumbnails(series_list, state))

    # -- stopping --------------------------------------------------------------------
    def is_idle(self) -> bool:
        return all(runner.is_idle() for runner in self._runners)

    def cancel(self) -> None:
        """Stop the current load and decoding without waiting; later reports are dropped."""
        for runner in self._runners:
            runner.cancel()
        self._decoding = None

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Cancel everything and wait up to ``timeout_s`` in all; True when all stopped."""
        self.cancel()
        deadline = time.monotonic() + timeout_s
        stopped = True
        for runner in self._runners:
            stopped &= runner.wait(max(0.0, deadline - time.monotonic()))
        if not stopped:
            log.warning("background work did not stop within %.1f s", timeout_s)
        return stopped


def _load(path: str | Callable[[], Any], state: TaskState) -> Any:
    from ich_viewer.dicom.loader import load_study

    if callable(path):
        path = str(path())
    with _CollectorPaused():
        return load_study(path, progress=state.set_progress, cancel=state.cancelled)


def _decode_one(series: Any, index: int) -> tuple[str, int]:
    try:
        series.hu(index)
    except Exception as exc:  # the series remembers the reason; the window shows it
        log.debug("slice %d of %s cannot be decoded: %s", index, series.series_uid, exc)
    return series.series_uid, index


def _decode_all(series: Any, start_index: int, state: TaskState) -> None:
    """The BackgroundDecoder as a task: each decoded slice is a partial result."""
    uid = series.series_uid
    decoder = BackgroundDecoder(series, on_slice=lambda i: state.set_partial_result((uid, i)),
                                start_index=start_index).start()
    while not decoder.wait(DECODE_POLL_S):
        if state.cancelled():
            decoder.cancel()


def _thumbnails(series_list: list[Any], state: TaskState) -> None:
    for series in series_list:
        if state.cancelled():
            return
        try:
            image = thumbnail_of(series)
        except Exception as exc:
            log.info("no thumbnail for %s: %s", series.series_uid, exc)
            image = None
        state.set_partial_result((series.series_uid, image, series.n_slices // 2))
