"""The inner table on phantoms against real CT: how sharp its edge is, and what lies under it.

Prints one JSON object: for CT-ICH's scans (rebuilt HU, 0.32 mm per JPEG pixel: patient
049's published 0.412 mm on 512 pixels resized to 650) and for phantoms on a 256 and a 512
matrix (the 512 one both upsampled from the 256 drawing, the default, and drawn at 512), the
rise's 10th, 25th and 50th percentiles over rays from the head's centre on the lowest slice
where the most rays meet the skull and the three above it (``ich_viewer.phantom.sharpness``).
The lower percentiles are edges met square-on: the scanner's blur alone. Beside it, what lies under the inner table: the cranial cavity's median HU
in 0.5 mm rings by in-plane distance from the bone's edge (``UNDER_TABLE_RINGS_MM``), on the
middle third of the cavity's slices, and the share of scans whose ring at 1.0-1.5 mm reads
like CSF (under ``CSF_LIKE_HU``): where a layer of CSF lines the skull, bone blurred into it
stays below blood; where brain lies against it, the blur reads like blood all round the skull.
Without the CT-ICH data the real part says it was skipped.

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

from ich_viewer.measure.cavity import cranial_cavity  # noqa: E402
from ich_viewer.measure.voxels import BONE_HU, bone_distance  # noqa: E402
from ich_viewer.phantom import generate_phantom  # noqa: E402
from ich_viewer.phantom.sharpness import inner_table_rise_mm  # noqa: E402

CT_ICH_PIXEL_MM = 0.32
PERCENTILES = (10, 25, 50)
UNDER_TABLE_RINGS_MM = tuple(float(v) for v in np.arange(0.0, 4.01, 0.5))
CSF_LIKE_HU = 25.0
"""CSF reads 0-15 HU, brain 25-45: a ring under this is mostly CSF."""


def _summary(rises: np.ndarray) -> dict:
    values = np.percentile(rises, PERCENTILES) if rises.size else [None] * len(PERCENTILES)
    return {"rays": int(rises.size), **{f"p{p}_mm": None if v is None else round(float(v), 2)
                                         for p, v in zip(PERCENTILES, values)}}


def under_table_hu(volume: np.ndarray, spacing: tuple[float, float, float]) -> list[float | None]:
    """The cavity's median HU in each ring of ``UNDER_TABLE_RINGS_MM`` from the bone's edge."""
    cavity = cranial_cavity(volume, spacing)
    layers = np.flatnonzero(cavity.any(axis=(1, 2)))
    pixel = float(spacing[1])
    values, distances = [], []
    for k in layers[len(layers) // 3: 2 * len(layers) // 3]:
        # bone_distance is 0 beside the bone: that pixel's centre is half a pixel from its edge
        d = bone_distance(volume[k] >= BONE_HU, spacing, UNDER_TABLE_RINGS_MM[-1]) + pixel / 2
        inside = cavity[k] & np.isfinite(d)
        values.append(volume[k][inside])
        distances.append(d[inside])
    hu, d = np.concatenate(values), np.concatenate(distances)
    rings = []
    for lo, hi in zip(UNDER_TABLE_RINGS_MM[:-1], UNDER_TABLE_RINGS_MM[1:]):
        ring = hu[(d >= lo) & (d < hi)]
        rings.append(round(float(np.median(ring)), 1) if ring.size else None)
    return rings


def _under_table_summary(profiles: list[list[float | None]]) -> dict:
    at = UNDER_TABLE_RINGS_MM.index(1.0)
    ring = [p[at] for p in profiles if p[at] is not None]
    by_ring = [[v for v in column if v is not None] for column in zip(*profiles)]
    return {"rings_mm": list(UNDER_TABLE_RINGS_MM),
            "median_hu_by_ring": [round(float(np.median(v)), 1) if v else None for v in by_ring],
            "share_csf_like_at_1_mm": round(sum(v < CSF_LIKE_HU for v in ring) / len(ring), 2) if ring else None}


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
        volume = np.stack(slices).astype(np.float32)
        rises = inner_table_rise_mm(volume, CT_ICH_PIXEL_MM)
        every.append(rises)
        under = under_table_hu(volume, (5.0, CT_ICH_PIXEL_MM, CT_ICH_PIXEL_MM))
        rows.append({"patient": folder.name, **_summary(rises), "under_table_hu": under})
    return {"pixel_mm": CT_ICH_PIXEL_MM, "all": _summary(np.concatenate(every)),
            "under_table": _under_table_summary([r["under_table_hu"] for r in rows]), "patients": rows}


def phantoms(matrix: int, seeds: int, max_work_size: int = 256) -> dict:
    rows, every = [], []
    for seed in range(seeds):
        p = generate_phantom(seed=seed, subtypes=[], matrix=matrix, thickness_mm=5.0, max_work_size=max_work_size)
        rises = inner_table_rise_mm(p.volume_hu, float(p.pixel_spacing[0]))
        every.append(rises)
        under = under_table_hu(p.volume_hu, (p.spacing_mm, *p.pixel_spacing))
        rows.append({"seed": seed, "blur_sigma_mm": round(float(p.info["blur_sigma_mm"]), 2),
                     "pixel_mm": round(float(p.pixel_spacing[0]), 2), "atrophy": round(float(p.info["head"]["atrophy"]), 2),
                     **_summary(rises), "under_table_hu": under})
    return {"all": _summary(np.concatenate(every)),
            "under_table": _under_table_summary([r["under_table_hu"] for r in rows]), "seeds": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct-ich", type=Path, default=ROOT.parent / "shared" / "data" / "ct-ich")
    parser.add_argument("--patients", type=int, default=None, help="the first N scans (default: all)")
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    out = {"benchmark": "phantom_edge", "real_ct_ich": real(args.ct_ich, args.patients),
           "phantom_256": phantoms(256, args.seeds), "phantom_512": phantoms(512, args.seeds),
           "phantom_512_drawn_at_512": phantoms(512, args.seeds, max_work_size=512)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
