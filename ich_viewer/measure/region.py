"""A bleed outlined in 3D from one seed, with its planimetric volume and ABC/2.

The reader clicks inside a bleed; the region grows (SimpleITK ConnectedThreshold) through
voxels in the blood HU range inside the cranial cavity, so it stops at bone, CSF, brain
and the scalp. Steps, each for a reason:

1. The cranial cavity, slice by slice (``measure.cavity``): the skull ring closed and
   filled. Soft tissue of the scalp and neck has blood-like HU; without it the region walks
   out through a foramen into muscle.
2. An in-plane median (~0.6 mm): the CT noise (SD 3-6 HU) otherwise punches holes into
   the region and lets single noisy brain voxels bridge into grey matter.
3. ConnectedThreshold from the seed within [low, high] HU, never through the shell next
   to bone (``SHELL_MM``: brain blurred with the inner table reads like blood all round
   the skull) except where the shell is blood-like itself and touches blood outside it:
   a thin subdural or epidural is mostly shell, and its pieces join through it there.
4. The edge of a bleed is half blood, half brain: the low bound rises to the midpoint
   between the blood and grey matter, per slice where that slice's brain (read on the
   other side of the midline) is brighter, as under the vertex's partial-volumed skull cap.
   A lesion only a few HU above its bound is taken out to that half-blood level instead
   (``_iso_level_band``).
5. Partial volume towards the inner table: back into the shell, and up to two rings of
   voxels more blood than bone, the bone's HU read from the scan (``head.TABLE_PERCENTILE``);
   rings towards brain (``rim.dark_rings``: 0.6 mm or more on thick slices, one ring on thin
   ones) down to the midpoint between the darker part of what surrounds the
   bleed and its blood as read around the seed (the region's median is raised by the bone's
   blur), no higher than the level step 4 grew the region at and at most
   ``rim.DARK_RIM_MAX_HU`` below it.
6. A thin collection beyond the last slice the threshold reached (a convexity subdural
   towards the vertex, within the shell, reading out of the range) is followed slice by
   slice along the inner table where it reads more like the region than like the other
   hemisphere's band at the same depth from the bone, then within each slice to its thin
   ends, blurred with the bone (``measure.follow``).
7. Leak guards (``leak_guard``): a region seeded well off the midline is cut at the falx,
   and growing stops at a slice where the region fills most of its half of the cavity.
   Both are said in ``Region.notes``; the reader adds back with the brush if needed.
8. A bleed in separate pieces (a subdural's sheet along the falx) is one region from
   several clicks, each grown as here and added (``measure.clicks``).
9. A line too thin for the 3x3 median near the midline (a subdural's sheet along the falx,
   2 px wide): a click whose 3x3 median is out of range but whose line, read along the
   midline within a pixel, is blood, and a region grown here that is a line
   (``sheet.THIN_SHARE``, judged without the rings that double it), are grown along the line's crest to its
   half-blood edges instead (``measure.sheet``), against the first region's blood for a
   further click. Said in the notes.

Volume = voxels x voxel volume; ABC/2 beside it (``measure.abc2``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import SimpleITK as sitk

from ich_viewer.measure import sheet
from ich_viewer.measure.abc2 import ABC2, abc2
from ich_viewer.measure.band import is_normal_band
from ich_viewer.measure.follow import follow_inner_table
from ich_viewer.measure.head import DEFAULT_HU, ROUGH_SLACK_HU, SHELL_MM, Head, find_head, near_bone
from ich_viewer.measure.midline import MIDLINE_MARGIN_MM, MIDLINE_SEED_MM, midline_side
from ich_viewer.measure.rim import DARK_RIM, below_half_bone, dark_rings, partial_volume_rim, surround
from ich_viewer.measure.voxels import (AIR_HU, BONE_HU, bone_distance, box_2d, dilate, fill_slices, itk_image,
                                      median_3x3, voxels_ml)
from ich_viewer.tasks import TaskState

SMOOTH_MM = 0.6
"""Radius of the in-plane median (at least one pixel): the noise of thin pixels needs more."""
MAX_HOLE_MM2 = 100.0
"""Holes up to this area inside a slice of the region are filled (a darker clot core)."""
SEED_DISC_MM = 3.0
"""Blood density is read within this distance of the seed, in the seed's slice."""
SEED_NEAR_BONE_MM = 6.0
"""A seed this close to bone (the disc's 3 mm and the bone's blur) reads blood raised by it:
at a pocket of the skull base the disc read 76 HU against 59 on the crescent (a test checks it),
and the half-blood edge moved up by 8 HU. Its blood is then read away from bone as well."""
CLEAR_OF_BONE_MM = 3.0
"""Past about three times the blur's sigma (about 1 mm) the inner table adds no HU."""
CLEAR_PERCENTILE = 75.0
MIN_CLEAR_VOXELS = 50
BOX_MARGIN_PX = 8
"""Pixels added around the rough region before the smoothed growing (the whole head if touched)."""
PROPOSE_MARGIN_HU = 12.0
"""A proposed seed must read this much above the low bound: clearly blood, not bright brain."""
MIN_VOXELS = 20
"""Fewer voxels than this is noise or a partial-volume speck, not a bleed to measure."""
FAINT_CLICK_ML = 1.0
FAINT_CLICK_HU = 5.0
"""A click that grows less than ``FAINT_CLICK_ML`` from a voxel within ``FAINT_CLICK_HU`` of the low
bound is told so: on 5 mm slices the deepest point of a subdural's largest slice may lie in a slab
that is half blood, half brain, at the skull base, and grow 0.4 mL of a 48 mL bleed (phantom seeds
522 and 543); the reader sees a speck and clicks the crescent."""
MAX_VOLUME_ML = 500.0
"""A region larger than any hematoma means the thresholds leaked into the brain."""
ISO_GATE_HU = 10.0
"""The edge at the partial-volume iso-level (``_iso_level_band``) is looked for only where the
lesion (read around the click) is less than this above its bound: a denser one is already
cut near its half-blood edge, and the band made seed 2's epidural +0.7 -> +3.9 %."""
JOINED_MIN_ML = 1.0
"""A piece joined to the region through its half-blood edge is taken from this size on
(``_joined_through_edge``), as the reader clicks a piece (``measure.clicks.READER_PIECE_ML``):
smaller ones are specks of noise along the edge."""
JOINED_LOOSE_MAX = 2.0
"""Pieces are joined only where the region grown at the low bound is at most this many times
the region with them: beyond, the low bound ran into brain as dense as it (the demo's reads
46 HU), and what it reaches there (a venous sinus, another bleed) is not joined by an edge."""
ISO_BAND_MM = 2.0
"""How far in-plane beyond the thresholded region the iso-level edge is looked for."""
LENS_TABLE_MM = 10.0
LENS_NEAR_TABLE = 0.9
LENS_BEYOND = 0.05
LENS_ACROSS_MM = 25.0
"""What the falx cut would leave out is kept when ``LENS_NEAR_TABLE`` of it lies within
``LENS_TABLE_MM`` of the inner table, ``LENS_BEYOND`` of it beyond the midline's strip, none of
it farther than ``LENS_ACROSS_MM`` across, all on slices the region holds on the seed's side
(``_lens_across``): an epidural crosses the midline, the dura and the sagittal sinus stripped
off the bone with it (on the phantoms by up to 21 mm). Cut, phantom epidurals were 14-24 %
short (seeds 198, 215, 244, 315, 327). A region that ran round the other hemisphere's inner
table (the demo's subdural clicked 10 mm off the midline) reaches farther; the real rows' leaks
along the sinus and the falx are cut as before (``bench_measure_real.py``: every hash)."""
MAX_HALF_FILL = 0.5
"""A slice where the region fills more than this share of its half of the cranial cavity
is brain as bright as blood (the vertex under a partial-volumed skull cap, a hazy scan):
the region stops before it."""
EXTRA_AXIAL_MM = 10.0
"""A seed 5-15 mm off the midline (``MIDLINE_SEED_MM``) is one-sided too when it lies within
this distance of the inner table: the end of a subdural or epidural beside the falx, on one
side of it (a click on the demo's subdural 10 mm off the midline ran round the other
hemisphere's inner table: 176 mL against 137 mL)."""
SINUS_MM = 6.0
"""A region seeded off the midline is also cut where the midline's strip (``MIDLINE_MARGIN_MM``
either side) lies within this distance of the inner table: the superior sagittal sinus there
(and the cavernous sinuses beside the sella) reads in the blood range, and through it a
convexity bleed ran along the sinus and the falx to slices it never reaches (CT-ICH 073's
epidural: 9 slices down the sinus)."""


