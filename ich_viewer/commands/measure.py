"""``ich-viewer measure PATH --seed S,R,C [--seed S,R,C ...]``: a bleed's volume without a window.

Same function as the window's volume tool (``measure.series.grow_in_series``), so the
numbers agree; a repeated seed adds a separate piece of the same bleed, as Shift+click in the
window does (``measure.clicks``). Prints one JSON object on stdout; ``reason`` says why nothing was grown.

Exit codes: 0 a region was grown; 1 nothing grown (the seed is in air, bone, outside the
blood range...; the reason is in the JSON); 2 unusable input or output.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ich_viewer.options import MeasureOptions

EXIT_OK, EXIT_NOTHING, EXIT_INPUT = 0, 1, 2


def _fail(text: str) -> int:
    print(f"ich-viewer measure: {text}", file=sys.stderr)
    return EXIT_INPUT


def _listed(value: str | list[str] | None) -> list[str]:
    """A seed option as a list (one string from code, a list from a repeated option)."""
    return [value] if isinstance(value, str) else list(value or [])


def parse_numbers(text: str, count: int, what: str, cast: type = float) -> tuple[Any, ...]:
    """``"a,b,c"`` -> a tuple of ``count`` numbers, or ``ValueError`` naming ``what``."""
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    if len(parts) != count:
        raise ValueError(f"{what} needs {count} comma-separated numbers, got {text!r}")
    try:
        return tuple(cast(float(p)) if cast is int else cast(p) for p in parts)
    except ValueError:
        raise ValueError(f"{what} needs {count} comma-separated numbers, got {text!r}") from None


def run_measure(args: MeasureOptions) -> int:
    """Load ``args.path``, grow from the seed, print (and optionally write) the JSON result."""
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.dicom.model import PixelDecodeError
    from ich_viewer.measure.region import DEFAULT_HU
    from ich_viewer.measure.series import calibration, grow_in_series, seed_from_mm
    from ich_viewer.measure.thickness import note_thickness
    from ich_viewer.report.atomic import ExportError
    from ich_viewer.report.destination import check_outside_study

    voxel_texts, mm_texts = _listed(args.seed), _listed(args.seed_mm)
    if bool(voxel_texts) == bool(mm_texts):
        return _fail("give --seed SLICE,ROW,COL or --seed-mm X,Y,Z (either one repeated), not both or neither")
    try:
        hu = parse_numbers(args.hu, 2, "--hu") if args.hu else DEFAULT_HU
        seed_voxels = [parse_numbers(t, 3, "--seed", int) for t in voxel_texts]
        seed_points = [parse_numbers(t, 3, "--seed-mm") for t in mm_texts]
    except ValueError as exc:
        return _fail(str(exc))
    if not Path(args.path).exists():
        return _fail(f"{args.path} does not exist")
    try:
        study = load_study(args.path)
    except Exception as exc:  # the loader's own errors are readable; anything else still gets a message
        return _fail(f"cannot read {args.path}: {exc}")
    series_list = study.image_series
    if not series_list:
        return _fail(f"no image series found under {args.path}")
    index = args.series or 0
    if not 0 <= index < len(series_list):
        return _fail(f"--series {index}: the study has {len(series_list)} image series (0-{len(series_list) - 1})")
    series = series_list[index]
    if args.json_out:
        try:
            check_outside_study(args.json_out, study)
        except ExportError as exc:
            return _fail(str(exc))
        if Path(args.json_out).exists() and not args.overwrite:
            return _fail(f"{args.json_out} exists; add --overwrite to replace it")
    try:
        seeds = seed_voxels or [seed_from_mm(series, point) for point in seed_points]
    except ValueError as exc:
        return _fail(str(exc))
    try:
        region = grow_in_series(series, seeds[0], (float(hu[0]), float(hu[1])), more_seeds=seeds[1:])
    except PixelDecodeError as exc:
        return _fail(f"a slice of the series cannot be decoded, so no volume can be measured: {exc}")
    thinner = note_thickness(region, series, series_list)
    out = region.to_dict()
    out["thinner_series"] = None if thinner is None else {
        "series_index": thinner.index, "series_uid": thinner.series.series_uid,
        "series_description": thinner.series.description, "thickness_mm": thinner.thickness_mm,
        "seeds": [list(seed) for seed in thinner.seeds]}
    out.update({
        "series_uid": series.series_uid,
        "series_description": series.description,
        "series_index": index,
        "unit_note": calibration(series).note,
        "notice": "research use: confirm every outline on the images",
    })
    text = json.dumps(out, indent=2, allow_nan=False)
    print(text)
    if args.json_out:
        try:
            Path(args.json_out).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            return _fail(f"cannot write {args.json_out}: {exc}")
    return EXIT_OK if region.ok else EXIT_NOTHING
