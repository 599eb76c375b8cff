"""A thin collection followed along the inner table, where the threshold loses it.

Towards the vertex and the skull base a convexity subdural or epidural is a few voxels thick
within the shell next to bone, blurred with the bone on one side and the CSF on the other:
it reads out of the blood range or never joins through the shell. It is told from the
normal brain-bone band by its profile across the band, against the other hemisphere's band
at the same depth (``follow_inner_table``). Called by ``measure.region`` with the growing's
own smoothing, shell and least size, so the band is read as the region was grown.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import SimpleITK as sitk

from ich_viewer.measure.midline import MIDLINE_MARGIN_MM, MIDLINE_SEED_MM, midline_side
from ich_viewer.measure.rim import DARK_RIM_MAX_HU, dark_rings, partial_volume_rim
from ich_viewer.measure.voxels import BONE_HU, bone_distance, dilate, largest_piece, median_at, pieces

FOLLOW_BAND_MM = 3.0
"""A thin collection is followed along the inner table within this depth from the bone
(``follow_inner_table``): twice the shell, where a threshold loses it."""
FOLLOW_WINDOW_MM = 15.0
"""The collection is looked for this far around the region's extent in-plane."""
FOLLOW_CONTRAST_HU = 10.0
"""At a depth where the collection reads less than this above the normal band's median, nothing
is followed. Against the band's brighter part (``FOLLOW_LEVEL_PERCENTILE``) a subdural 10 HU
over grey matter never qualifies: phantom seed 20's reads 12-15 HU over the other side's
median at each depth, 5-8 over its 90th percentile (instrumented, ad hoc), and stopped three
slices short of its top (-15.7 %; -8.9 % now). Voxels are still taken only above the midpoint to the brighter part."""
FOLLOW_STEP_MM = 3.0
"""From slice to slice the collection is followed within this distance of where it was, plus
how far the inner table moved in under it (``_near_shifted``)."""
FOLLOW_MAX_SHIFT_MM = 8.0
"""The inner table's move between two slices counted at most this far (a 5 mm slice near
the vertex moves it by 4-6 px of 0.9 mm; phantom seed 11's crescent stopped there)."""
FOLLOW_DEEP_MM2 = 3.0
"""A piece followed must reach deeper than the shell over at least this area: the normal
brain-bone band never does."""
FOLLOW_LEVEL_PERCENTILE = 90.0
"""The normal band's level at a depth: this percentile of the other hemisphere's band there
(its brighter part: where the skull is cut obliquely the band reads brighter and deeper).
With the median instead, a real epidural (CT-ICH 077) was followed 6 slices up the normal
convexity."""
FOLLOW_WITHIN_SHARE = 0.5
"""Within a slice the collection is followed only where at least this share of the region lies
in the band along the inner table: a hematoma's slices and the skull base's pockets are no
thin collection (without this the demo grew 0.7 mL beside the ethmoid air cells)."""
FOLLOW_WITHIN_PERCENTILE = 50.0
"""Within the region's own slices the collection's piece must touch the region, so the band's
level there is its median (the CSF under the bone's blur), never below the
``FOLLOW_LEVEL_PERCENTILE`` one: with the median alone the demo grew 9 mL along its inner
table and CT-ICH 087's outline fell from Dice 0.76 to 0.58. Where cortex, not CSF, lies under
the bone (most real heads; the phantom since the ninth session) that median is cortex, and a
crescent 10 HU over it (phantom seed 20's) takes cortex along it; the 90th percentile there
loses seed 14's (docs/benchmarks.md, ninth session)."""


Bands = dict[int, tuple[np.ndarray, np.ndarray, tuple[slice, slice]]]
"""Slices' bands under the inner table by slice (``band_layers``)."""


