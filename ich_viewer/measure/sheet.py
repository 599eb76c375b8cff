"""A subdural's thin sheet along the falx, grown from a click on it.

A subdural often runs on as a sheet between the falx and the hemisphere: on axial slices a
bright line 2-3 px wide along the midline, beside the interhemispheric CSF (10-30 HU) and
the falx. A reader sees it plainly and clicks it, but the growing of ``region`` cannot take
it: its 3x3 median (the seed check, the in-plane smoothing) mixes the line with the dark CSF
beside it and reads 35-40 HU, and where it does read as blood, the partial-volume rings
added on both sides double a sheet that is two voxels wide. Here the line is read along
itself instead (a median of ``SHEET_TAPS`` pixels along the midline's direction keeps a
line and still quiets the noise), and grown:

1. The click is moved to the brightest such reading within a pixel (``line_seed``): a click
   on the line's edge or its tip is a click on the line. It must read in the blood range.
2. Only along the line's crest: a voxel is taken when it lies on a crest across the midline
   (brighter than both neighbours across) or beside one, within ``SHEET_BAND_MM`` across
   of the click, and reads at least the half-blood level: half way between the bleed's
   blood (the first region's when the sheet is a further click, else its crest's brighter
   part, ``SHEET_BLOOD_PERCENTILE``) and what lies two to three voxels across from it (CSF, falx, cortex). So the
   sheet keeps its width, and it cannot spread into the cortex of either side, which is
   no crest, or along the falx's own band, which reads below that level. Beside each crest
   voxel only as many neighbours are kept as the blood across it accounts for
   (``_as_wide_as_its_blood``): on a sharp image both neighbours of a 2-voxel sheet read
   above the half-blood level.
3. Never through the shell next to bone (``region.SHELL_MM``): there the brain-bone blur
   reads blood-like all round the skull.

``region.grow_region`` comes here for a click whose 3x3 median is out of range, and for a
region it grew that is a line (``is_thin``). Only near the midline: a line elsewhere (a thin
convexity collection) is ``region``'s inner-table following. A sheet 4 px wide or more (a
2 mm sheet on 0.5 mm pixels) reads as blood in 3x3 and is no line: ``region`` grows it.
Phantom seed 16's 10.0 mL sheet: 10.3 mL, Dice 0.88 as a further click; seed 6's 13.3 mL:
13.3 mL, 0.85 (on the phantom whose blur matches real scans, eighth session; with every
neighbour above the half-blood level kept, 12.8 and 16.8 mL, Dice 0.82: the crest and both
neighbours read above it, and a 2-voxel sheet was found about 2.5 voxels wide).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import SimpleITK as sitk

from ich_viewer.measure.voxels import dilate

SHEET_NEAR_MIDLINE_MM = 10.0
"""A click this close to the cavity's midline may be on a sheet along the falx (the falx
lies within a few mm of the midline found from the cavity's outline)."""
SHEET_TAPS = 5
"""Pixels of the median along the sheet: a 2-px line keeps its reading, the noise (SD 3-6 HU)
drops by half."""
SHEET_BAND_MM = 8.0
"""The sheet is grown within this distance across from the click (the falx bows by a few mm
over its length, the midline's direction is read within a few degrees)."""
SHEET_BLOOD_PERCENTILE = 90.0
"""For a single click on a sheet, its blood is read as this percentile of its crest: the
crest of a sheet two voxels wide is itself blurred with what lies beside it."""
SHEET_CONTRAST_HU = 12.0
"""What lies beyond each side of a sheet reads at least this far below its blood: a line, not
an isodense patch whose noise has crests too."""
SHEET_MAX_ACROSS = 0.4
"""At most this share of the line's voxels may have another two voxels across: a sheet is at
most three voxels wide, a patch of noise crests is wider (phantom falx sheets: 0.15-0.25)."""
THIN_SHARE = 0.15
"""A region where, its outer ring taken off, fewer voxels than this share lie two voxels deep
in-plane is a line (``is_thin``): near the midline, a sheet clicked where its 3x3 median reads as
blood, which ``region`` grows 4-6 voxels wide where it is 2 (its partial-volume rings on both
sides). It is grown as a sheet instead. Phantom falx sheets (seeds 6 and 16): 0.011 and 0.0; their
convexity crescents 0.14 and 0.02 (no line along the falx there); thick bleeds 0.36-0.59. Judged
with the ring, seed 6's sheet read 0.17 once grey matter, not CSF, lay beside the falx, and was
grown 31.0 mL wide where it holds 13.3 (ninth session)."""
SHEET_MIN_VOXELS = 20
"""A crest shorter than this is a speck, not a sheet."""
SHEET_MIN_LENGTH_MM = 20.0
"""A region shorter than this on its largest slice is no sheet along the falx, however few of its
voxels lie two deep (``is_thin``): a sheet runs along the falx for centimetres (the phantom's
60 mm and more). In blocks of 0.96 mm, CT-ICH 092's 10 mm bleed beside the falx had too few of its
voxels two deep and was grown as a sheet with holes (Dice against its hand mask 0.73 -> 0.56)."""
SHEET_PIXEL_MM = 0.9
"""The rules above count pixels of about this size (the phantom's 256 grid, 0.86-0.97 mm, where
they were drawn up): a finer series is read in blocks of about this size (``block_factor``). On a
512 series drawn at 512 (0.48 mm) seed 6's 13.2 mL sheet was 4 px wide, held two voxels deep and
was no line; the ordinary growing took it 23.7 mL wide (the bleed +14.9 %)."""


