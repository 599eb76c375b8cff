"""A searchable view of the current slice's DICOM header (pydicom dataset, nested)."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

MAX_VALUE_CHARS = 200


def _value_text(element: Any) -> str:
    if element.VR == "SQ":
        return f"<sequence of {len(element.value)} item(s)>"
    if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") and isinstance(element.value, (bytes, bytearray)):
        return f"<{len(element.value)} bytes>"
    text = str(element.value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def _add_dataset(parent: QTreeWidget | QTreeWidgetItem, dataset: Any) -> None:
    for element in dataset:
        tag = f"({element.tag.group:04X},{element.tag.element:04X})"
        item = QTreeWidgetItem([tag, element.name or element.keyword, element.VR, _value_text(element)])
        if isinstance(parent, QTreeWidget):
            parent.addTopLevelItem(item)
        else:
            parent.addChild(item)
        if element.VR == "SQ":
            for number, sub in enumerate(element.value, start=1):
                child = QTreeWidgetItem(["", f"Item {number}", "", ""])
                item.addChild(child)
                _add_dataset(child, sub)


class TagBrowser(QDialog):
    """Non-modal: stays open and follows the slice on screen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tag_browser")
        self.setWindowTitle("DICOM tags")
        self.resize(760, 620)
        self.search = QLineEdit(placeholderText="Search tag, name or value (e.g. 0028,1050 or Window)")
        self.search.setClearButtonEnabled(True)
        self.title = QLabel()
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Tag", "Name", "VR", "Value"])
        self.tree.setIndentation(12)
        self.tree.setColumnWidth(0, 130)
        self.tree.setColumnWidth(1, 230)
        self.tree.setColumnWidth(2, 40)
        self.tree.setUniformRowHeights(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.apply_filter)

    def set_dataset(self, dataset: Any, title: str = "") -> None:
        self.title.setText(title)
        self.tree.clear()
        if dataset is None:
            self.tree.addTopLevelItem(QTreeWidgetItem(["", "(no header kept for this slice)", "", ""]))
        else:
            _add_dataset(self.tree, dataset)
        self.apply_filter(self.search.text())

    def apply_filter(self, text: str) -> None:
        """Show rows whose tag, name or value contains ``text`` (and their parents)."""
        needle = text.strip().lower().replace(" ", "")
        for i in range(self.tree.topLevelItemCount()):
            self._filter(self.tree.topLevelItem(i), needle)

    def _filter(self, item: QTreeWidgetItem | None, needle: str) -> bool:
        if item is None:
            return False
        haystack = " ".join(item.text(c) for c in range(4)).lower().replace(" ", "")
        hit = not needle or needle in haystack or needle in haystack.replace("(", "").replace(")", "")
        child_hit = False
        for i in range(item.childCount()):
            child_hit |= self._filter(item.child(i), "" if hit else needle)
        visible = hit or child_hit
        item.setHidden(not visible)
        if needle and child_hit:
            item.setExpanded(True)
        return visible

    def visible_rows(self) -> list[tuple[str, str]]:
        """(tag, value) of every top-level row left by the filter, for tests and copy."""
        rows = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None and not item.isHidden():
                rows.append((item.text(0), item.text(3)))
        return rows

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape and self.search.text():
            self.search.clear()
            return
        super().keyPressEvent(event)
