"""The worklist in the window: what the DICOM node received, flagged studies on top.

The panel reads the node's SQLite index (``node.worklist``) every second and redraws
only when it changed, so it follows a node running in this window (the "Receive"
toggle) or in another process (``ich-viewer serve`` on the same data folder) alike.
Studies opened in the window are listed too (``ui.worklist_opened``), with the
status the window's classifier gives them. Double-click opens a study (from the
node's store, or the folder it was opened from). Query/retrieve runs as a
``TaskRunner`` task with a progress bar and Cancel. The node settings live in
QSettings (``node/*``), the same values ``ich-viewer serve`` takes as flags.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QDialogButtonBox, QDockWidget, QDoubleSpinBox, QFormLayout, QGridLayout, QHBoxLayout, QHeaderView, QLabel,
    QLineEdit, QProgressBar, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from ich_viewer.node.config import AllowRule, ConfigError, NodeConfig, Peer
from ich_viewer.node.pipeline import Analyser
from ich_viewer.node.scp import Receiver, StorageNode
from ich_viewer.node.store import Store
from ich_viewer.node.worklist import StudyEntry, Worklist
from ich_viewer.imaging.palette import SHORT_NAMES
from ich_viewer.paths import data_dir
from ich_viewer.tasks import TaskState
from ich_viewer.ui.extension import ViewerWindow
from ich_viewer.ui.settings import app_settings
from ich_viewer.ui.tasks import TaskRunner
from ich_viewer.ui.worklist_opened import OpenedStudies

log = logging.getLogger(__name__)

EXTENSION_NAME = "worklist"
COLUMNS = ("Status", "Suspected", "Patient", "Study date", "Description", "Images", "Arrived", "From")
POLL_MS = 1000
SOURCE_TEXT = {"opened": "Opened here"}
STATUS_TEXT = {"receiving": "Receiving…", "analysing": "Analysing…", "flagged": "FLAGGED",
               "negative": "Nothing flagged", "failed": "Failed"}
FLAG_COLOUR = QColor(150, 30, 30)
AnalyserFactory = Callable[[Peer | None, str], Analyser | None]
"""(send-to peer, our AE title) -> the analyser a node started from the window uses."""


def node_settings() -> dict[str, Any]:
    """The node's settings as stored (defaults as ``ich-viewer serve``'s)."""
    s = app_settings()
    allow = s.value("node/allow", "")
    return {
        "port": int(str(s.value("node/port", 11112))), "ae_title": str(s.value("node/ae_title", "ICHVIEWER")),
        "allow": str(allow or ""), "data": str(s.value("node/data", "") or ""),
        "quiet": float(str(s.value("node/quiet", 5.0))), "send_to": str(s.value("node/send_to", "") or ""),
        "pacs": str(s.value("node/pacs", "") or ""),
        "receiving": str(s.value("node/receiving", "false")).lower() == "true",
    }


def save_node_settings(values: dict[str, Any]) -> None:
    s = app_settings()
    for key, value in values.items():
        s.setValue(f"node/{key}", value)
    s.sync()


def config_from_settings(values: dict[str, Any]) -> NodeConfig:
    """Raises ``ConfigError`` naming the bad value."""
    return NodeConfig(
        data_dir=Path(values["data"]) if values["data"] else data_dir(), port=int(values["port"]),
        ae_title=values["ae_title"], quiet_s=float(values["quiet"]),
        allow=tuple(AllowRule.parse(rule) for rule in values["allow"].split() if rule),
        send_to=Peer.parse(values["send_to"]) if values["send_to"] else None,
    )


class WorklistPanel(QWidget):
    """Toggle, state line, table, query/retrieve controls."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.receive_button = QPushButton("Receive")
        self.receive_button.setCheckable(True)
        self.receive_button.setObjectName("worklist_receive")
        self.settings_button = QPushButton("Settings…")
        self.query_button = QPushButton("Query PACS…")
        self.send_button = QPushButton("Send results")
        self.send_button.setToolTip("C-STORE the selected study's SR, key images and KOS to the "
                                    "'Send results to' destination (else the PACS) of the settings")
        self.state = QLabel("Node stopped.")
        self.state.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("worklist_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.progress = QProgressBar()
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        top = QGridLayout()  # two by two: the panel shares a narrow column with the classifier
        for k, w in enumerate((self.receive_button, self.settings_button, self.query_button, self.send_button)):
            top.addWidget(w, k // 2, k % 2)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.state)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

    def show_entries(self, entries: list[StudyEntry]) -> None:
        self.table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            suspected = (" ".join(SHORT_NAMES.get(label, label) for label in e.suspected) if e.status == "flagged"
                         else (e.reason if e.status == "failed" else ""))
            patient = " ".join(p for p in (e.patient_name.replace("^", " "), f"({e.patient_id})" if e.patient_id else "") if p)
            values = (STATUS_TEXT.get(e.status, e.status), suspected, patient, _date(e.study_date), e.description,
                      str(e.instances), time.strftime("%H:%M:%S", time.localtime(e.received_at)),
                      SOURCE_TEXT.get(e.source, e.source))
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, e.study_instance_uid)
                if e.flagged:
                    item.setBackground(FLAG_COLOUR)
                    item.setForeground(QColor("white"))
                font = item.font()
                font.setBold(e.review == "unread")
                item.setFont(font)
                if column == 1:
                    item.setToolTip(e.reason if e.status == "failed" else ", ".join(e.suspected))
                self.table.setItem(row, column, item)


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value


class WorklistController(QObject):
    """Owns the node started from the window, the polling and the retrieve task."""

    def __init__(self, window: ViewerWindow, analyser_factory: AnalyserFactory) -> None:
        super().__init__(window)  # type: ignore[arg-type]
        self.window = window
        self.analyser_factory = analyser_factory
        self.panel = WorklistPanel()
        self.node: StorageNode | None = None
        self.dock: QDockWidget | None = None
        self._worklist: Worklist | None = None
        self._worklist_path: Path | None = None
        self._version: object = None
        self.entries: list[StudyEntry] = []
        self.retrieve = TaskRunner(self)
        self.sending = TaskRunner(self)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.refresh)
        self.panel.receive_button.toggled.connect(self.set_receiving)
        self.panel.settings_button.clicked.connect(self.edit_settings)
        self.panel.query_button.clicked.connect(self.query_dialog)
        self.panel.send_button.clicked.connect(self.send_selected)
        self.sending.done.connect(lambda n: self.window.show_status(f"Sent {n} result object(s)", 8000))
        self.sending.failed.connect(lambda text: self.window.show_error("Sending results failed", text))
        self.panel.table.cellDoubleClicked.connect(self._open_row)
        self.panel.cancel_button.clicked.connect(self.retrieve.cancel)
        self.retrieve.progress.connect(self._on_progress)
        self.retrieve.done.connect(self._on_retrieved)
        self.retrieve.failed.connect(self._on_retrieve_failed)
        self.opened = OpenedStudies(self, window)
        """Puts studies opened in this window into the worklist (``ui.worklist_opened``)."""
        window.installEventFilter(self)
        self.timer.start()
        self.refresh()
        if node_settings()["receiving"]:  # the reader left the node on: listen again
            self.panel.receive_button.setChecked(True)

    # -- the index -------------------------------------------------------------------
    def worklist(self) -> Worklist:
        path = self.config_path()
        if self._worklist is None or self._worklist_path != path:
            if self._worklist is not None:
                self._worklist.close()
            self._worklist, self._worklist_path, self._version = Worklist(path), path, None
        return self._worklist

    def config_path(self) -> Path:
        values = node_settings()
        return (Path(values["data"]) if values["data"] else data_dir()) / "node" / "worklist.sqlite"

    def refresh(self) -> None:
        """Redraw when the index changed (a node here or in another process wrote to it)."""
        try:
            worklist = self.worklist()
            version = worklist.version()
            if version == self._version:
                return
            self._version = version
            self.entries = worklist.entries()
        except Exception as exc:  # a locked or unreadable index must not break the window
            self.panel.state.setText(f"Worklist unavailable: {exc}")
            return
        self.panel.show_entries(self.entries)
        self._update_state()

    def show_panel(self) -> None:
        """Bring the worklist tab to the front (it shares the right side with other panels)."""
        if self.dock is not None:
            self.dock.show()
            self.dock.raise_()

    def _update_state(self) -> None:
        flagged = sum(e.flagged for e in self.entries)
        counts = f"{len(self.entries)} studies, {flagged} flagged"
        if self.node is not None:
            cfg = self.node.config
            self.panel.state.setText(f"Receiving as {cfg.ae_title} on port {self.node.port}. {counts}.")
        else:
            self.panel.state.setText(f"Node stopped. {counts}.")

    # -- the node ----------------------------------------------------------------------
    def set_receiving(self, on: bool) -> None:
        if on and self.node is None:
            try:
                config = config_from_settings(node_settings())
                node = StorageNode(config, self.analyser_factory(config.send_to, config.ae_title))
                node.start()
            except (ConfigError, OSError) as exc:
                self.window.show_error("Cannot start the DICOM node", str(exc))
                self.panel.receive_button.setChecked(False)
                return
            self.node = node
            self.window.show_status(f"DICOM node {config.ae_title} listening on port {node.port}", 5000)
        elif not on and self.node is not None:
            self.node.stop()
            self.node = None
        if self.node is not None or not on:
            save_node_settings({"receiving": "true" if self.node is not None else "false"})
        self._update_state()

    def edit_settings(self) -> None:
        dialog = NodeSettingsDialog(node_settings(), self.panel)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            values = dialog.values()
            try:
                config_from_settings(values)
            except ConfigError as exc:
                self.window.show_error("Node settings", str(exc))
                return
            save_node_settings(values)
            if self.node is not None:  # restart with the new settings
                self.set_receiving(False)
                self.panel.receive_button.setChecked(False)
                self.panel.receive_button.setChecked(True)
            self.refresh()

    # -- opening -----------------------------------------------------------------------
    def _open_row(self, row: int, _column: int) -> None:
        item = self.panel.table.item(row, 0)
        if item is None:
            return
        uid = item.data(Qt.ItemDataRole.UserRole)
        entry = next((e for e in self.entries if e.study_instance_uid == uid), None)
        if entry is None:
            return
        if not Path(entry.folder).exists():
            self.window.show_error("Cannot open the study", f"{entry.folder} is gone (moved or deleted since the "
                                   "study was listed); open it from its new place with File > Open.")
            return
        self.worklist().set_review(uid, "read")
        self.window.open_path(entry.folder)

    # -- query / retrieve ----------------------------------------------------------------
    def query_dialog(self) -> None:
        dialog = QueryDialog(self, self.panel)
        dialog.exec()

    def start_retrieve(self, peer: Peer, study_uid: str, ae_title: str) -> None:
        """C-GET into the store; without a running node the study is analysed right after
        (the same ``Pipeline.analyse`` the node uses), so it never waits as "receiving"."""
        worklist_path = self.config_path()
        root = worklist_path.parent
        analyser = None if self.node is not None else self.analyser_factory(None, ae_title)

        def task(state: TaskState) -> int:
            from ich_viewer.node.pipeline import Pipeline
            from ich_viewer.node.scu import retrieve_study

            worklist, store = Worklist(worklist_path), Store(root)  # this thread's own connection
            try:
                count = retrieve_study(peer, study_uid, Receiver(store, worklist), state, calling=ae_title)
                taken = worklist.take(study_uid) if analyser is not None and not state.cancelled() else None
                if analyser is not None and taken is not None:
                    state.set_status("Analysing the retrieved study …")
                    Pipeline(worklist, store, analyser, quiet_s=0).analyse(
                        study_uid, Path(taken.folder), taken.last_received_at)
                return count
            finally:
                worklist.close()

        self.panel.progress.setRange(0, 0)
        self.panel.progress.show()
        self.panel.cancel_button.show()
        self.window.show_status(f"Retrieving {study_uid} from {peer} …", 5000)
        self.retrieve.start(task)

    def _on_progress(self, done: int, total: int) -> None:
        self.panel.progress.setRange(0, max(total, 1))
        self.panel.progress.setValue(done)

    def _retrieve_finished(self) -> None:
        self.panel.progress.hide()
        self.panel.cancel_button.hide()
        self.refresh()

    def _on_retrieved(self, count: object) -> None:
        self._retrieve_finished()
        self.window.show_status(f"Retrieved {count} instance(s) into the worklist", 8000)

    def _on_retrieve_failed(self, text: str) -> None:
        self._retrieve_finished()
        self.window.show_error("Retrieve failed", text)

    # -- sending results back --------------------------------------------------------------
    def send_selected(self) -> None:
        """Send the selected study's DICOM results (written by the analysis) with C-STORE."""
        row = self.panel.table.currentRow()
        item = self.panel.table.item(row, 0) if row >= 0 else None
        if item is None:
            self.window.show_status("Choose a study in the worklist first", 5000)
            return
        values = node_settings()
        target = values["send_to"] or values["pacs"]
        try:
            peer = Peer.parse(target)
        except ConfigError as exc:
            self.window.show_error("Send results", f"No destination: set 'Send results to' in Settings… ({exc})")
            return
        folder = Store(self.config_path().parent).results_folder(str(item.data(Qt.ItemDataRole.UserRole))) / "dicom"
        files = sorted(folder.glob("*.dcm")) if folder.is_dir() else []
        if not files:
            self.window.show_status("No results to send for this study (nothing flagged, or not analysed yet)", 8000)
            return
        ae_title = values["ae_title"]

        def task(state: TaskState) -> int:
            from ich_viewer.node.scu import send_files

            return send_files(peer, files, state, calling=ae_title)

        self.window.show_status(f"Sending {len(files)} result object(s) to {peer} …", 5000)
        self.sending.start(task)

    # -- closing -------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Window closing: stop the node (its toggle state stays saved for the next start)."""
        self.timer.stop()
        self.opened.shutdown()
        self.retrieve.shutdown(10.0)
        self.sending.shutdown(10.0)
        if self.node is not None:
            self.node.stop()
            self.node = None
        if self._worklist is not None:
            self._worklist.close()
            self._worklist = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False


