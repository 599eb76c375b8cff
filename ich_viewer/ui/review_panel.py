"""Reviewing the classifier's flags in the window: A / R / U keys, a note, a list, and export.

Fewer keystrokes: Enter accepts the run of flagged slices on screen and goes to the next
run (N / P jump by runs too); Shift+A / Shift+R accept or reject every flag of the study
still undecided. The decision on the slice on screen is written over the image.

Decisions go straight to ``report.review.ReviewStore`` (the program's data folder, keyed
by study and series UID) and come back when the study is opened again. Predictions come
from the inference controller (``window.extensions["inference"]``); without it the panel says so.
"""
from __future__ import annotations

import html
import logging
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from ich_viewer.dicom.model import Series
from ich_viewer.imaging.palette import SHORT_NAMES, band_labels
from ich_viewer.options import ViewOptions
from ich_viewer.report.atomic import ExportError
from ich_viewer.report.decisions import ACCEPTED, REJECTED, UNDECIDED, Decision, slice_key
from ich_viewer.report.review import ReviewStore, study_key
from ich_viewer.ui.extension import ViewerWindow
from ich_viewer.ui.inference_panel import EXTENSION_NAME as INFERENCE, InferenceController
from ich_viewer.ui.inference_widgets import label_sample_html
from ich_viewer.ui.tasks import TaskRunner

log = logging.getLogger(__name__)

STATE_TEXT = {ACCEPTED: "Accepted", REJECTED: "Rejected", UNDECIDED: "Undecided"}
ON_IMAGE = {ACCEPTED: ("✓ Flag accepted", QColor("#7fe0a0")), REJECTED: ("✗ Flag rejected", QColor("#ff9c8a")),
            UNDECIDED: ("Flag not reviewed · A / R / Enter", QColor("#d0d0d0"))}
"""What the image says about the flag of the slice on screen (text, colour)."""
OVERLAY_OWNER = "review"
COLUMNS = ("Im", "Flagged", "Decision", "Note")

EXPORT_WAIT_S = 30.0
"""On close, a running export may finish (its files are atomic, but an exit mid-write leaves
temporary files behind)."""
SEND_WAIT_S = 5.0
"""On close, a send to PACS is cancelled (between objects) and waited for this long."""


