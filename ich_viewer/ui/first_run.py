"""The first ten minutes: a guide over the image on the first start, and a notice on the demo.

On the very first start (no "shown" flag in the app's QSettings) the real demo study opens
with a guide laid over the image: what the colours, the strip and the frame mean, the
keys that matter (N/P, G, presets 1-0, accept/reject, export), the research-use statement
and where the model card is. Any one key or a click closes it; it is never shown again
unless Help > First-run guide asks for it.

While the bundled demo study is open, a strip under the toolbar says where it comes from
(CC BY 4.0 asks for credit) and that this patient was part of the classifier's training
data, so its flags show the mechanics, not accuracy.

Attached as an extension (``attach_first_run``); ``first_start`` is called by ``ui.app``
once the window is on screen.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QColor, QKeyEvent, QKeySequence, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QToolBar, QVBoxLayout, QWidget,
)

from ich_viewer import LABELS, RESEARCH_NOTICE, demo
from ich_viewer.imaging.palette import SHORT_NAMES, label_hex
from ich_viewer.imaging.presets import PRESETS
from ich_viewer.ui.about import model_card_path
from ich_viewer.options import ViewOptions
from ich_viewer.ui.settings import app_settings

if TYPE_CHECKING:  # pragma: no cover
    from ich_viewer.ui.main_window import MainWindow

SHOWN_KEY = "first_run/guide_shown"
"""QSettings flag: the guide has been shown once (it then waits for Help > First-run guide)."""
MODIFIER_KEYS = {Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_Meta, Qt.Key.Key_AltGr}
"""Pressing only a modifier does not close the guide (it is usually the start of a chord)."""
TWO_COLUMNS_FROM = 900
"""Card width (px) from which the guide uses two columns."""
NOT_FLAGGED_HEX = "#464646"
"""The strip's grey for "analysed, nothing flagged" (ui.inference_widgets.NOT_FLAGGED)."""

DEFAULT_KEYS = {
    "next_flagged": "N", "previous_flagged": "P", "attention": "G", "review_accept": "A",
    "review_reject": "R", "review_undecided": "U", "export_report": "Ctrl+E", "controls": "F1",
    "cine": "Space", "review_accept_next": "Return",
}
"""What the guide says when an action is not attached (e.g. the classifier is off)."""


def guide_shown() -> bool:
    return str(app_settings().value(SHOWN_KEY, "false")).lower() in ("true", "1")


def set_guide_shown(shown: bool = True) -> None:
    settings = app_settings()
    settings.setValue(SHOWN_KEY, bool(shown))
    settings.sync()


EXTENSION_NAME = "first_run"


def action_keys(window: MainWindow) -> dict[str, str]:
    """The keys the guide names, read from the window's actions so the guide never lies."""
    keys = dict(DEFAULT_KEYS)
    for name in DEFAULT_KEYS:
        action = window.action(name)
        if action is not None and not action.shortcut().isEmpty():
            keys[name] = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    return keys


def _swatch(colour: str) -> str:
    return (f"<span style='background:{colour}; color:{colour}; border:1px solid #999;'>"
            "&nbsp;&nbsp;&nbsp;</span>")


