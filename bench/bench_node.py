"""The DICOM node on this machine: arrival-to-flag time and receive throughput.

    .venv/bin/python bench/bench_node.py [--quick] [--repeats N] [--slices N]

Starts a real Orthanc (``tests/orthanc_helpers.py``) on loopback, uploads a synthetic
512x512 head CT with a subdural bleed (the phantom writer), and has Orthanc's own
C-STORE SCU send it to a fresh node each repeat. Prints one JSON document:

- ``last_instance_to_flagged_s``: from the moment the node stored the study's last
  instance to the moment the worklist says "flagged", minus the configured quiet time
  (the quiet time is a setting, not work). Includes loading the study from the store,
  the bundled classifier on CPU, and writing the SR, key images and KOS. The model is
  loaded once per node; the first study pays for it (``model_load_s``, reported apart
  by sending a warm-up study first).
- ``receive``: instances/s and MB/s of Orthanc -> node with the analysis off (a node
  without an analyser), i.e. association, decoding checks, hashing, atomic write, index.
- ``receive_storescu``: the same with DCMTK's ``storescu`` as the sender.
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
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from ich_viewer.commands.node import StoreAnalyser  # noqa: E402
from ich_viewer.node.config import NodeConfig  # noqa: E402
from ich_viewer.node.scp import StorageNode  # noqa: E402
from ich_viewer.phantom.study import write_phantom_study  # noqa: E402
from orthanc_helpers import Orthanc  # noqa: E402

QUIET_S = 1.0


def wait_final(node: StorageNode, uid_count: int, timeout_s: float = 600) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entries = node.worklist.entries()
        if len(entries) >= uid_count and all(e.status in ("flagged", "negative", "failed") for e in entries):
            return entries
        time.sleep(0.02)
    raise TimeoutError("study not analysed")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    tmp = Path(tempfile.mkdtemp(prefix="bench-node-"))
    studies = {}
    for seed in range(repeats + 1):  # +1: the warm-up study that pays for loading the model
        root = write_phantom_study(tmp / f"study{seed}", seed=100 + seed, subtypes=["subdural"],
                                   n_slices=args.slices, matrix=512)
        studies[seed] = sorted(root.rglob("*.dcm"))
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "load_avg_at_start": os.getloadavg()},
                    "slices": args.slices, "matrix": 512, "quiet_s": QUIET_S, "device": args.device}
    with Orthanc(tmp / "orthanc") as pacs:
        ids = {seed: pacs.upload(files) for seed, files in studies.items()}
        nbytes = sum(f.stat().st_size for f in studies[0])

        # -- receive throughput, analysis off ------------------------------------------
        rates = []
        for rep in range(repeats):
            node = StorageNode(NodeConfig(data_dir=tmp / f"recv{rep}", port=0, quiet_s=QUIET_S), None)
            node.start()
            pacs.add_modality(f"recv{rep}", "ICHVIEWER", node.port)
            start = time.perf_counter()
            answer = pacs.send_study(f"recv{rep}", ids[0])
            elapsed = time.perf_counter() - start
            assert answer["FailedInstancesCount"] == 0 and node.counts["stored"] == args.slices
            node.stop()
            rates.append(elapsed)
        median = statistics.median(rates)
        result["receive"] = {"instances": args.slices, "mb": round(nbytes / 1e6, 1),
                             "seconds_median": round(median, 3),
                             "instances_per_s": round(args.slices / median, 1),
                             "mb_per_s": round(nbytes / 1e6 / median, 1),
                             "seconds_all": [round(r, 3) for r in rates]}

        # -- the same with DCMTK's storescu as the sender (another vendor's client) -------------
        storescu = shutil.which("storescu")
        if storescu:
            times = []
            for rep in range(repeats):
                node = StorageNode(NodeConfig(data_dir=tmp / f"dcmtk{rep}", port=0, quiet_s=QUIET_S), None)
                node.start()
                start = time.perf_counter()
                subprocess.run([storescu, "-aet", "SCANNER", "-aec", "ICHVIEWER", "127.0.0.1", str(node.port),
                                *map(str, studies[0])], check=True, capture_output=True)
                times.append(time.perf_counter() - start)
                assert node.counts["stored"] == args.slices
                node.stop()
            median = statistics.median(times)
            result["receive_storescu"] = {"instances_per_s": round(args.slices / median, 1),
                                          "mb_per_s": round(nbytes / 1e6 / median, 1),
                                          "seconds_all": [round(t, 3) for t in times],
                                          "note": "includes starting the storescu process"}

        # -- last instance -> flagged ----------------------------------------------------
        analyser = StoreAnalyser(None, args.device)
        node = StorageNode(NodeConfig(data_dir=tmp / "triage", port=0, quiet_s=QUIET_S), analyser)
        node.start()
        pacs.add_modality("triage", "ICHVIEWER", node.port)
        start = time.perf_counter()
        analyser.model()
        result["model_load_s"] = round(time.perf_counter() - start, 2)
        latencies = []
        for i, seed in enumerate(studies):
            pacs.send_study("triage", ids[seed])
            entries = wait_final(node, i + 1)
            entry = max(entries, key=lambda e: e.received_at)
            assert entry.status == "flagged", entry
            latency = entry.analysed_at - entry.last_received_at - QUIET_S
            if seed > 0:  # the first study warms caches (decoders, allocator)
                latencies.append(latency)
            else:
                result["first_study_s"] = round(latency, 2)
        node.stop()
        result["last_instance_to_flagged_s"] = {
            "median": round(statistics.median(latencies), 2), "all": [round(x, 2) for x in latencies],
            "goal": 5.0, "includes": "load from store + classifier + SR/key images/KOS written"}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
