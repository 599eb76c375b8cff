"""Bleed outlines on real scans against hand-drawn masks: the demo and CT-ICH's ``masks_subset``.

Prints one JSON object (docs/benchmarks.md "Measure" quotes it).

    .venv/bin/python bench/bench_measure_real.py [--ct-ich ../shared/data/ct-ich]

The demo (CT-ICH 071): one click in the hematoma, ``DEMO_CLICK`` (where
``scripts/make_measure_screenshots.py`` clicks), at the default 45-90 HU; Dice and slice
volume against its two hand masks; then, for each hand mask, one click at its deepest pixel
(``Im N clicked``: on Im 14 that is the subdural). ``--demo-clicks N`` also clicks the demo
at N seeded random pixels inside each hand mask (where the reader clicks: the spread of
the volumes). ``masks_subset`` (15 slices of 12 patients, hand masks
from the data set's later release, see the data set's README): each patient's scan is
rebuilt in HU from its two JPEG windows as the trainer does, 0.32 mm pixels and 5 mm slices
assumed, the reader clicks the pixel deepest inside the hand mask, and the grown region's
outline on that slice is compared with the mask. The hand masks cover only a few slices; the
data set's per-slice labels cover all of them, so each row also gives what the region holds on
slices labelled without hemorrhage (``unlabelled_ml``, ``unlabelled_slices``: a leak, or a
bleed the labels missed). A hand mask in several pieces (a contusion and an epidural
beside it) gets, as well, one click per piece of at least ``MIN_PIECE_MM2``, largest first,
as a reader Shift+clicks each (``pieces_*``; the phantoms' protocol, ``measure.clicks``).
Each outline's ``sha1`` (of its packed voxels) lets two runs tell "unchanged to the voxel"
apart from "the same numbers".
Skipped, and said so, where the data is not there.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from ich_viewer.measure.cavity import cranial_cavity  # noqa: E402
from ich_viewer.measure.region import Region, deepest_point, dice, grow_region  # noqa: E402

DEMO_CLICK = (14, 330, 520)
"""(slice, row, column), 0-based: Im 15, in the temporal hematoma."""
PIXEL_MM = 0.32
SLICE_MM = 5.0
MIN_PIECE_MM2 = 20.0
"""A piece of a hand mask smaller than this on its slice is not clicked (JPEG specks)."""


def _outline(region: Region, k: int, hand: np.ndarray, spacing: tuple[float, float, float]) -> dict:
    voxel_ml = float(np.prod(spacing)) / 1000.0
    assert region.mask is not None
    return {"dice": round(dice(region.mask[k], hand), 3), "slice_ml": round(float(region.mask[k].sum()) * voxel_ml, 2),
            "hand_ml": round(float(hand.sum()) * voxel_ml, 2)}


def _unlabelled(mask: np.ndarray, numbers: list[int], labels: dict[int, list[int]],
                spacing: tuple[float, float, float]) -> dict:
    """What the region holds on the slices CT-ICH labels without hemorrhage (the last label, any)."""
    clear = [k for k, number in enumerate(numbers) if number in labels and not labels[number][-1]]
    touched = [numbers[k] for k in clear if mask[k].any()]
    voxels = int(mask[clear].sum()) if clear else 0
    return {"unlabelled_ml": round(voxels * float(np.prod(spacing)) / 1000.0, 2), "unlabelled_slices": touched}


def _piece_clicks(volume: np.ndarray, cavity: np.ndarray, k: int, hand: np.ndarray,
                  spacing: tuple[float, float, float]) -> dict:
    """One click per piece of the hand mask (largest first), when it has more than one."""
    from scipy import ndimage

    from ich_viewer.measure.clicks import grow_clicks

    labels, count = ndimage.label(hand)
    sizes = np.bincount(labels.ravel())[1:] * spacing[1] * spacing[2]
    clicks = []
    for index in np.argsort(sizes)[::-1]:
        if sizes[index] >= MIN_PIECE_MM2:
            where = np.zeros(volume.shape, bool)
            where[k] = labels == index + 1
            clicks.append(deepest_point(where))
    if len(clicks) < 2:
        return {}
    region = grow_clicks(volume, spacing, clicks, cavity=cavity)
    if not region.ok or region.mask is None:
        return {"pieces": len(clicks), "pieces_refused": region.reason}
    outline = _outline(region, k, hand, spacing)
    return {"pieces": len(clicks), "pieces_dice": outline["dice"], "pieces_slice_ml": outline["slice_ml"],
            "pieces_volume_ml": round(region.volume_ml, 1)}


def _sha1(mask: np.ndarray) -> str:
    return hashlib.sha1(np.packbits(mask).tobytes()).hexdigest()[:12]


def demo(ct_ich: Path) -> dict:
    from trainer.data.ctich import _read_grey

    from ich_viewer.demo import DemoMissing, demo_study_path
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.measure.series import grow_in_series

    try:
        series = load_study(demo_study_path("ct-ich")).image_series[0]
    except DemoMissing as exc:
        return {"skipped": str(exc)}
    region = grow_in_series(series, DEMO_CLICK)
    if not region.ok or region.mask is None:
        return {"refused": region.reason}
    out: dict = {"click": list(DEMO_CLICK), "volume_ml": round(region.volume_ml, 1), "sha1": _sha1(region.mask),
                 "notes": region.notes}
    labels = _labels(ct_ich).get("71")
    if labels is not None:
        out.update(_unlabelled(region.mask, list(range(1, region.mask.shape[0] + 1)), labels, region.spacing_mm))
    folder = ct_ich / "masks_subset" / "Patients_CT" / "071" / "brain"
    volume = series.volume_hu()
    for number in (14, 19):
        path = folder / f"{number}_HGE_Seg.jpg"
        if not path.is_file():
            continue
        hand = _read_grey(path) > 127
        out[f"Im {number}"] = _outline(region, number - 1, hand, region.spacing_mm)
        # the reader may as well click the subdural: the hand mask's deepest pixel, as for the rows below
        where = np.zeros(volume.shape, bool)
        where[number - 1] = hand
        click = deepest_point(where)
        own = grow_in_series(series, click, volume=volume)
        if own.ok and own.mask is not None:
            out[f"Im {number} clicked"] = {"click": list(click), "volume_ml": round(own.volume_ml, 1),
                                           **_outline(own, number - 1, hand, own.spacing_mm)}
            if labels is not None:
                out[f"Im {number} clicked"].update(_unlabelled(own.mask, list(range(1, own.mask.shape[0] + 1)), labels,
                                                               own.spacing_mm))
        else:
            out[f"Im {number} clicked"] = {"click": list(click), "refused": own.reason}
    return out


def demo_clicks(ct_ich: Path, per_mask: int) -> dict:
    """Where the reader clicks on the demo: ``per_mask`` clicks drawn (seeded) inside each hand
    mask, 1 mm or more from its edge; the volume and the slice's Dice from each."""
    from scipy import ndimage

    from trainer.data.ctich import _read_grey

    from ich_viewer.demo import DemoMissing, demo_study_path
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.measure.series import grow_in_series

    try:
        series = load_study(demo_study_path("ct-ich")).image_series[0]
    except DemoMissing as exc:
        return {"skipped": str(exc)}
    volume = series.volume_hu()
    rng = np.random.default_rng(0)
    out: dict = {}
    for number in (14, 19):
        path = ct_ich / "masks_subset" / "Patients_CT" / "071" / "brain" / f"{number}_HGE_Seg.jpg"
        if not path.is_file():
            continue
        hand = _read_grey(path) > 127
        rows, cols = np.nonzero(ndimage.binary_erosion(hand, iterations=3))
        clicks = []
        for index in rng.choice(len(rows), min(per_mask, len(rows)), replace=False):
            seed = (number - 1, int(rows[index]), int(cols[index]))
            region = grow_in_series(series, seed, volume=volume)
            clicks.append({"click": list(seed), "volume_ml": round(region.volume_ml, 1),
                           "dice": _outline(region, number - 1, hand, region.spacing_mm)["dice"]}
                          if region.ok and region.mask is not None else {"click": list(seed), "refused": region.reason})
        grown = [c["volume_ml"] for c in clicks if "volume_ml" in c]
        out[f"Im {number}"] = {"clicks": clicks, "refused": len(clicks) - len(grown),
                               "volume_ml_range": [min(grown), max(grown)] if grown else None}
    return out


