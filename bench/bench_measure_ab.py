"""Growing speed of two checkouts, run alternately: is a change faster, or was the machine quieter?

Prints one JSON object (docs/benchmarks.md "Measure" quotes it).

    git worktree add /tmp/base REV
    .venv/bin/python bench/bench_measure_ab.py /tmp/base . [--rounds 6]

Each round runs ``bench_measure.speed()`` of each checkout (``PHANTOMS`` at 40 x 512², the head
and the growing timed apart, median of 3) in a fresh process, the order swapped
every round so that a change in the machine's load falls on both. Per checkout and phantom:
the medians over the rounds of the CPU and wall times, and every round's CPU time; the
volume and Dice of the last round (two checkouts that grow the same outline print the same).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

PHANTOMS = ((2, "intraparenchymal"), (6, "subdural"), (2, "subdural"))
"""The IPH and the thin subdural ``bench_measure.py`` times, and its spread's slowest: a large subdural cut at the
falx."""


def child(root: Path) -> None:
    """Print the checkout's own ``speed()`` for each phantom, as JSON."""
    spec = importlib.util.spec_from_file_location("bench_measure", root / "bench" / "bench_measure.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # it puts its own checkout first on sys.path
    print(json.dumps({f"{seed} {subtype}": module.speed(3, seed=seed, subtype=subtype) for seed, subtype in PHANTOMS}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child.resolve())
        return
    trees = {"base": args.base.resolve(), "new": args.new.resolve()}
    runs: dict[str, list[dict]] = {"base": [], "new": []}
    loads = []
    for round_ in range(args.rounds):
        for name in (("base", "new") if round_ % 2 == 0 else ("new", "base")):
            out = subprocess.run([sys.executable, __file__, str(trees[name]), str(trees[name]), "--child",
                                  str(trees[name])], check=True, capture_output=True, text=True).stdout
            runs[name].append(json.loads(out.splitlines()[-1]))
            loads.append(os.getloadavg()[0])
    summary: dict = {"rounds": args.rounds, "load_average": [round(min(loads), 2), round(max(loads), 2)],
                     "trees": {name: str(path) for name, path in trees.items()}}
    for name, rows in runs.items():
        summary[name] = {key: {
            "grow_cpu_s_median": round(statistics.median(r[key]["grow_cpu_s"] for r in rows), 3),
            "grow_s_median": round(statistics.median(r[key]["grow_s"] for r in rows), 3),
            "head_s_median": round(statistics.median(r[key]["head_s"] for r in rows), 3),
            "grow_cpu_s_rounds": [r[key]["grow_cpu_s"] for r in rows],
            "volume_ml": rows[-1][key]["volume_ml"], "dice": rows[-1][key]["dice"],
        } for key in (f"{seed} {subtype}" for seed, subtype in PHANTOMS)}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
