"""The Qt half of ``ich-viewer --smoke-test`` and the startup probe for benchmarks.

``run_smoke_test(args)`` runs ``ich_viewer.smoke_test`` with the real main window (and
its extensions) in between: the phantom study is opened through ``MainWindow.open_path``
exactly as a reader would, and the classifier then runs on the series the window loaded.

``exit_after_first_paint`` (an extension in ``ui.app.EXTENSIONS``) does nothing unless
ICH_VIEWER_EXIT_AFTER_SHOW=1: then it prints ``ICH_VIEWER_FIRST_PAINT <unix time>`` when
the window first paints and quits, so a benchmark can time start-up to the first window.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEvent, QLibraryInfo, QObject, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

if TYPE_CHECKING:  # the self-check is imported only when it runs: this module loads at every start
    from ich_viewer.smoke_test import SmokeContext, SmokeRun

WINDOW_TIMEOUT_S = 120.0
FIRST_PAINT_MARK = "ICH_VIEWER_FIRST_PAINT"
PLATFORM_PLUGINS = {"linux": ("libqxcb.so", "libqoffscreen.so"), "win32": ("qwindows.dll", "qoffscreen.dll"),
                    "darwin": ("libqcocoa.dylib", "libqoffscreen.dylib")}


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Process Qt events until ``condition()`` holds or the time is up."""
    timer = QElapsedTimer()
    timer.start()
    while not condition():
        if timer.elapsed() > timeout_s * 1000:
            return False
        QCoreApplication.processEvents()
        time.sleep(0.01)
    return True


def step_qt_platform(ctx: "SmokeContext") -> str:
    from ich_viewer.smoke_test import check

    name = QGuiApplication.platformName()
    folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    wanted = PLATFORM_PLUGINS.get(sys.platform, PLATFORM_PLUGINS["linux"])
    missing = [p for p in wanted if not (folder / p).is_file()]
    check(not missing, f"Qt platform plugin(s) {', '.join(missing)} missing from {folder}")
    return f"running on '{name}'; {', '.join(wanted)} present"


def window_steps(args: Any) -> Callable[["SmokeRun", "SmokeContext"], None]:
    """The steps that need the real main window, bound to the command-line arguments."""

    def steps(run: "SmokeRun", ctx: "SmokeContext") -> None:
        holder: dict[str, Any] = {}
        run.step("main window", lambda: _build(holder, args))
        run.step("qt platform", lambda: step_qt_platform(ctx), ("main window",))
        run.step("open demo in window", lambda: _open_demo(holder["window"]), ("main window", "demo study"))
        run.step("open in window", lambda: _open(holder["window"], ctx), ("main window", "phantom study"))
        run.step("classify in window", lambda: _classify_in_window(holder["window"], ctx), ("open in window",))
        if "window" in holder:
            run.step("close window", lambda: _close(holder["window"]), ("main window",))

    return steps


def _build(holder: dict[str, Any], args: Any) -> str:
    from ich_viewer.smoke_test import check
    from ich_viewer.ui.app import EXTENSIONS, application, run_extensions

    application()
    from ich_viewer.ui.main_window import MainWindow  # after QApplication: pyqtgraph needs it

    window = MainWindow()
    holder["window"] = window
    failed = run_extensions(window, args)
    check(not failed, f"extension(s) failed: {', '.join(failed)}")
    window.show()
    return f"{len(EXTENSIONS)} extension(s): {', '.join(n.split(':')[-1] for n in EXTENSIONS) or 'none'}"


def _open(window: Any, ctx: "SmokeContext") -> str:
    from ich_viewer.smoke_test import PHANTOM_MATRIX, PHANTOM_SLICES, check

    window.open_path(ctx.study_dir)

    def shown() -> bool:
        return window.last_error is not None or (
            window.current_series() is not None and window.slice_view.image_item.image is not None)

    check(wait_until(shown, WINDOW_TIMEOUT_S), f"the window showed no image within {WINDOW_TIMEOUT_S:.0f} s")
    check(window.last_error is None, f"the window reported an error: {window.last_error}")
    series = window.current_series()
    check(len(series) == PHANTOM_SLICES, f"the window shows {len(series)} slices, expected {PHANTOM_SLICES}")
    middle = len(series) // 2
    window.set_slice(middle)
    check(wait_until(lambda: window.current_index() == middle and series.is_decoded(middle), WINDOW_TIMEOUT_S),
          f"slice {middle + 1} was not decoded in time")
    QCoreApplication.processEvents()
    image = window.slice_view.image_item.image
    check(image is not None and tuple(image.shape[:2]) == (PHANTOM_MATRIX, PHANTOM_MATRIX),
          f"image on screen has shape {None if image is None else image.shape}")
    shot = window.grab().toImage()
    check(not shot.isNull() and shot.width() > 0, "the window could not be rendered")
    shot.save(str(ctx.workdir / "window.png"))
    ctx.study, ctx.series = window.current_study(), series
    return f"{len(series)} slices shown, slice {middle + 1} on screen, window {shot.width()}x{shot.height()}"


