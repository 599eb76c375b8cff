"""Classifier speed: per slice, per 40-slice study, first result on screen, UI stalls.

Run: .venv/bin/python bench/bench_inference.py [--quick]   (prints JSON)

Uses the bundled model when models/ holds a valid one, else an untrained network of
the default architecture and input size (speed does not depend on the weights).
Studies are synthetic phantoms (512 x 512, 40 slices). With the bundled model's second
stage for "any", its features are also timed alone (they are part of the network time).
A thin (0.625 mm) series is timed with and without averaging into 5 mm slabs.
"""
from __future__ import annotations

import argparse
import dataclasses
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

import ich_viewer.inference  # noqa: E402,F401  first: sets the OpenMP wait policy before torch loads
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ich_viewer.dicom.model import Series, Study  # noqa: E402
from ich_viewer.inference.device import describe_device  # noqa: E402
from ich_viewer.inference.predict import PredictState, predict_series  # noqa: E402
from ich_viewer.inference.head_angle import upright_turn  # noqa: E402
from ich_viewer.inference.hu_features import input_features  # noqa: E402
from ich_viewer.inference.preprocess import centre_hu, series_input  # noqa: E402
from ich_viewer.inference.testing import export_random_model  # noqa: E402
from ich_viewer.inference.weights import ModelLoadError, load_model  # noqa: E402
from ich_viewer.phantom import generate_phantom  # noqa: E402

N_SLICES = 40


def pick_model(tmp: Path, device: str) -> tuple[object, str]:
    try:
        return load_model(None, device=device), "bundled"
    except ModelLoadError:
        return load_model(export_random_model(tmp / "random"), device=device), "untrained default architecture"


def phantom_series(n: int = N_SLICES, matrix: int = 512, seed: int = 0) -> Series:
    ph = generate_phantom(seed=seed, subtypes=["subdural", "intraparenchymal"], matrix=matrix, n_slices=n)
    return Series.from_array(ph.volume_hu, spacing_mm=ph.spacing_mm, pixel_spacing=ph.pixel_spacing,
                             series_uid=f"1.2.826.0.1.3680043.8.498.{seed + 100}")


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def core_numbers(loaded, series: Series, threads: int, repeats: int) -> dict:
    torch.set_num_threads(threads)
    n = len(series)
    prep = timed(lambda: [series_input(series, i, loaded.spec) for i in range(n)], repeats)
    batch = torch.from_numpy(np.stack([series_input(series, i, loaded.spec) for i in range(8)])).to(loaded.device)
    with torch.inference_mode():
        loaded.model(batch)  # warm-up
        net = timed(lambda: loaded.model(batch), repeats * 3)
        stage = timed(lambda: input_features(batch, loaded.spec), repeats * 3) \
            if loaded.model.any_stage is not None else None
        angle = timed(lambda: upright_turn(centre_hu(batch, loaded.spec)), repeats * 3)
    totals = {}
    for batch_size in (1, 4, 8, 16):
        times = timed(lambda: predict_series(series, PredictState(loaded, batch_size=batch_size)), repeats)
        totals[batch_size] = statistics.median(times)
    best = min(totals, key=totals.get)
    return {
        "threads": threads,
        "preprocess_ms_per_slice": round(statistics.median(prep) / n * 1000, 2),
        "network_ms_per_slice_batch8": round(statistics.median(net) / 8 * 1000, 2),
        "any_stage_features_ms_per_slice_batch8": round(statistics.median(stage) / 8 * 1000, 2) if stage else None,
        "series_angle_ms_8_slices": round(statistics.median(angle) * 1000, 1),
        "study_total_s_by_batch": {str(k): round(v, 3) for k, v in totals.items()},
        "best_batch": best,
        "ms_per_slice_incl_preprocessing": round(totals[best] / n * 1000, 2),
        "study_40_slices_total_s": round(totals[best], 3),
    }


def thin_numbers(loaded, series: Series, split: int = 8) -> dict:
    """A 0.625 mm series (each phantom slice split in 8): time per slice with the card's slabs
    (thin slices averaged to 5 mm first) and, for comparison, without them; 1 thread."""
    torch.set_num_threads(1)
    volume = np.repeat(series.volume_hu(), split, axis=0)[: 16 * split]
    out = {"slices": len(volume), "spacing_mm": (series.spacing_mm or 5.0) / split}
    for name, slab in (("with_slabs", loaded.spec.slab_mm or 5.0), ("single_slices", None)):
        spec = dataclasses.replace(loaded.spec, slab_mm=slab)
        thin = Series.from_array(volume, spacing_mm=out["spacing_mm"], pixel_spacing=series.pixel_spacing)
        thin.volume_hu()  # decoded once, as the background decoder would have
        seconds = timed(lambda: predict_series(thin, PredictState(dataclasses.replace(loaded, spec=spec))), 1)[0]
        out[f"ms_per_slice_{name}"] = round(seconds / len(volume) * 1000, 2)
    return out