class NodeSettingsDialog(QDialog):
    """AE title, port, allowed peers, data folder, quiet time, where results go."""

    def __init__(self, values: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DICOM node settings")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(int(values["port"]))
        self.ae_title = QLineEdit(values["ae_title"])
        self.allow = QLineEdit(values["allow"])
        self.allow.setPlaceholderText("AE@HOST … (empty: any AE from this machine only)")
        self.data = QLineEdit(values["data"])
        self.data.setPlaceholderText(str(data_dir()))
        self.quiet = QDoubleSpinBox()
        self.quiet.setRange(0.0, 600.0)
        self.quiet.setValue(float(values["quiet"]))
        self.send_to = QLineEdit(values["send_to"])
        self.send_to.setPlaceholderText("AE@HOST:PORT (empty: do not send results)")
        self.pacs = QLineEdit(values["pacs"])
        self.pacs.setPlaceholderText("AE@HOST:PORT to query")
        form = QFormLayout(self)
        for label, widget in (("AE title", self.ae_title), ("Port", self.port), ("Allowed peers", self.allow),
                              ("Data folder", self.data), ("Quiet time (s)", self.quiet),
                              ("Send results to", self.send_to), ("PACS to query", self.pacs)):
            form.addRow(label, widget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict[str, Any]:
        return {"port": self.port.value(), "ae_title": self.ae_title.text().strip(), "allow": self.allow.text().strip(),
                "data": self.data.text().strip(), "quiet": self.quiet.value(), "send_to": self.send_to.text().strip(),
                "pacs": self.pacs.text().strip()}


class QueryDialog(QDialog):
    """C-FIND on the configured PACS; "Retrieve" C-GETs the chosen study into the worklist."""

    def __init__(self, controller: WorklistController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Query PACS")
        values = node_settings()
        self.ae_title = values["ae_title"]
        self.peer = QLineEdit(values["pacs"])
        self.peer.setPlaceholderText("AE@HOST:PORT")
        self.patient_name = QLineEdit()
        self.patient_id = QLineEdit()
        self.dates = QLineEdit()
        self.dates.setPlaceholderText("YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.description = QLineEdit()
        self.search = QPushButton("Search")
        self.results = QTableWidget(0, 4)
        self.results.setHorizontalHeaderLabels(("Patient", "Date", "Description", "Study UID"))
        self.results.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.message = QLabel("")
        self.retrieve_button = QPushButton("Retrieve")
        form = QFormLayout(self)
        for label, widget in (("PACS", self.peer), ("Patient name", self.patient_name), ("Patient ID", self.patient_id),
                              ("Dates", self.dates), ("Description", self.description)):
            form.addRow(label, widget)
        form.addRow(self.search)
        form.addRow(self.results)
        form.addRow(self.message)
        form.addRow(self.retrieve_button)
        self.finder = TaskRunner(self)
        self.finder.done.connect(self._on_found)
        self.finder.failed.connect(self._on_find_failed)
        self.search.clicked.connect(self.run_search)
        self.retrieve_button.clicked.connect(self.run_retrieve)

    def run_search(self) -> None:
        """C-FIND on a ``TaskRunner`` (a slow PACS never freezes the window); a failure says the remote status."""
        from ich_viewer.node.scu import StudyQuery, find_studies

        start, _, end = self.dates.text().strip().partition("-")
        try:
            peer = Peer.parse(self.peer.text().strip())
        except ConfigError as exc:
            self.message.setText(str(exc))
            return
        query = StudyQuery(patient_name=self.patient_name.text().strip(), patient_id=self.patient_id.text().strip(),
                           date_from=start, date_to=end or start, description=self.description.text().strip())
        calling = self.ae_title
        self.message.setText(f"Searching {peer} …")
        self.search.setEnabled(False)
        self.finder.start(lambda state: find_studies(peer, query, calling=calling))

    def _on_found(self, found: object) -> None:
        self.search.setEnabled(True)
        studies = found if isinstance(found, list) else []
        save_node_settings({"pacs": self.peer.text().strip()})
        self.results.setRowCount(len(studies))
        for row, study in enumerate(studies):
            for column, key in enumerate(("PatientID", "StudyDate", "StudyDescription", "StudyInstanceUID")):
                self.results.setItem(row, column, QTableWidgetItem(study[key]))
        self.message.setText(f"{len(studies)} studies found.")

    def _on_find_failed(self, text: str) -> None:
        self.search.setEnabled(True)
        self.message.setText(text)

    def done(self, result: int) -> None:  # noqa: D102 - closing waits (bounded) for a running search
        self.finder.shutdown(5.0)
        super().done(result)

    def run_retrieve(self) -> None:
        row = self.results.currentRow()
        item = self.results.item(row, 3) if row >= 0 else None
        if item is None:
            self.message.setText("Choose a study first.")
            return
        try:
            peer = Peer.parse(self.peer.text().strip())
        except ConfigError as exc:
            self.message.setText(str(exc))
            return
        self.controller.start_retrieve(peer, item.text(), self.ae_title)
        self.accept()


def attach_worklist_panel(window: ViewerWindow, analyser_factory: AnalyserFactory) -> WorklistController:
    """Add the worklist dock (called by ``commands.node.attach_worklist``, listed in ``EXTENSIONS``)."""
    controller = WorklistController(window, analyser_factory)
    controller.dock = window.add_side_panel(controller.panel, "Worklist")
    window.extensions.add(EXTENSION_NAME, controller)
    return controller
