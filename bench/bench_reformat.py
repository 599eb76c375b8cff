"""Slab and reformat speed on a thin series: building the grid once, then each frame.

    .venv/bin/python bench/bench_reformat.py [--slices 240] [--size 512] [--frames 60]

A synthetic head (skull, brain, noise) of 240 x 512 x 512 at 0.625 mm is held in memory
as a Series, straight and with a 15 degree gantry tilt. Measured and printed as JSON:

- ``build``: the grid for the whole series (``reformat_series``: int16 stack from the
  decoded cache, plus the SimpleITK resample when tilted). Done once per series, off the
  UI thread.
- ``compute``: per frame, the numpy cut alone (5 mm MIP / average slab on the axial
  image, thin and 5 mm coronal and sagittal).
- ``frame``: per frame in the window (Qt offscreen, software raster) with the reformat
  extension, the call plus a synchronous repaint of every view it changed: slab display
  (5 mm average, the default) on a slice change, and the three views (axial slab,
  coronal, sagittal) on a slice change and on a move of the coronal plane. Goals: slab
  display <= 10 ms, a reformat <= 30 ms.
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def head_series(n: int, size: int, tilt_deg: float, spacing: float = 0.625):
    """A decoded in-memory series; with a tilt, positions and orientation as a tilted gantry writes them."""
    from ich_viewer.dicom.model import Series

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    volume = np.empty((n, size, size), np.int16)
    for k in range(n):
        scale = 0.6 + 0.35 * np.sin(np.pi * (k + 1) / (n + 1))
        r = np.hypot((yy - size / 2) / (0.42 * size * scale), (xx - size / 2) / (0.36 * size * scale))
        image = np.where(r < 1.0, 1200.0, -1000.0) + rng.normal(0, 4, (size, size))
        image[r < 0.93] = 35.0 + 8 * np.sin(xx[r < 0.93] / 9.0)
        volume[k] = image
    series = Series.from_array(volume, spacing_mm=spacing, pixel_spacing=(0.45, 0.45))
    t = np.radians(tilt_deg)
    for k, header in enumerate(series.slices):
        header.orientation = (1.0, 0.0, 0.0, 0.0, float(np.cos(t)), float(-np.sin(t)))
        header.position = (0.0, 0.0, k * spacing)
    series.gantry_tilt_deg = tilt_deg
    for k in range(n):
        series.hu(k)  # decoded, as after the background decoder
    return series


def _ms(values: list[float]) -> dict:
    ms = sorted(v * 1000 for v in values)
    return {"n": len(ms), "min": round(ms[0], 2), "median": round(statistics.median(ms), 2),
            "p95": round(ms[int(0.95 * (len(ms) - 1))], 2), "max": round(ms[-1], 2)}


def _timed(fn, repeats: int) -> dict:
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return _ms(times)


def compute_times(reformat, frames: int) -> dict:
    planes, rows, cols = reformat.grid.shape
    n = reformat.n_slices
    pick = lambda i, size: (i * 7919) % size  # noqa: E731 - scattered, not cache-friendly in order
    return {
        "axial_mip_5mm": _timed(lambda i: reformat.axial(pick(i, n), 5.0, "mip"), frames),
        "axial_average_5mm": _timed(lambda i: reformat.axial(pick(i, n), 5.0, "average"), frames),
        "coronal_thin": _timed(lambda i: reformat.coronal(pick(i, rows)), frames),
        "coronal_mip_5mm": _timed(lambda i: reformat.coronal(pick(i, rows), 5.0, "mip"), frames),
        "sagittal_thin": _timed(lambda i: reformat.sagittal(pick(i, cols)), frames),
        "sagittal_mip_5mm": _timed(lambda i: reformat.sagittal(pick(i, cols), 5.0, "mip"), frames),
    }


def window_times(app, series, frames: int) -> dict:
    from ich_viewer.dicom.model import Study
    from ich_viewer.ui.app import build_window

    window = build_window(extensions=["ich_viewer.ui.reformat_view:attach_reformat"])
    window.resize(1920, 1080)
    window.show()
    app.processEvents()
    window.show_study(Study(source="bench", series=[series]))
    controller = window.extensions["reformat"]
    views = [window.image_view(), controller.panel.coronal, controller.panel.sagittal]

    def wait_ready() -> None:
        deadline = time.monotonic() + 120
        while controller.reformat is None and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.005)

    def frame(action, painted) -> float:
        t = time.perf_counter()
        action()
        for view in painted:
            view.graphics.viewport().repaint()
        elapsed = time.perf_counter() - t
        app.processEvents()
        return elapsed

    n = series.n_slices
    controller.set_slab(True)
    wait_ready()
    slab = [frame(lambda i=i: window.set_slice((i * 37) % n), views[:1]) for i in range(frames)]
    controller.set_three_views(True)
    app.processEvents()
    three = [frame(lambda i=i: window.set_slice((i * 37) % n), views) for i in range(frames)]
    move = [frame(lambda: controller.move_plane("coronal", 3), views) for _ in range(frames)]
    controller.set_slab(False)
    thin = [frame(lambda i=i: window.set_slice((i * 37) % n), views) for i in range(frames)]
    result = {
        "viewports": [[v.graphics.viewport().width(), v.graphics.viewport().height()] for v in views],
        "slab_display_5mm_average": _ms(slab),
        "three_views_slab_slice_change": _ms(three),
        "three_views_slab_move_coronal_plane": _ms(move),
        "three_views_thin_slice_change": _ms(thin),
    }
    window.close()
    app.processEvents()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=240)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    settings = tempfile.TemporaryDirectory(prefix="ich-bench-")  # removed when the program ends
    os.environ.setdefault("ICH_VIEWER_SETTINGS", str(Path(settings.name) / "settings.ini"))
    from ich_viewer.imaging.reformat import reformat_series
    from ich_viewer.ui.app import application

    app = application()
    result: dict = {
        "benchmark": "bench_reformat",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "qt_platform": os.environ["QT_QPA_PLATFORM"],
        "volume": [args.slices, args.size, args.size],
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }
    for name, tilt in (("straight", 0.0), ("tilted_15deg", 15.0)):
        series = head_series(args.slices, args.size, tilt)
        t = time.perf_counter()
        reformat = reformat_series(series)
        build_s = time.perf_counter() - t
        assert reformat is not None
        result[name] = {"build_s": round(build_s, 3), "grid": list(reformat.grid.shape),
                        "tilt_corrected": reformat.tilt_corrected, "compute": compute_times(reformat, args.frames)}
        if tilt == 0.0:
            result[name]["frame"] = window_times(app, series, args.frames)
        del reformat, series
    result["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