class ReviewPanel(QWidget):
    """The list of flagged slices of the shown series, with the current slice's controls."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("No predictions yet.")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("review_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the image
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the note is elided
        self.current = QLabel("")
        self.accept_button = QPushButton("Accept (A)")
        self.reject_button = QPushButton("Reject (R)")
        self.undecided_button = QPushButton("Undecided (U)")
        self.accept_next_button = QPushButton("Run ▸ (Enter)")
        self.accept_next_button.setToolTip("Accept every flagged slice of this run and go to the next run")
        self.accept_next_button.setObjectName("review_accept_next")
        self.accept_study_button = QPushButton("All ✓ (⇧A)")
        self.reject_study_button = QPushButton("All ✗ (⇧R)")
        self.accept_study_button.setToolTip("Accept every flag of this study not yet accepted or rejected (Shift+A)")
        self.reject_study_button.setToolTip("Reject every flag of this study not yet accepted or rejected (Shift+R)")
        for button in (self.accept_button, self.reject_button, self.undecided_button, self.accept_next_button,
                       self.accept_study_button, self.reject_study_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setStyleSheet("padding: 4px 4px;")  # three a row in a narrow column
        self.note = QLineEdit()
        self.note.setObjectName("review_note")
        self.note.setPlaceholderText("Note for this slice (Enter to save)")
        self.note.setMaxLength(500)
        self.export_button = QPushButton("Export… (Ctrl+E)")
        self.export_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        buttons = QGridLayout()  # three a row: the panel shares a narrow column with the classifier
        for k, button in enumerate((self.accept_button, self.reject_button, self.undecided_button,
                                    self.accept_next_button, self.accept_study_button, self.reject_study_button)):
            buttons.addWidget(button, k // 3, k % 3)
        self.export_button.setToolTip("Export the report: PDF, JSON, CSV, DICOM SR and key images")
        current_row = QHBoxLayout()  # one row for both: the column is short on a 768-pixel screen
        current_row.addWidget(self.current, 1)
        current_row.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(current_row)
        layout.addLayout(buttons)
        layout.addWidget(self.note)


class ReviewController(QObject):
    """One per window: keeps the panel, the keys and the store in step with the shown slice."""

    def __init__(self, window: ViewerWindow, options: ViewOptions | None = None) -> None:
        super().__init__(window)  # type: ignore[arg-type]  # a QMainWindow in practice
        self.window = window
        self.store = ReviewStore()
        self.panel = ReviewPanel()
        self.dock = window.add_side_panel(self.panel, "Review")
        self._rows: list[int] = []
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(200)
        self._refresh_timer.timeout.connect(self.refresh)
        self._connected_inference: InferenceController | None = None
        self.export_job = TaskRunner(self)
        """Runs the export off the UI thread (``ui.export_dialog.run_export``)."""
        self.export_job.done.connect(self._on_export_done)
        self.export_job.failed.connect(self._on_export_failed)
        self.last_export: Any = None
        """The ExportResult of the last export that succeeded."""
        self.export_dialog: Any = None
        self.pending_send: Any = None
        """The ``export_dialog.SendRequest`` of the running export ("Send to PACS"), else None."""
        self.send_job = TaskRunner(self)
        """C-STOREs an export's DICOM objects (``ui.export_dialog.start_send``)."""
        self.send_job.done.connect(self._on_sent)
        self.send_job.failed.connect(self._on_send_failed)
        self.last_send: str | None = None
        """What the last send that succeeded said ("Sent 3 DICOM object(s) to …")."""
        self._build_actions()

        self.panel.accept_button.clicked.connect(lambda: self.set_state(ACCEPTED))
        self.panel.reject_button.clicked.connect(lambda: self.set_state(REJECTED))
        self.panel.undecided_button.clicked.connect(lambda: self.set_state(UNDECIDED))
        self.panel.accept_next_button.clicked.connect(self.accept_run_and_next)
        self.panel.accept_study_button.clicked.connect(lambda: self.set_study_state(ACCEPTED))
        self.panel.reject_study_button.clicked.connect(lambda: self.set_study_state(REJECTED))
        self.panel.note.returnPressed.connect(self.save_note)
        self.panel.note.editingFinished.connect(self.save_note)
        self.panel.export_button.clicked.connect(self.show_export_dialog)
        self.panel.table.cellClicked.connect(self._on_row_clicked)
        window.study_opened.connect(lambda *_: self._on_study_changed())
        window.study_closing.connect(self._on_study_changed)
        window.series_shown.connect(lambda *_: self.refresh())
        window.slice_changed.connect(lambda *_: self._show_current())
        window.installEventFilter(self)
        self._connect_inference()
        self.refresh()

    # -- wiring ------------------------------------------------------------------------
    def _build_actions(self) -> None:
        specs = (
            ("review_accept", "Accept flag on this slice", lambda: self.set_state(ACCEPTED), "A"),
            ("review_reject", "Reject flag on this slice", lambda: self.set_state(REJECTED), "R"),
            ("review_undecided", "Mark flag undecided", lambda: self.set_state(UNDECIDED), "U"),
            ("review_accept_next", "Accept this run of flagged slices, go to the next run", self.accept_run_and_next,
             ("Return", "Enter")),
            ("review_accept_study", "Accept every open flag of the study", lambda: self.set_study_state(ACCEPTED),
             "Shift+A"),
            ("review_reject_study", "Reject every open flag of the study", lambda: self.set_study_state(REJECTED),
             "Shift+R"),
            ("review_note", "Edit note for this slice", self.focus_note, "Ctrl+Shift+N"),
            ("export_report", "&Export report…", self.show_export_dialog, "Ctrl+E"),
        )
        self.actions: dict[str, QAction] = {
            name: self.window.add_action(name, text, slot, (key,) if isinstance(key, str) else key)
            for name, text, slot, key in specs}
        menu = self.window.menu("View").addMenu("&Review")
        for name in ("review_accept", "review_reject", "review_undecided", "review_accept_next", "review_accept_study",
                     "review_reject_study", "review_note"):
            menu.addAction(self.actions[name])
        self.window.menu("File").addAction(self.actions["export_report"])

    def inference(self) -> InferenceController | None:
        """The inference controller (it may be attached after this extension)."""
        controller = self.window.extensions.get(INFERENCE, InferenceController)
        if controller is not None and controller is not self._connected_inference:
            self._connect_inference(controller)
        return controller

    def _connect_inference(self, controller: InferenceController | None = None) -> None:
        controller = controller or self.window.extensions.get(INFERENCE, InferenceController)
        if controller is None or controller is self._connected_inference:
            return
        self._connected_inference = controller
        for signal in (controller.slice_predicted, controller.series_finished):
            signal.connect(lambda *_: self._refresh_timer.start())

    def _on_study_changed(self) -> None:
        self.store.forget_cache()  # another window may have reviewed the same study
        self.panel.note.clear()
        self.refresh()

    # -- what is shown -------------------------------------------------------------------
    def _series(self) -> Series:
        """The shown series, where ``_key()`` already said there is one."""
        series = self.window.current_series()
        assert series is not None
        return series

    def _key(self) -> tuple[str, str] | None:
        study, series = self.window.current_study(), self.window.current_series()
        if study is None or series is None:
            return None
        return study_key(study.study_uid, study.source), series.series_uid

    def flagged_predictions(self) -> list[Any]:
        series, controller = self.window.current_series(), self.inference()
        if series is None or controller is None:
            return []
        prediction = controller.series_prediction(series)
        return [] if prediction is None else prediction.flagged_slices

    def decision_at(self, index: int) -> Decision:
        key, series = self._key(), self.window.current_series()
        if key is None or series is None or not 0 <= index < len(series.slices):
            return Decision()
        return self.store.decision(key[0], key[1], slice_key(series.slices[index]))

    def refresh(self) -> None:
        flagged = self.flagged_predictions()
        table = self.panel.table
        table.setRowCount(len(flagged))
        self._rows = [p.index for p in flagged]
        counts = {ACCEPTED: 0, REJECTED: 0, UNDECIDED: 0}
        shown = self.window.current_series()
        n = len(shown) if shown is not None else 0
        for row, prediction in enumerate(flagged):
            decision = self.decision_at(prediction.index)
            counts[decision.state] += 1
            labels = band_labels(prediction.flagged)
            flagged_item = QTableWidgetItem(" ".join(SHORT_NAMES[label] for label in labels))
            cells = (QTableWidgetItem(f"{prediction.index + 1}/{n}"), flagged_item,
                     QTableWidgetItem(STATE_TEXT[decision.state]), QTableWidgetItem(decision.note))
            for column, item in enumerate(cells):
                table.setItem(row, column, item)
            # each subtype in its colour with its marker, as in the plot and legend
            sample = QLabel(" ".join(f"{label_sample_html(label)}&nbsp;{SHORT_NAMES[label]}" for label in labels))
            sample.setTextFormat(Qt.TextFormat.RichText)
            sample.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            flagged_item.setForeground(QColor(0, 0, 0, 0))  # the label shows it; the item keeps the text
            table.setCellWidget(row, 1, sample)
        if self.inference() is None:
            self.panel.summary.setText("No classifier in this window: nothing to review.")
        elif not flagged:
            self.panel.summary.setText("No flagged slices in this series (yet).")
        else:
            reviewed = counts[ACCEPTED] + counts[REJECTED]
            self.panel.summary.setText(
                f"<b>{len(flagged)} flagged</b> · reviewed {reviewed} (accepted {counts[ACCEPTED]}, "
                f"rejected {counts[REJECTED]}) · undecided {counts[UNDECIDED]}"
            )
        self._show_current()

    def _show_current(self) -> None:
        index = self.window.current_index()
        series = self.window.current_series()
        flagged = self._is_flagged(index)
        table = self.panel.table
        table.blockSignals(True)
        table.clearSelection()
        if index in self._rows:
            row = self._rows.index(index)
            table.selectRow(row)
            item = table.item(row, 0)
            if item is not None:
                table.scrollToItem(item)
        table.blockSignals(False)
        for button in (self.panel.accept_button, self.panel.reject_button, self.panel.undecided_button,
                       self.panel.accept_next_button):
            button.setEnabled(flagged)
        self.panel.note.setEnabled(flagged)
        overlays = self.window.image_view().overlays
        if series is None:
            self.panel.current.setText("")
            overlays.set_line(OVERLAY_OWNER, "")
            return
        decision = self.decision_at(index)
        text, colour = ON_IMAGE[decision.state] if flagged else ("", None)
        overlays.set_line(OVERLAY_OWNER, text, colour or QColor())
        if flagged:
            self.panel.current.setText(f"Im {index + 1}: <b>{html.escape(STATE_TEXT[decision.state])}</b>")
        else:
            self.panel.current.setText(f"Im {index + 1}: not flagged")
        if not self.panel.note.hasFocus():
            self.panel.note.setText(decision.note if flagged else "")

    def _is_flagged(self, index: int) -> bool:
        controller = self.inference()
        if controller is None:
            return False
        prediction = controller.prediction_at(index)
        return prediction is not None and bool(prediction.flagged)

    def _on_row_clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self._rows):
            self.window.set_slice(self._rows[row])

    # -- changes ---------------------------------------------------------------------------
    def set_state(self, state: str, index: int | None = None) -> bool:
        """Record ``state`` for a flagged slice (default: the current one); False when it is not flagged."""
        index = self.window.current_index() if index is None else index
        key = self._key()
        if key is None:
            return False
        if not self._is_flagged(index):
            self.window.show_status(f"Im {index + 1} is not flagged: nothing to accept or reject", 4000)
            return False
        header = self._series().slices[index]
        try:
            self.store.set_decision(key[0], key[1], slice_key(header), state=state)
        except ExportError as exc:
            self.window.show_error("Decision not saved", str(exc))
            return False
        self.window.show_status(f"Im {index + 1}: {STATE_TEXT[state].lower()}", 3000)
        self.refresh()
        return True

    def accept_run_and_next(self) -> bool:
        """Enter: accept every flagged slice of the run on screen, then go to the next run."""
        controller, key = self.inference(), self._key()
        index = self.window.current_index()
        run = controller.session.run_at(index) if controller is not None else None
        if key is None or controller is None or run is None:
            self.window.show_status(f"Im {index + 1} is not flagged: nothing to accept (N: next flagged run)", 4000)
            return False
        series = self._series()
        try:
            for i in range(run[0], run[1] + 1):
                self.store.set_decision(key[0], key[1], slice_key(series.slices[i]), state=ACCEPTED)
        except ExportError as exc:
            self.window.show_error("Decision not saved", str(exc))
            return False
        span = f"Im {run[0] + 1}" if run[0] == run[1] else f"Im {run[0] + 1}-{run[1] + 1}"
        target = controller.session.jump_target(run[1], 1)
        if target is not None:
            self.window.set_slice(target)
        where = f"; now Im {target + 1}" if target is not None else "; that was the last run"
        self.window.show_status(f"{span}: accepted{where}", 4000)
        self.refresh()
        return True

    def set_study_state(self, state: str) -> int:
        """Shift+A / Shift+R: ``state`` for every flag of the study still undecided; returns how many."""
        study = self.window.current_study()
        if study is None:
            return 0
        key = study_key(study.study_uid, study.source)
        changed = 0
        try:
            for series, prediction in self.results():
                for flagged in prediction.flagged_slices:
                    slice_id = slice_key(series.slices[flagged.index])
                    if self.store.decision(key, series.series_uid, slice_id).state == UNDECIDED:
                        self.store.set_decision(key, series.series_uid, slice_id, state=state)
                        changed += 1
        except ExportError as exc:
            self.window.show_error("Decisions not saved", str(exc))
        self.window.show_status(f"{changed} open flag(s) of the study {STATE_TEXT[state].lower()}", 4000)
        self.refresh()
        return changed

    def save_note(self) -> None:
        index, key = self.window.current_index(), self._key()
        if key is None or not self._is_flagged(index):
            return
        text = self.panel.note.text().strip()
        header = self._series().slices[index]
        if text == self.store.decision(key[0], key[1], slice_key(header)).note:
            return
        try:
            self.store.set_decision(key[0], key[1], slice_key(header), note=text)
        except ExportError as exc:
            self.window.show_error("Note not saved", str(exc))
            return
        self.window.show_status(f"Im {index + 1}: note saved", 3000)
        self.refresh()

    def focus_note(self) -> None:
        if self.panel.note.isEnabled():
            self.dock.show()
            self.panel.note.setFocus()
            self.panel.note.selectAll()

    # -- export ------------------------------------------------------------------------------
    def results(self) -> list[tuple[Any, Any]]:
        controller = self.inference()
        return [] if controller is None else controller.results_for_study()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def shutdown(self, timeout_s: float = EXPORT_WAIT_S) -> bool:
        """Let a running export finish (bounded); True when no export thread is left."""
        if self.export_dialog is not None:
            self.export_dialog.close()
        self.pending_send = None  # an export finishing now starts no send
        exported = self.export_job.wait(timeout_s)
        return self.send_job.shutdown(SEND_WAIT_S) and exported

    def _on_export_done(self, outcome: Any) -> None:
        from ich_viewer.ui.export_dialog import export_done, start_send

        result = export_done(self.window, outcome)
        self.last_export = result or self.last_export
        request, self.pending_send = self.pending_send, None
        if result is not None and request is not None:
            start_send(self, request, result)

    def _on_export_failed(self, text: str) -> None:
        self.pending_send = None
        self.window.show_error("Export failed", text)

    def _on_sent(self, message: object) -> None:
        from ich_viewer.ui.export_dialog import send_done

        self.last_send = send_done(self.window, message)

    def _on_send_failed(self, text: str) -> None:
        from ich_viewer.ui.export_dialog import send_failed

        send_failed(self.window, text)

    def show_export_dialog(self) -> Any:
        from ich_viewer.ui.export_dialog import open_export_dialog

        return open_export_dialog(self)


EXTENSION_NAME = "review"


def attach_review(window: ViewerWindow, options: ViewOptions | None = None) -> ReviewController:
    """Extension entry point (``ui.app.EXTENSIONS``)."""
    controller = ReviewController(window, options)
    window.extensions.add(EXTENSION_NAME, controller)
    return controller
