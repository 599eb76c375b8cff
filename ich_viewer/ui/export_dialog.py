"""File > Export report: choose formats, folder and de-identification, then write in the background.

Files are named from the study date and a short hash of the study UID, never from the
patient's name or ID (file names travel further than their content). Existing files are
only replaced after the user says so. "Send to PACS" C-STOREs the SR, key images and KOS
just written to the destination of the worklist's node settings ("Send results to", else
the PACS), on the review controller's ``send_job`` after the export succeeded.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
    QMessageBox, QPushButton, QVBoxLayout, QWidget,
)

from ich_viewer.node.config import ConfigError, Peer, check_ae_title
from ich_viewer.report.atomic import ExportError
from ich_viewer.tasks import TaskState
from ich_viewer.ui.settings import app_settings

if TYPE_CHECKING:  # pragma: no cover
    from ich_viewer.ui.extension import ViewerWindow
    from ich_viewer.ui.inference_panel import InferenceController
    from ich_viewer.ui.tasks import TaskRunner


class ExportOwner(Protocol):
    """What the export needs of the review controller (``review_panel`` imports this module,
    never the other way round)."""

    window: ViewerWindow
    export_dialog: Any
    pending_send: Any
    export_job: TaskRunner
    send_job: TaskRunner

    def results(self) -> list[tuple[Any, Any]]: ...
    def inference(self) -> InferenceController | None: ...

SETTINGS_FOLDER = "report/folder"
SETTINGS_FORMATS = "report/formats"
FORMATS = ("pdf", "csv", "json", "sr", "key_images")
FORMAT_TEXT = {"pdf": "PDF report", "csv": "CSV (one row per slice)", "json": "JSON (one row per slice)",
               "sr": "DICOM Structured Report (TID 1500)", "key_images": "DICOM key images + key object selection"}
DEFAULT_FORMATS = ("pdf", "csv", "json")


@dataclass
class ExportChoice:
    folder: Path
    base_name: str
    formats: tuple[str, ...]
    deidentify: bool = False
    paper: str | None = None
    """None: by locale."""
    attention: bool = False
    send_to: str = ""
    """AE@HOST:PORT to C-STORE the DICOM objects to after the export ("" : do not send)."""

    def paths(self) -> dict[str, Path]:
        """Where each chosen format goes (DICOM objects share one sub-folder)."""
        out: dict[str, Path] = {}
        for fmt, suffix in (("pdf", ".pdf"), ("csv", ".csv"), ("json", ".json")):
            if fmt in self.formats:
                out[fmt] = self.folder / f"{self.base_name}{suffix}"
        if "sr" in self.formats or "key_images" in self.formats:
            out["dicom"] = self.folder / f"{self.base_name}_dicom"
        return out

    def existing(self) -> list[Path]:
        return [p for fmt, p in self.paths().items() if fmt != "dicom" and p.exists()]


def default_base_name(study: Any, deidentify: bool = False) -> str:
    """ich-report_<study date>_<6 hex of the study UID>: traceable, not identifying.

    De-identified, the export date replaces the study date (dates identify too)."""
    known = study is not None and study.study_date and not deidentify
    stamp = study.study_date if known else date.today().strftime("%Y%m%d")
    uid = (study.study_uid or study.source) if study is not None else ""
    return f"ich-report_{stamp}_{hashlib.sha1(uid.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class SendRequest:
    """Where the export's DICOM objects go once written, and as whom we call."""

    peer: Peer
    ae_title: str


def send_destination() -> tuple[str, str]:
    """(AE@HOST:PORT, our AE title) from the node settings: "Send results to", else the PACS ("" when neither)."""
    from ich_viewer.ui.worklist_panel import node_settings

    values = node_settings()
    return values["send_to"] or values["pacs"], values["ae_title"]


def default_folder() -> Path:
    saved = app_settings().value(SETTINGS_FOLDER, "")
    return Path(str(saved)) if saved else Path.home() / "ICH Viewer reports"


