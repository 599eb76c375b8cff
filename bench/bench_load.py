"""Loading speed and memory, side by side with SimpleITK's ImageSeriesReader on the same folders.

    .venv/bin/python bench/bench_load.py [--quick] [--repeats N] [--keep DIR]

Writes a real head CT (the bundled CT-ICH 071 demo, resampled to 512x512 and to 36 and
270 slices, with thin-slice noise; the phantom writer, uncompressed and JPEG lossless)
and a folder of several thousand small synthetic files in several series into a
temporary folder, then measures every case in a fresh process (so imports,
caches and memory of one case never help another; ours and SimpleITK take turns, so both
see the same load on a shared machine) and prints one JSON document:

- ``series``: per folder and reader, the median over repeats of time to first slice
  (headers + one decoded slice), whole series (headers + every slice decoded), and
  memory (peak and steady resident-set growth of the measuring process, over the int16
  volume size). For ich_viewer the warm worker processes are started first, as the viewer
  does at start-up: they parse the headers of 500 files or more and decode compressed
  slices; their memory is reported apart (``worker_rss_mb``): each holds one slice at a
  time plus its libraries.
- ``decoder_modes``: the 36-slice JPEG-lossless series decoded with 1 thread, 2 threads and
  2 processes: the measurement behind BackgroundDecoder's choice.
- ``many_files``: headers-only time for the several-thousand-file folder.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------------------
# Data


def head_volume(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Skull, brain and noise: compresses like a real head CT (noise-free data would not)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    volume = np.empty((n, size, size), np.float32)
    for k in range(n):
        scale = 0.75 + 0.2 * np.sin(np.pi * (k + 1) / (n + 1))
        r = np.hypot((yy - size / 2) / (0.42 * size * scale), (xx - size / 2) / (0.36 * size * scale))
        image = np.full((size, size), -1000.0, np.float32)
        image[r < 1.0] = 1200.0
        image[r < 0.93] = 35.0 + 8 * np.sin(xx[r < 0.93] / 9.0)
        image += rng.normal(0, 4, image.shape).astype(np.float32)
        volume[k] = image
    return volume


def real_head(n: int, size: int = 512) -> tuple[np.ndarray, float, float]:
    """The bundled real head CT (CT-ICH 071, 29 slices of 5 mm, 650²) resampled to ``n``
    slices of ``size``² with thin-slice noise; (volume, spacing mm, pixel mm)."""
    from ich_viewer.demo import demo_study_path
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.phantom.thin import resample_thin

    return resample_thin(load_study(demo_study_path("ct-ich")).image_series[0], n, size)


def write_data(root: Path, quick: bool) -> dict[str, Path]:
    """Folders of a real head (uncompressed and JPEG lossless; 36 and 270 slices) and many small files."""
    from ich_viewer.phantom.writer import StudyInfo, write_series

    folders: dict[str, Path] = {}
    for n in [36] if quick else [36, 270]:
        volume, spacing, pixel = real_head(n)
        for syntax in ("explicit", "jpeg-lossless"):
            folder = root / f"{n}_{syntax}"
            write_series(volume, folder, spacing_mm=round(spacing, 3), pixel_spacing=(pixel, pixel),
                         syntax=syntax, file_names="random", description="CT-ICH 071 RESAMPLED")
            folders[f"{n}x512_{syntax}"] = folder
    many = root / "many_files"
    study = StudyInfo()
    per_series = 250 if quick else 1000
    for s in range(4):
        write_series(head_volume(per_series, 64, seed=s), many, spacing_mm=1.0, pixel_spacing=(3.5, 3.5),
                     series_number=s + 1, study=study, file_names="random", seed=s)  # flat: GDCM does not recurse
    folders["many_files"] = many
    return folders


# --------------------------------------------------------------------------------------
# Measurements (each runs in its own process)


def _rss_mb() -> tuple[float, float]:
    """Current and peak resident set size of this process (MB)."""
    current = peak = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return current, peak


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass


def measure_ours(folder: str, mode: str = "auto", workers: int | None = None) -> dict:
    import threading

    from ich_viewer.dicom.background import BackgroundDecoder
    from ich_viewer.dicom.loader import load_study

    _warm_up_ours(folder, workers)
    gc.collect()
    base, _ = _rss_mb()
    _reset_peak()
    t0 = time.perf_counter()
    study = load_study(folder)
    t_headers = time.perf_counter() - t0
    series = study.image_series[0]
    n = len(series)
    times: list[float] = []
    all_done = threading.Event()

    def on_slice(_: int) -> None:
        times.append(time.perf_counter() - t0)
        if len(times) == n:
            all_done.set()

    decoder = BackgroundDecoder(series, on_slice=on_slice, start_index=n // 2, mode=mode, workers=workers).start()
    all_done.wait(600)
    t_whole = time.perf_counter() - t0
    decoder.wait(60)
    _, peak = _rss_mb()
    gc.collect()
    steady, _ = _rss_mb()
    rows, cols = series.shape
    int16_mb = n * rows * cols * 2 / 2**20
    return {
        "n_slices": n,
        "headers_s": round(t_headers, 4),
        "first_slice_s": round(times[0], 4),
        "whole_series_s": round(t_whole, 4),
        "decode_mode": decoder.mode_used,
        "failed": decoder.failed,
        "cache_mb": round(series.cache_nbytes() / 2**20, 1),
        "int16_volume_mb": round(int16_mb, 1),
        "peak_rss_growth_mb": round(peak - base, 1),
        "steady_rss_growth_mb": round(steady - base, 1),
        "peak_over_int16": round((peak - base) / int16_mb, 2),
        "steady_over_int16": round((steady - base) / int16_mb, 2),
        "worker_rss_mb": _worker_rss_mb(series.pixel_source.job(series.slices[0]))
        if decoder.mode_used == "processes" else 0.0,
    }


def _warm_up_ours(folder: str, workers: int | None) -> None:
    """Load the libraries (not the data) first, so memory growth counts data only."""
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.dicom.workers import start_pool

    start_pool(workers).wait()  # what the viewer does at start-up (warm_up): the pool is ready
    first = min(Path(folder).rglob("*"), key=lambda p: (not p.is_file(), str(p)))
    warm = load_study(first).series[0]
    warm.hu(0)


def _decode_then_rss(job) -> float:
    from ich_viewer.dicom.pixels import decode_job_isolated

    if job is not None:
        decode_job_isolated(job)
    return _rss_mb()[0]


def _worker_rss_mb(job=None) -> float:
    """RSS of one fork-server worker like the decoder's, after decoding ``job`` (MB)."""
    from concurrent.futures import ProcessPoolExecutor

    from ich_viewer.dicom.background import process_context

    with ProcessPoolExecutor(1, mp_context=process_context()) as pool:
        return round(pool.submit(_decode_then_rss, job).result(), 1)


