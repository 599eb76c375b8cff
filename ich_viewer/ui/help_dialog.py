"""Help > Controls: the mouse mapping and every keyboard shortcut, grouped by task.

Rows come from the window's actions (so the list never lies) and are grouped by the
action's name; an action nobody placed lands in "Other". Key names are never elided and
descriptions wrap, so nothing is cut off at any dialog width.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

MOUSE_CONTROLS: tuple[tuple[str, str], ...] = (
    ("Left drag", "Window: right/left = wider/narrower, up/down = level up/down"),
    ("Shift + left drag", "Window, fine steps"),
    ("Ctrl + left drag", "Window, coarse steps"),
    ("Middle drag", "Pan"),
    ("Right drag", "Zoom: up magnifies, down shrinks"),
    ("Wheel", "Next / previous slice"),
    ("Ctrl + wheel", "Zoom about the cursor"),
    ("Drop a folder or file", "Open it"),
)

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Move through the study", ("next_slice", "previous_slice", "next_10", "previous_10", "first_slice",
                                "last_slice", "cine", "next_series", "previous_series")),
    ("Grey-level window", ("preset_", "save_preset", "edit_presets", "invert")),
    ("Zoom, turn and screen", ("fit", "zoom_in", "zoom_out", "one_to_one", "rotate_", "flip_", "reset_all",
                               "image_only", "overlays", "smooth")),
    ("Classifier", ("next_flagged", "previous_flagged", "attention", "rerun", "model_info")),
    ("Review and report", ("review_", "export_report")),
    ("Measure", ("measure_",)),
    ("Open, look up, quit", ("open_", "load_log", "tags", "quit")),
    ("Help", ("controls", "about", "first_run")),
)
OTHER = "Other"


def group_of(name: str) -> str:
    """The task an action belongs to (a name ending in "_" in GROUPS is a prefix)."""
    for group, names in GROUPS:
        if any(name == n or (n.endswith("_") and name.startswith(n)) for n in names):
            return group
    return OTHER


def grouped_rows(shortcut_rows: list[tuple[str, str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group, [(keys, what)]) in the order of GROUPS, mouse first, ungrouped actions last."""
    groups: dict[str, list[tuple[str, str]]] = {"Mouse": list(MOUSE_CONTROLS)}
    for group, _names in GROUPS:
        groups[group] = []
    groups[OTHER] = []
    for name, keys, text in shortcut_rows:
        groups[group_of(name)].append((keys, text))
    return [(group, rows) for group, rows in groups.items() if rows]


class ControlsDialog(QDialog):
    def __init__(self, shortcut_rows: list[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("controls_dialog")
        self.setWindowTitle("Controls")
        groups = grouped_rows(shortcut_rows)
        table = QTableWidget(sum(len(rows) + 1 for _group, rows in groups), 2)
        table.setHorizontalHeaderLabels(["Mouse / key", "Does"])
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        table.setWordWrap(True)
        table.setTextElideMode(Qt.TextElideMode.ElideNone)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        bold = QFont(table.font())
        bold.setBold(True)
        row = 0
        self.group_rows: dict[str, int] = {}
        for group, rows in groups:
            heading = QTableWidgetItem(group)
            heading.setFont(bold)
            heading.setBackground(QColor("#2a3440"))
            table.setItem(row, 0, heading)
            table.setSpan(row, 0, 1, 2)
            self.group_rows[group] = row
            row += 1
            for keys, text in rows:
                table.setItem(row, 0, QTableWidgetItem(keys))
                table.setItem(row, 1, QTableWidgetItem(text))
                row += 1
        self.table = table
        table.horizontalHeader().sectionResized.connect(lambda *_: table.resizeRowsToContents())
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Reading controls, by task"))
        layout.addWidget(table)
        screen = QGuiApplication.primaryScreen()
        height = screen.availableGeometry().height() * 0.85 if screen is not None else 700
        self.resize(720, int(min(height, 900)))
        table.resizeRowsToContents()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.table.resizeRowsToContents()  # wrapped descriptions get the height they need