def band_layers(bands: Bands, k: int, volume: np.ndarray, cavity: np.ndarray,
                spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """Slice ``k``'s depth layer (-1 outside the band), distance from bone, and the box that
    holds the band; each slice's once (kept in ``bands``, which ``measure.head`` keeps per series)."""
    if k in bands:
        return bands[k]
    # the band under the inner table only: the cavity's coarse edge also holds a fringe of
    # pixels outside the skull (air, scalp), cut off from the brain by the bone
    inside = largest_piece(cavity[k])
    # the distance is needed only within the band, whose nearest bone lies within the
    # cavity's extent plus the band: computed there (the head, not the field of view)
    reach = int(math.ceil(FOLLOW_BAND_MM / min(spacing[1], spacing[2]))) + 2
    distance = np.full(inside.shape, np.inf, np.float32)
    depth = np.full(inside.shape, -1, np.int8)  # 2 x 3 mm / pixel layers: kept per slice, a byte each
    rs, cs = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    box = (slice(0, 0), slice(0, 0))
    if len(rs):
        box = (slice(max(0, int(rs[0]) - reach), int(rs[-1]) + reach + 1),
               slice(max(0, int(cs[0]) - reach), int(cs[-1]) + reach + 1))
        depth[box], distance[box] = band_depth(volume[k][box], inside[box], spacing)
    bands[k] = depth, distance, box
    return bands[k]


def follow_inner_table(volume: np.ndarray, cavity: np.ndarray, shell: np.ndarray, region: np.ndarray,
                       spacing: tuple[float, float, float], seed: tuple[int, ...], low: float, high: float,
                       table: float, *, smooth_mm: float, shell_mm: float, min_voxels: int, side: Any = None,
                       bands: Bands | None = None) -> np.ndarray:
    """A thin collection followed along the inner table: beyond the last slice the threshold
    reached, then within every slice of the region to its thin ends.

    Towards the vertex (and the skull base) a convexity subdural or epidural is only a few
    voxels thick and lies within the shell next to bone, blurred with the bone on one side
    and the CSF on the other: it reads out of the blood range or never joins through the
    shell. What tells it from the normal brain-bone band is its profile across the band:
    at each depth from the bone (up to ``FOLLOW_BAND_MM``, by half pixels; depths with too
    few voxels interpolated) the collection reads what the region itself reads there, the
    normal band what the band of the other hemisphere reads on that slice
    (``FOLLOW_LEVEL_PERCENTILE``: its brighter part, where the skull is cut obliquely). At
    a depth where the collection reads ``FOLLOW_CONTRAST_HU`` above the band's median, a
    voxel above the midpoint of the collection and the band's brighter part is taken when
    its piece lies within ``FOLLOW_STEP_MM`` of the region on the slice before (plus how far
    the inner table moved in, ``_near_shifted``), slice after slice, and reaches deeper than
    the shell (``FOLLOW_DEEP_MM2``: the normal band never does).

    Within each slice of the region, a crescent's ends along the inner table are only 1-2
    voxels of blood beside the bone's blur: the voxel a pixel from the bone reads 90-120 HU
    where the normal band reads its CSF (10-40 HU), so there the midpoint is read against the
    band's median (never below the level above) and such a voxel may read up to the
    blood-bone midpoint; a piece is taken when it touches the region (corner to corner: a
    band a pixel wide along a curve), on the slices where the region lies mostly in the band
    (``FOLLOW_WITHIN_SHARE``). The band is the cavity's piece under the inner table (its
    coarse edge also holds a fringe outside the skull). Only for a region seeded off the
    midline (one-sided); the half-volume rings beside what was added, towards the bone and
    the brain, are then added as in ``partial_volume_rim`` (phantom seed 11's subdural:
    -66 % -> -30 %). ``side`` (the midline of ``cavity``) and ``bands`` (each slice's band, filled as
    read) when the caller keeps them per series (``measure.head``).
    """
    if np.count_nonzero(region & shell) < min_voxels:  # not a collection along the skull
        return region
    side = midline_side(cavity, spacing) if side is None else side
    if side is None:
        return region
    seed_mm = float(side(int(seed[0]))[int(seed[1]), int(seed[2])])
    if abs(seed_mm) < MIDLINE_SEED_MM:
        return region
    pixel = min(spacing[1], spacing[2])
    margin = int(round(FOLLOW_WINDOW_MM / pixel))

    def window(mask: np.ndarray) -> tuple[slice, slice]:
        rs, cs = np.flatnonzero(mask.any(axis=(0, 2))), np.flatnonzero(mask.any(axis=(0, 1)))
        return (slice(max(0, int(rs[0]) - margin), int(rs[-1]) + margin + 1),
                slice(max(0, int(cs[0]) - margin), int(cs[-1]) + margin + 1))

    win = window(region)
    n_layers = int(round(2.0 * FOLLOW_BAND_MM / pixel)) + 1
    bands = {} if bands is None else bands

    def layers(k: int) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
        return band_layers(bands, k, volume, cavity, spacing)

    # what the collection reads at each depth, where it was grown
    zs = np.flatnonzero(region.any(axis=(1, 2)))
    depth_in, values_in = [], []
    for z in zs:
        depth = layers(int(z))[0][win]
        grown = region[z][win] & (depth >= 0)
        depth_in.append(depth[grown])
        values_in.append(volume[z][win][grown])
    own = np.full(n_layers, np.nan)
    for layer, values in _by_layer(np.concatenate(depth_in), np.concatenate(values_in), n_layers):
        own[layer] = np.median(values)
    if not np.isfinite(own).any():
        return region
    own = _fill_between(own)
    radius = max(1, int(round(smooth_mm / pixel)))
    box = (slice(int(zs[0]), int(zs[-1]) + 1), *win)  # the region's box
    grown_hu = volume[box][region[box]]
    blood = float(np.median(grown_hu[(grown_hu >= low) & (grown_hu <= high)]))
    # within the region's slices a piece 1 px or more from the bone may read up to the
    # blood-bone midpoint: at a crescent's thin ends the blood itself is blurred with the bone
    top_within = np.where(np.arange(n_layers) >= 2, max(high, (blood + table) / 2.0), high)

    normal: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def normal_band(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Slice ``k``'s depth layers, distance from bone, and the other hemisphere's band by depth
        (its median and its brighter part); each slice's once."""
        if k not in normal:
            depth, distance, box = layers(k)
            other = (depth[box] >= 0) & (side(k, box) * np.sign(seed_mm) < -MIDLINE_MARGIN_MM)
            level, bright = percentiles_by_layer(depth[box][other], volume[k][box][other], n_layers,
                                                 (FOLLOW_WITHIN_PERCENTILE, FOLLOW_LEVEL_PERCENTILE))
            normal[k] = (depth, distance, _fill_between(level), _fill_between(bright))
        return normal[k]

    def candidates(k: int, win: tuple[slice, slice], within: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(accepted voxels, their pieces, distance from bone) of slice ``k`` within ``win``."""
        depth, distance, level, bright = normal_band(k)
        toward = level if within else bright
        cut = np.where(own - level >= FOLLOW_CONTRAST_HU, np.maximum((own + toward) / 2.0, bright), np.inf)
        cut = np.maximum(np.where(np.isnan(cut), np.inf, cut), low - DARK_RIM_MAX_HU)
        depth, distance = depth[win], distance[win]
        band = depth >= 0
        smooth = median_at(np.where(cavity[k][win], volume[k][win], np.float32(-1000.0)), band, radius)
        at = np.maximum(depth, 0)
        accept = band & (smooth >= cut[at]) & (smooth <= (top_within[at] if within else high))
        # along a curved inner table a band a pixel wide is joined only corner to corner
        return accept, pieces(accept, within), distance

    out = region.copy()
    new = np.zeros_like(region)
    for direction, k in ((1, int(zs[-1]) + 1), (-1, int(zs[0]) - 1)):
        while 0 <= k < volume.shape[0] and cavity[k].any():
            win = window(out[k - direction][None])
            accept, labels, distance = candidates(k, win, False)
            deep = np.bincount(labels[accept & (distance > shell_mm)], minlength=int(labels.max()) + 1)
            if not (deep[1:] * spacing[1] * spacing[2] >= FOLLOW_DEEP_MM2).any():
                break  # no piece reaches deep enough, near the last slice's or not
            near = _near_shifted(out[k - direction][win], cavity[k][win], spacing)
            keep = np.unique(labels[near & accept])
            keep = keep[keep > 0]
            added = np.isin(labels, keep[deep[keep] * spacing[1] * spacing[2] >= FOLLOW_DEEP_MM2])
            if not added.any():
                break
            out[k][win] |= added
            new[k][win] |= added
            k += direction
    # then within every slice of the region: the collection's thin ends along the inner table
    win = window(out)
    for z in np.flatnonzero(out.any(axis=(1, 2))):
        depth = normal_band(int(z))[0]
        if (depth[out[z]] >= 0).mean() < FOLLOW_WITHIN_SHARE:
            continue  # a slice where the region is mostly away from the bone is no thin collection
        accept, labels, _ = candidates(int(z), win, True)
        keep = np.unique(labels[dilate(out[z][win][None])[0] & accept])
        added = np.isin(labels, keep[keep > 0]) & ~out[z][win]
        out[z][win] |= added
        new[z][win] |= added
    if new.any():  # the half-volume rings beside what was added, towards the bone and the brain
        zs = np.flatnonzero(new.any(axis=(1, 2)))
        box = (slice(int(zs[0]), int(zs[-1]) + 1), *window(new))  # in-plane rings: the box holds them
        out[box] |= partial_volume_rim(volume[box], new[box], cavity[box], low, table, pixel, blood,
                                       dark_rings(spacing[0], pixel))
    return out


def band_depth(volume: np.ndarray, inside: np.ndarray,
               spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A slice's band under the inner table: each pixel's depth layer (half pixels from the
    bone; -1 outside the band, which is ``inside`` within ``FOLLOW_BAND_MM`` of bone) and its
    distance from bone (mm)."""
    pixel = min(spacing[1], spacing[2])
    distance = bone_distance(volume >= BONE_HU, spacing, FOLLOW_BAND_MM)
    band = inside & (distance <= FOLLOW_BAND_MM)
    return np.where(band, np.rint(2.0 * distance / pixel), -1).astype(np.int8), distance


def _near_shifted(previous: np.ndarray, cavity: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Where a collection on the previous slice (``previous``) may lie on this one: within
    ``FOLLOW_STEP_MM`` of it, plus how far this slice's inner table has moved in under it
    (towards the vertex a 5 mm slice moves it by several mm, more than the step)."""
    def distance_to(mask: np.ndarray) -> np.ndarray:
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.SetSpacing((float(spacing[2]), float(spacing[1])))
        return sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(image, insideIsPositive=False, squaredDistance=False,
                                                                   useImageSpacing=True))
    if not previous.any() or not cavity.any():
        return previous
    outside = previous & ~cavity  # the cavity's distance map only when the table moved in under it
    moved = np.maximum(distance_to(cavity)[previous], 0.0) if outside.any() else np.zeros(np.count_nonzero(previous))
    reach = FOLLOW_STEP_MM + min(float(np.percentile(moved, 90)), FOLLOW_MAX_SHIFT_MM)
    # the distance map only over the previous collection's box plus that reach: nothing beyond is near
    rs, cs = np.flatnonzero(previous.any(axis=1)), np.flatnonzero(previous.any(axis=0))
    dr, dc = int(reach / spacing[1]) + 1, int(reach / spacing[2]) + 1
    box = (slice(max(0, int(rs[0]) - dr), int(rs[-1]) + dr + 1), slice(max(0, int(cs[0]) - dc), int(cs[-1]) + dc + 1))
    near = np.zeros_like(previous)
    near[box] = distance_to(previous[box]) <= reach
    return near


def _fill_between(profile: np.ndarray) -> np.ndarray:
    """A profile by depth with its missing layers (too few voxels at that depth: the distances
    of a pixel grid come in steps) interpolated between the layers read on either side."""
    known = np.flatnonzero(np.isfinite(profile))
    if len(known) < 2:
        return profile
    out = profile.copy()
    inside = np.arange(int(known[0]), int(known[-1]) + 1)
    out[inside] = np.interp(inside, known, profile[known])
    return out


def _by_layer(layers: np.ndarray, values: np.ndarray, n_layers: int, least: int = 20) -> list[tuple[int, np.ndarray]]:
    """(layer, its values) for every layer with at least ``least`` values (fewer give no level)."""
    order = np.argsort(layers, kind="stable")
    layers, values = layers[order], values[order]
    edges = np.searchsorted(layers, np.arange(n_layers + 1))
    return [(n, values[edges[n]:edges[n + 1]]) for n in range(n_layers) if edges[n + 1] - edges[n] >= least]


def percentiles_by_layer(layers: np.ndarray, values: np.ndarray, n_layers: int, percentiles: tuple[float, ...],
                         least: int = 20) -> np.ndarray:
    """(percentile, layer): each layer's percentiles of ``values``, NaN for a layer with fewer
    than ``least``; the same numbers as ``np.percentile`` (linear), all layers in one sort."""
    if not len(values):
        return np.full((len(percentiles), n_layers), np.nan)
    order = np.lexsort((values, layers))
    values = values[order]
    edges = np.searchsorted(layers[order], np.arange(n_layers + 1))
    count = np.diff(edges)
    at = (count - 1) * (np.asarray(percentiles, np.float64) / 100.0)[:, None]
    below = np.floor(at)
    gamma = at - below
    lo = np.clip(edges[:-1] + below.astype(np.intp), 0, len(values) - 1)
    a, b = values[lo], values[np.minimum(lo + 1, len(values) - 1)]
    step = b - a  # interpolated as numpy does, from the nearer side
    out = np.where(gamma >= 0.5, b - step * (1 - gamma), a + step * gamma)
    return np.where(count >= least, out, np.nan)
