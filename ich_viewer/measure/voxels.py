"""HU facts and voxel-array helpers shared by the growing, its cavity and its following.

Arrays are (slices, rows, columns); "in-plane" means within each slice, as a 5 mm axial CT
is read. The 3x3 median and the bone distance are written for the speed of the growing on a
512² series (``tests/test_measure_follow_speed.py`` checks each against what it replaced).
"""
from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

BONE_HU = 300.0
"""Above this a voxel is bone (or calcification) for the cavity and the seed check."""
AIR_HU = -200.0
"""Below this a seed is in air, outside the head."""


def itk_image(array: np.ndarray, spacing: tuple[float, float, float]) -> sitk.Image:
    """``array`` (slices, rows, columns) as an ITK image, whose spacing is (x, y, z)."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))
    return image


def voxels_ml(voxels: float | np.integer, spacing: tuple[float, float, float]) -> float:
    """``voxels`` voxels of ``spacing`` (mm) in mL."""
    return float(voxels) * spacing[0] * spacing[1] * spacing[2] / 1000.0


def dilate(mask: np.ndarray) -> np.ndarray:
    """One-voxel in-plane (4-neighbour) dilation."""
    out = mask.copy()
    out[:, 1:, :] |= mask[:, :-1, :]
    out[:, :-1, :] |= mask[:, 1:, :]
    out[:, :, 1:] |= mask[:, :, :-1]
    out[:, :, :-1] |= mask[:, :, 1:]
    return out


def box_2d(mask: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns where a stack of slices (``mask``, not empty) holds anything."""
    rs, cs = np.flatnonzero(mask.any(axis=(0, 2))), np.flatnonzero(mask.any(axis=(0, 1)))
    return slice(int(rs[0]), int(rs[-1]) + 1), slice(int(cs[0]), int(cs[-1]) + 1)


def largest_piece(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected piece of a slice's mask (all of it when it has one piece)."""
    box, labels = pieces_in_box(mask)
    sizes = np.bincount(labels.ravel())
    if len(sizes) <= 2:
        return mask
    sizes[0] = 0
    largest = np.zeros_like(mask)
    largest[box] = labels == int(np.argmax(sizes))
    return largest


def pieces(mask: np.ndarray, corners: bool = False) -> np.ndarray:
    """A slice's connected pieces (labels, 0 outside), found within the mask's bounding box only."""
    labels = np.zeros(mask.shape, np.uint32)
    box, in_box = pieces_in_box(mask, corners)
    labels[box] = in_box
    return labels


def pieces_in_box(mask: np.ndarray, corners: bool = False) -> tuple[tuple[slice, slice], np.ndarray]:
    """A slice's mask's bounding box and its pieces' labels there (an empty box for an empty
    mask): the rest of a slice is background, not worth a pass over its whole size."""
    rs, cs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rs):
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), np.uint32)
    box = (slice(int(rs[0]), int(rs[-1]) + 1), slice(int(cs[0]), int(cs[-1]) + 1))
    image = sitk.GetImageFromArray(mask[box].astype(np.uint8))
    return box, sitk.GetArrayFromImage(sitk.ConnectedComponent(image, corners))


def median_at(image: np.ndarray, where: np.ndarray, radius: int) -> np.ndarray:
    """The in-plane median of ``image`` over a (2 radius + 1)² square, only at ``where`` (-1000
    elsewhere): the band along the inner table is a small part of the window around it."""
    out = np.full(image.shape, np.float32(-1000.0))
    rows, cols = np.nonzero(where)
    if not len(rows):
        return out
    padded = np.pad(image, radius, mode="edge")
    size = 2 * radius + 1
    values = [padded[rows + dr, cols + dc] for dr in range(size) for dc in range(size)]
    out[rows, cols] = median_of_9(values) if size == 3 else np.median(np.stack(values), axis=0)
    return out


MEDIAN_9_NETWORK = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8), (4, 7),
                    (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))
"""Paeth's 19 exchanges after which the 5th of 9 values is their median (checked on all 0/1 inputs in the tests)."""


def median_of_9(values: list[np.ndarray]) -> np.ndarray:
    """The element-wise median of nine equal-shaped arrays by ``MEDIAN_9_NETWORK``: the same
    value as any exact median (it is one of the nine), without sorting each pixel's nine."""
    v = list(values)
    for a, b in MEDIAN_9_NETWORK:
        v[a], v[b] = np.minimum(v[a], v[b]), np.maximum(v[a], v[b])
    return v[4]


