"""Viewer speed: render work per slice / preset change, first slice on screen, big folders.

Prints one JSON object. Runs on the offscreen Qt platform unless QT_QPA_PLATFORM is set
(software raster painting, like a plain X server). The window is the bare viewer
(no classifier or review extensions), so the numbers are the reading path only.

    .venv/bin/python bench/bench_render.py [--work DIR] [--big-files 3000] [--quick]

Data sets are written once with the project's phantom writer into --work and re-used.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

HEARTBEAT_MS = 5


def _write_once(folder: Path, make) -> Path:
    done = folder / ".complete"
    if not done.exists():
        make(folder)
        done.write_text("ok")
    return folder


def series_40(work: Path) -> Path:
    from ich_viewer.phantom import generate_phantom
    from ich_viewer.phantom.writer import write_series

    def make(folder: Path) -> None:
        phantom = generate_phantom(seed=3, n_slices=40, matrix=512)
        write_series(phantom.volume_hu, folder, spacing_mm=phantom.spacing_mm,
                     pixel_spacing=phantom.pixel_spacing, file_names="random")

    return _write_once(work / "series40_512", make)


def big_folder(work: Path, n_files: int, n_series: int = 4, matrix: int = 128) -> Path:
    from ich_viewer.phantom.writer import StudyInfo, write_series

    def make(folder: Path) -> None:
        study = StudyInfo()
        per = n_files // n_series
        yy, xx = np.mgrid[0:matrix, 0:matrix]
        head = np.where(np.hypot(yy - matrix / 2, xx - matrix / 2) < matrix * 0.42, 35.0, -1000.0)
        rng = np.random.default_rng(0)
        for s in range(n_series):
            volume = (head[None] + rng.normal(0, 4, (per, matrix, matrix))).astype(np.float32)
            write_series(volume, folder / f"series{s}", spacing_mm=0.625, pixel_spacing=(0.5, 0.5),
                         study=study, series_number=s + 1, description=f"BIG {s + 1}", file_names="random",
                         nested=True)

    return _write_once(work / f"big_{n_files}_{n_series}x{matrix}", make)


class Heartbeat:
    """A QTimer that notes the longest gap between its ticks: the worst UI freeze."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last = time.perf_counter()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> dict:
        self.timer.stop()
        gaps = sorted(self.gaps) or [0.0]
        return {"longest_stall_ms": round(gaps[-1] * 1000, 1),
                "p99_gap_ms": round(gaps[int(0.99 * (len(gaps) - 1))] * 1000, 1),
                "ticks": len(self.gaps)}


def _pump_until(app, condition, timeout_s: float) -> bool:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            return False
        app.processEvents()
        time.sleep(0.0005)
    return True


def _fully_decoded(series) -> bool:
    return all(series.is_decoded(i) or series.decode_error(i) for i in range(series.n_slices))


def _ms(values: list[float]) -> dict:
    values = sorted(values)
    return {"min_ms": round(values[0] * 1000, 2), "median_ms": round(statistics.median(values) * 1000, 2),
            "p95_ms": round(values[int(0.95 * (len(values) - 1))] * 1000, 2),
            "max_ms": round(values[-1] * 1000, 2), "n": len(values)}


def open_and_time(app, window, folder: Path) -> dict:
    """Seconds from open_path to: first slice on screen, headers done, series decoded."""
    beat = Heartbeat()
    beat.start()
    t0 = time.perf_counter()
    window.open_path(folder)
    ok = _pump_until(app, lambda: window.current_series() is not None and window._shown_index is not None, 600)
    t_first = time.perf_counter() - t0
    ok = ok and _pump_until(app, lambda: _fully_decoded(window.current_series()), 600)
    t_all = time.perf_counter() - t0
    stall = beat.stop()
    series = window.current_series()
    return {"ok": ok, "first_slice_on_screen_s": round(t_first, 3), "shown_series_decoded_s": round(t_all, 3),
            "series": len(window.current_study().series), "slices_shown_series": series.n_slices, **stall}


def render_times(app, window, repeats: int) -> dict:
    """Render work: the call plus a synchronous repaint of the image viewport."""
    viewport = window.image_view().graphics.viewport()
    n = window.current_series().n_slices
    slice_times, preset_times = [], []
    for r in range(repeats):
        for i in range(n):
            t = time.perf_counter()
            window.set_slice(i if r % 2 == 0 else n - 1 - i)
            viewport.repaint()
            slice_times.append(time.perf_counter() - t)
            app.processEvents()
        for key in "1234567890":
            t = time.perf_counter()
            window.set_preset(key)
            viewport.repaint()
            preset_times.append(time.perf_counter() - t)
            app.processEvents()
    return {"change_slice": _ms(slice_times), "change_preset": _ms(preset_times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ich-viewer-bench-render"))
    parser.add_argument("--big-files", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="smaller big folder, fewer repeats")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ICH_VIEWER_SETTINGS", str(work / "settings.ini"))
    big_files = 400 if args.quick else args.big_files

    from ich_viewer.ui import app as app_module

    app_module.EXTENSIONS = []
    app = app_module.application()
    from ich_viewer.ui.main_window import MainWindow

    folder40 = series_40(work)
    folder_big = big_folder(work, big_files)
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    app.processEvents()

    result: dict = {"benchmark": "viewer render", "python": platform.python_version(),
                    "machine": platform.machine(), "cpus": os.cpu_count(),
                    "load_average_at_start": [round(v, 1) for v in os.getloadavg()],
                    "qt_platform": os.environ["QT_QPA_PLATFORM"],
                    "viewport": [window.image_view().graphics.viewport().width(),
                                 window.image_view().graphics.viewport().height()]}
    idle = Heartbeat()
    idle.start()
    _pump_until(app, lambda: False, 3.0)
    result["idle_event_loop_baseline"] = {"seconds": 3.0, **idle.stop()}
    opens = [open_and_time(app, window, folder40) for _ in range(3)]
    result["open_40x512"] = {"runs": opens,
                             "first_slice_median_s": statistics.median(o["first_slice_on_screen_s"] for o in opens)}
    result["render_40x512"] = render_times(app, window, repeats=1 if args.quick else 3)
    result["open_big_folder"] = {"files": big_files, "matrix": 128, **open_and_time(app, window, folder_big)}
    window.close()
    app.processEvents()
    result["load_average_at_end"] = [round(v, 1) for v in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
