"""The one Qt runner for background work: ``fn(TaskState)`` in a pool thread.

Starting a task cancels the one before it. Every report of a task travels to the UI
thread with the task's state and is dropped there, in ``_deliver``, unless that task is
still the current one, so a receiver never has to ask "is this still mine?" and a late
result of a cancelled task can never reach it. ``shutdown`` cancels and waits, bounded.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QThreadPool, Signal

from ich_viewer.tasks import TaskState

log = logging.getLogger(__name__)

TaskFn = Callable[[TaskState], Any]


class TaskRunner(QObject):
    """Runs the latest ``fn(state)``; signals only ever speak of the current task."""

    progress = Signal(int, int)
    """done, total (throttled by TaskState)."""
    status = Signal(str)
    partial = Signal(object)
    """One partial result, in the order the function reported them."""
    done = Signal(object)
    """What the function returned."""
    failed = Signal(str)
    """The exception the function raised, as readable text (also logged)."""

    _report = Signal(object, str, object)
    """Internal: (state, kind, value) from the worker thread to this object's thread."""

    def __init__(self, parent: QObject | None = None, *, threads: int = 1) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._state: TaskState | None = None
        self._report.connect(self._deliver)

    def start(self, fn: TaskFn) -> TaskState:
        """Cancel the current task and queue ``fn``; returns the new task's state."""
        self.cancel()
        state = TaskState(lambda kind, value: self._send(state, kind, value))
        self._state = state
        self.pool.start(lambda: self._run(state, fn))
        return state

    def _run(self, state: TaskState, fn: TaskFn) -> None:
        if state.cancelled():  # superseded while queued: never run it
            return
        try:
            value = fn(state)
        except Exception as exc:  # shown by the receiver, never raised into Qt
            log.exception("background task failed")
            self._send(state, "failed", f"{type(exc).__name__}: {exc}")
            return
        self._send(state, "done", value)

    def _send(self, state: TaskState, kind: str, value: Any) -> None:
        """From the worker thread; the runner may be gone already (its window was destroyed)."""
        try:
            self._report.emit(state, kind, value)
        except RuntimeError:  # the C++ object was deleted: nobody is left to tell
            log.debug("%s report of a task whose runner was deleted", kind)

    def _deliver(self, state: TaskState, kind: str, value: Any) -> None:
        if state is not self._state or state.cancelled():
            return  # a late report of a cancelled or superseded task
        if kind == "progress":
            self.progress.emit(*value)
        elif kind == "status":
            self.status.emit(value)
        elif kind == "partial":
            self.partial.emit(value)
        elif kind == "done":
            self.done.emit(value)
        else:
            self.failed.emit(value)

    def current(self) -> TaskState | None:
        """The state of the task whose reports are delivered (None after ``cancel``)."""
        return self._state

    def cancel(self) -> None:
        """Stop the current task at its next check, without waiting; its reports are dropped."""
        if self._state is not None:
            self._state.cancel()
        self._state = None

    def is_idle(self) -> bool:
        return self.pool.activeThreadCount() == 0

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the pool to empty; True when it did."""
        return bool(self.pool.waitForDone(int(timeout_s * 1000)))

    def shutdown(self, timeout_s: float = 3.0) -> bool:
        """Cancel and wait up to ``timeout_s``; True when the thread stopped."""
        self.cancel()
        done = self.wait(timeout_s)
        if not done:
            log.warning("a background task did not stop within %.1f s", timeout_s)
        return done
