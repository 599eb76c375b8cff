"""Help > Controls: the mouse mapping and every keyboard shortcut."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

MOUSE_CONTROLS: tuple[tuple[str, str], ...] = (
    ("Left drag", "Window: right/left = wider/narrower, up/down = level up/down"),
    ("Shift + left drag", "Window, fine steps"),
    ("Ctrl + left drag", "Window, coarse steps"),
    ("Middle drag", "Pan"),
    ("Right drag", "Zoom"),
    ("Wheel", "Next / previous slice"),
    ("Ctrl + wheel", "Zoom about the cursor"),
    ("Drop a folder or file", "Open it"),
)


class ControlsDialog(QDialog):
    def __init__(self, shortcut_rows: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("controls_dialog")
        self.setWindowTitle("Controls")
        self.resize(620, 640)
        rows = list(MOUSE_CONTROLS) + list(shortcut_rows)
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Mouse / key", "Does"])
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        table.setColumnWidth(0, 190)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, (keys, text) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(keys))
            table.setItem(r, 1, QTableWidgetItem(text))
        self.table = table
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Reading controls"))
        layout.addWidget(table)
