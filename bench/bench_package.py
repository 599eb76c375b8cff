"""Packaged app: build time, size per flavour, cold/warm start to the first window, smoke test.

    .venv/bin/python bench/bench_package.py                     # measure dist/ich-viewer (make package first)
    .venv/bin/python bench/bench_package.py --build             # also time a clean PyInstaller build
    .venv/bin/python bench/bench_package.py --build --fresh-venv  # ... and a fresh .venv-package

Prints one JSON document. Start time = from spawning the executable to its first paint
on the offscreen platform (ICH_VIEWER_EXIT_AFTER_SHOW=1 makes it print the moment and
quit). "Cold" evicts the bundle's files from the page cache first (posix_fadvise
DONTNEED, which needs no root; shared system libraries stay cached); "warm" is the
median of repeated runs. The CUDA flavour's size is estimated from the dev venv's CUDA
torch unless a dist/ich-viewer-cuda build exists.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import bundle_plan as plan  # noqa: E402

MARK = "ICH_VIEWER_FIRST_PAINT"


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mib(n: int) -> float:
    return round(n / 2**20, 1)


def evict(path: Path) -> int:
    """Drop a folder's files from the page cache; returns how many files were advised."""
    count = 0
    for file in path.rglob("*"):
        if file.is_file() and not file.is_symlink():
            try:
                fd = os.open(file, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def app_env(tmp: Path, model_dir: str | None) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ICH_VIEWER_DATA_DIR=str(tmp / "data"),
               ICH_VIEWER_SETTINGS=str(tmp / "settings.ini"))
    env.pop("ICH_VIEWER_EXIT_AFTER_SHOW", None)
    if model_dir:
        env["ICH_VIEWER_MODEL_DIR"] = model_dir
    return env


