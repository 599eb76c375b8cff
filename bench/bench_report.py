"""Report export speed: a 40-slice 512x512 study with 10 flagged slices (target: <= 3 s).

Prints JSON. The study is a synthetic phantom written to DICOM and read by the real
loader; the predictions are built from the phantom's ground truth (an example input for
the writers, not a model's output, and no evidence of accuracy).

    .venv/bin/python bench/bench_report.py [--keep DIR] [--repeats N]
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ich_viewer import LABELS  # noqa: E402
from ich_viewer.inference.results import ModelInfo, SeriesPrediction, SlicePrediction, flagged_labels  # noqa: E402

N_SLICES, N_FLAGGED, MATRIX = 40, 10, 512
THRESHOLDS = {label: 0.5 for label in LABELS}
EXAMPLE_MODEL = ModelInfo(name="EXAMPLE (phantom ground truth, not a model output)", version="-",
                          sha256="-", device="-", thresholds=THRESHOLDS, architecture="none")


def build_case(folder: Path):
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.phantom import generate_phantom
    from ich_viewer.phantom.study import write_phantom_study

    phantom = generate_phantom(seed=4, subtypes=["subdural", "intraparenchymal"], n_slices=N_SLICES,
                               thickness_mm=3.5, matrix=MATRIX)
    root = write_phantom_study(folder / "study", phantom=phantom)
    study = load_study(root)
    series = study.image_series[0]
    assert len(series) == N_SLICES, len(series)
    lesion = [i for i in range(N_SLICES) if phantom.labels[i, :5].any()]
    middle = len(lesion) // 2
    chosen = set(lesion[max(0, middle - N_FLAGGED // 2):][:N_FLAGGED])
    rng = np.random.default_rng(0)
    slices = []
    for i, header in enumerate(series.slices):
        probs = {label: float(rng.uniform(0.01, 0.2)) for label in LABELS}
        if i in chosen:
            for k in np.flatnonzero(phantom.labels[i, :5]):
                probs[LABELS[k]] = float(rng.uniform(0.6, 0.97))
            probs["any"] = min(0.99, max(probs[label] for label in LABELS[:5]) + 0.02)
        else:
            probs["any"] = max(probs["any"], *(probs[label] for label in LABELS[:5]))
        slices.append(SlicePrediction(index=i, sop_instance_uid=header.sop_instance_uid, file=header.path,
                                      probabilities=probs, flagged=flagged_labels(probs, THRESHOLDS)))
    prediction = SeriesPrediction(series_uid=series.series_uid, model=EXAMPLE_MODEL, slices=slices,
                                  started_at="2026-11-22T10:00:00+00:00", finished_at="2026-11-22T10:00:01+00:00")
    assert len(prediction.flagged_slices) == N_FLAGGED, len(prediction.flagged_slices)
    from ich_viewer.report.decisions import Decision

    ordered = sorted(chosen)
    decisions = {series.series_uid: {
        series.slices[ordered[1]].sop_instance_uid: Decision("accepted", "crescentic extra-axial collection"),
        series.slices[ordered[2]].sop_instance_uid: Decision("accepted", ""),
        series.slices[ordered[-1]].sop_instance_uid: Decision("rejected", "partial volume at vertex"),
    }}
    return root, study, series, prediction, decisions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the exports of the last run here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from ich_viewer.report.export import export_report

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["ICH_VIEWER_DATA_DIR"] = str(tmp_path / "appdata")
        root, study, series, prediction, decisions = build_case(tmp_path)
        timings: dict[str, list[float]] = {"pdf_csv_json": [], "sr_key_images": [], "all": []}
        cpu: dict[str, list[float]] = {name: [] for name in timings}
        sizes = {}
        for run in range(args.repeats):
            for name in timings:
                for cached in list(series._cache):  # cold pixels: every run decodes its key slices again
                    series._cache.pop(cached, None)
                out = (args.keep if args.keep and run == args.repeats - 1 else tmp_path / f"out{run}") / name
                kwargs = {
                    "pdf_csv_json": dict(pdf=out / "report.pdf", csv=out / "report.csv", json=out / "report.json"),
                    "sr_key_images": dict(dicom_dir=out / "dicom"),
                    "all": dict(pdf=out / "report.pdf", csv=out / "report.csv", json=out / "report.json",
                                dicom_dir=out / "dicom"),
                }[name]
                start, start_cpu = time.perf_counter(), time.process_time()
                result = export_report(study, [(series, prediction)], decisions=decisions, overwrite=True,
                                       paper="A4", **kwargs)
                timings[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                if name == "all":
                    sizes = {p.name if p.suffix != ".dcm" else p.name[:2] + "*.dcm": p.stat().st_size
                             for p in result.written}
    report = {
        "benchmark": "report",
        "study": f"{N_SLICES} slices {MATRIX}x{MATRIX} (phantom, read from DICOM), {N_FLAGGED} flagged, 3 decisions",
        "repeats": args.repeats,
        "first_run_s": {name: round(values[0], 3) for name, values in timings.items()},
        "median_s": {name: round(statistics.median(values), 3) for name, values in timings.items()},
        "median_cpu_s": {name: round(statistics.median(values), 3) for name, values in cpu.items()},
        "load_average": [round(v, 1) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "target_s": 3.0,
        "meets_target": statistics.median(timings["pdf_csv_json"]) <= 3.0,
        "files": {"pdf_pages": _pdf_pages(args.keep / "all" / "report.pdf") if args.keep else None,
                  "bytes": sizes},
        "machine": f"{platform.machine()} {platform.python_version()}",
    }
    print(json.dumps(report, indent=2))
    return 0


def _pdf_pages(path: Path) -> int | None:
    try:
        from pypdf import PdfReader

        return len(PdfReader(str(path)).pages)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
