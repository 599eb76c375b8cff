"""Keys typed into a text field go to the text field, not to the window's shortcuts.

The window's single keys (A accept, R reject, 1-0 presets, Space cine, arrows...) are
window-wide shortcuts. Qt asks the focused widget first with a ShortcutOverride event;
a QLineEdit claims printable keys itself, but spin boxes, editable combo boxes, text
edits and anything a dialog or panel adds later may not. One application-wide filter
claims every key without Ctrl/Alt/Meta for any editable text widget and for anything in
a dialog, so typing "a" in a note or "40" in a preset dialog never accepts a flag or
changes the window.
"""
from __future__ import annotations

from typing import cast

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox, QApplication, QComboBox, QDialog, QKeySequenceEdit, QLineEdit, QPlainTextEdit, QTextEdit, QWidget,
)

COMMAND_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                     | Qt.KeyboardModifier.MetaModifier)
FUNCTION_KEYS = range(int(Qt.Key.Key_F1), int(Qt.Key.Key_F35) + 1)
"""F1 (help) and F11 (image only) keep working from a text field."""


def is_text_input(widget: QWidget | None) -> bool:
    """True for a widget the reader types into (read-only ones excluded)."""
    if widget is None:
        return False
    if isinstance(widget, (QLineEdit, QTextEdit, QPlainTextEdit)):
        return not widget.isReadOnly()
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    return isinstance(widget, (QAbstractSpinBox, QKeySequenceEdit))


class KeyGuard(QObject):
    """Application event filter: typing keys belong to the focused text widget."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.ShortcutOverride:
            return False
        key_event = cast(QKeyEvent, event)
        if key_event.modifiers() & COMMAND_MODIFIERS or key_event.key() in FUNCTION_KEYS:
            return False
        target = watched if isinstance(watched, QWidget) else QApplication.focusWidget()  # the key's receiver
        if is_text_input(target) or (target is not None and isinstance(target.window(), QDialog)):
            key_event.accept()  # "the widget wants this key": no shortcut fires
            return True
        return False


_guard: KeyGuard | None = None


def install_key_guard() -> KeyGuard:
    """Install the filter once per application (every window shares it)."""
    global _guard
    app = QApplication.instance()
    if _guard is None:
        _guard = KeyGuard()
        if app is not None:
            app.installEventFilter(_guard)
    return _guard
