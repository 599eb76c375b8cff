"""Studies the reader opens in the window go into the worklist too, with the classifier's verdict.

The worklist is the index of received *and* opened studies. A study opened from a folder
(File > Open, a path on the command line, a demo) gets a row keyed by its Study Instance
UID, so opening it again is the same row; its status is what the window's classifier
says once a run completes (flagged with subtypes / negative / failed with the reason).
Only the index in the program's data folder is written: never the study folder. A study
the node received keeps its own row; opening it changes nothing here.
"""
from __future__ import annotations

import logging
import sqlite3
from typing import Any, Protocol

from PySide6.QtCore import QObject

from ich_viewer.dicom.model import Series, Study
from ich_viewer.node.pipeline import outcome_of
from ich_viewer.node.worklist import Worklist
from ich_viewer.ui.extension import ViewerWindow
from ich_viewer.ui.inference_panel import EXTENSION_NAME as INFERENCE, InferenceController



class WorklistOwner(Protocol):
    """What the tracker needs of the worklist controller that owns it (``worklist_panel``
    imports this module, never the other way round)."""

    def refresh(self) -> None: ...
    def worklist(self) -> Worklist: ...

log = logging.getLogger(__name__)

CLOSED_EARLY = "not analysed: the study was closed before the classifier finished"


def identity_of(study: Study) -> dict[str, str]:
    """Patient and study fields as the worklist stores them (StudyTime from the first slice's header)."""
    study_time = ""
    for series in study.series:
        dataset = series.slices[0].full_dataset() if series.slices else None
        if dataset is not None:
            study_time = str(dataset.get("StudyTime", "") or "").strip()
            break
    return {"patient_id": study.patient_id, "patient_name": study.patient_name, "study_date": study.study_date,
            "study_time": study_time, "description": study.study_description}


class OpenedStudies(QObject):
    """Adds the study on screen to the worklist and records what the classifier gives it."""

    def __init__(self, controller: WorklistOwner, window: ViewerWindow) -> None:
        super().__init__(controller)  # type: ignore[arg-type] # the owner is a QObject
        self.controller = controller
        self.window = window
        self.study_uid: str | None = None
        """The opened study whose row this window updates (None: none, or a received study)."""
        self._connected: InferenceController | None = None
        self._shut = False
        window.study_opened.connect(self.on_study_opened)
        window.study_closing.connect(self.on_study_closing)

    def inference(self) -> InferenceController | None:
        """The classifier extension, looked up when needed (it may be attached after the worklist)."""
        controller = self.window.extensions.get(INFERENCE, InferenceController)
        if controller is not None and controller is not self._connected:
            self._connected = controller
            controller.series_finished.connect(self._on_series_finished)
            controller.series_failed.connect(self._on_series_failed)
            controller.model_ready.connect(self._on_model_ready)
        return controller

    # -- window events -----------------------------------------------------------------
    def on_study_opened(self, study: Study) -> None:
        self.study_uid = None
        if self._shut:
            return
        if not study.study_uid:
            log.info("%s has no Study Instance UID: not added to the worklist", study.source)
            return
        images = sum(len(series) for series in study.series)
        added = self._write(lambda wl: wl.add_opened(study_uid=study.study_uid, folder=str(study.source),
                                                     identity=identity_of(study), images=images))
        if not added:
            return
        self.study_uid = study.study_uid
        inference = self.inference()
        if inference is None:
            self._record("failed", reason="not analysed: no classifier in this window", only_if_analysing=True)
        elif inference.session.loaded is None and not self._loading(inference):
            self._record("failed", reason=f"not analysed: {inference.session.reason or 'no classifier'}",
                         only_if_analysing=True)
        self.controller.refresh()

    def on_study_closing(self) -> None:
        """A run that never completed leaves no "analysing" row behind."""
        if self.study_uid is not None:
            self._record("failed", reason=CLOSED_EARLY, only_if_analysing=True)
            self.study_uid = None
            self.controller.refresh()

    def shutdown(self) -> None:
        """The window closes (before its study does): settle the row now, then stay quiet."""
        self.on_study_closing()
        self._shut = True

    # -- classifier events -------------------------------------------------------------
    def _on_series_finished(self, _series: Series, _prediction: Any) -> None:
        study, inference = self.window.current_study(), self._connected
        if self.study_uid is None or study is None or inference is None or study.study_uid != self.study_uid:
            return
        complete = [inference.series_prediction(s) for s in study.series if inference.session.is_complete(s)]
        outcome = outcome_of(p for p in complete if p is not None)
        self._record(outcome.status, suspected=outcome.suspected, flagged_slices=outcome.flagged_slices)

    def _on_series_failed(self, _series: Series, reason: str) -> None:
        """Failed only while no series of the study has a result (a scout never hides a flag)."""
        study, inference = self.window.current_study(), self._connected
        if self.study_uid is None or study is None or inference is None:
            return
        if any(inference.session.is_complete(s) for s in study.series):
            return
        self._record("failed", reason=reason)

    def _on_model_ready(self) -> None:
        inference = self._connected
        if self.study_uid is not None and inference is not None and inference.session.loaded is None:
            self._record("failed", reason=f"not analysed: {inference.session.reason or 'no classifier'}",
                         only_if_analysing=True)

    # -- the index ---------------------------------------------------------------------
    @staticmethod
    def _loading(inference: InferenceController) -> bool:
        from ich_viewer.inference.session import ModelState

        return inference.session.model_state is ModelState.LOADING

    def _record(self, status: str, *, suspected: list[str] | None = None, flagged_slices: int = 0,
                reason: str = "", only_if_analysing: bool = False) -> None:
        uid = self.study_uid
        if uid is None or self._shut:
            return
        self._write(lambda wl: wl.record_opened(uid, status, suspected=suspected, flagged_slices=flagged_slices,
                                                reason=reason, only_if_analysing=only_if_analysing))
        self.controller.refresh()

    def _write(self, change: Any) -> bool:
        """One short write to the index; a locked or broken index is said, never raised into Qt."""
        try:
            return bool(change(self.controller.worklist()))
        except (sqlite3.Error, OSError, ValueError) as exc:
            log.warning("worklist not updated: %s", exc)
            self.window.show_status(f"Worklist not updated: {exc}", 8000)
            return False