def start_time(command: list[str], env: dict[str, str], timeout: float = 120.0) -> dict:
    """Seconds from spawn to the first paint, and to the process's exit."""
    env = dict(env, ICH_VIEWER_EXIT_AFTER_SHOW="1")
    t0 = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    t_exit = time.time()
    marks = [line for line in result.stdout.splitlines() if line.startswith(MARK)]
    if result.returncode != 0 or not marks:
        raise RuntimeError(f"{command[0]} exited {result.returncode} without a first paint:\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return {"first_paint_s": round(float(marks[0].split()[1]) - t0, 3), "exit_s": round(t_exit - t0, 3)}


def measure_start(command: list[str], env: dict[str, str], bundle: Path | None, runs: int) -> dict:
    cold = None
    if bundle is not None:
        evicted = evict(bundle)
        cold = dict(start_time(command, env), evicted_files=evicted)
    start_time(command, env)  # warm-up
    warm = [start_time(command, env) for _ in range(runs)]
    return {
        "cold": cold,
        "warm_first_paint_s": round(statistics.median(w["first_paint_s"] for w in warm), 3),
        "warm_first_paint_runs_s": [w["first_paint_s"] for w in warm],
        "warm_exit_s": round(statistics.median(w["exit_s"] for w in warm), 3),
    }


def smoke(executable: Path, env: dict[str, str]) -> dict:
    t0 = time.perf_counter()
    result = subprocess.run([str(executable), "--smoke-test"], env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - t0
    steps = {}
    for line in result.stdout.splitlines():
        if line.startswith(("[ok  ]", "[FAIL]")):
            name, _, rest = line[7:].partition("  ")
            steps[name.strip()] = {"ok": line.startswith("[ok"), "seconds": float(rest.split()[0])}
    last = next((line for line in reversed(result.stdout.splitlines()) if line.startswith("smoke test ")),
                result.stderr[-300:])
    return {"exit_code": result.returncode, "seconds": round(seconds, 2), "summary": last, "steps": steps}


def timed(command: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, check=True, env=env)
    return round(time.perf_counter() - t0, 1)


def build(fresh_venv: bool, logs: Path) -> dict:
    """A clean PyInstaller build (no cache), optionally from a brand-new venv, like CI."""
    out: dict = {}
    venv = ROOT / ".venv-package"
    python = venv / "bin" / "python"
    if fresh_venv:
        venv = Path(tempfile.mkdtemp(prefix="bench-venv-"))
        python = venv / "bin" / "python"
        out["venv_s"] = timed([sys.executable if not shutil.which("python3") else "python3", "-m", "venv", str(venv)],
                              logs / "venv.log")
        out["venv_s"] += timed([str(python), "-m", "pip", "install", "-q", "-c", "constraints-cpu.txt", "-e",
                                ".[package]"], logs / "pip.log")
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    out["pyinstaller_s"] = timed(["nice", "-n", "10", str(python), "-m", "PyInstaller", "--noconfirm", "--clean",
                                  "--log-level", "WARN", "--workpath", str(work / "build"), "--distpath",
                                  str(work / "dist"), "ich_viewer.spec"], logs / "pyinstaller.log")
    out["bundle"] = str(work / "dist" / plan.APP_NAME)
    if fresh_venv:
        shutil.rmtree(venv, ignore_errors=True)
    return out


def cuda_estimate(cpu_bundle: Path) -> dict:
    """CPU bundle with its torch swapped for the dev venv's CUDA torch and NVIDIA libraries."""
    built = ROOT / "dist" / plan.bundle_name("cuda")
    if built.is_dir():
        return {"bytes": folder_bytes(built), "mib": mib(folder_bytes(built)), "how": "measured build"}
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"), None)
    if site is None or not (site / "torch").is_dir():
        return {"how": "unknown (no CUDA torch in .venv)"}
    inner = cpu_bundle / "_internal"
    cpu_torch = folder_bytes(inner / "torch") if (inner / "torch").is_dir() else 0
    cuda_libs = folder_bytes(site / "torch" / "lib")
    nvidia = sum(folder_bytes(p) for p in (site / "nvidia").glob("*/lib")) if (site / "nvidia").is_dir() else 0
    other_torch = cpu_torch - folder_bytes(inner / "torch" / "lib") if (inner / "torch" / "lib").is_dir() else 0
    total = folder_bytes(cpu_bundle) - cpu_torch + other_torch + cuda_libs + nvidia
    return {"bytes": total, "mib": mib(total), "how": "estimated: CPU bundle - torch/lib (CPU) + "
            "torch/lib and nvidia/*/lib of .venv's CUDA torch (triton excluded)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / plan.APP_NAME)
    parser.add_argument("--build", action="store_true", help="time a clean PyInstaller build into a temp folder")
    parser.add_argument("--fresh-venv", action="store_true", help="with --build: also time a fresh packaging venv")
    parser.add_argument("--runs", type=int, default=5, help="warm start runs")
    parser.add_argument("--model-dir", default=None, help="ICH_VIEWER_MODEL_DIR for the runs (default: bundled)")
    parser.add_argument("--no-source", action="store_true", help="skip the source-checkout start for comparison")
    args = parser.parse_args()

    report: dict = {"benchmark": "package", "date": time.strftime("%Y-%m-%d"),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                    "load_avg_1min": round(os.getloadavg()[0], 2)}
    tmp = Path(tempfile.mkdtemp(prefix="bench-package-"))
    bundle = args.bundle
    if args.build:
        report["build"] = build(args.fresh_venv, tmp)
        bundle = Path(report["build"]["bundle"])
    executable = bundle / plan.APP_NAME
    if not executable.is_file() and bundle == ROOT / "dist" / plan.APP_NAME:
        report["built_first_s"] = timed(["make", "package"], tmp / "make-package.log")  # as `make bench` needs
    if not executable.is_file():
        print(json.dumps({"error": f"{executable} not found: run 'make package' first"}))
        return 2
    size = folder_bytes(bundle)
    report["size_cpu"] = {"bytes": size, "mib": mib(size), "how": "measured build",
                          "model_bundled": (bundle / "_internal" / "models" / "model_card.json").is_file()}
    report["size_cuda"] = cuda_estimate(bundle)
    env = app_env(tmp, args.model_dir)
    report["start_frozen"] = measure_start([str(executable)], env, bundle, args.runs)
    cuda_exe = ROOT / "dist" / plan.bundle_name("cuda") / plan.APP_NAME
    if cuda_exe.is_file():
        report["start_frozen_cuda"] = measure_start([str(cuda_exe)], env, cuda_exe.parent, max(2, args.runs // 2))
    if not args.no_source:
        source = ROOT / ".venv" / "bin" / "ich-viewer"
        if source.is_file():
            report["start_source_checkout"] = measure_start([str(source)], env, None, max(2, args.runs // 2))
    report["smoke_test"] = smoke(executable, env)
    report["start_goal_warm_s"] = 3.0
    print(json.dumps(report, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