@dataclass
class Region:
    """The result of growing from a seed; ``reason`` says why nothing was grown."""

    seed: tuple[int, int, int]
    hu_range: tuple[float, float]
    spacing_mm: tuple[float, float, float]
    """(slice, row, col) spacing in mm."""
    mask: np.ndarray | None = None
    """bool (slices, rows, cols), None when nothing was grown."""
    reason: str | None = None
    voxels: int = 0
    volume_ml: float = 0.0
    mean_hu: float = float("nan")
    slices: list[int] = field(default_factory=list)
    abc2: ABC2 | None = None
    seed_hu: float = float("nan")
    calibrated: bool = True
    """False when PixelSpacing was missing: the volume is then in voxels x 1 mm³ placeholders."""
    notes: list[str] = field(default_factory=list)
    more_seeds: list[tuple[int, int, int]] = field(default_factory=list)
    """Further clicks whose regions were added (``measure.clicks``): separate pieces of one bleed."""

    @property
    def ok(self) -> bool:
        return self.reason is None and self.mask is not None

    @property
    def abc2_ml(self) -> float | None:
        return None if self.abc2 is None else self.abc2.ml

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the ``measure`` command prints this)."""
        out: dict[str, Any] = {
            "seed": list(self.seed),
            "more_seeds": [list(s) for s in self.more_seeds],
            "hu_range": list(self.hu_range),
            "spacing_mm": [round(v, 4) for v in self.spacing_mm],
            "ok": self.ok,
            "reason": self.reason,
            "volume_ml": round(self.volume_ml, 2) if self.ok else None,
            "abc2_ml": None if self.abc2 is None else round(self.abc2.ml, 2),
            "voxels": self.voxels,
            "slices": list(self.slices),
            "mean_hu": None if not self.ok else round(self.mean_hu, 1),
            "seed_hu": None if math.isnan(self.seed_hu) else round(self.seed_hu, 1),
            "calibrated": self.calibrated,
            "notes": list(self.notes),
        }
        if self.abc2 is not None:
            out["abc2"] = {"a_mm": round(self.abc2.a_mm, 1), "b_mm": round(self.abc2.b_mm, 1),
                           "c_mm": round(self.abc2.c_mm, 1), "slice": self.abc2.slice_index}
        out["abc2_line"] = [list(p) for p in self.abc2.a_line] if self.abc2 is not None else None
        return out


class GrowError(ValueError):
    """A seed or range that cannot give a region; the message is for the reader."""


def grow_region(
    volume: np.ndarray,
    spacing_mm: tuple[float, float, float],
    seed: tuple[int, int, int],
    hu_range: tuple[float, float] = DEFAULT_HU,
    state: TaskState | None = None,
    *,
    calibrated: bool = True,
    cavity: np.ndarray | Head | None = None,
    blood_hu: float | None = None,
) -> Region:
    """Grow a bleed from ``seed`` (slice, row, col) in ``volume`` (slices, rows, cols) HU.

    Never raises for a bad seed: the returned ``Region`` has ``reason`` set and no mask,
    so the window and the command can tell the reader why. ``cavity`` may be passed when
    it is already known, or the whole ``measure.head`` (the window keeps it per series);
    ``blood_hu`` the bleed's blood when known (a further click on a bleed already grown: a thin
    sheet's edge is read against it).
    """
    low, high = float(hu_range[0]), float(hu_range[1])
    volume = np.asarray(volume, np.float32)
    spacing = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
    result = Region(seed=tuple(int(v) for v in seed), hu_range=(low, high), spacing_mm=spacing,  # type: ignore[arg-type]
                    calibrated=calibrated)
    if not calibrated:
        result.notes.append("no PixelSpacing: volume in placeholder 1 mm pixels, not a real mL value")
    if volume.ndim != 3 or volume.size == 0:
        result.reason = "no image volume to grow in"
        return result
    if not low < high:
        result.reason = f"the HU range {low:g}-{high:g} is empty: the low bound must be below the high bound"
        return result
    k, i, j = result.seed
    if not (0 <= k < volume.shape[0] and 0 <= i < volume.shape[1] and 0 <= j < volume.shape[2]):
        result.reason = (f"seed {k},{i},{j} is outside the series ({volume.shape[0]} slices of "
                         f"{volume.shape[1]} x {volume.shape[2]})")
        return result
    patch = volume[k, max(0, i - 1) : i + 2, max(0, j - 1) : j + 2]
    result.seed_hu = float(np.median(patch))
    if result.seed_hu <= AIR_HU:
        result.reason = f"the seed is in air ({result.seed_hu:.0f} HU), outside the head: click inside the bleed"
        return result
    if result.seed_hu >= BONE_HU:
        result.reason = f"the seed is in bone ({result.seed_hu:.0f} HU): click inside the bleed"
        return result
    if state is not None:
        state.set_status("finding the cranial cavity")
    head = cavity if isinstance(cavity, Head) else find_head(volume, spacing, state, cavity, every_band=False)
    if state is not None and state.cancelled():
        result.reason = "cancelled"
        return result
    if not head.cavity[k, i, j]:
        result.reason = "the seed is outside the cranial cavity (scalp, face or neck): click inside the bleed"
        return result
    mask: np.ndarray | None
    if low <= result.seed_hu <= high:
        if state is not None:
            state.set_status("growing the region")
        mask = _grow(volume, spacing, (k, i, j), low, high, head)
        if mask is not None and sheet.is_thin(mask, min(spacing[1], spacing[2])):  # a line: the rims doubled it
            line = _sheet(volume, spacing, (k, i, j), (low, high), head, blood_hu, result)
            mask = mask if line is None else line
    else:  # a line too thin for the 3x3 median may still be blood along itself
        mask = _sheet(volume, spacing, (k, i, j), (low, high), head, blood_hu, result)
        if mask is None:
            return result
    if mask is None or not mask.any():
        result.reason = ("nothing around the seed is in the blood range once noise is smoothed: "
                         "click deeper inside the bleed or widen the range")
        return result
    voxels = int(np.count_nonzero(mask))  # a bool sum on a whole series costs 7 times as much
    if voxels < MIN_VOXELS:
        result.reason = (f"only {voxels} voxels around the seed are blood-like: "
                         "click deeper inside the bleed or widen the range")
        return result
    mask, guarded = leak_guard(mask, volume, head.cavity, result.seed, spacing, head.series_side)
    result.notes.extend(guarded)
    volume_ml = voxels_ml(np.count_nonzero(mask), spacing)
    if volume_ml > MAX_VOLUME_ML:
        result.reason = (f"the region leaked ({volume_ml:.0f} mL, more than any hematoma): "
                         "narrow the HU range or click elsewhere")
        return result
    if volume_ml < FAINT_CLICK_ML and result.seed_hu - low < FAINT_CLICK_HU:
        result.notes.append(f"the click reads {result.seed_hu:.0f} HU, at the range's low bound, and grew "
                            f"{volume_ml:.1f} mL: on a thick slice at the skull base this may be a slab half "
                            "blood, half brain. If the bleed is larger, click where it is brightest")
    return describe(result, volume, mask)


def _sheet(volume: np.ndarray, spacing: tuple[float, float, float], seed: tuple[int, int, int],
           hu_range: tuple[float, float], head: Head, blood: float | None, result: Region) -> np.ndarray | None:
    """The sheet along the falx at ``seed`` (``measure.sheet``, said in the notes), or None; then,
    when the seed itself reads out of the range, ``result.reason`` says what the line there reads.
    A series finer than ``sheet.SHEET_PIXEL_MM`` is read in blocks of about that size."""
    low, high = hu_range
    shape, factor = volume.shape, sheet.block_factor(min(spacing[1], spacing[2]))
    cavity, side = head.cavity, head.series_side
    near = side is not None and abs(float(side(seed[0])[seed[1], seed[2]])) <= sheet.SHEET_NEAR_MIDLINE_MM
    if near and factor > 1:  # only a click near the falx is read in blocks
        volume, cavity = sheet.blocks(volume, factor), sheet.blocks(cavity, factor)
        spacing = (spacing[0], spacing[1] * factor, spacing[2] * factor)
        side = midline_side(cavity, spacing)
    on_blocks = (seed[0], min(seed[1] // factor, volume.shape[1] - 1), min(seed[2] // factor, volume.shape[2] - 1))
    line = sheet.line_seed(volume, cavity, side, on_blocks) if near and side is not None else None
    mask = None
    if line is not None and low <= line[1] <= high:
        mask = sheet.grow_sheet(volume, line[0], hu_range, cavity, near_bone(volume, spacing) & cavity, side, blood)
    if line is not None and mask is not None:
        k, row, col = line[0]
        result.notes.append(f"grown as a thin sheet along the falx from slice {k} (Im {k + 1}), row {row * factor}, "
                            f"column {col * factor}, where the line reads {line[1]:.0f} HU")
        mask = sheet.unblock(mask, factor, shape)
    elif not low <= result.seed_hu <= high:
        along = "" if line is None else f" (a line there reads {line[1]:.0f} HU along the falx" + (
            ", but it is no thin sheet of blood)" if low <= line[1] <= high else ")")
        result.reason = (f"the seed reads {result.seed_hu:.0f} HU{along}, outside the blood range {low:g}-{high:g} HU: "
                         "click inside the bleed or widen the range")
    return mask


def leak_guard(mask: np.ndarray, volume: np.ndarray, cavity: np.ndarray, seed: tuple[int, int, int],
               spacing: tuple[float, float, float], side: Any = None) -> tuple[np.ndarray, list[str]]:
    """Cut what a threshold cannot tell from blood, and say so (the reader can add it back).

    Two anatomical limits: a bleed seeded well off the midline does not cross the falx
    (a subdural never does; a region that does has run along the falx's own dense band or
    the cortex of the other hemisphere) nor take the sinus where the falx meets the inner
    table (``SINUS_MM``), and no slice of a bleed fills most of its half of
    the cavity (where it does, the brain itself reads in the blood range). The growing
    stops at the first such slice above or below the seed. For a bleed off the midline, the
    region's top slices that are the normal brain-bone band are left out
    (``_peel_band_from_top``).
    """
    notes: list[str] = []
    k0, i0, j0 = seed
    side = midline_side(cavity, spacing) if side is None else side  # the cavity's (``measure.head`` keeps it)
    if side is None:
        return mask, notes
    seed_mm = float(side(k0)[i0, j0])
    one_side = abs(seed_mm) >= MIDLINE_SEED_MM or (
        abs(seed_mm) >= MIDLINE_MARGIN_MM and _near_table(cavity[k0], (i0, j0), spacing, EXTRA_AXIAL_MM))
    if one_side:
        cut = mask.copy()
        box = box_2d(mask)  # the sides only where the region is
        beyond, farthest = 0, 0.0  # voxels across the midline's strip, on the other side; their farthest (mm)
        for layer in np.flatnonzero(mask.any(axis=(1, 2))):
            across = side(int(layer), box) * np.sign(seed_mm)
            cut[layer][box] &= across > -MIDLINE_MARGIN_MM
            removed = mask[layer][box] & ~cut[layer][box]
            if removed.any():
                beyond += np.count_nonzero(removed)
                farthest = max(farthest, float(-across[removed].min()))
            strip = np.abs(across) < MIDLINE_MARGIN_MM
            if (cut[layer][box] & strip).any():  # where the falx meets the inner table: the sinus
                cut[layer][box] &= ~(strip & _near_table_in(cavity[layer], box, spacing, SINUS_MM))
        if beyond and _lens_across(mask, cut, beyond, farthest, cavity, spacing):
            kept = np.count_nonzero(mask & ~cut)
            notes.append(f"kept {_ml_text(kept, spacing)} across the midline: it lies along the inner table on the "
                         "region's own slices, as an epidural crossing the midline does (erase it if it is not blood)")
            cut = mask
        if np.count_nonzero(cut) < np.count_nonzero(mask):
            cut = _seed_component(cut, seed, mask)
            lost = np.count_nonzero(mask) - np.count_nonzero(cut)
            notes.append(f"cut at the falx: {_ml_text(lost, spacing)} at or across the midline left out "
                         "(add it back with the brush if it is blood)")
            mask = cut
    half_stop: list[int] = []
    before_stop = mask
    head = box_2d(cavity)  # the sides only where the cavity is
    for direction in (1, -1):
        k = k0 + direction
        while 0 <= k < mask.shape[0] and mask[k].any():
            # its side of the cavity; for a bleed near the midline, half of the whole
            half = cavity[k][head] & (side(k, head) * np.sign(seed_mm) > -MIDLINE_MARGIN_MM) if one_side else cavity[k]
            room = np.count_nonzero(half) * (1.0 if one_side else 0.5)
            if room and np.count_nonzero(mask[k]) > MAX_HALF_FILL * room:
                mask = mask.copy()
                if direction < 0:
                    mask[: k + 1] = False
                else:
                    mask[k:] = False
                half_stop.append(k)
                break
            k += direction
    if half_stop:
        mask = _seed_component(mask, seed, before_stop)
        notes.append("stopped at slice " + " and ".join(f"{k} (Im {k + 1})" for k in sorted(half_stop)) +
                     ": the region filled most of that side of the brain (brain as bright as blood there)")
    if one_side:
        peeled = _peel_band_from_top(mask, volume, cavity, k0, lambda k: side(k, head) * np.sign(seed_mm), head,
                                     spacing)
        if peeled:
            unpeeled = mask
            mask = mask.copy()
            mask[peeled[-1]: peeled[0] + 1] = False
            mask = _seed_component(mask, seed, unpeeled)
            where = f"slice {peeled[0]} (Im {peeled[0] + 1})" if len(peeled) == 1 else (
                f"slices {peeled[-1]}-{peeled[0]} (Im {peeled[-1] + 1}-{peeled[0] + 1})")
            notes.append(f"left out {where} at its top: the region there is the brain-bone band along the skull, "
                         "no brighter than on the other side (add it back with the brush if it is blood)")
    return mask, notes


def _ml_text(voxels: int | np.integer, spacing: tuple[float, float, float]) -> str:
    """A part's volume for a note: a few voxels read "under 0.1 mL", not "0.0 mL", which reads as nothing."""
    ml = voxels_ml(voxels, spacing)
    return f"{ml:.1f} mL" if round(ml, 1) > 0 else "under 0.1 mL"