def _open_demo(window: Any) -> str:
    """File > Open demo study, as a new user does: the real CT shows, with its credit strip."""
    from ich_viewer import demo
    from ich_viewer.smoke_test import check

    info = demo.demo_info()
    check(info is not None, "the demo study is missing from this install")
    assert info is not None
    window.open_demo("ct-ich")

    def shown() -> bool:
        series = window.current_series()
        return window.last_error is not None or (
            series is not None and series.series_uid == info.series_uid
            and window.slice_view.image_item.image is not None)

    check(wait_until(shown, WINDOW_TIMEOUT_S), f"the demo showed no image within {WINDOW_TIMEOUT_S:.0f} s")
    check(window.last_error is None, f"the window reported an error: {window.last_error}")
    image = window.slice_view.image_item.image
    from ich_viewer.ui.first_run import EXTENSION_NAME, FirstRun

    first_run = window.extensions.get(EXTENSION_NAME, FirstRun)
    check(first_run is not None and first_run.notice.isVisible(), "the demo's credit and training-data strip is not shown")
    return (f"{len(window.current_series())} slices, image {image.shape[0]}x{image.shape[1]} on screen, "
            "credit strip shown")


def _classify_in_window(window: Any, ctx: "SmokeContext") -> str:
    """The classifier panel runs on the opened series by itself; wait for all slices."""
    from ich_viewer.inference.session import ModelState
    from ich_viewer.smoke_test import check
    from ich_viewer.ui.inference_panel import EXTENSION_NAME, InferenceController

    controller = window.extensions.get(EXTENSION_NAME, InferenceController)
    check(controller is not None, "the classifier extension is not attached to the window")
    series = window.current_series()

    def settled() -> bool:
        session = controller.session
        return session.is_complete(series) or session.model_state is ModelState.OFF

    check(wait_until(settled, WINDOW_TIMEOUT_S), f"the window's classifier did not finish within {WINDOW_TIMEOUT_S:.0f} s")
    check(controller.session.is_complete(series), f"the window's classifier says: {controller.session.reason}")
    prediction = controller.series_prediction(series)
    check(prediction is not None and len(prediction.slices) == len(series),
          f"the window has {0 if prediction is None else len(prediction.slices)} predictions for {len(series)} slices")
    ctx.extra["window_prediction"] = prediction
    return (f"{len(prediction.slices)} slices on {controller.session.device_text or prediction.model.device}, "
            f"{len(prediction.flagged_slices)} flagged")


def _close(window: Any) -> str:
    from ich_viewer.smoke_test import check

    window.close()
    stopped = window.shutdown()
    QCoreApplication.processEvents()
    check(stopped, "background work of the window did not stop in time")
    return "closed, background work stopped"


def run_smoke_test(args: Any) -> int:
    """``ich-viewer --smoke-test``: 0 only if every step passed."""
    from ich_viewer.smoke_test import run_smoke

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    run = run_smoke(sys.stdout, window_steps(args))
    return 0 if run.ok else 1


class _FirstPaint(QObject):
    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.seen = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        if not self.seen and event.type() == QEvent.Type.Paint:
            self.seen = True
            print(f"{FIRST_PAINT_MARK} {time.time():.6f}", flush=True)
            QTimer.singleShot(0, QApplication.quit)
        return False


def exit_after_first_paint(window: Any, args: Any) -> None:
    """Extension: with ICH_VIEWER_EXIT_AFTER_SHOW=1, report the first paint and quit."""
    if os.environ.get("ICH_VIEWER_EXIT_AFTER_SHOW") != "1":
        return
    window.installEventFilter(_FirstPaint(window))
