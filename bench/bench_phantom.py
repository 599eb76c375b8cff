"""Phantom speed: generating (and writing) a 32-slice 512 x 512 study with lesions.

Prints JSON. Wall time depends on what else runs on the machine, so CPU time of this
process and the load average are reported too. Run: .venv/bin/python bench/bench_phantom.py
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from ich_viewer.phantom import SUBTYPES, generate_phantom  # noqa: E402
from ich_viewer.phantom.writer import write_series  # noqa: E402

TARGET_S = 3.0


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    generate_phantom(seed=0, subtypes=["subdural"], matrix=64, n_slices=2)  # warm imports
    runs = []
    for seed in range(repeats):
        phantom, wall, cpu = timed(lambda: generate_phantom(seed=seed, subtypes=list(SUBTYPES), matrix=512,
                                                            n_slices=32, thickness_mm=5.0))
        with tempfile.TemporaryDirectory() as tmp:
            _, wall_w, cpu_w = timed(lambda: write_series(phantom.volume_hu, tmp, spacing_mm=5.0,
                                                          pixel_spacing=phantom.pixel_spacing))
        runs.append({"seed": seed, "generate_wall_s": wall, "generate_cpu_s": cpu,
                     "write_wall_s": wall_w, "write_cpu_s": cpu_w,
                     "lesion_slices": int(phantom.labels[:, -1].sum())})
    small = [timed(lambda s=s: generate_phantom(seed=s, matrix=128, n_slices=32, thickness_mm=5.0))[1:] for s in range(repeats)]
    median = lambda key: float(np.median([r[key] for r in runs]))  # noqa: E731
    result = {
        "benchmark": "phantom",
        "case": "32 slices, 512x512, 5 mm, all five subtypes",
        "generate_wall_s_median": median("generate_wall_s"),
        "generate_cpu_s_median": median("generate_cpu_s"),
        "write_explicit_wall_s_median": median("write_wall_s"),
        "generate_plus_write_wall_s_median": float(np.median([r["generate_wall_s"] + r["write_wall_s"] for r in runs])),
        "target_s": TARGET_S,
        "matrix128_generate_wall_s_median": float(np.median([w for w, _ in small])),
        "matrix128_generate_cpu_s_median": float(np.median([c for _, c in small])),
        "runs": runs,
        "load_average": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
