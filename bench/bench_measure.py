"""Measurement accuracy and speed: bleed outlines against phantom masks, growing time, drawing time.

Prints one JSON object (the table in docs/benchmarks.md "Measure" comes from it).

    .venv/bin/python bench/bench_measure.py [--seeds 8] [--first-seed 0] [--quick] [--noise-sd SD] [--slice-clicks]
        [--matrix 256] [--thickness 5] [--accuracy-only] [--speed-seeds 4]
    .venv/bin/python bench/bench_measure.py --pool RUN.json [RUN.json ...]   # sets of seeds run apart, summed

Accuracy: for each phantom seed and each of IPH, EDH, SDH (256 matrix, 5 mm; ``--thickness`` the same
bleeds on thinner slices, painted on planes ``FINE_SLAB_PLANE_MM`` apart as at 5 mm; under 2 mm on one), the reader
clicks the pixel deepest inside each separate piece of the true mask of at least 1 mL that
reads as blood (not a dark swirl, where the window refuses the click), largest first
(``measure.clicks.reader_clicks``; the window: click, then Shift+click on each
further piece); Dice and volume error of the grown region against the mask, and ABC/2
beside the truth. Beside it, the reader's second look: one more Shift+click on each piece of at
least 1 mL that reads as blood and that the outline left out (``measure.clicks.reader_second_look``),
as a reader does who sees a crescent the outline did not take. A phantom's mask may be in
separate pieces (a subdural's sheet along the falx or the tentorium that never touches its
convexity part): the sizes of the pieces, the result of the first click alone and its error
against its own piece are printed beside, so a miss that no click can avoid is told apart
from an outline that is wrong where it grew.
``--slice-clicks``: for each bleed in scope, the first click also moved to every slice where
its piece is at least half as large as at its largest (the deepest point there): a reader
clicks where the bleed shows best, not at the mask's deepest voxel.
"In scope" = truth >= 5 mL and the bleed >= 10 HU denser than grey matter (an isodense
bleed has no edge any threshold can find). ``by_subtype``: per subtype in scope, how many meet the
goal, how many meet each half of it, and the median Dice and volume error. Speed: a 40 x 512 x 512
phantom drawn at 512 (an IPH, and a thin subdural along the skull; the subdural also on 64 slices
of 2.5 mm), the cranial cavity and the rest of the head (``measure.head``: once per series, which the window finds when
the volume tool is chosen) and the growing timed apart, median of 3; then the growing on every
bleed of the first ``--speed-seeds`` phantoms drawn so (the spread: the median, the slowest).
Drawing: the window's redraw of a ruler and a volume outline plus one repaint, offscreen (the
marks' items drawn again each frame, as when the reader scrolls).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from ich_viewer.measure.cavity import cranial_cavity  # noqa: E402
from ich_viewer.measure.clicks import grow_clicks, reader_clicks, reader_second_look, reads_as_blood  # noqa: E402
from ich_viewer.measure.head import find_head  # noqa: E402
from ich_viewer.measure.region import Region, deepest_point, dice, grow_region  # noqa: E402
from ich_viewer.phantom import SUBTYPES, Phantom, generate_phantom  # noqa: E402
from ich_viewer.phantom.generate import FINE_SLAB_PLANE_MM, slab_planes  # noqa: E402

SUBTYPES_MEASURED = ("intraparenchymal", "epidural", "subdural")
ACCURACY_PLANES = slab_planes(5.0, FINE_SLAB_PLANE_MM)
"""Five planes a 5 mm slice: the masks are the ground truth here (``generate.FINE_SLAB_PLANE_MM``)."""


def accuracy_phantom(seed: int, subtype: str, noise_sd: float | None = None, matrix: int = 256,
                     planes_per_slice: int = ACCURACY_PLANES, thickness_mm: float = 5.0
                     ) -> tuple[Phantom, np.ndarray, tuple[float, float, float], float, float]:
    """One bleed of the accuracy protocol (256 matrix, 5 mm, five planes a slice; ``thickness_mm`` with its own
    ``planes_per_slice`` for the same bleed on other slices): the phantom, its true mask,
    spacing, the mask's mL and how much denser than grey matter the bleed is (HU). Drawn on the
    matrix itself (``max_work_size``): a 512 series drawn at 256 rings beside the bone. Shared with
    ``bench_outline_hashes.py`` and ``bench_measure_ceiling.py``, so all three read the same bleeds."""
    p = generate_phantom(seed=seed, subtypes=[subtype], matrix=matrix, thickness_mm=thickness_mm, noise_sd=noise_sd,
                         max_work_size=matrix, planes_per_slice=planes_per_slice)
    truth = p.masks == SUBTYPES.index(subtype) + 1
    spacing = (p.spacing_mm, *p.pixel_spacing)
    truth_ml = float(truth.sum() * np.prod(spacing) / 1000)
    return p, truth, spacing, truth_ml, float(p.info["lesions"][0]["mean_hu"] - p.info["head"]["grey_hu"])


def meets_goal(overlap: float, error_pct: float) -> bool:
    """Dice >= 0.85 and volume within 10 %, judged before rounding (as the tests judge it)."""
    return overlap >= 0.85 and abs(error_pct) <= 10.0


def in_scope(truth_ml: float, contrast_hu: float) -> bool:
    """At least 5 mL and 10 HU denser than grey matter (an isodense bleed has no edge to find)."""
    return truth_ml >= 5.0 and contrast_hu >= 10.0


def by_subtype(scope: list[dict]) -> dict:
    """Per subtype in scope: how many meet the goal, and the median and mean Dice and volume error (a refused
    click counts as Dice 0 and -100 %): the goal read bleed by bleed beside it read on the subtype's medians,
    and the means, which a bleed the click missed altogether pulls down."""
    out = {}
    for subtype in SUBTYPES_MEASURED:
        rows = [r for r in scope if r["subtype"] == subtype]
        if not rows:
            continue
        dices = [r.get("dice", 0.0) for r in rows]
        errors = [abs(r.get("error_pct", -100.0)) for r in rows]
        out[subtype] = {"in_scope": len(rows), "passing": sum(bool(r.get("meets_goal")) for r in rows),
                        "passing_second_look": sum(bool(r["second_look_meets_goal"]) for r in rows),
                        "dice_at_least_0.85": sum(d >= 0.85 for d in dices),
                        "within_10_pct": sum(e <= 10.0 for e in errors),
                        "dice_median": round(statistics.median(dices), 3),
                        "abs_error_pct_median": round(statistics.median(errors), 1),
                        "meets_goal_on_medians": meets_goal(statistics.median(dices), statistics.median(errors)),
                        "dice_mean": round(statistics.mean(dices), 3),
                        "abs_error_pct_mean": round(statistics.mean(errors), 1)}
    return out


def second_look(volume: np.ndarray, spacing: tuple[float, float, float], truth: np.ndarray,
                clicks: list[tuple[int, int, int]], region: Region, truth_ml: float) -> dict:
    """The reader's second look at the outline (``measure.clicks.reader_second_look``): a
    Shift+click on each visible piece of at least 1 mL left out; a refused first click is
    dropped, as the reader clicks elsewhere. The same as the first look where nothing is left out."""
    more = [c for c in reader_second_look(truth, region.mask if region.ok else None, spacing, volume)
            if c not in clicks]
    if more:
        region = grow_clicks(volume, spacing, (clicks if region.ok else clicks[1:]) + more)
    error = 100 * ((region.volume_ml if region.ok else 0.0) - truth_ml) / truth_ml
    overlap = dice(region.mask, truth) if region.ok else 0.0
    return {"second_look_clicks": len(more), "second_look_error_pct": round(error, 1),
            "second_look_dice": round(overlap, 3), "second_look_meets_goal": meets_goal(overlap, error)}


def slice_clicks(volume: np.ndarray, spacing: tuple[float, float, float], truth: np.ndarray, labels: np.ndarray,
                 clicks: list[tuple[int, int, int]], truth_ml: float) -> dict:
    """The first click moved to each slice where its piece (of the true mask's ``labels``) is at
    least half as large as at its largest, at the point deepest inside the piece on that slice
    (further pieces clicked as before): how much the outline depends on where the reader clicks."""
    piece = labels == labels[clicks[0]]
    areas = piece.sum(axis=(1, 2))
    cavity = cranial_cavity(volume, spacing)
    blood = reads_as_blood(volume)
    errors, dices = [], []
    for k in np.flatnonzero(areas >= areas.max() / 2):
        layer = np.zeros_like(piece)
        layer[k] = piece[k]
        region = grow_clicks(volume, spacing, [deepest_point(layer, blood), *clicks[1:]], cavity=cavity)
        errors.append(100 * (region.volume_ml - truth_ml) / truth_ml if region.ok else -100.0)
        dices.append(dice(region.mask, truth) if region.ok else 0.0)
    passing = sum(meets_goal(d, e) for e, d in zip(errors, dices))
    return {"slice_clicks": len(errors), "slice_clicks_passing": passing,
            "slice_click_error_pct": [round(min(errors), 1), round(max(errors), 1)],
            "slice_click_dice": [round(min(dices), 3), round(max(dices), 3)]}


def accuracy(seeds: int, noise_sd: float | None = None, spread: bool = False, matrix: int = 256,
             first_seed: int = 0, thickness_mm: float = 5.0) -> list[dict]:
    rows = []
    planes = slab_planes(thickness_mm, FINE_SLAB_PLANE_MM)
    for seed in range(first_seed, first_seed + seeds):
        for subtype in SUBTYPES_MEASURED:
            p, truth, spacing, truth_ml, contrast = accuracy_phantom(seed, subtype, noise_sd, matrix, planes,
                                                                     thickness_mm)
            clicks = reader_clicks(truth, spacing, volume=p.volume_hu) or [deepest_point(truth)]
            start = time.perf_counter()
            region = grow_clicks(p.volume_hu, spacing, clicks)
            row = {"seed": seed, "subtype": subtype, "truth_ml": round(truth_ml, 2), "contrast_hu": round(contrast, 1),
                   "in_scope": in_scope(truth_ml, contrast), "seconds": round(time.perf_counter() - start, 3),
                   "clicks": len(clicks)}
            if "thickness_mm" in p.info["lesions"][0]:  # an extra-axial collection's, at its centre
                row["thickness_mm"] = round(float(p.info["lesions"][0]["thickness_mm"]), 1)
            labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(truth.astype(np.uint8)),
                                                                    True))
            sizes = np.bincount(labels.ravel())[1:] * np.prod(spacing) / 1000
            row["truth_pieces_ml"] = [round(float(v), 1) for v in sorted(sizes, reverse=True) if v >= 0.5]
            first = grow_region(p.volume_hu, spacing, clicks[0]) if len(clicks) > 1 else region
            if first.ok:
                row.update(one_click_ml=round(first.volume_ml, 2),
                           one_click_error_pct=round(100 * (first.volume_ml - truth_ml) / truth_ml, 1),
                           one_click_dice=round(dice(first.mask, truth), 3))
            if region.ok:
                piece = labels == labels[region.seed]
                piece_ml = float(piece.sum() * np.prod(spacing) / 1000)
                if first.ok:  # the first click against its own piece
                    row.update(seed_piece_ml=round(piece_ml, 2),
                               error_vs_piece_pct=round(100 * (first.volume_ml - piece_ml) / piece_ml, 1),
                               dice_vs_piece=round(dice(first.mask, piece), 3))
                error, overlap = 100 * (region.volume_ml - truth_ml) / truth_ml, dice(region.mask, truth)
                row.update(grown_ml=round(region.volume_ml, 2), error_pct=round(error, 1), dice=round(overlap, 3),
                           abc2_ml=round(region.abc2_ml or 0.0, 2), meets_goal=meets_goal(overlap, error))
            else:
                row.update(reason=region.reason)
            row.update(second_look(p.volume_hu, spacing, truth, clicks, region, truth_ml))
            if spread and row["in_scope"]:
                row.update(slice_clicks(p.volume_hu, spacing, truth, labels, clicks, truth_ml))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def speed(repeats: int = 3, seed: int = 2, subtype: str = "intraparenchymal", n_slices: int = 40,
          thickness_mm: float = 5.0) -> dict:
    p = generate_phantom(seed=seed, subtypes=[subtype], matrix=512, n_slices=n_slices, thickness_mm=thickness_mm,
                         max_work_size=512)
    truth = p.masks == SUBTYPES.index(subtype) + 1
    spacing = (p.spacing_mm, *p.pixel_spacing)
    # the bleed's middle slice: a subdural's largest may be a thin layer on the fossa floor
    middle = np.zeros_like(truth)
    k = int(np.median(np.flatnonzero(truth.any(axis=(1, 2)))))
    middle[k] = truth[k]
    click = deepest_point(middle, reads_as_blood(p.volume_hu))
    cavity_s, head_s, grow_s, grow_cpu = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        cavity = cranial_cavity(p.volume_hu, spacing)
        t1 = time.perf_counter()
        head = find_head(p.volume_hu, spacing, cavity=cavity)
        t2, c2 = time.perf_counter(), time.process_time()
        region = grow_region(p.volume_hu, spacing, click, cavity=head)
        t3, c3 = time.perf_counter(), time.process_time()
        cavity_s.append(t1 - t0)
        head_s.append(t2 - t1)
        grow_s.append(t3 - t2)
        grow_cpu.append(c3 - c2)
    # CPU time beside wall time: on a shared machine the wall time is mostly waiting for a core.
    return {"phantom": f"seed {seed} {subtype}", "shape": list(p.volume_hu.shape),
            "cavity_s": round(statistics.median(cavity_s), 3), "head_s": round(statistics.median(head_s), 3),
            "grow_s": round(statistics.median(grow_s), 3), "grow_cpu_s": round(statistics.median(grow_cpu), 3),
            "load_average": round(os.getloadavg()[0], 1),
            "total_s": round(statistics.median(c + h + g for c, h, g in zip(cavity_s, head_s, grow_s)), 3),
            "volume_ml": round(region.volume_ml, 2), "dice": round(dice(region.mask, truth), 3) if region.ok else None,
            "reason": region.reason}


def speed_spread(seeds: int, repeats: int = 3) -> dict:
    """The growing's time over every bleed of the first ``seeds`` phantoms at 40 x 512² (``speed``
    for each): a large subdural cut at the falx costs more than the thin one timed above."""
    rows = [speed(repeats, seed=seed, subtype=subtype) for seed in range(seeds) for subtype in SUBTYPES_MEASURED]
    grow = [r["grow_s"] for r in rows]
    slowest = rows[int(np.argmax(grow))]
    return {"bleeds": [{k: r[k] for k in ("phantom", "grow_s", "volume_ml")} for r in rows],
            "grow_s_median": round(statistics.median(grow), 3), "grow_s_max": slowest["grow_s"],
            "slowest": slowest["phantom"], "over_0.5_s": sum(g > 0.5 for g in grow),
            "load_average": round(os.getloadavg()[0], 1)}


def drawing(frames: int = 50) -> dict:
    import tempfile

    os.environ.setdefault("ICH_VIEWER_DATA_DIR", tempfile.mkdtemp(prefix="bench-measure-"))
    from PySide6.QtWidgets import QApplication

    from ich_viewer.dicom.model import Series, Study
    from ich_viewer.measure.records import planar_measurement, volume_measurement
    from ich_viewer.measure.series import calibration
    from ich_viewer.options import ViewOptions
    from ich_viewer.ui.app import build_window
    from ich_viewer.ui.measure_panel import EXTENSION_NAME, MeasureController

    app = QApplication.instance() or QApplication([])
    p = generate_phantom(seed=2, subtypes=["intraparenchymal"], matrix=512, n_slices=40, thickness_mm=5.0)
    series = Series.from_array(p.volume_hu, spacing_mm=p.spacing_mm, pixel_spacing=p.pixel_spacing)
    study = Study(source="", series=[series], study_uid="1.2.826.0.1.3680043.8.498.999")
    window = build_window(ViewOptions(), ["ich_viewer.ui.measure_panel:attach_measure"])
    window.resize(1400, 900)
    window.show()
    window.show_study(study)
    controller = window.extensions.get(EXTENSION_NAME, MeasureController)
    assert controller is not None
    truth = p.masks == 2
    seed = deepest_point(truth)
    window.set_slice(seed[0])
    region = grow_region(p.volume_hu, (p.spacing_mm, *p.pixel_spacing), seed)
    record = volume_measurement(region, series_uid=series.series_uid)
    controller.masks[record.id] = region.mask
    controller._keep(record)
    controller._keep(planar_measurement("distance", [(100, 100), (300, 380)], series.hu(seed[0]),
                                        calibration(series), series_uid=series.series_uid, slice_index=seed[0]))
    app.processEvents()
    viewport = window.image_view().graphics.viewport()
    base = []
    controller._clear(controller._items)
    for _ in range(frames):  # the slice alone: what any frame costs without measurements
        t = time.perf_counter()
        viewport.repaint()
        base.append(time.perf_counter() - t)
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        controller.redraw()
        viewport.repaint()
        times.append(time.perf_counter() - t)
    window.close()
    return {"frames": frames, "paint_without_measurements_ms_median": round(1000 * statistics.median(base), 2),
            "redraw_and_paint_ms_median": round(1000 * statistics.median(times), 2),
            "measurements_ms_median": round(1000 * (statistics.median(times) - statistics.median(base)), 2),
            "redraw_and_paint_ms_p95": round(1000 * sorted(times)[int(0.95 * len(times)) - 1], 2),
            "platform": os.environ.get("QT_QPA_PLATFORM"), "load_average": round(os.getloadavg()[0], 1)}


def summary(rows: list[dict]) -> dict:
    """The goal over the bleeds in scope: how many meet it, which miss, the second look, each subtype."""
    scope = [r for r in rows if r["in_scope"]]
    passed = [r for r in scope if r.get("meets_goal")]
    return {"in_scope": len(scope), "in_scope_passing": len(passed),
            "in_scope_missed": [f"{r['seed']} {r['subtype']}: {r.get('error_pct')} %, Dice {r.get('dice')}"
                                for r in scope if r not in passed],
            "in_scope_passing_second_look": sum(r["second_look_meets_goal"] for r in scope),
            "by_subtype": by_subtype(scope)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first phantom seed (default 0). The outline's rules were tuned on 0-23; 24-95 "
                             "led to one change (eleventh session); against the five-plane masks (twelfth), 0-47 led "
                             "to the rings towards brain and 192-239 judged them; 240-335 showed how the outline does on "
                             "fresh seeds and 288-335 judged one ring on thin slices (thirteenth); 336-383 judged the "
                             "epidural kept across the midline (fourteenth); 384-479 judged one ring towards brain on "
                             "5 mm slices (fifteenth); 480-527 showed the code as it was, with the reader's second "
                             "look (sixteenth); 528-575 showed it again and led to the pieces joined through half-blood "
                             "voxels, which 576-623 judged (nineteenth); 624-671 showed the code as it is, beside the "
                             "oracle (twentieth); from 672 on, no one has looked: judge the next change there")
    parser.add_argument("--quick", action="store_true", help="3 seeds, 1 timing repeat")
    parser.add_argument("--noise-sd", type=float, default=None,
                        help="the phantoms' noise SD in HU (default: each phantom's own, 2.5-5); 0 tells what "
                             "a miss owes to noise from what it owes to the blur and the slice thickness")
    parser.add_argument("--matrix", type=int, default=256,
                        help="the phantoms' matrix (default 256, the protocol's; 512: the same bleeds drawn at half the "
                             "pixel, as a 512 series)")
    parser.add_argument("--thickness", type=float, default=5.0,
                        help="the phantoms' slice thickness in mm (default 5, the protocol's): the same bleeds on "
                             "thinner slices, as a scanner's thin reconstruction beside the 5 mm one")
    parser.add_argument("--accuracy-only", action="store_true", help="leave out the speed and drawing timings")
    parser.add_argument("--speed-seeds", type=int, default=4,
                        help="also time the growing on every bleed of this many phantoms at 40 x 512² (default 4; "
                             "0 leaves it out)")
    parser.add_argument("--slice-clicks", action="store_true",
                        help="for each bleed in scope, also click on every slice where it is at least half its "
                             "largest: the spread of error and Dice over where the reader clicks")
    parser.add_argument("--pool", nargs="+", metavar="RUN.json",
                        help="run nothing: the summary over the rows of these runs of this bench (sets of seeds of "
                             "one thickness), as docs/measure.md pools them")
    args = parser.parse_args()
    if args.pool:
        runs = [json.loads(Path(name).read_text()) for name in args.pool]
        if len({run["thickness_mm"] for run in runs}) > 1:
            parser.error("--pool: the runs are of different slice thicknesses")
        rows = [row for run in runs for row in run["accuracy"]]
        print(json.dumps({"pooled": [run["seeds"] for run in runs], "thickness_mm": runs[0]["thickness_mm"],
                          **summary(rows)}, indent=1))
        return
    seeds = 3 if args.quick else args.seeds
    rows = accuracy(seeds, args.noise_sd, args.slice_clicks, args.matrix, args.first_seed, args.thickness)
    scope = [r for r in rows if r["in_scope"]]
    out = {
        "noise_sd": "each phantom's own" if args.noise_sd is None else args.noise_sd,
        "matrix": args.matrix,
        "thickness_mm": args.thickness,
        "seeds": [args.first_seed, args.first_seed + seeds - 1],
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count()},
        "accuracy": rows,
        **summary(rows),
        **({"slice_clicks": sum(r["slice_clicks"] for r in scope),
            "slice_clicks_passing": sum(r["slice_clicks_passing"] for r in scope)} if args.slice_clicks else {}),
    }
    if not args.accuracy_only:
        out.update({
            "speed_40x512": speed(1 if args.quick else 3),
            # a thin collection along the skull also pays for following it along the inner table
            "speed_40x512_subdural": speed(1 if args.quick else 3, seed=6, subtype="subdural"),
            # a thin reconstruction of the whole head (``measure.thickness`` offers it)
            "speed_64x512_2.5mm_subdural": speed(1 if args.quick else 3, seed=6, subtype="subdural", n_slices=64,
                                                 thickness_mm=2.5),
            **({"speed_40x512_spread": speed_spread(args.speed_seeds, 1 if args.quick else 3)}
               if args.speed_seeds else {}),
            "drawing": drawing(20 if args.quick else 50),
        })
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
