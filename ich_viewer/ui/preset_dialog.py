"""View > Window preset > Own presets…: the reader's presets on Shift+1 … Shift+0.

The ten fixed presets on 1-0 stay as they are; own ones (a stroke window, a posterior
fossa window, …) are kept in the program's settings and come back on every start.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from ich_viewer.imaging.presets import USER_KEYS, Preset, parse_user_presets

COLUMNS = ("Key", "Name", "Width (W)", "Level (L)")


class PresetDialog(QDialog):
    """One row per Shift key: name, width and level; an empty name leaves the key free."""

    def __init__(self, presets: list[Preset], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("preset_dialog")
        self.setWindowTitle("Own window presets")
        self.table = QTableWidget(len(USER_KEYS), len(COLUMNS))
        self.table.setObjectName("preset_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        by_key = {p.key: p for p in presets}
        for row, key in enumerate(USER_KEYS):
            preset = by_key.get(key)
            key_item = QTableWidgetItem(key)
            key_item.setFlags(key_item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, 0, key_item)
            values = (preset.name, f"{preset.width:g}", f"{preset.center:g}") if preset else ("", "", "")
            for column, text in enumerate(values, start=1):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.message = QLabel("")
        self.message.setObjectName("preset_message")
        self.message.setStyleSheet("color: #ffb347;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        intro = QLabel("Shift + a number key selects your own window (the ten presets on 1-0 stay as they "
                       "are). Leave a name empty to free its key.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(520, 420)

    def put(self, center: float, width: float) -> int:
        """Fill the first free row with a window (the reader names it); returns the row, -1 when full."""
        for row in range(self.table.rowCount()):
            if not self._text(row, 1):
                for column, text in ((1, f"W{width:g} L{center:g}"), (2, f"{width:g}"), (3, f"{center:g}")):
                    self.table.setItem(row, column, QTableWidgetItem(text))
                self.table.setCurrentCell(row, 1)
                return row
        return -1

    def _text(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text().strip() if item is not None else ""

    def problems(self) -> list[str]:
        """What keeps a named row from being a preset (width < 1, not a number)."""
        out = []
        for row, key in enumerate(USER_KEYS):
            if not self._text(row, 1):
                continue
            try:
                width, level = float(self._text(row, 2)), float(self._text(row, 3))
            except ValueError:
                out.append(f"{key}: width and level must be numbers")
                continue
            if not width >= 1.0 or level != level:
                out.append(f"{key}: the width must be at least 1")
        return out

    def presets(self) -> list[Preset]:
        rows = [f"{key}|{self._text(r, 1)}|{self._text(r, 3)}|{self._text(r, 2)}" for r, key in enumerate(USER_KEYS)]
        return parse_user_presets(rows)

    def _accept(self) -> None:
        problems = self.problems()
        if problems:
            self.message.setText("; ".join(problems))
            return
        self.accept()