def _lens_across(mask: np.ndarray, cut: np.ndarray, beyond: int, farthest_mm: float, cavity: np.ndarray,
                 spacing: tuple[float, float, float]) -> bool:
    """Whether what the falx cut would leave out is an epidural's lens crossing the midline,
    not a leak: at least ``LENS_BEYOND`` of it (``beyond`` voxels) beyond the midline's strip
    and none farther across than ``LENS_ACROSS_MM``, all of it on slices the region keeps on
    the seed's side, and most of it (``LENS_NEAR_TABLE``) within ``LENS_TABLE_MM`` of the inner
    table. A leak along the sinus runs to slices the bleed never reaches (CT-ICH 073), one along
    the falx runs deep, one round the other hemisphere's inner table runs far; a bleed that only
    reaches the strip has reached the sinus there, not crossed."""
    lost = mask & ~cut
    if beyond < LENS_BEYOND * np.count_nonzero(lost) or farthest_mm > LENS_ACROSS_MM:
        return False
    kept_slices = np.flatnonzero(cut.any(axis=(1, 2)))
    lost_slices = np.flatnonzero(lost.any(axis=(1, 2)))
    if not kept_slices.size or lost_slices.min() < kept_slices.min() or lost_slices.max() > kept_slices.max():
        return False
    box = box_2d(lost)
    near = sum(np.count_nonzero(lost[k][box] & _near_table_in(cavity[k], box, spacing, LENS_TABLE_MM))
               for k in lost_slices)
    return bool(near >= LENS_NEAR_TABLE * np.count_nonzero(lost))