def _median_of_3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def median_3x3(stack: np.ndarray) -> np.ndarray:
    """The in-plane 3 x 3 median of every slice, edge pixels repeated outward as ITK's Median
    does: the same numbers, in about a quarter of ITK's time (docs/benchmarks.md).

    Each column of three is sorted once and shared by the three pixels beside it; the median of
    the nine is then the median of the largest low, the median middle and the smallest high of
    the three columns: half the time of ``median_of_9`` on every pixel's nine."""
    padded = np.pad(stack, ((0, 0), (1, 1), (1, 1)), mode="edge")
    rows, cols = stack.shape[1:]
    above, here, below = padded[:, :rows], padded[:, 1: rows + 1], padded[:, 2: rows + 2]
    low, high = np.minimum(above, here), np.maximum(above, here)
    middle = np.maximum(low, below)
    low = np.minimum(low, below)
    middle, high = np.minimum(high, middle), np.maximum(high, middle)
    left, centre, right = slice(0, cols), slice(1, cols + 1), slice(2, cols + 2)
    most_low = np.maximum(np.maximum(low[..., left], low[..., centre]), low[..., right])
    least_high = np.minimum(np.minimum(high[..., left], high[..., centre]), high[..., right])
    return _median_of_3(most_low, _median_of_3(middle[..., left], middle[..., centre], middle[..., right]), least_high)


def bone_distance(bone: np.ndarray, spacing: tuple[float, float, float], within_mm: float) -> np.ndarray:
    """In-plane distance (mm) of each pixel of a slice from its bone, where it is at most
    ``within_mm`` (inf beyond it and in the bone).

    As ITK's signed Maurer map measures it (0 on the pixels beside the bone, corners
    included), but only out to the band under the inner table: per row the nearest such
    pixel, then the nearest over the rows within ``within_mm``, a fraction of the cost of
    the whole map.
    """
    near = bone.copy()
    near[1:] |= bone[:-1]
    near[:-1] |= bone[1:]
    beside = near.copy()
    beside[:, 1:] |= near[:, :-1]
    beside[:, :-1] |= near[:, 1:]
    beside &= ~bone
    cols = np.arange(bone.shape[1])
    far = 2 * bone.shape[1] + 1
    left = cols - np.maximum.accumulate(np.where(beside, cols, -far), axis=1)
    right = np.minimum.accumulate(np.where(beside, cols, far)[:, ::-1], axis=1)[:, ::-1] - cols
    squared = (np.minimum(left, right) * float(spacing[2])) ** 2
    nearest = squared.copy()
    for dy in range(1, int(math.ceil(within_mm / float(spacing[1]))) + 1):
        step = (dy * float(spacing[1])) ** 2
        np.minimum(nearest[dy:], squared[:-dy] + step, out=nearest[dy:])
        np.minimum(nearest[:-dy], squared[dy:] + step, out=nearest[:-dy])
    distance = np.sqrt(nearest).astype(np.float32)
    distance[(distance > within_mm) | bone] = np.inf
    return distance


def fill_slices(mask: np.ndarray, max_hole_px: float) -> np.ndarray:
    """Holes filled slice by slice (a clot's darker core or a noisy pixel is still blood).

    One 2D fill-hole over the slices stacked into one tall image, each framed by a pixel of
    background that reaches the image's sides, does it: only in-plane holes fill (half the
    voxels of a 3D fill over slices interleaved with all-foreground layers). Only the slices
    and the rows and columns the mask holds are read: a hole lies within its mask's box.
    """
    ks = np.flatnonzero(mask.any(axis=(1, 2)))
    if not ks.size:
        return mask
    box = (slice(int(ks[0]), int(ks[-1]) + 1), *box_2d(mask))
    filled = mask.copy()
    filled[box] = _fill_small_holes(mask[box], max_hole_px)
    return filled


def _fill_small_holes(mask: np.ndarray, max_hole_px: float) -> np.ndarray:
    n, rows, cols = mask.shape
    framed = np.zeros((n, rows + 2, cols + 2), np.uint8)
    framed[:, 1:-1, 1:-1] = mask
    tall = sitk.GetImageFromArray(framed.reshape(n * (rows + 2), cols + 2))
    filled = sitk.GetArrayFromImage(sitk.BinaryFillhole(tall, False, 1)).reshape(framed.shape)
    holes = filled[:, 1:-1, 1:-1].astype(bool) & ~mask
    if not holes.any():
        return mask
    # Only small holes: a region that rings the brain on a slice must not swallow it.
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(holes.astype(np.uint8))))
    sizes = np.bincount(labels.ravel())
    small = sizes <= max_hole_px
    small[0] = False
    return mask | small[labels]


def row_ends(rows: np.ndarray) -> np.ndarray:
    """Of points in raster order (rows as ``np.nonzero`` gives them), the first and last of each
    row: every vertex of their convex hull is one, and a thin crescent's edge holds thousands."""
    change = rows[1:] != rows[:-1]
    return np.concatenate([[True], change]) | np.concatenate([change, [True]])


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of 2D points, counter-clockwise from the lowest (row, col)
    (ABC/2's diameter lies between hull vertices; an open skull ring is closed by it)."""
    pts = np.unique(points, axis=0)
    if len(pts) <= 2:
        return pts
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    pts = pts[order]

    def half(seq: list[list[float]]) -> list[list[float]]:
        chain: list[list[float]] = []
        for p in seq:
            while len(chain) >= 2:
                a, b = chain[-2], chain[-1]
                if (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) <= 0:
                    chain.pop()
                else:
                    break
            chain.append(p)
        return chain

    listed = pts.tolist()  # Python floats: the same doubles, without numpy's cost per scalar
    lower, upper = half(listed), half(listed[::-1])
    return np.array(lower[:-1] + upper[:-1])
