"""Loading off the UI thread: headers in a pool thread, pixels by the BackgroundDecoder.

Every load gets a generation number; each signal carries it and the window ignores
signals from an older generation, so a slow old load can never overwrite a new study.
``shutdown`` cancels everything and waits (bounded) so no thread outlives the window.
"""
from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from ich_viewer.dicom.background import BackgroundDecoder
from ich_viewer.imaging.presets import default_window
from ich_viewer.imaging.windowing import window_to_uint8

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 96
PROGRESS_INTERVAL_S = 0.05


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
    """Runs load_study, the per-series decoder and small decode jobs for one window."""

    progress = Signal(int, int, int)
    """generation, files done, files total."""
    loaded = Signal(int, object)
    """generation, Study."""
    failed = Signal(int, str)
    """generation, readable reason."""
    slice_decoded = Signal(int, str, int)
    """generation, series UID, slice index (the pixels are now in the series cache)."""
    thumbnail_ready = Signal(int, str, object)
    """generation, series UID, uint8 thumbnail (or None when it cannot be decoded)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(3)
        self.generation = 0
        self._cancel = threading.Event()
        self._decoders: list[Any] = []
        self._pending_slice: tuple[int, Any, int] | None = None
        self._slice_job_running = False
        self._lock = threading.Lock()

    # -- headers ---------------------------------------------------------------------
    def start(self, path: str | Callable[[], Any]) -> int:
        """Cancel whatever runs and start reading ``path``; returns the new generation.

        ``path`` may be a function that first produces the path (e.g. generating the
        demo study), so that work also stays off the UI thread.
        """
        self.cancel()
        generation, cancel = self.generation, self._cancel
        self.pool.start(lambda: self._load(generation, path, cancel))
        return generation

    def _load(self, generation: int, path: str | Callable[[], Any], cancel: threading.Event) -> None:
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S or done >= total:
                last[0] = now
                self.progress.emit(generation, done, total)

        try:
            from ich_viewer.dicom.loader import load_study

            if callable(path):
                path = str(path())
            with _CollectorPaused():
                study = load_study(path, progress=progress, cancel=cancel.is_set)
        except Exception as exc:  # any loader failure is shown, never raised into Qt
            log.exception("loading %s failed", path)
            if not cancel.is_set():
                self.failed.emit(generation, f"{type(exc).__name__}: {exc}")
            return
        if not cancel.is_set():
            self.loaded.emit(generation, study)

    # -- pixels ----------------------------------------------------------------------
    def decode_series(self, series: Any, start_index: int) -> None:
        """Decode every slice of ``series`` in the background, nearest ``start_index`` first."""
        self._stop_decoders(wait_s=0.0)
        if all(series.is_decoded(i) for i in range(series.n_slices)):
            return
        generation, uid = self.generation, series.series_uid
        decoder = BackgroundDecoder(
            series, on_slice=lambda i: self.slice_decoded.emit(generation, uid, i), start_index=start_index
        )
        self._decoders.append(decoder)
        decoder.start()

    def request_slice(self, series: Any, index: int) -> None:
        """Decode one slice soon (the one on screen); only the latest request is kept.

        Skipped for the slice a running decoder of this series starts with: it is
        decoded first there, and decoding it twice would only slow both down.
        """
        if any(d.series is series and d.start_index == index and not d.done() for d in self._decoders):
            return
        with self._lock:
            self._pending_slice = (self.generation, series, index)
            if self._slice_job_running:
                return
            self._slice_job_running = True
        self.pool.start(self._decode_pending)

    def _decode_pending(self) -> None:
        while True:
            with self._lock:
                job, self._pending_slice = self._pending_slice, None
                if job is None:
                    self._slice_job_running = False
                    return
            generation, series, index = job
            if generation != self.generation:
                continue
            try:
                series.hu(index)
            except Exception:  # the series remembers the reason; the window shows it
                pass
            self.slice_decoded.emit(generation, series.series_uid, index)

    def request_thumbnails(self, series_list: list[Any]) -> None:
        generation, cancel = self.generation, self._cancel
        self.pool.start(lambda: self._thumbnails(generation, list(series_list), cancel))

    def _thumbnails(self, generation: int, series_list: list[Any], cancel: threading.Event) -> None:
        for series in series_list:
            if cancel.is_set():
                return
            try:
                image = thumbnail_of(series)
            except Exception:
                image = None
            self.thumbnail_ready.emit(generation, series.series_uid, image)

    # -- stopping --------------------------------------------------------------------
    def _stop_decoders(self, wait_s: float) -> bool:
        for decoder in self._decoders:
            decoder.cancel()
        all_done = True
        deadline = time.monotonic() + wait_s
        for decoder in self._decoders:
            all_done &= bool(decoder.wait(max(0.0, deadline - time.monotonic())))
        self._decoders = [d for d in self._decoders if not d.done()]
        return all_done

    def cancel(self) -> None:
        """Stop the current load and decoding without waiting; later signals are stale."""
        self._cancel.set()
        self._stop_decoders(wait_s=0.0)
        self.generation += 1
        self._cancel = threading.Event()

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Cancel everything and wait up to ``timeout_s``; True when all stopped."""
        self._cancel.set()
        self.generation += 1  # anything still queued is now stale
        decoders_done = self._stop_decoders(wait_s=timeout_s)
        pool_done = self.pool.waitForDone(int(timeout_s * 1000))
        if not (decoders_done and pool_done):
            log.warning("background work did not stop within %.1f s", timeout_s)
        return decoders_done and pool_done