def _near_table_in(cavity: np.ndarray, box: tuple[slice, slice], spacing: tuple[float, float, float],
                   within_mm: float) -> np.ndarray:
    """Which pixels of ``box`` lie within ``within_mm`` of the inner table (the edge of a slice's
    ``cavity``), the table beyond the box included: read in the box alone, a region whose box
    ends at the table's inner edge had no table beside it, and a sinus 2-5 mm under the table
    was kept."""
    pad = int(math.ceil(within_mm / min(spacing[1], spacing[2]))) + 2
    r0, c0 = max(0, box[0].start - pad), max(0, box[1].start - pad)
    near = bone_distance(~cavity[r0: box[0].stop + pad, c0: box[1].stop + pad], spacing, within_mm) <= within_mm
    return near[box[0].start - r0: box[0].stop - r0, box[1].start - c0: box[1].stop - c0]


def _near_table(cavity: np.ndarray, at: tuple[int, int], spacing: tuple[float, float, float], within_mm: float) -> bool:
    """Whether ``at`` lies within ``within_mm`` of the edge of its slice's cavity (the inner table)."""
    reach = int(math.ceil(within_mm / min(spacing[1], spacing[2]))) + 2
    r0, c0 = max(0, at[0] - reach), max(0, at[1] - reach)
    box = cavity[r0: at[0] + reach + 1, c0: at[1] + reach + 1]
    return bool(bone_distance(~box, spacing, within_mm)[at[0] - r0, at[1] - c0] <= within_mm)


