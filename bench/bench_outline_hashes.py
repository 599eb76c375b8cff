"""Every phantom outline's hash, to tell a faster growing from a different one.

Prints one JSON object. A change meant to keep the outlines (a speed-up) must print the same
object before and after:

    .venv/bin/python bench/bench_outline_hashes.py [--seeds 24] > before.json   # on the old commit
    .venv/bin/python bench/bench_outline_hashes.py [--seeds 24] > after.json
    diff before.json after.json

Rows: each phantom seed x IPH, EDH, SDH as ``bench_measure.accuracy`` grows them (256
matrix, 5 mm, the reader's clicks), with the first click's own outline where there are
several, then both 40 x 512² speed phantoms (cavity passed in, as ``bench_measure.speed``).
``sha1``: of the packed mask (12 hex digits, as ``bench_measure_real.py``), beside the voxel
count, the notes and ABC/2, so a change in any of them shows.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from ich_viewer.measure.cavity import cranial_cavity  # noqa: E402
from ich_viewer.measure.clicks import grow_clicks, reader_clicks  # noqa: E402
from ich_viewer.measure.region import Region, deepest_point, grow_region  # noqa: E402
from ich_viewer.phantom import SUBTYPES, generate_phantom  # noqa: E402
from bench_measure import SUBTYPES_MEASURED as SUBTYPES_GROWN, accuracy_phantom  # noqa: E402  (this folder)

def outline(region: Region) -> dict:
    """What a region is, to the voxel: its mask's hash, or why there is none."""
    if region.mask is None:
        return {"reason": region.reason}
    abc = region.abc2
    return {"sha1": hashlib.sha1(np.packbits(region.mask).tobytes()).hexdigest()[:12], "voxels": region.voxels,
            "notes": region.notes, "abc2": None if abc is None else [abc.a_mm, abc.b_mm, abc.c_mm, abc.slice_index]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=24)
    args = parser.parse_args()
    rows = []
    for seed in range(args.seeds):
        for subtype in SUBTYPES_GROWN:
            p, truth, spacing, _, _ = accuracy_phantom(seed, subtype)
            clicks = reader_clicks(truth, spacing) or [deepest_point(truth)]
            row = {"seed": seed, "subtype": subtype, **outline(grow_clicks(p.volume_hu, spacing, clicks))}
            if len(clicks) > 1:
                row["first_click"] = outline(grow_region(p.volume_hu, spacing, clicks[0]))
            rows.append(row)
    speed = []
    for seed, subtype in ((2, "intraparenchymal"), (6, "subdural")):
        p = generate_phantom(seed=seed, subtypes=[subtype], matrix=512, n_slices=40, thickness_mm=5.0)
        truth = p.masks == SUBTYPES.index(subtype) + 1
        spacing = (p.spacing_mm, *p.pixel_spacing)
        region = grow_region(p.volume_hu, spacing, deepest_point(truth), cavity=cranial_cavity(p.volume_hu, spacing))
        speed.append({"seed": seed, "subtype": subtype, "shape": list(p.volume_hu.shape), **outline(region)})
    print(json.dumps({"accuracy": rows, "speed_40x512": speed}, indent=1))


if __name__ == "__main__":
    main()