def guide_html(window: MainWindow, two_columns: bool = False) -> str:
    """The guide's text (rich text for a QLabel); every key comes from ``action_keys``.

    ``two_columns`` puts the keys and limits beside the rest, so a 1366x768 screen needs no scrolling.
    """
    e = html.escape
    k = {name: e(key) for name, key in action_keys(window).items()}
    info = demo.demo_info()
    labelled = f" The data set's readers labelled {e(demo.label_summary(info))}." if info else ""
    colours = " &nbsp; ".join(
        f"{_swatch(label_hex(label))}&nbsp;{SHORT_NAMES[label]} {'any' if label == 'any' else label}"
        for label in LABELS)
    presets = " · ".join(f"<b>{e(p.key)}</b> {e(p.name)}" for p in PRESETS)
    rows = [
        (f"{k['next_flagged']} / {k['previous_flagged']}", "next / previous run of flagged slices"),
        (k["attention"], "attention map: where the network looked (not an outline of the bleed)"),
        ("1 … 0", presets),
        ("↑ ↓ or wheel", f"slices; {k['cine']} plays them; left drag sets the window"),
        (f"{k['review_accept']} / {k['review_reject']} / {k['review_undecided']}",
         "accept / reject / undecided: your verdict on this slice's flag, kept in the report"),
        (k["review_accept_next"], "accept this run of flagged slices and go to the next run"),
        (k["export_report"], "export the report: PDF, JSON, CSV, DICOM SR and key images"),
        (k["controls"], "every mouse action and key; F11 shows the image alone"),
    ]
    table = "".join(f"<tr><td style='padding:2px 10px 2px 0; white-space:nowrap;'><b>{keys}</b></td>"
                    f"<td style='padding:2px 0;'>{text}</td></tr>" for keys, text in rows)
    first = (
        "<h2 style='margin:0 0 6px 0;'>Welcome to ICH Viewer</h2>"
        f"<p>The demo is a real head CT: patient {e(demo.CT_ICH_PATIENT)} of the CT-ICH data set "
        f"({e(demo.SHORT_CREDIT.split(', ', 1)[1])}).{labelled}</p>"
        f"<p style='color:#ffd27a;'><b>{e(demo.TRAINING_NOTE)}</b></p>"
        "<h3 style='margin:8px 0 2px 0;'>The colours</h3>"
        f"<p>{colours} &nbsp; {_swatch(NOT_FLAGGED_HEX)}&nbsp;analysed, nothing flagged &nbsp; "
        "(blank: not analysed yet)</p>"
        "<p>The <b>strip</b> beside the slice slider has one band per slice in the colours of the subtypes "
        "flagged there; click a band to go to it. The <b>frame</b> around the image shows the flags of the slice "
        "on screen. The Classifier panel has the probabilities and each subtype's threshold.</p>"
    )
    second = (
        "<h3 style='margin:8px 0 2px 0;'>The keys</h3>"
        f"<table cellspacing='0'>{table}</table>"
        "<h3 style='margin:8px 0 2px 0;'>The limits</h3>"
        f"<p><b>{e(RESEARCH_NOTICE)}</b> The classifier misses bleeds, and no flag never means no bleed. "
        "What it was trained on and how often it is right: Help &gt; Classifier model information, "
        f"or the model card <code>{e(model_card_path())}</code>.</p>"
    )
    close = "<p style='color:#bbbbbb;'>Press any key or click to close. Help &gt; First-run guide shows it again.</p>"
    if two_columns:
        return (f"<table width='100%' cellspacing='0'><tr><td width='50%' valign='top' style='padding-right:18px;'>{first}</td>"
                f"<td width='50%' valign='top' style='padding-left:6px;'>{second}</td></tr></table>{close}")
    return first + second + close