def block_factor(pixel_mm: float) -> int:
    """How many pixels of ``pixel_mm`` make one of about ``SHEET_PIXEL_MM`` (1 on a 256 grid, 2 at 512)."""
    return max(1, int(round(SHEET_PIXEL_MM / pixel_mm)))


def blocks(array: np.ndarray, factor: int) -> np.ndarray:
    """(slices, rows, cols) averaged in-plane over ``factor`` x ``factor`` blocks (the last rows
    and columns that make no whole block dropped); a bool array gives where most of a block is set."""
    if factor == 1:
        return array
    rows, cols = array.shape[1] - array.shape[1] % factor, array.shape[2] - array.shape[2] % factor
    total = np.zeros((array.shape[0], rows // factor, cols // factor), np.float32)
    for dr in range(factor):  # strided views: a reshaped mean over the block axes is several times slower
        for dc in range(factor):
            total += array[:, dr:rows:factor, dc:cols:factor]
    return total > factor * factor / 2.0 if array.dtype == bool else total / np.float32(factor * factor)


def unblock(mask: np.ndarray, factor: int, shape: tuple[int, ...]) -> np.ndarray:
    """A mask on blocks (``blocks``) back on the pixels of ``shape``."""
    if factor == 1:
        return mask
    out = np.zeros(shape, bool)
    fine = np.repeat(np.repeat(mask, factor, axis=1), factor, axis=2)
    out[:, : fine.shape[1], : fine.shape[2]] = fine
    return out


def _steps(normal: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """(along, across) pixel steps nearest to the midline's direction and its normal (row, col)."""
    candidates = ((1, 0), (0, 1), (1, 1), (1, -1))

    def nearest(vector: np.ndarray) -> tuple[int, int]:
        return max(candidates, key=lambda s: abs(s[0] * vector[0] + s[1] * vector[1]) / math.hypot(*s))

    along = np.array([-normal[1], normal[0]])
    return nearest(along), nearest(normal)


def _shift(image: np.ndarray, step: tuple[int, int], by: int) -> np.ndarray:
    """``image`` (slices, rows, cols) read ``by`` steps of ``step`` away (edges repeated)."""
    dr, dc = step[0] * by, step[1] * by
    pad = max(abs(dr), abs(dc))
    if pad == 0:
        return image
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    rows, cols = image.shape[1:]
    return padded[:, pad + dr: pad + dr + rows, pad + dc: pad + dc + cols]


def along_median(image: np.ndarray, along: tuple[int, int]) -> np.ndarray:
    """The median of ``SHEET_TAPS`` pixels along ``along`` at every pixel of every slice."""
    half = SHEET_TAPS // 2
    stack = np.stack([_shift(image, along, t) for t in range(-half, half + 1)])
    return np.partition(stack, half, axis=0)[half]


def _frame(side: Any, k: int) -> np.ndarray | None:
    """The midline's normal (row, col, unit) on slice ``k`` from ``side`` (slice -> signed
    distance of each pixel from the midline, ``midline.midline_side``), None without one."""
    layer = side(k)
    normal = np.array([layer[1, 0] - layer[0, 0], layer[0, 1] - layer[0, 0]], np.float64)
    return normal / np.hypot(*normal) if np.any(normal) else None


def line_seed(volume: np.ndarray, cavity: np.ndarray, side: Any,
              seed: tuple[int, int, int]) -> tuple[tuple[int, int, int], float] | None:
    """The brightest reading along the midline's direction within a pixel of ``seed`` (and
    where it is), for a click near the midline (``side``, see ``_frame``); None elsewhere."""
    k, i, j = seed
    normal = _frame(side, k)
    if normal is None or abs(float(side(k)[i, j])) > SHEET_NEAR_MIDLINE_MM:
        return None
    along, _ = _steps(normal)
    reach = SHEET_TAPS // 2 + 1
    r0, c0 = max(0, i - reach), max(0, j - reach)
    patch = volume[k: k + 1, r0: i + reach + 1, c0: j + reach + 1].astype(np.float32)
    line = along_median(patch, along)[0]
    best, where = -np.inf, seed
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            r, c = i + di, j + dj
            if 0 <= r < volume.shape[1] and 0 <= c < volume.shape[2] and cavity[k, r, c]:
                value = float(line[r - r0, c - c0])
                if value > best:
                    best, where = value, (k, r, c)
    return (where, best) if np.isfinite(best) else None


def grow_sheet(volume: np.ndarray, seed: tuple[int, int, int], hu_range: tuple[float, float], cavity: np.ndarray,
               shell: np.ndarray, side: Any, blood: float | None = None) -> np.ndarray | None:
    """The sheet through ``seed`` (on its crest, see ``line_seed``) as a full-size mask, or None.

    ``shell`` is the band next to bone it never enters, ``side`` the midline (see ``_frame``),
    ``blood`` the bleed's blood HU when known (a further click on a bleed already grown);
    otherwise the crest's own reading stands for it.
    """
    low, high = hu_range
    normal = _frame(side, seed[0])
    if normal is None:
        return None
    along, across = _steps(normal)
    k0, i0, j0 = seed
    seed_mm = float(side(k0)[i0, j0])
    band = np.zeros(volume.shape, bool)
    for k in np.flatnonzero(cavity.any(axis=(1, 2))):
        band[k] = cavity[k] & ~shell[k] & (np.abs(side(int(k)) - seed_mm) <= SHEET_BAND_MM)
    band[seed] = True
    zs, rs, cs = (np.flatnonzero(band.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
    pad = SHEET_TAPS
    box = (slice(int(zs[0]), int(zs[-1]) + 1), slice(max(0, int(rs[0]) - pad), int(rs[-1]) + pad + 1),
           slice(max(0, int(cs[0]) - pad), int(cs[-1]) + pad + 1))
    raw = volume[box].astype(np.float32)
    inside = band[box]
    local = tuple(int(s - b.start) for s, b in zip(seed, box))
    line = along_median(raw, along)
    crest = (line >= _shift(line, across, 1)) & (line >= _shift(line, across, -1))
    candidate = inside & (line <= high)

    def connected(minus_level: float, plus_level: float) -> np.ndarray:
        """The crest and the voxels beside it across that read at least the level of their side."""
        accept = crest & (line >= min(minus_level, plus_level))
        accept |= _shift(crest, across, 1) & (line >= minus_level)  # the voxel before a crest voxel
        accept |= _shift(crest, across, -1) & (line >= plus_level)
        accept &= candidate
        accept[local] = True
        image = sitk.GetImageFromArray(accept.astype(np.uint8))
        grown = sitk.ConnectedThreshold(image, seedList=[(local[2], local[1], local[0])], lower=1, upper=1)
        return sitk.GetArrayFromImage(grown).astype(bool)

    core = connected(low, low)
    if int(core.sum()) < SHEET_MIN_VOXELS:
        return None
    level_blood = float(np.percentile(line[core & crest], SHEET_BLOOD_PERCENTILE)) if blood is None else float(blood)
    levels = []
    for sign in (1, -1):  # what lies beyond each side of the sheet: CSF and falx on one, cortex on the other
        beyond = (_shift(core, across, 2 * sign) | _shift(core, across, 3 * sign)) & cavity[box]
        beyond &= ~(core | _shift(core, across, sign) | _shift(core, across, -sign))
        if not beyond.any():
            return None
        surround = float(np.median(raw[beyond]))
        if level_blood - surround < SHEET_CONTRAST_HU:
            return None  # no bright line on that side: an isodense patch, not a sheet
        levels.append((level_blood + surround) / 2.0)
    across_core = max(float((core & _shift(core, across, by)).sum()) for by in (2, -2)) / float(core.sum())
    if across_core > SHEET_MAX_ACROSS:
        return None  # crests side by side: a broad patch of noise at the blood level
    sheet = connected(*levels)
    sheet &= _as_wide_as_its_blood(line, crest, across, level_blood, levels)
    sheet[local] = True
    image = sitk.GetImageFromArray(sheet.astype(np.uint8))
    sheet = sitk.GetArrayFromImage(sitk.ConnectedThreshold(image, seedList=[(local[2], local[1], local[0])],
                                                           lower=1, upper=1)).astype(bool)
    if int(sheet.sum()) < SHEET_MIN_VOXELS:
        return None
    full = np.zeros(volume.shape, bool)
    full[box] = sheet
    return full


def _as_wide_as_its_blood(line: np.ndarray, crest: np.ndarray, across: tuple[int, int], blood: float,
                          levels: list[float]) -> np.ndarray:
    """The crest and as many voxels beside it as its blood accounts for: a sheet's width in
    voxels is the sum, across it, of each voxel's share of blood (its excess over what lies
    beyond that side, over the blood's). One neighbour (the brighter) where the crest and its
    two neighbours hold 1.5 voxels of blood, both where they hold 2.5. Read on the line's
    median, as the levels are (``levels``: the half-blood level of each side)."""
    minus_beyond, plus_beyond = (2.0 * level - blood for level in levels)

    def share(values: np.ndarray, beyond: float) -> np.ndarray:
        return np.clip((values - beyond) / max(blood - beyond, 1.0), 0.0, 1.0)

    minus = share(_shift(line, across, -1), minus_beyond)  # at a crest voxel c: what c - across reads
    plus = share(_shift(line, across, 1), plus_beyond)
    width = minus + share(line, (minus_beyond + plus_beyond) / 2.0) + plus
    one, two = crest & (width >= 1.5), crest & (width >= 2.5)
    keep = crest | _shift(two, across, 1) | _shift(two, across, -1)  # c - across is where crest[p + across]
    return keep | _shift(one & (minus >= plus), across, 1) | _shift(one & (minus < plus), across, -1)


def is_thin(mask: np.ndarray, pixel_mm: float = SHEET_PIXEL_MM) -> bool:
    """Whether a region is a line on its slices once its outer ring is taken off (the half-volume
    rims its growing adds on both sides of a line): few of the rest's voxels (``THIN_SHARE``) have
    all voxels within two steps in-plane in it; none left is a line. Judged in blocks of about
    ``SHEET_PIXEL_MM`` (``block_factor``), and only for a region at least ``SHEET_MIN_LENGTH_MM``
    long on its largest slice."""
    if not mask.any():
        return False
    zs = np.flatnonzero(mask.any(axis=(1, 2)))
    rs, cs = np.flatnonzero(mask.any(axis=(0, 2))), np.flatnonzero(mask.any(axis=(0, 1)))
    factor = block_factor(pixel_mm)
    pad = 2 * factor  # whole blocks of the box, and two blocks' room around it
    box = np.pad(mask[int(zs[0]): int(zs[-1]) + 1, int(rs[0]): int(rs[-1]) + 1, int(cs[0]): int(cs[-1]) + 1],
                 ((0, 0), (pad, pad + factor - 1), (pad, pad + factor - 1)))
    box = blocks(box, factor)
    layer = box[int(np.argmax(box.sum(axis=(1, 2))))]
    rs, cs = np.flatnonzero(layer.any(axis=1)), np.flatnonzero(layer.any(axis=0))
    if not len(rs) or max(rs[-1] - rs[0], cs[-1] - cs[0]) + 1 < SHEET_MIN_LENGTH_MM / (factor * pixel_mm):
        return False  # a blob, however small its core
    box &= ~dilate(~box)
    if not box.any():
        return True
    core = box.copy()
    rows, cols = box.shape[1:]
    for dr in range(-2, 3):
        for dc in range(-2 + abs(dr), 3 - abs(dr)):
            core[:, 2:-2, 2:-2] &= box[:, 2 + dr: rows - 2 + dr, 2 + dc: cols - 2 + dc]
    return bool(np.count_nonzero(core) < THIN_SHARE * np.count_nonzero(box))
