"""How the classifier reads thin series, with and without 5 mm slabs (JSON).

The network learned from 5 mm slices. A scanner makes a 5 mm slice by averaging thin
ones, so each thin slice is noisier by about the square root of their number. Real thin
head CTs with labels are not bundled, so this runs that step backwards: each real 5 mm
slice becomes ``--split`` thin slices that each hold it plus independent noise
(``--noise`` HU, the thin slice's extra noise; 8 HU over 8 slices adds ~2.8 HU to the
average). Only the noise part of thin slices is modelled, not their finer partial volume.
Labels and positions come from the 5 mm slices, so what changes is only what the network
is fed. For each way of feeding it the script prints the "any" flag rate on thin slices of
normal and of bleeding 5 mm slices, the 5 mm series' own rates, and the time per slice.
A thin slice takes the label of the 5 mm slice it was split from, so a slab that straddles
the edge of a bleed mixes it with the normal slice beside it.

Studies: the demo (CT-ICH 071), or with ``--ct-ich DIR`` the first ``--patients`` CT-ICH
patients (real labelled slices; the bundled model has seen them in training, so this
measures steadiness, not accuracy).

Usage: ``python scripts/check_thin_series.py [--ct-ich DIR] [--patients N] [--noise HU] [--split K]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

THICK_MM = 5.0


def any_flags(loaded, volume: np.ndarray, spacing_mm: float) -> tuple[np.ndarray, float]:
    """The "any" flag per slice (unscored slices are not flagged), seconds per slice."""
    from ich_viewer.dicom.model import Series
    from ich_viewer.inference.predict import PredictState, predict

    series = Series.from_array(volume, spacing_mm=spacing_mm)
    started = time.perf_counter()
    rows = sorted(predict(series, PredictState(loaded, threads=1)), key=lambda p: p.index)
    seconds = (time.perf_counter() - started) / max(1, len(rows))
    return np.array(["any" in r.flagged for r in rows]), seconds


def studies(ct_ich: Path | None, patients: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HU volume foot to head, per-slice "any" label) of each study checked."""
    from ich_viewer import LABELS
    from ich_viewer.demo import demo_info, demo_study_path
    from ich_viewer.dicom.loader import load_study

    out = []
    if ct_ich is None:
        demo = load_study(demo_study_path("ct-ich")).image_series[0]
        info = demo_info()
        numbers = {n for slices in (info.labels.values() if info else []) for n in slices}
        out.append(("demo", demo.volume_hu(), np.array([i + 1 in numbers for i in range(len(demo))])))
    else:
        from trainer.data.ctich import read_ctich

        for volume in read_ctich(ct_ich)[:patients]:
            slices = volume.load_hu()
            keep = [i for i, s in enumerate(slices) if s is not None]
            out.append((volume.group, np.stack([slices[i] for i in keep]),
                        volume.labels[keep, LABELS.index("any")].astype(bool)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct-ich", type=Path, default=None, help="CT-ICH root (../shared/data/ct-ich)")
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--noise", type=float, default=8.0, help="extra noise SD of each thin slice, HU")
    parser.add_argument("--split", type=int, default=8, help="thin slices per 5 mm slice (8: 0.625 mm)")
    args = parser.parse_args()

    from ich_viewer.inference.weights import load_model

    bundled = load_model(None, device="cpu")
    rng = np.random.default_rng(0)
    modes = {"single thin slice": None, "5 mm slab": THICK_MM}
    tallies = {m: {"normal": [], "bleeding": [], "seconds": []} for m in ("5 mm series", *modes)}
    names = []
    for name, thick, bleeding in studies(args.ct_ich, args.patients):
        names.append(name)
        thin = np.repeat(thick, args.split, axis=0)
        thin += rng.normal(0.0, args.noise, thin.shape).astype(np.float32)
        thin_bleeding = np.repeat(bleeding, args.split)
        for mode, slab in (("5 mm series", THICK_MM), *modes.items()):
            loaded = dataclasses.replace(bundled, spec=dataclasses.replace(bundled.spec, slab_mm=slab))
            if mode == "5 mm series":
                flags, seconds = any_flags(loaded, thick, THICK_MM)
                truth = bleeding
            else:
                flags, seconds = any_flags(loaded, thin, THICK_MM / args.split)
                truth = thin_bleeding
            tally = tallies[mode]
            tally["normal"] += list(flags[~truth])
            tally["bleeding"] += list(flags[truth])
            tally["seconds"].append(seconds)

    def share(values: list) -> float | None:
        return round(float(np.mean(values)), 3) if values else None

    out: dict = {"studies": names, "split": args.split, "thin_spacing_mm": THICK_MM / args.split,
                 "thin_noise_hu": args.noise}
    for mode, tally in tallies.items():
        out[mode] = {"flag_rate_normal_slices": share(tally["normal"]),
                     "flag_rate_bleeding_slices": share(tally["bleeding"]),
                     "ms_per_slice_1_thread": round(1000 * float(np.mean(tally["seconds"])), 1)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
