"""One bleed from several clicks: each further click grows a region that is added to the first.

A bleed's pieces need not touch on the slices: a subdural along the convexity and its
sheet along the falx or the tentorium, an epidural split by a suture. Real volume tools let
the reader click each piece; the window does it with Shift+click (volume tool) on the
selected volume, ``ich-viewer measure`` with a repeated ``--seed``. Each click grows on its
own (its own blood level and leak guards; only a thin sheet along the falx reads its edges
against the first region's blood, ``measure.sheet``); a click that grows nothing is said in
the notes and leaves the rest as it was.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk

from ich_viewer.measure.head import Head, find_head
from ich_viewer.measure.region import DEFAULT_HU, MAX_VOLUME_ML, Region, deepest_point, describe, grow_region
from ich_viewer.measure.voxels import dilate, median_3x3, voxels_ml
from ich_viewer.tasks import TaskState

Seed = tuple[int, int, int]


def grow_clicks(volume: np.ndarray, spacing_mm: tuple[float, float, float], seeds: Sequence[Seed],
                hu_range: tuple[float, float] = DEFAULT_HU, state: TaskState | None = None, *,
                calibrated: bool = True, cavity: np.ndarray | Head | None = None) -> Region:
    """The union of the regions grown from ``seeds`` (the first is the record's seed).

    Without the first region there is nothing to add to: its reason is the result's.
    A further click inside what is already outlined adds nothing and is kept silently.
    """
    if not seeds:
        raise ValueError("no seed to grow from")
    if len(seeds) > 1 and not isinstance(cavity, Head):  # the head once for all the clicks
        cavity = find_head(np.asarray(volume, np.float32), spacing_mm, state, cavity, every_band=False)
    first = grow_region(volume, spacing_mm, seeds[0], hu_range, state, calibrated=calibrated, cavity=cavity)
    if not first.ok or len(seeds) == 1:
        return first
    assert first.mask is not None
    mask = first.mask.copy()
    grown = np.asarray(volume)[mask]
    grown = grown[(grown >= first.hu_range[0]) & (grown <= first.hu_range[1])]
    blood = float(np.median(grown)) if grown.size else None  # the bleed's: a thin sheet's edge is read against it
    for number, seed in enumerate(seeds[1:], start=2):
        seed = tuple(int(v) for v in seed)  # type: ignore[assignment]
        first.more_seeds.append(seed)
        inside = all(0 <= v < n for v, n in zip(seed, mask.shape))
        if inside and mask[seed]:
            continue
        piece = grow_region(volume, spacing_mm, seed, hu_range, state, calibrated=calibrated, cavity=cavity,
                            blood_hu=blood)
        if not piece.ok:
            first.notes.append(f"click {number} ({seed[0]},{seed[1]},{seed[2]}) added nothing: {piece.reason}")
            continue
        assert piece.mask is not None
        mask |= piece.mask
        first.notes.extend(f"click {number}: {note}" for note in piece.notes)
    spacing = first.spacing_mm
    volume_ml = voxels_ml(mask.sum(), spacing)
    if volume_ml > MAX_VOLUME_ML:
        describe(first, volume, np.zeros_like(mask))  # nothing kept
        first.reason = (f"the clicks together leaked ({volume_ml:.0f} mL, more than any hematoma): "
                        "narrow the HU range or click elsewhere")
        return first
    return describe(first, np.asarray(volume, np.float32), mask)


READER_PIECE_ML = 1.0
"""The simulated reader clicks every separate piece of a known bleed at least this big (a
piece of 1 mL spans about 1.4 x 1.4 cm on a 5 mm slice: plainly visible); smaller specks of
partial volume at the edge are not clicked."""


def reader_clicks(mask: np.ndarray, spacing_mm: tuple[float, float, float],
                  min_ml: float = READER_PIECE_ML, volume: np.ndarray | None = None,
                  hu_range: tuple[float, float] = DEFAULT_HU) -> list[Seed]:
    """Where the accuracy test and the bench click on a known bleed: the deepest point
    (``deepest_point``) of each separate piece of ``mask`` of at least ``min_ml``, largest first;
    given the ``volume``, the deepest of the points that read as blood (3 x 3 median within
    ``hu_range``): the window refuses a click in a dark swirl, and the reader clicks the blood."""
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)), True))
    sizes = np.bincount(labels.ravel())[1:] * float(np.prod(spacing_mm)) / 1000.0
    order = [int(i) + 1 for i in np.argsort(-sizes, kind="stable") if sizes[i] >= min_ml]
    blood = None if volume is None else reads_as_blood(volume, hu_range)
    return [deepest_point(labels == label, blood) for label in order]


def reads_as_blood(volume: np.ndarray, hu_range: tuple[float, float] = DEFAULT_HU) -> np.ndarray:
    """Where a click would be taken: the 3 x 3 median within ``hu_range``, as ``grow_region`` reads a seed."""
    smooth = median_3x3(np.asarray(volume, np.float32))
    return (smooth >= hu_range[0]) & (smooth <= hu_range[1])


def reader_second_look(mask: np.ndarray, grown: np.ndarray | None, spacing_mm: tuple[float, float, float],
                       volume: np.ndarray, min_ml: float = READER_PIECE_ML,
                       hu_range: tuple[float, float] = DEFAULT_HU) -> list[Seed]:
    """Where the simulated reader clicks once more after seeing the outline: on each piece of
    the known bleed of at least ``min_ml`` that reads as blood and that the outline left out
    (as the window's Shift+click). Voxels within a pixel of the outline on its slice are not
    seen as left out: a rim along the outline's edge is no piece to click."""
    left = np.asarray(mask, bool) & reads_as_blood(volume, hu_range)
    if grown is not None:
        left &= ~dilate(np.asarray(grown, bool))
    return reader_clicks(left, spacing_mm, min_ml)  # all of ``left`` reads as blood: no second median