def measure_sitk(folder: str) -> dict:
    """SimpleITK as a viewer would use it: find and sort the series, then read it whole.

    Its "first slice" is the sort plus reading the middle file alone; "whole series" is
    the sort plus ImageSeriesReader.Execute (the single-file read is not counted twice).
    """
    import SimpleITK as sitk

    first = min(Path(folder).rglob("*"), key=lambda p: (not p.is_file(), str(p)))
    sitk.GetArrayViewFromImage(sitk.ReadImage(str(first)))  # libraries loaded before the baseline
    gc.collect()
    base, _ = _rss_mb()
    _reset_peak()
    t0 = time.perf_counter()
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)
    t_sort = time.perf_counter() - t0
    first = sitk.ReadImage(names[len(names) // 2])
    sitk.GetArrayViewFromImage(first)
    t_first = time.perf_counter() - t0
    del first
    t1 = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    image = reader.Execute()
    volume = sitk.GetArrayViewFromImage(image)
    t_read = time.perf_counter() - t1
    _, peak = _rss_mb()
    steady, _ = _rss_mb()
    n, rows, cols = volume.shape
    int16_mb = n * rows * cols * 2 / 2**20
    return {
        "n_slices": n,
        "sort_s": round(t_sort, 4),
        "first_slice_s": round(t_first, 4),
        "whole_series_s": round(t_sort + t_read, 4),
        "pixel_type": image.GetPixelIDTypeAsString(),
        "int16_volume_mb": round(int16_mb, 1),
        "peak_rss_growth_mb": round(peak - base, 1),
        "steady_rss_growth_mb": round(steady - base, 1),
        "peak_over_int16": round((peak - base) / int16_mb, 2),
        "steady_over_int16": round((steady - base) / int16_mb, 2),
    }


def measure_headers(folder: str, reader: str) -> dict:
    t0 = time.perf_counter()
    if reader == "ich_viewer":
        from ich_viewer.dicom.loader import load_study

        study = load_study(folder)
        found = {"n_series": len(study.series), "n_files": sum(len(s) for s in study.series)}
    else:
        import SimpleITK as sitk

        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder)
        files = sum(len(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid)) for uid in ids)
        found = {"n_series": len(ids), "n_files": files}
    return {"headers_s": round(time.perf_counter() - t0, 3), **found}