class ExportDialog(QDialog):
    def __init__(self, study: Any, n_results: int, incomplete: str = "", parent: QWidget | None = None,
                 attention_available: bool = False, send_to: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Export report")
        self.setObjectName("export_dialog")
        saved = app_settings().value(SETTINGS_FORMATS, ",".join(DEFAULT_FORMATS))
        chosen = set(str(saved).split(",")) if saved else set(DEFAULT_FORMATS)
        self.format_boxes: dict[str, QCheckBox] = {}
        formats = QVBoxLayout()
        for fmt in FORMATS:
            box = QCheckBox(FORMAT_TEXT[fmt])
            box.setObjectName(f"format_{fmt}")
            box.setChecked(fmt in chosen)
            self.format_boxes[fmt] = box
            formats.addWidget(box)
        self.folder = QLineEdit(str(default_folder()))
        self.folder.setObjectName("export_folder")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.base_name = QLineEdit(default_base_name(study))
        self.base_name.setObjectName("export_name")
        self.deidentify = QCheckBox("De-identify every file (DICOM PS3.15 Basic Profile: no name, ID, dates, "
                                    "accession, institution, descriptions, file paths)")
        self.deidentify.setToolTip(
            "UIDs are kept (the profile's Retain UIDs Option), so the SR, key images and selection still "
            "link to the study in the PACS; whoever holds the PACS can therefore re-identify them. "
            "Reader notes are kept as written: keep names out of them."
        )
        self.deidentify.setObjectName("export_deidentify")
        self._study = study
        self.deidentify.toggled.connect(self._update_default_name)
        self.paper = QComboBox()
        self.paper.addItems(["By locale", "A4", "Letter"])
        self.attention = QCheckBox("Add the attention map to key images (slower)")
        self.attention.setEnabled(attention_available)
        self.send_to = send_to
        self.send = QCheckBox(f"Send the SR, key images and KOS to PACS ({send_to})" if send_to
                              else "Send to PACS (no destination set)")
        self.send.setObjectName("export_send")
        self.send.setEnabled(bool(send_to))
        self.send.setToolTip("C-STORE the DICOM objects of this export to the node's 'Send results to' destination "
                             "(else its PACS), set in the worklist panel's Settings…" if send_to else
                             "Set 'Send results to' (or 'PACS to query') in the worklist panel's Settings… first")

        form = QFormLayout()
        form.addRow("Formats", formats)
        form.addRow("Folder", folder_row)
        form.addRow("File name", self.base_name)
        form.addRow("Paper", self.paper)
        form.addRow("", self.deidentify)
        form.addRow("", self.attention)
        form.addRow("", self.send)
        layout = QVBoxLayout(self)
        info = QLabel(f"{n_results} series with predictions. Decisions from the review panel are included. "
                      "De-identified DICOM objects keep the study's UIDs (PS3.15 Retain UIDs Option) so "
                      "they still link to the study in the PACS.")
        info.setWordWrap(True)
        layout.addWidget(info)
        if incomplete:
            warning = QLabel(f"<b>{incomplete}</b>")
            warning.setWordWrap(True)
            layout.addWidget(warning)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _update_default_name(self, deidentify: bool) -> None:
        """Follow the de-identify box unless the user typed a name of their own."""
        if self.base_name.text() == default_base_name(self._study, not deidentify):
            self.base_name.setText(default_base_name(self._study, deidentify))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def choice(self) -> ExportChoice:
        paper = self.paper.currentText()
        return ExportChoice(
            folder=Path(os.path.expanduser(self.folder.text().strip())),
            base_name=self.base_name.text().strip() or "ich-report",
            formats=tuple(fmt for fmt, box in self.format_boxes.items() if box.isChecked()),
            deidentify=self.deidentify.isChecked(),
            paper=None if paper == "By locale" else paper,
            attention=self.attention.isChecked() and self.attention.isEnabled(),
            send_to=self.send_to if self.send.isChecked() and self.send.isEnabled() else "",
        )

    def remember(self) -> None:
        choice = self.choice()
        settings = app_settings()
        settings.setValue(SETTINGS_FOLDER, str(choice.folder))
        settings.setValue(SETTINGS_FORMATS, ",".join(choice.formats))
        settings.sync()


def incomplete_text(results: list[tuple[Any, Any]]) -> str:
    missing = [(s, p) for s, p in results if len(p.slices) < len(s.slices)]
    if not missing:
        return ""
    parts = ", ".join(f"{len(p.slices)} of {len(s.slices)} slices" for s, p in missing)
    return f"The classifier has not finished ({parts}); the report will say it is incomplete."


def open_export_dialog(controller: ExportOwner) -> ExportDialog | None:
    """Show the dialog (non-blocking); Export runs ``run_export``."""
    window = controller.window
    results = controller.results()
    if not results:
        window.show_error("Nothing to export", "There are no predictions for this study yet "
                          "(no study open, no classifier, or it has not produced a result).")
        return None
    inference = controller.inference()
    dialog = ExportDialog(window.current_study(), len(results), incomplete_text(results), cast(QWidget, window),
                          attention_available=inference is not None and inference.loaded is not None,
                          send_to=send_destination()[0])

    def export() -> None:
        dialog.remember()
        run_export(controller, dialog.choice())

    dialog.accepted.connect(export)
    dialog.setModal(True)
    dialog.show()
    controller.export_dialog = dialog
    return dialog


def confirm_overwrite(window: Any, existing: list[Path]) -> bool:
    names = "\n".join(str(p) for p in existing)
    answer = QMessageBox.question(window, "Replace files?", f"These files exist already:\n{names}\n\nReplace them?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def run_export(controller: ExportOwner, choice: ExportChoice, *, overwrite: bool | None = None) -> TaskState | None:
    """Start the export in the background; returns the task's state (None when nothing started).

    The review controller's ``export_job`` runs it and calls ``export_done`` with the outcome.

    ``overwrite=None`` asks the user when a file exists; tests pass True or False.
    """
    window = controller.window
    if not choice.formats:
        window.show_error("Nothing to export", "Choose at least one format.")
        return None
    send: SendRequest | None = None
    if choice.send_to:
        if not {"sr", "key_images"} & set(choice.formats):
            window.show_error("Nothing to send", "Sending to PACS sends DICOM objects: choose the Structured Report "
                              "or the key images too.")
            return None
        try:
            send = SendRequest(Peer.parse(choice.send_to), check_ae_title(send_destination()[1]))
        except ConfigError as exc:
            window.show_error("Cannot send to PACS", f"{exc}. Correct it in the worklist panel's Settings….")
            return None
    existing = choice.existing()
    if existing and overwrite is None:
        overwrite = confirm_overwrite(window, existing)
        if not overwrite:
            window.show_status("Export cancelled: files not replaced", 5000)
            return None
    study, results = window.current_study(), controller.results()
    if study is None:
        window.show_error("Nothing to export", "No study is open.")
        return None
    paths = choice.paths()
    overlay = None
    inference = controller.inference()
    if choice.attention and inference is not None and inference.loaded is not None:
        from ich_viewer.report.export import attention_overlay

        overlay = attention_overlay(inference.loaded)

    def job() -> Any:
        from ich_viewer.report.export import export_report

        try:
            return export_report(
                study, results, pdf=paths.get("pdf"), csv=paths.get("csv"), json=paths.get("json"),
                dicom_dir=paths.get("dicom"), sr="sr" in choice.formats, key_images="key_images" in choice.formats,
                deidentify=choice.deidentify, overwrite=bool(overwrite), overlay=overlay, paper=choice.paper,
            )
        except ExportError as exc:
            return exc

    window.show_status("Exporting report…")
    controller.pending_send = send
    return controller.export_job.start(lambda _state: job())


def export_done(window: Any, outcome: Any) -> Any:
    """Tell the reader how the export went; returns ``outcome`` when it succeeded, else None."""
    if isinstance(outcome, Exception):
        window.show_error("Export failed", str(outcome))
        return None
    folder = outcome.written[0].parent if outcome.written else ""
    window.show_status(f"Report exported: {len(outcome.written)} file(s) in {folder}", 10000)
    return outcome


def start_send(controller: ExportOwner, request: SendRequest, result: Any) -> TaskState | None:
    """C-STORE the SR, key images and KOS of ``result`` on ``controller.send_job`` (None: nothing to send)."""
    files = [p for p in (result.sr, *result.key_images, result.kos) if p is not None]
    window = controller.window
    if not files:
        window.show_status("Nothing sent to PACS: the export wrote no DICOM objects", 10000)
        return None
    peer, calling = request.peer, request.ae_title

    def task(state: TaskState) -> str:
        from ich_viewer.node.scu import send_files

        sent = send_files(peer, files, state, calling=calling)
        return f"Sent {sent} DICOM object(s) to {peer}"

    window.show_status(f"Sending {len(files)} DICOM object(s) to {peer} …")
    return controller.send_job.start(task)


def send_done(window: Any, message: object) -> str:
    """Success: the count and the destination in the status bar."""
    window.show_status(str(message), 15000)
    return str(message)


def send_failed(window: Any, text: str) -> None:
    """The remote status (or why the peer could not be reached), in words."""
    window.show_error("Sending to PACS failed", text.removeprefix("RemoteError: "))
