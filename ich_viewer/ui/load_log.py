"""What the loader left out and what it warned about, for the user to read."""
from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDialog, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget


def load_log_rows(study: Any) -> list[tuple[str, str, str]]:
    """(kind, where, message) for every skipped file and warning of a study."""
    rows = [("skipped", s.path, s.reason) for s in study.skipped]
    rows += [("warning", "study", w) for w in study.warnings]
    for series in study.series:
        name = series.description or series.series_uid
        rows += [("warning", f"series {name}", w) for w in series.warnings]
    return rows


def load_summary(study: Any) -> str:
    n_images = sum(s.n_slices for s in study.series)
    n_warn = len(study.warnings) + sum(len(s.warnings) for s in study.series)
    return (
        f"{study.source}: {len(study.series)} series, {n_images} images, "
        f"{len(study.skipped)} files skipped, {n_warn} warnings"
    )


class LoadLogDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("load_log")
        self.setWindowTitle("Load log")
        self.resize(900, 480)
        self.summary = QLabel("No study opened yet.")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Kind", "File / series", "Reason"])
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(1, 380)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)

    def set_study(self, study: Any) -> None:
        self.summary.setText(load_summary(study))
        rows = load_log_rows(study)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(r, c, item)