class FirstRunGuide(QWidget):
    """A dimmed layer over the central area (image and slider) with the guide on a card.

    While it is visible an application event filter takes the next key: the key closes
    the guide and does nothing else (so "N" does not also jump to a flagged slice).
    """

    def __init__(self, window: MainWindow) -> None:
        host = window  # the whole window below the menu bar: room for two columns on a small screen
        super().__init__(host)
        self.setObjectName("first_run_guide")
        self._window = window
        self._host = host
        self.card = QFrame(self)
        self.card.setObjectName("first_run_card")
        self.card.setStyleSheet(
            "QFrame#first_run_card { background: #1d2126; border: 1px solid #6a7480; border-radius: 6px; }"
            "QLabel { color: #e8e8e8; background: transparent; }")
        self.text = QLabel()
        self.text.setObjectName("first_run_text")
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        self.text.setMargin(14)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.scroll_area = QScrollArea(self.card)
        self.scroll_area.setWidgetResizable(False)  # _place sizes the text: QLabel's own guess misses tables
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setStyleSheet("QScrollArea, QScrollArea > QWidget > QWidget { background: transparent; }")
        self.scroll_area.setWidget(self.text)
        layout = QVBoxLayout(self.card)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll_area)
        host.installEventFilter(self)
        self.hide()

    # -- showing and closing -----------------------------------------------------------
    def open(self) -> None:
        self._place()
        self.show()
        self.raise_()
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        set_guide_shown(True)

    def dismiss(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.hide()

    def plain_text(self) -> str:
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.text.text())
        return doc.toPlainText()

    # -- events --------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        kind = event.type()
        if watched is self._host and kind == QEvent.Type.Resize:
            self._place()
            return False
        if not self.isVisible():
            return False
        if kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and self._in_window(watched):
            if isinstance(event, QKeyEvent) and event.key() in MODIFIER_KEYS:
                return False
            if kind == QEvent.Type.ShortcutOverride:
                event.accept()  # no window shortcut fires: the key press comes to us instead
                return True
            self.dismiss()
            return True
        return False

    def _in_window(self, watched: QObject) -> bool:
        return isinstance(watched, QWidget) and watched.window() is self._window

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802
        self.dismiss()
        event.accept()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0, 165))
        painter.end()

    def _text_height(self, width: int) -> int:
        """Height of the guide's text laid out ``width`` wide (QLabel's own guess misses tables)."""
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setDefaultFont(self.text.font())
        doc.setDocumentMargin(4)  # as QLabel lays out rich text
        doc.setHtml(self.text.text())
        doc.setTextWidth(width - 2 * self.text.margin())
        return int(doc.size().height()) + 2 * self.text.margin() + 4

    def _place(self) -> None:
        """Cover the window below the menu bar; the card as wide as reads well, as tall as its text."""
        top = self._window.menuBar().height() if self._window.menuBar().isVisible() else 0
        self.setGeometry(self._host.rect().adjusted(0, top, 0, 0))
        margin = 16
        width = max(200, min(self.width() - 2 * margin, 1180))
        self.text.setText(guide_html(self._window, two_columns=width >= TWO_COLUMNS_FROM))
        wanted = self._text_height(width - 2)
        height = max(120, min(self.height() - 2 * margin, wanted + 2))
        text_width = width - 2
        if wanted + 2 > height:  # too tall for this screen: the text scrolls, next to a scroll bar
            text_width -= self.scroll_area.verticalScrollBar().sizeHint().width()
            wanted = self._text_height(text_width)
        self.text.setFixedSize(text_width, wanted)
        self.card.setGeometry((self.width() - width) // 2, max(margin, (self.height() - height) // 2), width, height)


class DemoNotice(QToolBar):
    """A strip under the toolbar while the bundled demo is open: credit and training note."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__("Demo study notice", window)
        self.setObjectName("demo_notice")
        self.setMovable(False)
        self.setFloatable(False)
        self.setStyleSheet("QToolBar#demo_notice { background: #3a2e12; border-bottom: 1px solid #e69f00; }"
                           "QToolBar#demo_notice QLabel { color: #ffe9b3; padding: 2px 6px; }")
        self.label = QLabel(
            f"<b>Demo:</b> real head CT, {html.escape(demo.SHORT_CREDIT)} &nbsp;·&nbsp; "
            f"<b>{html.escape(demo.TRAINING_NOTE_SHORT)}</b>")
        self.label.setObjectName("demo_notice_text")
        self.label.setToolTip(f"{demo.TRAINING_NOTE}\n\n{demo.credit_text()}")
        self.label.setMinimumWidth(40)  # one line; a narrow window clips it rather than growing
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.credit_button = QPushButton("Credit and licence…")
        self.credit_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.credit_button.clicked.connect(lambda: window.show_about())
        # one expanding widget: a toolbar would move a too-wide label into its overflow menu
        row = QWidget()
        row.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.credit_button)
        self.addWidget(row)
        window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self)
        self.toggleViewAction().setVisible(False)  # not something to switch off by accident
        self.hide()

    def plain_text(self) -> str:
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.label.text())
        return doc.toPlainText()


class FirstRun(QObject):
    """What ``attach_first_run`` hangs on the window as ``window.first_run``."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.guide = FirstRunGuide(window)
        self.notice = DemoNotice(window)
        self.action = QAction("&First-run guide", window)
        self.action.setObjectName("action_first_run_guide")
        self.action.triggered.connect(lambda *_: self.guide.open())
        window.addAction(self.action)
        window.menu("Help").addAction(self.action)
        window.study_opened.connect(self._on_study_opened)
        window.study_closing.connect(self.notice.hide)

    def _on_study_opened(self, study: Any) -> None:
        self.notice.setVisible(demo.is_demo_study(study))


def attach_first_run(window: MainWindow, options: ViewOptions | None = None) -> FirstRun:
    """Extension: Help > First-run guide, and the demo notice strip."""
    first_run = FirstRun(window)
    window.extensions.add(EXTENSION_NAME, first_run)
    return first_run


def first_start(window: MainWindow, options: ViewOptions) -> bool:
    """On the very first start, show the guide and (when nothing else was asked) open the demo.

    Returns True when it opened a study itself (the caller then opens nothing).
    """
    first_run = window.extensions.get(EXTENSION_NAME, FirstRun)
    if first_run is None or guide_shown():
        return False
    opened = False
    if not options.path and not options.demo and demo.demo_info() is not None:
        window.open_demo("ct-ich")
        opened = True
    first_run.guide.open()
    return opened
