"""Hostile input: time to accept or refuse one file, and memory against the decoded volume.

Run: .venv/bin/python bench/bench_hostile.py   (prints JSON; numbers go to docs/reliability.md)

Every case is written by one subprocess and read by a fresh one, so peak RSS (ru_maxrss,
measured from after the imports) belongs to reading that case alone. Goal (issue 15): any single file or zip member is accepted or refused within 1 s,
and memory stays below 2x the decoded volume.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASE = r'''
import io, json, resource, sys, time, zipfile, zlib
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from ich_viewer.dicom.loader import load_study
kind, folder, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[4]
if mode == "load":
    import numpy, pydicom.filereader, pydicom.pixels  # imported before the baseline: not the case's cost
    from ich_viewer.dicom import grouping, headers, pixels
    path = Path(sys.argv[5])
elif kind == "zeros-64MB":
    path = folder / "zeros.dcm"
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM"); f.truncate(64 << 20)
elif kind == "zip-bomb-1GiB":
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("m.dcm", "w", force_zip64=True) as m:
        m.write(b"\0" * 128 + b"DICM")
        for _ in range(64): m.write(bytes(1 << 24))
elif kind == "zip-stored-512MB-junk":
    path = folder / "stored.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z, z.open("m.dcm", "w", force_zip64=True) as m:
        m.write(b"\0" * 128 + b"DICM")
        for _ in range(512): m.write(bytes(1 << 20))
elif kind.startswith("study"):
    from ich_viewer.phantom.study import write_phantom_study
    path = write_phantom_study(folder / "s", seed=2, subtypes=["subdural"], n_slices=32, matrix=512,
                               syntax="rle" if "rle" in kind else "explicit")
    if "zip" in kind:
        archive = folder / "study.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(path.rglob("*")):
                if p.is_file(): z.write(p, p.relative_to(path).as_posix())
        path = archive
if mode == "prepare":
    print(path)
    sys.exit(0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
study = load_study(path)
headers_s = time.perf_counter() - started
volume_bytes = 0
if study.image_series:
    series = study.image_series[0]
    volume = series.volume_hu()
    volume_bytes = volume.nbytes
n_files = sum(len(s) for s in study.series) + len(study.skipped)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"case": kind, "files": n_files, "headers_s": round(headers_s, 3),
                  "per_file_s": round(headers_s / max(1, n_files), 4),
                  "total_s": round(time.perf_counter() - started, 3),
                  "rss_growth_mb": round((peak - base) / 1024, 1),
                  "decoded_volume_mb": round(volume_bytes / 2**20, 1),
                  "rss_over_volume": round((peak - base) * 1024 / volume_bytes, 2) if volume_bytes else None,
                  "skipped": [s.reason[:90] for s in study.skipped][:2]}))
'''

CASES = ["zeros-64MB", "zip-bomb-1GiB", "zip-stored-512MB-junk", "study-explicit", "study-rle", "study-zip"]


def main() -> int:
    results = []
    for kind in CASES:
        with tempfile.TemporaryDirectory() as folder:
            prepared = subprocess.run([sys.executable, "-c", CASE, kind, folder, str(ROOT), "prepare"],
                                      capture_output=True, text=True, timeout=600)
            path = prepared.stdout.strip().splitlines()[-1]
            out = subprocess.run([sys.executable, "-c", CASE, kind, folder, str(ROOT), "load", path],
                                 capture_output=True, text=True, timeout=600)
            if out.returncode:
                results.append({"case": kind, "error": out.stderr[-500:]})
            else:
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