def gap_stats(gaps: list[float]) -> dict:
    stalls = sorted(gaps)
    return {
        "longest_event_loop_stall_ms": round(stalls[-1] * 1000, 1) if stalls else None,
        "p99_event_loop_gap_ms": round(stalls[int(len(stalls) * 0.99)] * 1000, 1) if stalls else None,
        "median_event_loop_gap_ms": round(statistics.median(stalls) * 1000, 1) if stalls else None,
        "beats": len(stalls),
    }


def heartbeat_while(app, finished, limit_s: float, split_at=None) -> dict:
    """Gaps of a 5 ms QTimer while the event loop runs until ``finished()``.

    ``split_at()`` (a time, or None) separates the gaps before it (the series appearing:
    the first paint of the whole window) from those after it (inference running).
    """
    from PySide6.QtCore import QTimer

    gaps: list[tuple[float, float]] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append((now, now - last[0]))
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(beat)
    timer.start()
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline and not finished():
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    gaps = gaps[1:]
    result = {"heartbeat_interval_ms": 5, "all": gap_stats([g for _, g in gaps])}
    split = split_at() if split_at is not None else None
    if split is not None:
        result["before_first_result"] = gap_stats([g for t, g in gaps if t <= split])
        result["during_inference"] = gap_stats([g for t, g in gaps if t - g >= split])
    return result


def gui_numbers(model_dir: Path | None, series: Series, dicom_dir: Path | None) -> dict:
    """First result after the series appears, study total and the longest event-loop stall."""
    from ich_viewer.ui.app import build_window

    if model_dir is not None:
        os.environ["ICH_VIEWER_MODEL_DIR"] = str(model_dir)
    window = build_window()
    window.resize(1400, 900)
    window.show()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    ctl = window.extensions["inference"]
    deadline = time.perf_counter() + 60
    while ctl.loaded is None and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.005)
    results = {"idle_window": heartbeat_while(app, lambda: False, 2.0)}
    for name, opener in (("in_memory_series", lambda: window.show_study(Study(source="/bench", series=[series]))),
                         ("dicom_folder_via_loader", (lambda: window.open_path(dicom_dir)) if dicom_dir else None)):
        if opener is None:
            continue
        marks: dict[str, float] = {}

        def on_shown(series, m=marks) -> None:
            m.setdefault("shown", time.perf_counter())

        def on_result(uid, prediction, m=marks) -> None:
            m.setdefault("first", time.perf_counter())

        window.series_shown.connect(on_shown)
        ctl.slice_predicted.connect(on_result)
        start = time.perf_counter()
        opener()

        def finished() -> bool:
            current = window.current_series()
            return current is not None and ctl.session.is_complete(current)

        beats = heartbeat_while(app, finished, 120.0, split_at=lambda: marks.get("first"))
        done = time.perf_counter()
        window.series_shown.disconnect(on_shown)
        ctl.slice_predicted.disconnect(on_result)
        shown = marks.get("shown", start)
        results[name] = {
            "first_result_after_series_shown_s": round(marks.get("first", done) - shown, 3),
            "all_slices_after_series_shown_s": round(done - shown, 3),
            "open_to_series_shown_s": round(shown - start, 3),
            **beats,
        }
        window.close_study()
    window.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    report: dict = {
        "benchmark": "inference",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "platform": platform.platform(), "load_average_at_start": list(os.getloadavg())},
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        loaded, source = pick_model(tmp, "cpu")
        model_dir = None if source == "bundled" else tmp / "random"
        report["model"] = {"source": source, "name": loaded.info.name, "input_size": loaded.spec.size,
                           "channels": loaded.spec.n_channels,
                           "parameters": sum(p.numel() for p in loaded.model.parameters())}
        series = phantom_series()
        report["cpu"] = {f"{t}_threads": core_numbers(loaded, series, t, repeats) for t in (1, 2)}
        report["cpu"]["device_text"] = describe_device(loaded.device)
        report["cpu"]["thin_series_0.625mm"] = thin_numbers(loaded, series)
        if torch.cuda.is_available():
            gpu, _ = pick_model(tmp, "cuda")
            report["gpu"] = {**core_numbers(gpu, series, torch.get_num_threads(), repeats),
                             "device_text": describe_device(gpu.device)}
        else:
            report["gpu"] = "no GPU here"
        from ich_viewer.phantom.study import write_phantom_study

        dicom_dir = write_phantom_study(tmp / "study", seed=5, subtypes=["subdural"], n_slices=N_SLICES, matrix=512)
        report["window"] = gui_numbers(model_dir, phantom_series(seed=1), dicom_dir)
    report["load_average_at_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
