"""Starting the window: QApplication, look, extensions, then the study to open."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any, Callable

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ich_viewer.dicom.background import warm_up
from ich_viewer.paths import resources_dir
from ich_viewer.ui.settings import APPLICATION, ORGANIZATION

log = logging.getLogger(__name__)

EXTENSIONS: list[str] = [
    "ich_viewer.ui.inference_panel:attach_inference",
    "ich_viewer.ui.review_panel:attach_review",
    "ich_viewer.ui.smoke:exit_after_first_paint",
    "ich_viewer.ui.first_run:attach_first_run",
]
"""Dotted "module:function" names, each called as ``f(window, args)`` after the window is built."""

STYLE_SHEET = "style.qss"
ICON = "icons/ich-viewer.png"


def application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with names, style and icon (re-used when one exists, as in tests)."""
    app = QApplication.instance()
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


def run_extensions(window: Any, args: Any, names: list[str] | None = None) -> list[str]:
    """Call each extension; a failure is logged and shown, never fatal. Returns the failures."""
    failed = []
    for name in EXTENSIONS if names is None else names:
        try:
            _resolve(name)(window, args)
        except Exception as exc:  # an extension must never take the viewer down
            log.exception("extension %s failed", name)
            failed.append(name)
            window.show_status(f"Extension {name} failed: {type(exc).__name__}: {exc}", 15000)
    return failed


def build_window(args: Any) -> Any:
    """Application + window + extensions, without entering the event loop."""
    application()
    from ich_viewer.ui.main_window import MainWindow  # after QApplication: pyqtgraph needs it

    window = MainWindow()
    run_extensions(window, args)
    return window


def open_initial(window: Any, args: Any) -> None:
    demo = getattr(args, "demo", None)
    if demo:
        window.open_demo(demo if isinstance(demo, str) else "ct-ich")
    elif getattr(args, "path", None):
        window.open_path(args.path)


def run_viewer(args: argparse.Namespace | Any) -> int:
    if getattr(args, "smoke_test", False):
        from ich_viewer.ui.smoke import run_smoke_test

        return run_smoke_test(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = application()
    warm_up()  # decoder processes start while the window is built, not on the first study
    window = build_window(args)
    window.show()
    from ich_viewer.ui.first_run import first_start

    if not first_start(window, args):  # the very first start opens the demo with the guide on it
        open_initial(window, args)
    return int(app.exec())
