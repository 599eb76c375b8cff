"""The one Qt piece of inference: runs ``predict()`` (and Grad-CAM) off the UI thread.

Every run gets a generation number carried by each signal; the receiver ignores
signals whose generation is not the current one, so a cancelled run can never paint
over a newer series. ``cancel`` never blocks; ``shutdown`` cancels and waits (bounded).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, QThreadPool, Signal

log = logging.getLogger(__name__)


class InferenceRunner(QObject):
    """One series at a time through ``predict()`` in a single pool thread."""

    started = Signal(int, str, int)
    """generation, series UID, number of slices."""
    result = Signal(int, str, object)
    """generation, series UID, SlicePrediction."""
    progress = Signal(int, int, int)
    """generation, slices done, total."""
    finished = Signal(int, str, bool, object)
    """generation, series UID, cancelled?, {index: reason} for unreadable slices."""
    failed = Signal(int, str, str)
    """generation, series UID, readable reason."""

    def __init__(self, parent: QObject | None = None, *, batch_size: int = 4, threads: int | None = None) -> None:
        """``threads``: torch CPU threads while running (None = leave torch's setting)."""
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.generation = 0
        self.batch_size = batch_size
        self.threads = threads
        self._cancel = threading.Event()
        self._running_uid: str | None = None

    def start(self, series: Any, loaded: Any, start_index: int | None = None) -> int:
        """Cancel the current run and start ``series``; returns the new generation."""
        from ich_viewer.inference.predict import PredictState  # torch: never on the import path of the UI

        self.cancel()
        generation, cancel = self.generation, self._cancel
        state = PredictState(loaded, batch_size=self.batch_size, first_batch=1, start_index=start_index,
                             cancel=cancel, threads=self.threads,
                             progress=lambda done, total: self.progress.emit(generation, done, total))
        self._running_uid = series.series_uid
        self.pool.start(lambda: self._run(generation, series, state))
        return generation

    def _run(self, generation: int, series: Any, state: Any) -> None:
        from ich_viewer.inference.predict import predict

        uid = series.series_uid
        if state.cancelled():
            return
        self.started.emit(generation, uid, len(series))
        try:
            for prediction in predict(series, state):
                if state.cancelled():
                    break
                self.result.emit(generation, uid, prediction)
        except Exception as exc:  # shown in the window, never raised into Qt
            log.exception("inference failed on %s", uid)
            self.failed.emit(generation, uid, f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(generation, uid, state.cancelled(), dict(state.errors))

    def cancel(self) -> None:
        """Stop the current run at its next batch boundary; its later signals are stale."""
        self._cancel.set()
        self._cancel = threading.Event()
        self.generation += 1
        self._running_uid = None

    def is_idle(self) -> bool:
        return self.pool.activeThreadCount() == 0

    def wait(self, timeout_s: float) -> bool:
        return self.pool.waitForDone(int(timeout_s * 1000))

    def shutdown(self, timeout_s: float = 3.0) -> bool:
        """Cancel and wait up to ``timeout_s``; True when the thread stopped."""
        self.cancel()
        done = self.wait(timeout_s)
        if not done:
            log.warning("inference did not stop within %.1f s", timeout_s)
        return done


class LatestJob(QObject):
    """Runs the most recent request only (e.g. Grad-CAM of the slice on screen).

    Requests made while a job runs replace each other; the finished job's result is
    emitted with the generation it was requested under.
    """

    done = Signal(int, object)
    """generation, result."""
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.generation = 0
        self._pending: tuple[int, Callable[[], Any]] | None = None
        self._busy = False
        self._lock = threading.Lock()

    def request(self, job: Callable[[], Any]) -> int:
        with self._lock:
            self.generation += 1
            self._pending = (self.generation, job)
            if self._busy:
                return self.generation
            self._busy = True
        self.pool.start(self._drain)
        return self.generation

    def _drain(self) -> None:
        while True:
            with self._lock:
                item, self._pending = self._pending, None
                if item is None:
                    self._busy = False
                    return
            generation, job = item
            try:
                self.done.emit(generation, job())
            except Exception as exc:
                log.exception("background job failed")
                self.failed.emit(generation, f"{type(exc).__name__}: {exc}")

    def cancel(self) -> None:
        with self._lock:
            self._pending = None
            self.generation += 1

    def shutdown(self, timeout_s: float = 3.0) -> bool:
        self.cancel()
        return self.pool.waitForDone(int(timeout_s * 1000))
