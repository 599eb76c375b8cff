"""The half-volume ring at a bleed's edge: the voxels more blood than bone or brain.

The threshold stops short of the voxel that is half blood; the ground truth and the reader
count it. Used on the grown region (``measure.region``) and on what the inner table's
following added (``measure.follow``).
"""
from __future__ import annotations

import math

import numpy as np

from ich_viewer.measure.voxels import BONE_HU, dilate

DARK_RIM = True
"""Add the half-volume ring towards brain (see ``partial_volume_rim``)."""
DARK_RIM_MAX_HU = 15.0
"""The dark ring never reaches more than this below ``dark``, the level the region was grown at."""
THICK_SLICE_MM = 3.0
"""Slices thicker than this average a bleed's edge with what lies above and below it."""
DARK_RIM_MM = 0.6
"""On thick slices the rings towards brain reach at least this far (``dark_rings``): where a bleed's
edge runs obliquely through a thick slice, its half-blood voxels lie beyond the level it was grown
at. Counted in mm, not pixels: two rings (0.64 mm) on the real 0.32 mm slices, whose hand masks
lost Dice with one; one ring (0.95 mm) on the phantoms' 256 grid, where two (1.9 mm) took a ring of
cortex beside thin subdurals (fifteenth session; docs/measure.md, "How accurate"). On thinner
slices one ring at any pixel: with two, phantom bleeds on 2.5 mm slices came out larger than their
masks (epidurals +2.7 % median on seeds 0-47, +8.1 % on 240-287; with one +0.2 and +4.5 %;
thirteenth session)."""
SURROUND_PERCENTILE = 10.0
"""What surrounds a bleed is read as this percentile of its voxels below the growing level: the
half-blood edge lies half way to the tissue the blood is mixed with, which beside a bleed is CSF or
white matter as often as grey matter; the median read the grey matter blurred with the bleed itself.
With the median and one ring the outline came out 6-13 % short of masks that count every voxel at
least half blood (seeds 0-47, twelfth session; docs/benchmarks.md)."""
BONE_PEAK_MM = 1.5
"""How far from a voxel the bone beside it is read (``below_half_bone``)."""
SURROUND_MM = (1.7, 2.6)
"""What surrounds a bleed is read this far out in-plane (``surround``), past its half-blood ring
and its blurred edge: it was read 2-3 voxels out, the same on a 0.86 mm grid, but on a 512 series
(0.43 mm) that lay within the edge and read bright: the phantoms' IPHs came out 4-10 % small."""


def dark_rings(slice_mm: float, pixel_mm: float) -> int:
    """How many rings towards brain ``partial_volume_rim`` adds on slices ``slice_mm`` apart, of
    ``pixel_mm`` pixels."""
    return max(1, math.ceil(DARK_RIM_MM / pixel_mm)) if slice_mm > THICK_SLICE_MM else 1


def surround(region: np.ndarray, inner: np.ndarray, pixel: float) -> np.ndarray:
    """The voxels of ``inner`` ``SURROUND_MM`` out from ``region`` in-plane."""
    near, far = max(1, int(round(SURROUND_MM[0] / pixel))), max(2, int(round(SURROUND_MM[1] / pixel)))
    grown = region
    for step in range(1, far + 1):
        if step == near:
            within = grown  # ``near - 1`` steps out: what is nearer than the surround
        grown = dilate(grown)
    return grown & ~within & inner


def below_half_bone(raw: np.ndarray, where: np.ndarray, blood: float, table: float, pixel: float) -> np.ndarray:
    """The voxels of ``where`` that read less than half way from the blood to the bone beside
    them: its highest HU within ``BONE_PEAK_MM`` in-plane, never above the scan's inner table
    (where no bone is that near, the inner table). Thin bone (the temporal squama, the skull
    base) blurs to a lower peak than the vault's inner table, and a voxel reading more than
    half that peak is more bone than blood. Read only at ``where``: a ring, not the box."""
    out = np.zeros(raw.shape, bool)
    ks, rs, cs = np.nonzero(where)
    if not ks.size:
        return out
    values = raw[ks, rs, cs]
    peak = values.copy()
    steps = max(1, int(round(BONE_PEAK_MM / pixel)))
    rows, cols = raw.shape[1] - 1, raw.shape[2] - 1
    for dr in range(-steps, steps + 1):  # the in-plane diamond: ``steps`` 4-neighbour steps
        reach = steps - abs(dr)
        at_rows = np.clip(rs + dr, 0, rows)
        for dc in range(-reach, reach + 1):
            np.maximum(peak, raw[ks, at_rows, np.clip(cs + dc, 0, cols)], out=peak)
    bone = np.where(peak >= BONE_HU, np.minimum(peak, table), table)
    out[ks, rs, cs] = values < (blood + bone) / 2.0
    return out


def partial_volume_rim(raw: np.ndarray, region: np.ndarray, inner: np.ndarray, dark: float | None,
                       table: float, pixel: float, seed_blood: float | None, rings: int) -> np.ndarray:
    """Voxels at the region's edge that are more blood than bone.

    A voxel half blood, half inner table reads about (blood + bone) / 2 and counts as
    blood for the reader and the ground truth. With a CT's blur the threshold stops about
    two voxels short of that point, so two in-plane rings of voxels brighter than the
    blood and more blood than the bone beside them (``below_half_bone``) are added; brain
    and CSF are darker and never added.
    Towards brain or CSF ``rings`` rings (``dark_rings``) down to the midpoint between the blood and the
    darker part of what surrounds it (``SURROUND_PERCENTILE``), the blood read as ``seed_blood``
    (around the seed) when that is lower than the region's median: in a thin collection most
    voxels are blurred with the bone, the median rises by ~15 HU and the ring would stop a voxel
    short. Never above ``dark``, the level the region was grown at (a ring from the low bound
    instead took voxels beside the cortex that are less than half blood: +8 to +16 % on phantom
    bleeds it had not been tuned on, against the two-plane masks), nor more than
    ``DARK_RIM_MAX_HU`` below it.
    """
    blood = float(np.median(raw[region]))
    bright = below_half_bone(raw, dilate(dilate(region)) & ~region & (raw > blood), blood, table, pixel)
    added = dilate(region) & ~region & bright
    added |= dilate(added) & ~region & bright
    if dark is not None:
        ring = dilate(region) & ~region & inner
        outside = raw[surround(region, inner, pixel) & (raw < dark)]  # the first ring is half blood
        level = blood if seed_blood is None else min(blood, seed_blood)
        if outside.size:  # half way between the blood and what surrounds it here (edema, brain, CSF)
            dark = min(dark, max((level + float(np.percentile(outside, SURROUND_PERCENTILE))) / 2.0,
                                 dark - DARK_RIM_MAX_HU))
        dark_added = ring & (raw >= dark) & (raw <= blood)
        for _ in range(rings - 1):  # further rings only outward from what was just added
            dark_added |= dilate(dark_added) & ~region & inner & (raw >= dark) & (raw <= blood)
        added |= dark_added
    return added