def _peel_band_from_top(mask: np.ndarray, volume: np.ndarray, cavity: np.ndarray, seed_slice: int,
                        across: Callable[[int], np.ndarray], head: tuple[slice, slice],
                        spacing: tuple[float, float, float]) -> list[int]:
    """The region's top slices, from the top down, that are the normal brain-bone band
    (``band.is_normal_band``: the vertex's obliquely cut skull cap, which a region reaching it
    runs round), never the seed's slice. Only at the top: at the skull base the two sides of a
    slice differ (petrous bone, a tilted head), and phantom seed 19's subdural was stopped
    there (-3.1 -> -15.6 %)."""
    peeled: list[int] = []
    k = int(np.flatnonzero(mask.any(axis=(1, 2)))[-1])
    while k > seed_slice and is_normal_band(volume[k][head], cavity[k][head], mask[k][head], across(k), spacing):
        peeled.append(k)
        k -= 1
    return peeled


def _seed_component(mask: np.ndarray, seed: tuple[int, int, int], before: np.ndarray) -> np.ndarray:
    """What a cut or a stop left of ``before``: of each piece of ``before``, the part of ``mask``
    joined to the seed where it is the seed's piece (the largest part if the seed voxel itself
    was left out, e.g. a noisy voxel in a hole), else its largest part. A thin crescent's pieces
    followed along the inner table (``measure.follow``) never touch from slice to slice near the
    vertex, where a 5 mm slice moves the inner table in by 4-6 px: they were apart before the cut
    and stay; only what the cut severed from a piece is let go (a click on phantom seed 16's
    crescent lost its top three slices: +1.0 -> +8.4 % with them, Dice 0.876 -> 0.912; a click there
    kept only its own, -70 %)."""
    ks = np.flatnonzero(before.any(axis=(1, 2)))
    if not ks.size:
        return mask
    box = (slice(int(ks[0]), int(ks[-1]) + 1), *box_2d(before))  # ``mask`` lies within ``before``
    labels = _components(mask[box])
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    at = tuple(int(v) - b.start for v, b in zip(seed, box))
    seed_in_box = all(0 <= a < b.stop - b.start for a, b in zip(at, box))
    keep = (int(labels[at]) if seed_in_box else 0) or int(np.argmax(sizes))
    if not keep:
        return mask
    pieces_before = _components(before[box])
    inside = labels > 0
    piece_of = np.zeros(len(sizes), np.int64)  # each part's piece of ``before`` (a cut only removes)
    piece_of[labels[inside]] = pieces_before[inside]
    chosen = {int(piece_of[keep]): keep}
    for part in np.argsort(-sizes):
        if sizes[part] and int(piece_of[part]) not in chosen:
            chosen[int(piece_of[part])] = int(part)
    kept = np.zeros(len(sizes), bool)
    kept[list(chosen.values())] = True
    out = np.zeros_like(mask)
    out[box] = kept[labels]
    return out


def _components(mask: np.ndarray) -> np.ndarray:
    """The face-connected pieces of a 3D mask, labelled."""
    return sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8))))


def describe(result: Region, volume: np.ndarray, mask: np.ndarray) -> Region:
    """Fill volume, mean HU, slices and ABC/2 of ``result`` from ``mask`` (also after an edit)."""
    spacing = result.spacing_mm
    result.mask = mask
    result.voxels = int(np.count_nonzero(mask))
    result.reason = None if result.voxels else "the outline is empty"
    result.volume_ml = voxels_ml(result.voxels, spacing)
    # Mean of the blood itself: rim voxels blurred with the inner table count for the
    # volume but would push the mean towards bone.
    values = volume[mask]
    blood = values[values <= result.hu_range[1]]
    result.mean_hu = float((blood if blood.size else values).mean()) if values.size else float("nan")
    result.slices = [int(s) for s in np.flatnonzero(mask.any(axis=(1, 2)))]
    result.abc2 = abc2(mask, spacing) if result.voxels else None
    if result.voxels == 0:
        result.mask = None
    return result


def _grow(volume: np.ndarray, spacing: tuple[float, float, float], seed: tuple[int, int, int],
          low: float, high: float, head: Head) -> np.ndarray | None:
    """The region as a full-size mask; the work is done in a box around the bleed.

    A first pass on the unsmoothed HU finds roughly where the bleed lies; the median,
    the growing and the morphology then run on that box (grown until the region no longer
    touches its side), so the cost follows the bleed, not the series.
    """
    box = head.box  # the cavity's: everything below happens there (the head, not the field of view)
    offset = np.array([b.start for b in box])
    cropped = _grow_cropped(volume[box], spacing, tuple(int(v) for v in np.array(seed) - offset), low, high, head)
    if cropped is None:
        return None
    full = np.zeros(volume.shape, bool)
    full[box] = cropped
    return full