# --------------------------------------------------------------------------------------
# Driver


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(results: list[dict]) -> dict:
    merged = dict(results[0])
    for key, value in results[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = round(statistics.median(r[key] for r in results), 4)
    merged["repeats"] = len(results)
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 36-slice series and 1000 small files")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", help="write the data here and keep it")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder, *rest = args.child
        if kind == "ours":
            result = measure_ours(folder, *(rest[:1] or ["auto"]), workers=int(rest[1]) if len(rest) > 1 else None)
        elif kind == "sitk":
            result = measure_sitk(folder)
        else:
            result = measure_headers(folder, rest[0])
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory(prefix="ich-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        t = time.perf_counter()
        folders = write_data(root, args.quick)
        report: dict = {
            "benchmark": "bench_load",
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
            "data_written_s": round(time.perf_counter() - t, 1),
            "series": {},
        }
        for name, folder in folders.items():
            if name == "many_files":
                continue
            pairs = [(run_child("ours", str(folder)), run_child("sitk", str(folder))) for _ in range(args.repeats)]
            # (interleaved: on a shared machine both readers see the same load)
            ours, sitk = median_of([p[0] for p in pairs]), median_of([p[1] for p in pairs])
            report["series"][name] = {
                "ich_viewer": ours,
                "simpleitk": sitk,
                "whole_series_vs_simpleitk": round(ours["whole_series_s"] / sitk["whole_series_s"], 2),
            }
        jpeg36 = str(folders["36x512_jpeg-lossless"])
        report["decoder_modes"] = {
            "note": "36-slice JPEG lossless, whole series incl. headers (s); threads decode in the program "
            "(pylibjpeg; GDCM is kept out of the program because it can abort on corrupt data), "
            "processes use GDCM's region reader in the warm worker pool",
            **{
                label: median_of([run_child("ours", jpeg36, mode, workers) for _ in range(args.repeats)])[
                    "whole_series_s"
                ]
                for label, mode, workers in (
                    ("1_thread", "threads", "1"),
                    ("2_threads", "threads", "2"),
                    ("1_process", "processes", "1"),
                    ("2_processes", "processes", "2"),
                )
            },
        }
        many = str(folders["many_files"])
        pairs = [(run_child("headers", many, "ich_viewer"), run_child("headers", many, "sitk"))
                 for _ in range(args.repeats)]
        report["many_files"] = {"ich_viewer": median_of([p[0] for p in pairs]),
                                "simpleitk": median_of([p[1] for p in pairs])}
        report["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
