"""The inner table's edge on phantoms against real CT: the 10-90 % rise from brain into bone (mm).

Prints one JSON object: for CT-ICH's scans (rebuilt HU, 0.32 mm per JPEG pixel: patient
049's published 0.412 mm on 512 pixels resized to 650) and for phantoms on a 256 and a 512
matrix, the rise's 10th, 25th and 50th percentiles over rays from the head's centre on the
lowest slice where the most rays meet the skull and the three above it
(``ich_viewer.phantom.sharpness``). The lower percentiles are edges met square-on: the
scanner's blur alone. Without the CT-ICH data the real part says it was skipped.

    .venv/bin/python bench/bench_phantom_edge.py [--ct-ich ../shared/data/ct-ich] [--patients N] [--seeds 6]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from ich_viewer.phantom import generate_phantom  # noqa: E402
from ich_viewer.phantom.sharpness import inner_table_rise_mm  # noqa: E402

CT_ICH_PIXEL_MM = 0.32
PERCENTILES = (10, 25, 50)


def _summary(rises: np.ndarray) -> dict:
    values = np.percentile(rises, PERCENTILES) if rises.size else [None] * len(PERCENTILES)
    return {"rays": int(rises.size), **{f"p{p}_mm": None if v is None else round(float(v), 2)
                                         for p, v in zip(PERCENTILES, values)}}


def real(ct_ich: Path, patients: int | None) -> dict:
    from trainer.data.ctich import _read_grey, rebuild_hu

    folders = sorted((ct_ich / "Patients_CT").iterdir())[:patients] if (ct_ich / "Patients_CT").is_dir() else []
    if not folders:
        return {"skipped": f"no CT-ICH data at {ct_ich}"}
    rows, every = [], []
    for folder in folders:
        numbers = sorted(int(f.stem) for f in (folder / "brain").glob("*.jpg"))
        slices = []
        for n in numbers:
            bone_path = folder / "bone" / f"{n}.jpg"
            slices.append(rebuild_hu(_read_grey(folder / "brain" / f"{n}.jpg"),
                                     _read_grey(bone_path) if bone_path.is_file() else None))
        rises = inner_table_rise_mm(np.stack(slices).astype(np.float32), CT_ICH_PIXEL_MM)
        every.append(rises)
        rows.append({"patient": folder.name, **_summary(rises)})
    return {"pixel_mm": CT_ICH_PIXEL_MM, "all": _summary(np.concatenate(every)), "patients": rows}


def phantoms(matrix: int, seeds: int) -> dict:
    rows, every = [], []
    for seed in range(seeds):
        p = generate_phantom(seed=seed, subtypes=[], matrix=matrix, thickness_mm=5.0)
        rises = inner_table_rise_mm(p.volume_hu, float(p.pixel_spacing[0]))
        every.append(rises)
        rows.append({"seed": seed, "blur_sigma_mm": round(float(p.info["blur_sigma_mm"]), 2),
                     "pixel_mm": round(float(p.pixel_spacing[0]), 2), **_summary(rises)})
    return {"all": _summary(np.concatenate(every)), "seeds": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct-ich", type=Path, default=ROOT.parent / "shared" / "data" / "ct-ich")
    parser.add_argument("--patients", type=int, default=None, help="the first N scans (default: all)")
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    out = {"benchmark": "phantom_edge", "real_ct_ich": real(args.ct_ich, args.patients),
           "phantom_256": phantoms(256, args.seeds), "phantom_512": phantoms(512, args.seeds)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
