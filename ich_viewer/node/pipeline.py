"""From "receiving" to a result: completion by quiet time, then one analysis at a time.

The analysis itself is a plain function ``analyser(folder, study_uid, state)`` (the
``tasks.TaskState`` protocol: it may check ``state.cancelled()``), handed in by whoever
starts the node, so this package never imports the classifier. ``commands.node`` builds
it on ``analyze_study``, the code path of ``ich-viewer analyze``.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol

from ich_viewer import LABELS

from ich_viewer.node.store import Store
from ich_viewer.node.worklist import Worklist
from ich_viewer.tasks import TaskState

log = logging.getLogger(__name__)

POLL_S = 0.1
"""How often the pipeline looks for studies that became quiet."""


@dataclass(frozen=True)
class Outcome:
    """What one analysis found, in the worklist's terms."""

    status: str
    """"flagged", "negative" or "failed"."""
    suspected: list[str] = field(default_factory=list)
    flagged_slices: int = 0
    reason: str = ""
    documents: list[Path] = field(default_factory=list)
    """SR, key images, KOS written into the node's results folder."""


def outcome_of(predictions: Iterable[Any]) -> Outcome:
    """A study's status from its series' predictions (``SeriesPrediction``-like: ``flagged_slices``,
    ``suspected_labels()``): flagged with the subtypes found ("any" alone when none), else negative.

    One rule for the node and the window, so a study gets the same status wherever it was classified.
    """
    flagged, found = 0, set()
    for prediction in predictions:
        flagged += len(prediction.flagged_slices)
        found.update(prediction.suspected_labels())
    suspected = [label for label in LABELS if label in found and label != "any"]
    if flagged and not suspected:
        suspected = ["any"]
    return Outcome("flagged" if flagged else "negative", suspected, flagged)


class Analyser(Protocol):
    def __call__(self, folder: Path, results_dir: Path, state: TaskState) -> Outcome: ...


class Pipeline:
    """One background thread: takes the next quiet study, analyses it, writes the result."""

    def __init__(self, worklist: Worklist, store: Store, analyser: Analyser, *, quiet_s: float) -> None:
        self.worklist = worklist
        self.store = store
        self.analyser = analyser
        self.quiet_s = quiet_s
        self._state = TaskState()
        self._thread: threading.Thread | None = None
        self.completed: list[tuple[str, Outcome, float]] = []
        """(study UID, outcome, seconds from the study's last instance to its result)."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ich-node-analysis", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Cancel (an analysis stops between slices at most) and wait for the thread."""
        self._state.cancel()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._state.cancelled():
            try:
                entry = self.worklist.take_due(self.quiet_s)
            except Exception:
                log.exception("worklist unavailable")
                entry = None
            if entry is None:
                time.sleep(POLL_S)
                continue
            self.analyse(entry.study_instance_uid, Path(entry.folder), entry.last_received_at)

    def analyse(self, study_uid: str, folder: Path, last_received_at: float) -> Outcome:
        log.info("analysing study %s (%s)", study_uid, folder.name)
        try:
            outcome = self.analyser(folder, self.store.results_folder(study_uid), self._state)
        except Exception as exc:  # the node keeps serving; the worklist says why
            log.exception("analysis of %s failed", study_uid)
            outcome = Outcome("failed", reason=f"{type(exc).__name__}: {exc}")
        if self._state.cancelled():
            return outcome  # left "analysing": requeued when the node starts again
        current = self.worklist.finish(study_uid, outcome.status, suspected=outcome.suspected,
                                       flagged_slices=outcome.flagged_slices, reason=outcome.reason)
        latency = time.time() - last_received_at - self.quiet_s
        if current:
            self.completed.append((study_uid, outcome, latency))
            log.info("study %s: %s %s (%.2f s after the quiet time)", study_uid, outcome.status,
                     ", ".join(outcome.suspected), latency)
        else:
            log.info("study %s received more instances during analysis; it will be analysed again", study_uid)
        return outcome
