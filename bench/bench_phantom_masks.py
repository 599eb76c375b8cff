"""How much of a phantom bleed's blood its mask holds, by the planes each slice is painted on.

Prints one JSON object. For each seed and each of IPH, EDH, SDH on the bleed-outline protocol's
phantoms (256 matrix, 5 mm, ``bench_measure.accuracy_phantom``), the mask's mL (voxels at least
half blood) against the blood itself (``info["blood_ml"]``: every voxel's blood fraction summed),
with each slice painted on 2 planes, the default (``generate.slab_planes``: 3 at 5 mm), the protocol's
(5) and 9. Two
planes were the phantom until 2026-11-30, whose masks left out the voxels exactly half blood; these
masks count them in, so where that under-counted this over-counts. The mask is the ground truth every Dice and
volume error of the outline is measured against; where it holds far less than the blood, an
outline that measures the blood is scored as over-grown.

    .venv/bin/python bench/bench_phantom_masks.py [--seeds 12] [--first-seed 0]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_measure import ACCURACY_PLANES, SUBTYPES_MEASURED, accuracy_phantom  # noqa: E402  (this folder)

from ich_viewer.phantom.generate import slab_planes  # noqa: E402

PLANES = (2, slab_planes(5.0), ACCURACY_PLANES, 9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for subtype in SUBTYPES_MEASURED:
            row: dict = {"seed": seed, "subtype": subtype}
            for planes in PLANES:
                phantom, _, _, mask_ml, _ = accuracy_phantom(seed, subtype, planes_per_slice=planes)
                blood_ml = phantom.info["blood_ml"][subtype]
                row[f"planes_{planes}"] = {"mask_ml": round(mask_ml, 2), "blood_ml": round(blood_ml, 2),
                                           "mask_share": round(mask_ml / blood_ml, 3) if blood_ml else None}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    summary = {}
    for planes in PLANES:
        for subtype in SUBTYPES_MEASURED:
            shares = [r[f"planes_{planes}"]["mask_share"] for r in rows
                      if r["subtype"] == subtype and r[f"planes_{planes}"]["blood_ml"] >= 5.0]
            if shares:
                summary[f"planes_{planes}_{subtype}"] = {"bleeds_of_5_ml": len(shares),
                                                          "median": statistics.median(shares),
                                                          "min": min(shares), "max": max(shares)}
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "seeds":
                      [args.first_seed, args.first_seed + args.seeds - 1], "planes": list(PLANES),
                      "mask_share_of_blood": summary, "seconds": round(time.perf_counter() - start, 1),
                      "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
