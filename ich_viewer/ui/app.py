"""Starting the window: QApplication, look, extensions, then the study to open."""
from __future__ import annotations

import importlib
import logging
import sys
from typing import TYPE_CHECKING, Any, Callable, cast

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ich_viewer.dicom.background import warm_up
from ich_viewer.options import ViewOptions
from ich_viewer.paths import resources_dir
from ich_viewer.ui.extension import ViewerWindow
from ich_viewer.ui.settings import APPLICATION, ORGANIZATION

if TYPE_CHECKING:  # pragma: no cover - main_window needs the QApplication before pyqtgraph loads
    from ich_viewer.ui.main_window import MainWindow

log = logging.getLogger(__name__)

EXTENSIONS: list[str] = [
    "ich_viewer.ui.inference_panel:attach_inference",
    "ich_viewer.ui.review_panel:attach_review",
    "ich_viewer.ui.measure_panel:attach_measure",
    "ich_viewer.ui.reformat_view:attach_reformat",
    "ich_viewer.ui.smoke:exit_after_first_paint",
    "ich_viewer.ui.first_run:attach_first_run",
    "ich_viewer.commands.node:attach_worklist",
]
"""The extension registry: dotted "module:function" names, each called as ``f(window, options)``
after the window is built (``ui.extension`` and notes/apis.md say what they may use)."""

STYLE_SHEET = "style.qss"
ICON = "icons/ich-viewer.png"


def application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with names, style and icon (re-used when one exists, as in tests)."""
    app = cast("QApplication | None", QApplication.instance())
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
    app.setApplicationName(APPLICATION)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setStyle("Fusion")
    style = resources_dir() / STYLE_SHEET
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    icon = resources_dir() / ICON
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def _resolve(name: str) -> Callable[..., Any]:
    module_name, _, function_name = name.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def run_extensions(window: MainWindow, options: ViewOptions, names: list[str] | None = None) -> list[str]:
    """Call each extension; a failure is logged and shown, never fatal. Returns the failures."""
    viewer: ViewerWindow = window  # mypy checks here that MainWindow is what extensions are promised
    failed = []
    for name in EXTENSIONS if names is None else names:
        try:
            _resolve(name)(viewer, options)
        except Exception as exc:  # an extension must never take the viewer down
            log.exception("extension %s failed", name)
            failed.append(name)
            window.show_status(f"Extension {name} failed: {type(exc).__name__}: {exc}", 15000)
    return failed


def build_window(options: ViewOptions | None = None, extensions: list[str] | None = None) -> MainWindow:
    """Application + window + extensions, without entering the event loop.

    Parameters
    ----------
    options
        ``ViewOptions`` handed to every extension (``device``, ``no_model``...).
    extensions
        "module:function" names to attach; None attaches all of ``EXTENSIONS``, ``[]``
        gives the bare reading window.

    Returns
    -------
    MainWindow
        Not yet shown. A failing extension is logged and named in the status bar.

    Example
    -------
    >>> window = build_window(ViewOptions(no_model=True))  # doctest: +SKIP
    >>> window.show(); window.open_path("/data/head-ct")    # doctest: +SKIP
    """
    application()
    from ich_viewer.ui.main_window import MainWindow  # after QApplication: pyqtgraph needs it

    window = MainWindow()
    run_extensions(window, options or ViewOptions(), extensions)
    window.reading.arrange_panels()  # the panels extensions added: one narrow column
    window.actions_.order_file_menu()
    return window


def open_initial(window: MainWindow, options: ViewOptions) -> None:
    if options.demo:
        window.open_demo(options.demo)
    elif options.path:
        window.open_path(options.path)


def run_viewer(options: ViewOptions) -> int:
    """The window's event loop; returns the exit code (``cli`` runs the install self-check itself)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = application()
    warm_up()  # decoder processes start while the window is built, not on the first study
    window = build_window(options)
    window.reading.show_window()  # fills the available screen
    from ich_viewer.ui.first_run import first_start

    if not first_start(window, options):  # the very first start opens the demo with the guide on it
        open_initial(window, options)
    return int(app.exec())