def _grow_cropped(volume: np.ndarray, spacing: tuple[float, float, float], seed: tuple[int, ...],
                  low: float, high: float, head: Head) -> np.ndarray | None:
    cavity, shell, table = head.cavity[head.box], head.shell, head.table
    greys = head.slice_grey(volume, seed, high)
    # Roughly where the bleed lies, on the raw HU: a little below the low bound (the median
    # below closes noisy gaps the raw HU has) and through the shell as the smoothed growing does.
    inside, domain = head.rough_domain(volume, low, high)
    if shell[tuple(seed)]:  # a seed in the shell (a thin collection): let it grow from where it is
        shell = shell.copy()
        shell[tuple(seed)] = False
        domain = _open_at(domain, inside, tuple(seed), low - ROUGH_SLACK_HU, high)
    rough = sitk.GetArrayFromImage(sitk.ConnectedThreshold(
        itk_image(domain, spacing), seedList=[(int(seed[2]), int(seed[1]), int(seed[0]))],
        lower=float(low - ROUGH_SLACK_HU), upper=float(high), replaceValue=1)).astype(bool)
    rough[tuple(seed)] = True  # a noisy seed voxel may itself fall outside the range
    margin = np.array([1, BOX_MARGIN_PX, BOX_MARGIN_PX])
    extent = [np.flatnonzero(rough.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1))]
    lo = np.array([e[0] for e in extent]) - margin
    hi = np.array([e[-1] for e in extent]) + margin + 1
    shape = np.array(volume.shape)
    while True:
        lo, hi = np.maximum(lo, 0), np.minimum(hi, shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        region = _grow_in_box(inside[box], volume[box], cavity[box], shell[box], spacing,
                              tuple(int(v) for v in np.array(seed) - lo), low, high, head.grey, table,
                              greys[box[0]])
        if region is None:
            return None
        touches = [region[0].any(), region[-1].any(), region[:, 0].any(), region[:, -1].any(),
                   region[:, :, 0].any(), region[:, :, -1].any()]
        at_edge = [lo[0] == 0, hi[0] == shape[0], lo[1] == 0, hi[1] == shape[1], lo[2] == 0, hi[2] == shape[2]]
        if not any(t and not e for t, e in zip(touches, at_edge)):
            break
        lo, hi = np.zeros(3, int), shape.copy()  # it reached past the box: once more over the whole head
    full = np.zeros(volume.shape, bool)
    full[box] = region
    return follow_inner_table(volume, cavity, shell, full, spacing, seed, low, high, table,
                              smooth_mm=SMOOTH_MM, shell_mm=SHELL_MM, min_voxels=MIN_VOXELS, side=head.side,
                              bands=head.bands)


def _open_at(domain: np.ndarray, inside: np.ndarray, seed: tuple[int, ...], low: float, high: float) -> np.ndarray:
    """``domain`` (``Head.rough_domain``) as it reads with the seed's voxel out of the shell: open
    there, and where it is in ``low``-``high``, at its in-plane neighbours that are too."""
    opened = domain.copy()
    opened[seed] = inside[seed]
    if low <= inside[seed] <= high:
        k, i, j = seed
        for r, c in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= r < inside.shape[1] and 0 <= c < inside.shape[2] and low <= inside[k, r, c] <= high:
                opened[k, r, c] = inside[k, r, c]
    return opened


def _grow_in_box(inside: np.ndarray, raw: np.ndarray, inner: np.ndarray, shell: np.ndarray,
                 spacing: tuple[float, float, float], seed: tuple[int, ...], low: float, high: float,
                 grey: float | None, table: float, greys: np.ndarray) -> np.ndarray | None:
    pixel = min(spacing[1], spacing[2])
    radius = max(1, int(round(SMOOTH_MM / pixel)))
    median = median_3x3(inside) if radius == 1 else sitk.GetArrayFromImage(
        sitk.Median(itk_image(inside, spacing), [radius, radius, 0]))
    inner = inner & ~shell
    # The shell opens only where it touches blood outside it and is blood-like itself: a
    # thin subdural or epidural is mostly shell, and its pieces outside the shell join
    # through it; the band under normal brain borders no blood and stays closed.
    in_range = (median >= low) & (median <= high)
    bridge = shell & dilate(in_range & inner) & in_range
    median[shell & ~bridge] = -1000.0  # the rest of the shell is grown into only from inside, below
    inner = inner | bridge
    smooth = itk_image(median, spacing)
    seed_xyz = (int(seed[2]), int(seed[1]), int(seed[0]))
    region = _threshold_region(smooth, seed_xyz, low, high) & inner
    if not region.any():
        return None
    # The edge of a bleed is where a voxel is half blood, half brain: raise the low bound
    # to that midpoint when the bleed is much brighter than grey matter (the brightest
    # brain it borders), so a dense bleed does not take the cortex with it. Blood is read
    # around the seed (a region that has leaked would bias it towards brain).
    k, i, j = seed
    reach = max(1, int(round(SEED_DISC_MM / pixel)))
    r0, c0 = max(0, i - reach), max(0, j - reach)
    around = median[k, r0: i + reach + 1, c0: j + reach + 1]
    disc = around[(around >= low) & (around <= high)]
    blood = float(np.median(disc)) if disc.size else float(np.median(raw[region]))
    if _near_bone_at(raw, seed, spacing):  # the disc reads blood raised by the bone's blur
        clear = _blood_clear_of_bone(median, raw, region, spacing, low, high)
        blood = blood if clear is None else min(blood, clear)
    midpoint = low
    loose = region  # at the low bound: what joins the click through voxels half blood
    starts = [seed_xyz]
    if grey is not None and low + 1.0 < (blood + grey) / 2.0 < blood:
        midpoint = (blood + grey) / 2.0
        # from the click, else from the disc the blood was read on: a click whose smoothed voxel
        # reads a little below the midpoint (a noisy crescent) would otherwise fall back to the
        # low bound and take the brain (the demo clicked in its subdural grew 215 mL)
        in_disc = inner[k, r0: i + reach + 1, c0: j + reach + 1] & (around >= midpoint) & (around <= high)
        starts += [(int(c0 + c), int(r0 + r), int(k)) for r, c in zip(*np.nonzero(in_disc))]
        tighter = _threshold_region(smooth, seed_xyz, midpoint, high) & inner
        if not tighter.any() and len(starts) > 1:
            tighter = _threshold_region(smooth, starts, midpoint, high) & inner
        if tighter.any():
            region = tighter
        else:
            midpoint = low
    # Where the brain of a slice is brighter (the vertex under the skull cap's partial
    # volume, beam hardening), the edge of the bleed moves up with it: per slice, half way
    # between the blood grown so far and that slice's own grey matter.
    core = float(np.median(raw[region]))
    raise_by = np.nan_to_num(np.maximum((core + greys) / 2.0 - midpoint, 0.0))
    raised = np.full(len(raise_by), -np.inf)  # the per-slice bounds of the step below, where it raised them
    if raise_by.any() and core > midpoint:
        shifted = np.where(median <= high, median - raise_by[:, None, None].astype(np.float32), np.float32(-1000.0))
        shifted_image = itk_image(shifted, spacing)
        sliced = _threshold_region(shifted_image, seed_xyz, midpoint, high) & inner
        if not sliced.any() and len(starts) > 1:
            sliced = _threshold_region(shifted_image, starts, midpoint, high) & inner
        if sliced.any():
            region = sliced
            raised = np.where(raise_by > 0, midpoint + raise_by, -np.inf)
    joined = None
    if midpoint > low:  # blood as bright as the bleed that joins it only through its half-blood edge
        joined = _joined_through_edge(median, raw, region, loose, inner, np.maximum(raised, midpoint), high, blood,
                                       JOINED_MIN_ML * 1000.0 / float(np.prod(spacing)))
    if blood - midpoint < ISO_GATE_HU:  # a lesion just above its bound: out to its half-blood edge
        region |= _iso_level_band(median, raw, region, inner, pixel, blood, low, grey, raised, high)
    # Back into the shell along the inner table, a step at a time and only through blood or
    # blood half-volumed with bone: as far as the shell is deep, so it cannot run round the skull.
    accept = below_half_bone(raw, shell & (raw >= midpoint), blood, table, pixel)
    for _ in range(int(round(SHELL_MM / pixel)) + 2):
        added = dilate(region) & ~region & accept
        if not added.any():
            break
        region |= added
    # towards brain from the level the region was grown at (its midpoint with grey matter, where
    # that was raised) down to the half-blood level against the darker tissue around it (``rim``)
    region |= partial_volume_rim(raw, region, inner | shell, midpoint if DARK_RIM else None, table, pixel, blood,
                                 dark_rings(spacing[0], pixel))
    return region if joined is None else region | joined  # no rims: a thin sheet's would double it


def _near_bone_at(raw: np.ndarray, seed: tuple[int, ...], spacing: tuple[float, float, float]) -> bool:
    """Whether bone lies within ``SEED_NEAR_BONE_MM`` of the seed in its slice or the two
    beside it (a 5 mm slice averages in the bone of the skull base above or below it)."""
    k, i, j = seed
    reach = int(math.ceil(SEED_NEAR_BONE_MM / min(spacing[1], spacing[2]))) + 2  # the bone that can be near
    r0, c0 = max(0, i - reach), max(0, j - reach)
    for z in range(max(0, k - 1), min(raw.shape[0], k + 2)):
        bone = raw[z, r0: i + reach + 1, c0: j + reach + 1] >= BONE_HU
        at = (i - r0, j - c0)
        if bone[at] or bone_distance(bone, spacing, SEED_NEAR_BONE_MM)[at] <= SEED_NEAR_BONE_MM:
            return True
    return False


def _blood_clear_of_bone(median: np.ndarray, raw: np.ndarray, region: np.ndarray,
                         spacing: tuple[float, float, float], low: float, high: float) -> float | None:
    """The region's blood where the bone's blur does not reach it: ``CLEAR_PERCENTILE`` of its
    smoothed voxels in range at least ``CLEAR_OF_BONE_MM`` from bone in their slice (None when
    fewer than ``MIN_CLEAR_VOXELS``). A high percentile, as the region's own rim, half brain,
    is among these voxels."""
    reach = int(math.ceil(CLEAR_OF_BONE_MM / min(spacing[1], spacing[2]))) + 2  # the bone that can be near
    rows, cols = box_2d(region)
    rows = slice(max(0, rows.start - reach), rows.stop + reach)
    cols = slice(max(0, cols.start - reach), cols.stop + reach)
    clear = np.zeros_like(region[:, rows, cols])
    for k in np.flatnonzero(region.any(axis=(1, 2))):
        distance = bone_distance(raw[k, rows, cols] >= BONE_HU, spacing, CLEAR_OF_BONE_MM + 1.0)
        clear[k] = region[k, rows, cols] & (distance >= CLEAR_OF_BONE_MM)
    values = median[:, rows, cols][clear]
    values = values[(values >= low) & (values <= high)]
    return float(np.percentile(values, CLEAR_PERCENTILE)) if values.size >= MIN_CLEAR_VOXELS else None


def _iso_level_band(median: np.ndarray, raw: np.ndarray, region: np.ndarray, inner: np.ndarray, pixel: float,
                    blood: float, low: float, grey: float | None, raised: np.ndarray, high: float) -> np.ndarray:
    """Voxels near the region at or above the partial-volume iso-level of its edge.

    A lesion only a few HU above its bound loses its outer rim of half-blood voxels to the
    threshold (and the smoothing): its edge lies where a voxel reads half way between the
    lesion (read around the click) and what surrounds it (``rim.surround``). Within
    ``ISO_BAND_MM`` in-plane and one slice beyond the region, the smoothed voxels at or
    above that level are taken, never below the grey matter's level (below it the band
    takes the cortex the bleed touches) nor below a slice's raised bound (the vertex's
    bright brain). Connected to the region.
    """
    steps = max(1, int(round(ISO_BAND_MM / pixel)))
    near = region.copy()
    for _ in range(steps):
        near = dilate(near)
    band = near.copy()
    band[1:] |= near[:-1]
    band[:-1] |= near[1:]
    band &= inner & ~region
    outside = raw[surround(region, inner, pixel) & (raw < low)]
    if not outside.size:
        return np.zeros_like(region)
    level = (blood + float(np.median(outside))) / 2.0
    floor = np.maximum(raised, level if grey is None else max(level, grey))
    accept = band & (median >= floor[:, None, None]) & (median <= high)
    if not accept.any():
        return accept
    labels = _components(accept | region)
    joined = np.zeros(int(labels.max()) + 1, bool)
    joined[labels[region]] = True
    joined[0] = False
    return accept & joined[labels]


def _joined_through_edge(median: np.ndarray, raw: np.ndarray, region: np.ndarray, loose: np.ndarray, inner: np.ndarray,
                        bounds: np.ndarray, high: float, blood: float, min_voxels: float) -> np.ndarray:
    """Pieces that read at the region's own bound (``bounds``, per slice) and that join it only
    through voxels between that bound and the low one (``loose``, grown at the low bound).

    On a 5 mm slice a subdural's sheet along the falx or the tentorium meets its convexity part
    only through voxels the slab shares with brain: the raised bound parts them, the low one
    joins them (phantom seed 491's subdural: -19 % without its sheet). A piece is taken, without
    the half-blood voxels between and without its blurred halo (raw HU below the bound), where it
    has at least ``min_voxels``, lies on the region's own slices (beyond them the low bound runs
    along the brain-bone band at the vertex and the skull base: CT-ICH 087's epidural took 9 mL
    there) and reads as blood: its median at least half way from the bound to ``blood`` (noise
    along a faint edge reads just above the bound).
    """
    strong = inner & ~region & loose & (median >= bounds[:, None, None]) & (median <= high)
    strong[~region.any(axis=(1, 2))] = False  # on the region's own slices: beyond, the low bound runs along the bone
    loose_voxels = np.count_nonzero(loose)
    most = np.count_nonzero(region) + np.count_nonzero(strong)  # the region with every piece
    if not strong.any() or loose_voxels > JOINED_LOOSE_MAX * most:
        return np.zeros_like(strong)  # nothing to join, or the low bound ran into the brain (below)
    labels = _components(strong)
    keep = np.bincount(labels.ravel()) >= min_voxels
    keep[0] = False
    for label in np.flatnonzero(keep):  # a few at most
        piece = labels == label
        keep[label] = np.median(median[piece]) >= (np.median(bounds[np.nonzero(piece)[0]]) + blood) / 2.0
    joined = keep[labels] & (raw >= bounds[:, None, None])  # a thin sheet's blurred halo left out
    if loose_voxels > JOINED_LOOSE_MAX * np.count_nonzero(region | joined):
        return np.zeros_like(joined)  # the low bound ran into the brain: no edge joins them, a leak does
    return joined


def _threshold_region(smooth: sitk.Image, seeds: tuple[int, int, int] | list[tuple[int, int, int]], low: float,
                      high: float) -> np.ndarray:
    """Connected voxels in [low, high] from the seed (or seeds, (x, y, z); those outside the
    range start nothing), thin bridges cut, holes filled."""
    seed_list = seeds if isinstance(seeds, list) else [seeds]
    grown = sitk.ConnectedThreshold(smooth, seedList=seed_list, lower=float(low), upper=float(high), replaceValue=1)
    spacing = smooth.GetSpacing()
    return fill_slices(sitk.GetArrayFromImage(grown).astype(bool), MAX_HOLE_MM2 / (spacing[0] * spacing[1]))


def deepest_point(mask: np.ndarray, looks_like_blood: np.ndarray | None = None) -> tuple[int, int, int]:
    """Where a reader clicks to measure a known bleed (accuracy tests and bench): the pixel
    farthest inside ``mask`` on its largest slice, as (slice, row, col); given
    ``looks_like_blood``, the farthest of those pixels that do (where the slice has any): a
    reader clicks where the bleed shows, not in a dark swirl at its centre."""
    k = int(np.argmax(mask.sum(axis=(1, 2))))
    dist = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        sitk.GetImageFromArray(mask[k].astype(np.uint8)), insideIsPositive=True, squaredDistance=False,
        useImageSpacing=False))
    if looks_like_blood is not None and (mask[k] & looks_like_blood[k]).any():
        dist = np.where(mask[k] & looks_like_blood[k], dist, -np.inf)
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return k, int(i), int(j)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two masks (1 = identical)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def propose_seed(heat: np.ndarray, hu: np.ndarray, hu_range: tuple[float, float] = DEFAULT_HU,
                 cavity: np.ndarray | None = None, pixel_mm: float = 1.0) -> tuple[int, int] | None:
    """(row, col) where a slice's attention map is strongest over blood, or None.

    The classifier's attention is coarse and often peaks beside the blood (on the skull or
    the bright band under it): the seed is the hottest pixel whose ~1 mm median lies in
    the blood range, away from bone (``SHELL_MM``) and inside the cavity when given, so a
    proposed seed is one the growing accepts. The reader still sees the outline and decides.
    """
    heat = np.asarray(heat, np.float32)
    if heat.shape != hu.shape or not np.isfinite(heat).any() or float(np.nanmax(heat)) <= 0:
        return None
    layer = np.asarray(hu, np.float32)
    radius = max(1, int(round(1.0 / pixel_mm)))
    smooth = sitk.GetArrayFromImage(sitk.Median(sitk.GetImageFromArray(layer), [radius, radius]))
    seed_read = sitk.GetArrayFromImage(sitk.Median(sitk.GetImageFromArray(layer), [1, 1]))  # as grow_region reads it
    clearly = min(hu_range[0] + PROPOSE_MARGIN_HU, (hu_range[0] + hu_range[1]) / 2.0)  # not borderline brain
    allowed = (smooth >= clearly) & (smooth <= hu_range[1]) & (seed_read >= hu_range[0]) & (seed_read <= hu_range[1])
    allowed &= ~near_bone(layer[None], (1.0, pixel_mm, pixel_mm))[0] & (layer < BONE_HU)
    if cavity is not None:
        allowed &= cavity
    score = np.where(allowed, np.nan_to_num(heat), -1.0)
    index = int(np.argmax(score))
    if score.flat[index] <= 0:
        return None
    row, col = np.unravel_index(index, heat.shape)
    return int(row), int(col)
