"""The cranial cavity of a head CT, slice by slice: where a bleed may be grown.

Bone (>= ``BONE_HU``) is closed across small gaps on a coarse grid, holes are filled and
the bone removed; where that ring stays open, the skull base's thin plates close it too
(``THIN_BONE_HU``); a slice left with a skull-base compartment less than half its
neighbour's cavity is closed again with the wider gaps. Each slice is closed on its own.
Soft tissue of the scalp and neck has blood-like HU; without the cavity a region walks out
through a foramen into muscle.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ich_viewer.measure.planar import polygon_mask
from ich_viewer.measure.voxels import BONE_HU, convex_hull, largest_piece, row_ends
from ich_viewer.tasks import TaskState

BONE_GAPS_MM = (4.0, 12.0, 30.0)
"""Gaps in the skull closed before the cavity is filled, narrowest first: sutures and
vascular channels, then skull base foramina, then the foramen magnum on the lowest slices."""
THIN_BONE_HU = 150.0
"""Where the skull ring stays open at ``BONE_HU``, it is closed once more with bone down to
this: on 5 mm slices the thin plates of the skull base (orbital roof, sphenoid wing) are
partial-volumed with the brain and air beside them and read 100-300 HU, so the middle and
anterior fossae had no cavity and an epidural there could not be grown (phantom seed 19's
epidural lost its lowest slices, CT-ICH 066's epidural was cut to 2 slices, now 8). Only
those slices; everything of this density is then left out of their cavity. Soft tissue
(< 100 HU) never closes a ring."""
THIN_BONE_GAPS_MM = (4.0, 12.0)
"""The thin plates' gaps are closed only up to the skull base foramina: not the foramen
magnum's 30 mm, which at this density could close round the neck's vertebrae."""
COMPARTMENT_SHARE = 0.5
"""A slice's cavity less than this share of a neighbour's is one compartment of the skull base
(``_widen_compartments``): on 5 mm slices the cavity shrinks by at most a quarter from one
slice to the next towards the foramen magnum."""
WIDER_FACTOR = 1.5
"""A wider closing replaces such a compartment only where it encloses this much more."""
COARSE_MM = 2.0
"""Pixel size of the grid on which the skull ring is closed and filled."""
MIN_CAVITY_MM2 = 800.0
"""A filled ring smaller than this (8 cm²) is a sinus or an orbit, not the cranial cavity."""
BETWEEN_SHARE = 0.85
"""A slice whose ring stays open between two slices that have a cavity is closed by the convex
hull of its skull ring (``_close_between``) when that cavity lies at least this much within each
neighbour's and the neighbour's within it: on a 5 mm slice thin vault bone cut obliquely reads
below ``THIN_BONE_HU`` over 30 mm (CT-ICH 066's Im 17, whose epidural could not be grown across
it), and no closing bridges a gap that wide in a convex ring (a disc rolls round the outside)."""


def cranial_cavity(volume: np.ndarray, spacing: tuple[float, float, float], state: TaskState | None = None) -> np.ndarray:
    """bool (slices, rows, cols): inside the skull and not bone, slice by slice.

    The skull ring is closed and filled on a coarse grid (about 2 mm pixels; cheap), with
    wider closings tried in turn where the ring is open (skull base: foramen magnum,
    skull base foramina), then bone is removed at full resolution, so the cavity's edge is
    exact at the inner table. Where the ring stays open it is tried once more with the
    thin plates of the skull base (``THIN_BONE_HU``). A slice whose ring stays open has no
    cavity: nothing is grown there rather than leaking into the neck or scalp.
    """
    pixel = min(spacing[1], spacing[2])
    step = max(1, int(COARSE_MM // pixel))
    min_area_px = MIN_CAVITY_MM2 / (pixel * step) ** 2
    cavity = np.zeros(volume.shape, bool)
    todo = list(range(volume.shape[0]))
    for bone_hu, gaps in ((BONE_HU, BONE_GAPS_MM), (THIN_BONE_HU, THIN_BONE_GAPS_MM)):
        if not todo or (state is not None and state.cancelled()):
            break
        bone = volume[todo] >= bone_hu
        filled = _filled_rings(bone, pixel, step, gaps, min_area_px, state)
        for k, layer, layer_bone in zip(todo, filled, bone):
            if layer.any():
                cavity[k] = _full_size(layer, step, layer_bone.shape) & ~layer_bone
        todo = [k for k, layer in zip(todo, filled) if not layer.any()]
    if state is None or not state.cancelled():
        _widen_compartments(volume, cavity, pixel, step)
        _close_between(volume, cavity)
    return cavity


def _close_between(volume: np.ndarray, cavity: np.ndarray) -> None:
    """Slices without a cavity between two that have one, closed by their skull ring's convex hull in place.

    Without it such a slice stops every bleed that crosses it. The hull of the largest piece
    of bone (the ring; a head holder or a vertebra apart from it is left out), less the bone,
    is kept only when it is about the neighbours' cavity (``BETWEEN_SHARE``): a hull that
    takes in a face, or a ring open on both sides, is not.
    """
    areas = cavity.sum(axis=(1, 2))
    for k in range(1, len(areas) - 1):
        if areas[k] or not (areas[k - 1] and areas[k + 1]):
            continue
        bone = volume[k] >= BONE_HU
        ring = largest_piece(bone)
        rows, cols = np.nonzero(ring)
        if len(rows) < 3:
            continue
        hull = convex_hull(np.stack([rows, cols], axis=1)[row_ends(rows)])
        inside = polygon_mask(bone.shape, [(float(r), float(c)) for r, c in hull]) & ~bone
        if all(np.count_nonzero(inside & cavity[j]) >= BETWEEN_SHARE * max(np.count_nonzero(inside), areas[j])
               for j in (k - 1, k + 1)):
            cavity[k] = inside


def _widen_compartments(volume: np.ndarray, cavity: np.ndarray, pixel_mm: float, step: int) -> None:
    """Slices whose cavity is a compartment, not the ring round the brain, filled again in place.

    The narrowest closing that encloses 8 cm² ends the search; at the skull base that may be
    the anterior fossa between the orbital roofs while the ring round the middle and
    posterior fossae stays open (phantom seed 14's Im 8: the cavity a third of the next
    slice's, its epidural there lost). Where a slice's cavity is less than
    ``COMPARTMENT_SHARE`` of a neighbour's, the wider closings and the thin plates are tried
    in turn on it alone, and the first whose inside is ``WIDER_FACTOR`` times as large is kept.
    """
    areas = cavity.sum(axis=(1, 2))
    for k in np.flatnonzero(areas):
        beside = max(int(areas[k - 1]) if k > 0 else 0, int(areas[k + 1]) if k + 1 < len(areas) else 0)
        if areas[k] >= COMPARTMENT_SHARE * beside:
            continue
        options = [(bone_hu, gap) for bone_hu, gaps in ((BONE_HU, BONE_GAPS_MM), (THIN_BONE_HU, THIN_BONE_GAPS_MM))
                   for gap in gaps]
        for bone_hu, gap in options:
            bone = volume[k] >= bone_hu
            filled = _filled_rings(bone[None], pixel_mm, step, (gap,), 0.0, None)[0]
            inside = _full_size(filled, step, bone.shape) & ~bone
            if inside.sum() >= WIDER_FACTOR * areas[k]:
                cavity[k] = inside
                break


def _full_size(coarse: np.ndarray, step: int, shape: tuple[int, ...]) -> np.ndarray:
    """A slice's mask on the coarse grid (``step`` pixels a side) back on the full grid of ``shape``."""
    return np.repeat(np.repeat(coarse, step, axis=0), step, axis=1)[: shape[0], : shape[1]]


def _filled_rings(bone: np.ndarray, pixel_mm: float, step: int, gaps_mm: tuple[float, ...], min_area_px: float,
                  state: TaskState | None) -> np.ndarray:
    """Per slice of ``bone``, the coarse (``step`` pixels of ``pixel_mm``) inside of its closed ring, or nothing.

    Closings of ``gaps_mm`` are tried narrowest first on the slices still open; a filled
    ring smaller than ``min_area_px`` (a sinus, an orbit) does not count.
    """
    n, rows, cols = bone.shape
    cr, cc = -(-rows // step), -(-cols // step)
    padded = np.zeros((n, cr * step, cc * step), bool)
    padded[:, :rows, :cols] = bone
    coarse: np.ndarray = np.asarray(padded.reshape(n, cr, step, cc, step).any(axis=(2, 4)))
    filled = np.zeros(coarse.shape, bool)
    todo = [k for k in range(n) if coarse[k].any()]
    for gap_mm in gaps_mm:
        if not todo or (state is not None and state.cancelled()):
            break
        radius = max(1, int(round(gap_mm / 2.0 / (pixel_mm * step))))
        closed, holes = _close_and_fill_slices(coarse[todo], radius)
        done = (holes & ~closed).sum(axis=(1, 2)) >= min_area_px
        for k, ok, layer in zip(todo, done, holes):
            if ok:
                filled[k] = layer
        todo = [k for k, ok in zip(todo, done) if not ok]
    return filled


def _close_and_fill_slices(stack: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """In-plane closing and hole filling of every slice of ``stack`` in two SimpleITK calls.

    The slices are interleaved with all-foreground layers, so a 3D fill-hole sees each
    slice's background cut off from its neighbours: the result is slice-by-slice 2D
    filling, without a Python loop of small calls.
    """
    n, rows, cols = stack.shape
    pad = radius + 2
    framed = np.zeros((n, rows + 2 * pad, cols + 2 * pad), np.uint8)
    framed[:, pad:-pad, pad:-pad] = stack
    closed = _closing_in_plane(framed, radius)
    separated = np.ones((2 * n + 1, *framed.shape[1:]), np.uint8)
    separated[1::2] = closed
    filled = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(separated), False, 1))
    return closed[:, pad:-pad, pad:-pad].astype(bool), filled[1::2, pad:-pad, pad:-pad].astype(bool)


def _closing_in_plane(stack: np.ndarray, radius: float) -> np.ndarray:
    """Closing with a disc of ``radius`` pixels in every slice, by two distance maps.

    A distance map costs the same for any radius, where a structuring element of radius
    8 costs 200 times a radius 1; a huge slice spacing keeps slices apart. The erosion is
    1.5 pixels short of the dilation: distances are measured to the contour, and an exact
    erosion reopened gaps the dilation had just closed. The ring ends up at most one
    coarse pixel thicker, outside the bone, which no bleed can reach through the skull.

    The distance inside the dilated ring is measured to its contour found in each slice
    (``_contour_in_plane``), then as an outside distance: ITK's signed map finds the contour
    in 3D, where a pixel over the next slice's background is contour too, so a slice's
    closing depended on its neighbours' (at the skull base a ring that closed on its own
    reopened in the stack: phantom seed 22's Im 9 had no cavity, its epidural there was lost).
    """
    def distance(mask: np.ndarray, inside_positive: bool) -> np.ndarray:
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.SetSpacing((1.0, 1.0, 1.0e6))
        return sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
            image, insideIsPositive=inside_positive, squaredDistance=False, useImageSpacing=True))

    if not stack.any():
        return stack.astype(np.uint8)
    dilated = distance(stack, False) <= radius  # outside distances are exact per slice
    if dilated.all():
        return dilated.astype(np.uint8)
    inside = distance(_contour_in_plane(dilated), False)
    return (dilated & (inside > radius - 1.5)).astype(np.uint8) | stack.astype(np.uint8)


def _contour_in_plane(stack: np.ndarray) -> np.ndarray:
    """The pixels of each slice of ``stack`` with a background pixel among their 8 in-plane
    neighbours: the contour ITK's signed distance map measures to, slice by slice."""
    inner = stack.copy()
    inner[:, 1:, :] &= stack[:, :-1, :]
    inner[:, :-1, :] &= stack[:, 1:, :]
    inner[:, :, 1:] &= stack[:, :, :-1]
    inner[:, :, :-1] &= stack[:, :, 1:]
    inner[:, 1:, 1:] &= stack[:, :-1, :-1]
    inner[:, 1:, :-1] &= stack[:, :-1, 1:]
    inner[:, :-1, 1:] &= stack[:, 1:, :-1]
    inner[:, :-1, :-1] &= stack[:, 1:, 1:]
    return stack & ~inner
