"""The image gets the screen: how the reading window is laid out and sized.

- The window opens filling the available screen (maximised), or where the reader left it
  when that still fits the screen.
- The panels on the right are one narrow column: the Classifier (banner, legend, plot) on
  top and the Review, Measure and Worklist tabs under it, so the plot stays in sight while
  reviewing; the Series list shows only when the study has more than one series.
- F11 shows the image alone on the whole screen (slider and strip stay), F11 again
  brings every bar and panel back as it was.

Measured by ``tests/test_reading_layout.py``: the image viewport takes >= 70 % of the
window's width at 1920x1080 and >= 60 % at 1366x768 in the default layout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow, QToolBar

from ich_viewer.ui.overlays import person_name

APP_TITLE = "ICH Viewer"
"""Qt adds the application's display name to a title unless the title ends with it."""
TITLE_SEPARATOR = " — "
RIGHT_SHARE = 0.2
"""The right-hand column takes about this share of the window's width ..."""
RIGHT_MIN, RIGHT_MAX = 300, 400
"""... within these pixels."""
TOP_PANEL = "dock_classifier"
BOTTOM_PANELS = ("dock_review", "dock_measure", "dock_worklist")
"""The tabs under the Classifier, in this order; any other right-hand panel joins them after."""
TOP_SHARE = 0.55
"""Height share of the Classifier panel over the Review tabs."""
MAX_WARNING_CHARS = 160


def study_title(study: Any) -> str:
    """The window title for a study: who, what, then the program's name once."""
    who = person_name(study.patient_name) or (f"ID {study.patient_id}" if study.patient_id else "")
    what = study.study_description or Path(study.source).name or str(study.source)
    if Path(study.source).name in ("dicom", "DICOM") and not study.study_description:
        what = Path(study.source).parent.name or what  # ".../ct-ich-071/dicom" says little as "dicom"
    parts = [p for p in (who, what) if p]
    return TITLE_SEPARATOR.join([" · ".join(parts), APP_TITLE]) if parts else APP_TITLE


def warning_line(study: Any, series: Any) -> str:
    """One line over the image for what went wrong while loading (missing slice, tilt, spacing)."""
    warnings = list(getattr(series, "warnings", [])) + list(getattr(study, "warnings", []) if study else [])
    if not warnings:
        return ""
    first = warnings[0] if len(warnings[0]) <= MAX_WARNING_CHARS else warnings[0][:MAX_WARNING_CHARS - 1] + "…"
    more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
    return f"⚠ {first}{more} · Ctrl+L: load log"


class ReadingLayout(QObject):
    """Sizes the window to the screen, arranges the panels and runs the image-only view."""

    def __init__(self, window: QMainWindow, action: Callable[[str], QAction | None]) -> None:
        """``action`` finds the window's action by name (the window's own lookup: no import of it here)."""
        super().__init__(window)
        self.window = window
        self._action = action
        self.restored = False
        """True when a saved geometry was applied (``show_window`` then keeps it if it fits)."""
        self._saved: tuple[QByteArray, bool, bool, bool] | None = None
        self._panels: tuple[QDockWidget | None, QDockWidget | None] = (None, None)
        self._sized = False
        self.laid_out = False
        """True once the first show fitted the window to the screen and sized the panels."""
        window.installEventFilter(self)
        screen = window.screen()
        if screen is not None:
            window.resize(screen.availableGeometry().size())

    # -- opening -------------------------------------------------------------------------
    def show_window(self) -> None:
        """Show filling the available screen, unless a saved place still fits on it."""
        window = self.window
        screen = window.screen()
        if self.restored and screen is not None and screen.availableGeometry().contains(window.frameGeometry()):
            window.show()
        else:
            window.showMaximized()

    def right_width(self) -> int:
        return int(min(RIGHT_MAX, max(RIGHT_MIN, RIGHT_SHARE * self.window.width())))

    def arrange_panels(self) -> None:
        """Classifier on top of the right column, the other panels as tabs under it, narrow."""
        window = self.window
        docks = {d.objectName(): d for d in window.findChildren(QDockWidget)}
        top = docks.get(TOP_PANEL)
        right = [d for d in docks.values()
                 if window.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea and not d.isFloating()]
        bottom = [docks[name] for name in BOTTOM_PANELS if name in docks and docks[name] in right]
        bottom += [d for d in right if d is not top and d not in bottom]  # panels of later extensions: tabs too
        if top is not None and bottom:
            # adding a dock again takes it out of the tabs add_side_panel made (removeDockWidget
            # would hand the dock to Python, which deletes it)
            window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, top)
            window.splitDockWidget(top, bottom[0], Qt.Orientation.Vertical)
            for dock in bottom[1:]:
                window.tabifyDockWidget(bottom[0], dock)
            bottom[0].raise_()
        self._panels = (top, bottom[0] if bottom else None)
        self.size_panels()

    def size_panels(self) -> None:
        """The column's width from the window's, and its split; again once the window is shown."""
        window = self.window
        top, bottom = self._panels
        central = window.centralWidget()
        if top is not None and bottom is not None and window.isVisible() and central is not None:
            height = central.height()  # the docks' height: what is left between the bars
            window.resizeDocks([top, bottom], [int(height * TOP_SHARE), int(height * (1 - TOP_SHARE))],
                               Qt.Orientation.Vertical)
        right = [d for d in window.findChildren(QDockWidget)
                 if window.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea and not d.isFloating()]
        if right:
            window.resizeDocks(right[:1], [self.right_width()], Qt.Orientation.Horizontal)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.window and event.type() == QEvent.Type.Show and not self._sized:
            self._sized = True
            QTimer.singleShot(0, self._first_layout)  # after the first layout, with real sizes
        return False

    def _first_layout(self) -> None:
        """Never taller or wider than the screen (a 1366x768 screen cut the status bar off)."""
        window, screen = self.window, self.window.screen()
        if screen is not None and not window.isFullScreen():
            available = screen.availableGeometry()
            if window.width() > available.width() or window.height() > available.height():
                window.resize(min(window.width(), available.width()), min(window.height(), available.height()))
        self.size_panels()
        self.laid_out = True

    # -- image only ------------------------------------------------------------------------
    def image_only(self) -> bool:
        return self._saved is not None

    def toggle_image_only(self) -> None:
        """F11: the image alone on the whole screen, and back."""
        if self._saved is None:
            self.enter_image_only()
        else:
            self.leave_image_only()

    def enter_image_only(self) -> None:
        window = self.window
        if self._saved is not None:
            return
        self._saved = (window.saveState(), window.menuBar().isVisible(), window.statusBar().isVisible(),
                       window.isMaximized())
        for widget in window.findChildren(QDockWidget) + window.findChildren(QToolBar):
            if widget.parent() is window:
                widget.hide()
        window.menuBar().hide()
        window.statusBar().hide()
        window.showFullScreen()
        self._sync_action()

    def leave_image_only(self) -> None:
        window = self.window
        if self._saved is None:
            return
        state, menu_bar, status_bar, maximised = self._saved
        self._saved = None
        window.menuBar().setVisible(menu_bar)
        window.statusBar().setVisible(status_bar)
        window.restoreState(state)
        if maximised:
            window.showMaximized()
        else:
            window.showNormal()
        self._sync_action()

    def _sync_action(self) -> None:
        action = self._action("image_only")
        if action is not None:
            action.setChecked(self.image_only())