def _labels(ct_ich: Path) -> dict[str, dict[int, list[int]]]:
    from trainer.data.ctich import DatasetError, read_labels

    try:
        return read_labels(ct_ich)
    except DatasetError:
        return {}


def hand_masks(ct_ich: Path) -> list[dict] | dict:
    from trainer.data.ctich import _read_grey, rebuild_hu

    root = ct_ich / "masks_subset" / "Patients_CT"
    if not root.is_dir():
        return {"skipped": f"no hand masks at {root}"}
    spacing = (SLICE_MM, PIXEL_MM, PIXEL_MM)
    labels = _labels(ct_ich)
    rows = []
    for patient in sorted(p for p in root.iterdir() if p.is_dir()):
        folder = ct_ich / "Patients_CT" / patient.name
        numbers = sorted(int(f.stem) for f in (folder / "brain").glob("*.jpg"))
        slices = []
        for number in numbers:
            bone_path = folder / "bone" / f"{number}.jpg"
            bone = _read_grey(bone_path) if bone_path.is_file() else None
            hu = rebuild_hu(_read_grey(folder / "brain" / f"{number}.jpg"), bone)
            if bone is not None:
                hu[(bone == 0) & (hu < -800)] = -1000.0
            slices.append(hu)
        volume = np.stack(slices).astype(np.float32)
        cavity = cranial_cavity(volume, spacing)
        for mask_path in sorted(patient.glob("brain/*_HGE_Seg.jpg"), key=lambda p: int(p.stem.split("_")[0])):
            number = int(mask_path.stem.split("_")[0])
            k = numbers.index(number)
            hand = _read_grey(mask_path) > 127
            where = np.zeros(volume.shape, bool)
            where[k] = hand
            click = deepest_point(where)
            region = grow_region(volume, spacing, click, cavity=cavity)
            row: dict = {"patient": patient.name, "slice": number, "click": list(click)}
            if region.ok and region.mask is not None:
                row.update(_outline(region, k, hand, spacing), volume_ml=round(region.volume_ml, 1),
                           sha1=_sha1(region.mask))
                if str(int(patient.name)) in labels:
                    row.update(_unlabelled(region.mask, numbers, labels[str(int(patient.name))], spacing))
            else:
                row["refused"] = region.reason
            row.update(_piece_clicks(volume, cavity, k, hand, spacing))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct-ich", type=Path, default=ROOT.parent / "shared" / "data" / "ct-ich")
    parser.add_argument("--demo-clicks", type=int, default=0, metavar="N",
                        help="also click the demo N times inside each hand mask (where the reader clicks)")
    args = parser.parse_args()
    out = {"demo": demo(args.ct_ich), "masks_subset": hand_masks(args.ct_ich)}
    if args.demo_clicks:
        out["demo_clicks"] = demo_clicks(args.ct_ich, args.demo_clicks)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
