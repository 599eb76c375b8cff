"""One protocol for background work: TaskState (Qt-free) and the Qt TaskRunner."""
from __future__ import annotations

import threading

import pytest

from ich_viewer.tasks import TaskState, Throttle


def test_throttle_passes_the_first_the_last_and_one_per_interval():
    now = [0.0]
    throttle = Throttle(0.05, clock=lambda: now[0])
    assert throttle.ready(1, 10)
    now[0] = 0.01
    assert not throttle.ready(2, 10)
    assert throttle.ready(10, 10), "the last step always goes"
    now[0] = 0.07
    assert throttle.ready(3, 10)


def test_state_reports_progress_status_and_partials_to_its_listener():
    seen: list[tuple[str, object]] = []
    state = TaskState(lambda kind, value: seen.append((kind, value)), interval_s=3600)
    state.set_progress(1, 3)
    state.set_progress(2, 3)  # throttled away
    state.set_progress(3, 3)
    state.set_status("reading")
    state.set_partial_result({"index": 4})
    assert seen == [("progress", (1, 3)), ("progress", (3, 3)), ("status", "reading"), ("partial", {"index": 4})]
    assert not state.cancelled()
    state.cancel()
    assert state.cancelled()


pytest.importorskip("pytestqt")


@pytest.fixture
def runner(qapp):
    from ich_viewer.ui.tasks import TaskRunner

    runner = TaskRunner()
    yield runner
    assert runner.shutdown(5.0)


def test_runner_delivers_partials_progress_and_the_result_in_order(qtbot, runner):
    events: list[tuple[str, object]] = []
    runner.partial.connect(lambda value: events.append(("partial", value)))
    runner.progress.connect(lambda done, total: events.append(("progress", (done, total))))
    runner.done.connect(lambda value: events.append(("done", value)))

    def work(state: TaskState) -> str:
        for i in range(3):
            state.set_partial_result(i)
        state.set_progress(3, 3)
        return "finished"

    with qtbot.waitSignal(runner.done, timeout=5000):
        runner.start(work)
    assert events == [("partial", 0), ("partial", 1), ("partial", 2), ("progress", (3, 3)), ("done", "finished")]


def test_a_stale_result_of_a_cancelled_task_never_reaches_a_receiver(qtbot, runner):
    """The old task finishes after the new one started: none of its reports may arrive."""
    started, release = threading.Event(), threading.Event()
    received: list[object] = []
    runner.partial.connect(received.append)
    runner.done.connect(received.append)
    runner.failed.connect(received.append)

    def old(state: TaskState) -> str:
        started.set()
        release.wait(5)  # still running when it is superseded
        state.set_partial_result("old partial")
        return "old result"

    def new(state: TaskState) -> str:
        return "new result"

    old_state = runner.start(old)
    assert started.wait(5)
    runner.start(new)  # cancels old; the pool has one thread, so new waits for old to end
    assert old_state.cancelled()
    release.set()
    with qtbot.waitSignal(runner.done, timeout=5000):
        pass
    qtbot.wait(100)  # room for anything late
    assert received == ["new result"]


def test_a_task_superseded_while_queued_never_runs(qtbot, runner):
    release = threading.Event()
    ran: list[str] = []

    def blocker(state: TaskState) -> None:
        release.wait(5)

    runner.start(blocker)
    runner.start(lambda state: ran.append("middle"))
    runner.start(lambda state: ran.append("last"))
    release.set()
    qtbot.waitUntil(runner.is_idle, timeout=5000)
    assert ran == ["last"]


def test_a_failure_is_reported_once_as_text(qtbot, runner, caplog):
    def broken(state: TaskState) -> None:
        raise ValueError("no pixels")

    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.start(broken)
    assert blocker.args == ["ValueError: no pixels"]
    assert "background task failed" in caplog.text, "never swallowed without a log line"
