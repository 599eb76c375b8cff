"""Background work as a plain function ``fn(state)``: one protocol for every task.

Qt-free, so the loader, the classifier and the tests share it without a window;
``ui/tasks.TaskRunner`` runs such a function in a thread and turns what it reports into
Qt signals. Modelled on Orange3's ``TaskState``: the function asks ``state.cancelled()``
between steps and reports progress (throttled here, once for all callers), a status line
and partial results through the state; it never knows who listens.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

PROGRESS_INTERVAL_S = 0.05
"""Progress is reported at most this often (plus the last step), so a UI is not flooded."""

Report = Callable[[str, Any], None]
"""``report(kind, value)``: kind is "progress" ((done, total)), "status" (str) or "partial"."""


class Throttle:
    """True at most once per ``interval_s``, and always for the last step.

    Shared by ``TaskState.set_progress`` and the header loader so there is one rule for
    how often progress may repaint a window.
    """

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def ready(self, done: int, total: int) -> bool:
        now = self._clock()
        with self._lock:
            if done >= total or self._last is None or now - self._last >= self.interval_s:
                self._last = now
                return True
            return False


class TaskState:
    """What a background function sees: a cancel flag and three ways to report.

    ``report`` is called from the worker thread; ``TaskRunner`` passes one that queues
    the report to the UI thread and drops it there once this task is no longer current.
    """

    def __init__(self, report: Report | None = None, *, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self._report = report
        self._cancel = threading.Event()
        self._throttle = Throttle(interval_s)
        self.status = ""

    # -- control (any thread) -------------------------------------------------------
    def cancel(self) -> None:
        """Ask the function to stop at its next check; what it reports later is stale."""
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- reports (the worker thread) --------------------------------------------------
    def set_progress(self, done: int, total: int) -> None:
        """(done, total), throttled to ``PROGRESS_INTERVAL_S``; the last step always goes."""
        if self._report is not None and self._throttle.ready(done, total):
            self._report("progress", (int(done), int(total)))

    def set_status(self, text: str) -> None:
        self.status = text
        if self._report is not None:
            self._report("status", text)

    def set_partial_result(self, value: Any) -> None:
        """One piece of the result (a slice's prediction, a decoded slice index…)."""
        if self._report is not None:
            self._report("partial", value)
