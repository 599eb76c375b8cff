"""The faster pieces of following a thin collection give what the slower ones gave.

``voxels.bone_distance`` replaced ITK's whole signed Maurer map with one that stops at the band
under the inner table, and ``percentiles_by_layer`` a ``np.percentile`` call per depth
layer: the outlines must not move (docs/benchmarks.md, "Measure", 2026-11-29 08:04). Later
(2026-11-29 10:50–11:15): a median network for ITK's 3 x 3 Median, the hole filling in one tall 2D
image, the near-shift distance map cropped to its reach, the hull from each row's ends. Later still
(2026-11-30): what a cut leaves of a region labelled within its box, and the rough pass's domain found
once per series and opened at a click in the shell.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ich_viewer.measure.cavity import cranial_cavity
from ich_viewer.measure.follow import _near_shifted, percentiles_by_layer
from ich_viewer.measure.region import _open_at, _seed_component
from ich_viewer.measure.voxels import (BONE_HU, MEDIAN_9_NETWORK, bone_distance, convex_hull, dilate, fill_slices,
                                      median_3x3, median_at, row_ends)
from ich_viewer.phantom import generate_phantom


def _itk_distance(bone: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    image = sitk.GetImageFromArray((~bone).astype(np.uint8))
    image.SetSpacing((spacing[2], spacing[1]))
    return sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(image, insideIsPositive=True, squaredDistance=False,
                                                               useImageSpacing=True))


def test_band_distance_reads_as_the_whole_maurer_map_within_the_band():
    p = generate_phantom(seed=3, subtypes=["subdural"], matrix=256, thickness_mm=5.0)
    cavity = cranial_cavity(p.volume_hu, (p.spacing_mm, *p.pixel_spacing))
    for spacing in ((5.0, *p.pixel_spacing), (5.0, 0.5, 0.5), (5.0, 0.32, 0.32)):
        pixel = min(spacing[1], spacing[2])
        checked = 0
        for k in np.flatnonzero(cavity.any(axis=(1, 2)))[::3]:
            bone = p.volume_hu[k] >= BONE_HU
            full, band = _itk_distance(bone, spacing), bone_distance(bone, spacing, 3.0)
            inside = cavity[k]
            assert np.array_equal(inside & (full <= 3.0), inside & (band <= 3.0))
            within = inside & (full <= 3.0)
            # the depth layers and the shell that the following reads from it
            assert np.array_equal(np.rint(2 * full[within] / pixel), np.rint(2 * band[within] / pixel))
            assert np.array_equal(full[within] > 1.5, band[within] > 1.5)
            np.testing.assert_allclose(band[within], full[within], rtol=1e-4, atol=1e-4)  # ITK sums in float32
            checked += int(within.sum())
        assert checked > 1000


def test_distance_is_zero_beside_bone_corners_included_and_inf_beyond_the_band():
    bone = np.zeros((21, 21), bool)
    bone[10, 10] = True
    d = bone_distance(bone, (5.0, 0.5, 0.5), 3.0)
    assert d[9, 9] == 0.0 and d[10, 11] == 0.0  # beside it, corner to corner too
    assert d[10, 13] == 1.0 and d[10, 17] == 3.0 and np.isinf(d[10, 18]) and np.isinf(d[10, 10])


def test_layer_percentiles_are_numpys():
    rng = np.random.default_rng(5)
    for n in (0, 15, 300, 4000):
        layers = rng.integers(0, 13, n)
        values = rng.normal(30.0, 25.0, n).astype(np.float32)
        got = percentiles_by_layer(layers, values, 13, (50.0, 90.0))
        for layer in range(13):
            these = values[layers == layer]
            want = np.percentile(these, [50.0, 90.0]) if len(these) >= 20 else [np.nan, np.nan]
            assert np.array_equal(got[:, layer], want, equal_nan=True)


def test_median_network_picks_the_fifth_of_nine_for_every_zero_one_input():
    # a comparator network that selects right on all 0/1 inputs does on all inputs (the 0-1 principle)
    bits = [np.array([(n >> i) & 1 for n in range(512)], np.float32) for i in range(9)]
    for a, b in MEDIAN_9_NETWORK:
        bits[a], bits[b] = np.minimum(bits[a], bits[b]), np.maximum(bits[a], bits[b])
    ones = np.array([bin(n).count("1") for n in range(512)])
    assert np.array_equal(bits[4], (ones >= 5).astype(np.float32))


def test_median_3x3_is_itks_edges_and_ties_included():
    rng = np.random.default_rng(7)
    p = generate_phantom(seed=6, subtypes=["subdural"], matrix=256, thickness_mm=5.0)
    stacks = [p.volume_hu[8:14, 40:120, 30:100].astype(np.float32)]
    stacks += [rng.choice(np.array([-1000.0, 40.0, 55.0, 60.0], np.float32), size=(3, 7 + n, 5 + 2 * n))
               for n in range(4)]
    for stack in stacks:
        itk = sitk.GetArrayFromImage(sitk.Median(sitk.GetImageFromArray(stack), [1, 1, 0]))
        assert np.array_equal(median_3x3(stack), itk)
        where = rng.random(stack.shape[1:]) < 0.3
        at = median_at(stack[0], where, 1)
        assert np.array_equal(at[where], itk[0][where]) and np.all(at[~where] == -1000.0)


def _fill_slices_interleaved(mask: np.ndarray, max_hole_px: float) -> np.ndarray:
    """The 3D fill over slices interleaved with all-foreground layers that ``fill_slices`` replaced."""
    n, rows, cols = mask.shape
    stack = np.ones((2 * n + 1, rows + 2, cols + 2), np.uint8)
    stack[1::2] = 0
    stack[1::2, 1:-1, 1:-1] = mask
    filled = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(stack), False, 1))
    holes = filled[1::2, 1:-1, 1:-1].astype(bool) & ~mask
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(holes.astype(np.uint8))))
    small = np.bincount(labels.ravel()) <= max_hole_px
    small[0] = False
    return mask | small[labels]


def test_holes_filled_in_one_tall_image_as_over_interleaved_slices():
    rng = np.random.default_rng(11)
    for n in range(30):
        mask = rng.random((1 + n % 4, 6 + n, 9 + n % 7)) < 0.55 + 0.01 * n
        framed = np.zeros((mask.shape[0] + 3, mask.shape[1] + 9, mask.shape[2] + 5), bool)
        framed[2: 2 + mask.shape[0], 4: 4 + mask.shape[1], 1: 1 + mask.shape[2]] = mask  # read within its box only
        for max_hole in (1.0, 4.0, 1e9):
            assert np.array_equal(fill_slices(mask, max_hole), _fill_slices_interleaved(mask, max_hole))
            assert np.array_equal(fill_slices(framed, max_hole), _fill_slices_interleaved(framed, max_hole))
    assert not fill_slices(np.zeros((3, 5, 5), bool), 4.0).any()


def test_near_shifted_cropped_reads_as_the_whole_window():
    rng = np.random.default_rng(3)

    def distance_to(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.SetSpacing((spacing[2], spacing[1]))
        return sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(image, insideIsPositive=False,
                                                                   squaredDistance=False, useImageSpacing=True))
    for n in range(60):
        previous = np.zeros((120, 150), bool)
        r, c = rng.integers(5, 110), rng.integers(5, 140)
        previous[r: r + rng.integers(1, 25), c: c + rng.integers(1, 15)] = True
        previous &= rng.random(previous.shape) < 0.8
        if not previous.any():
            continue
        cavity = np.zeros_like(previous)
        cavity[rng.integers(0, 90):] = True  # sometimes all of the previous piece, sometimes not
        spacing = (5.0, float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.3, 1.0)))
        moved = np.maximum(distance_to(cavity, spacing)[previous], 0.0)
        whole = distance_to(previous, spacing) <= 3.0 + min(float(np.percentile(moved, 90)), 8.0)
        assert np.array_equal(_near_shifted(previous, cavity, spacing), whole)


def test_hull_of_row_ends_is_the_hull_of_all_points():
    rng = np.random.default_rng(2)
    for n in range(40):
        rows, cols = np.nonzero(rng.random((5 + n, 30)) < 0.3)
        points = np.column_stack([rows * 0.45, cols * 0.5])
        assert np.array_equal(convex_hull(points[row_ends(rows)]), convex_hull(points))


def _seed_component_whole(mask: np.ndarray, seed: tuple[int, int, int], before: np.ndarray) -> np.ndarray:
    """``region._seed_component`` as it was, labelling the whole series."""
    def components(m: np.ndarray) -> np.ndarray:
        return sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(m.astype(np.uint8))))
    labels = components(mask)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = int(labels[seed]) or int(np.argmax(sizes))
    if not keep:
        return mask
    pieces_before = components(before)
    piece_of = np.zeros(len(sizes), np.int64)
    piece_of[labels[labels > 0]] = pieces_before[labels > 0]
    chosen = {int(piece_of[keep]): keep}
    for part in np.argsort(-sizes):
        if sizes[part] and int(piece_of[part]) not in chosen:
            chosen[int(piece_of[part])] = int(part)
    return np.isin(labels, list(chosen.values()))


def test_what_a_cut_leaves_labelled_within_its_box_is_what_the_whole_series_gave():
    rng = np.random.default_rng(5)
    for n in range(80):
        before = np.zeros((12, 40, 50), bool)
        for _ in range(1 + n % 4):  # pieces, some touching
            k, r, c = rng.integers(0, 10), rng.integers(0, 34), rng.integers(0, 42)
            before[k: k + rng.integers(1, 4), r: r + rng.integers(2, 8), c: c + rng.integers(2, 10)] = True
        mask = before & (rng.random(before.shape) < 0.6 + 0.004 * n)  # a cut only removes
        if n % 5 == 0:
            mask[:, :, int(rng.integers(0, 50))] = False  # a cut through every piece
        inside = np.argwhere(before)
        seed = tuple(int(v) for v in inside[rng.integers(len(inside))]) if n % 3 else (
            int(rng.integers(0, 12)), int(rng.integers(0, 40)), int(rng.integers(0, 50)))  # sometimes outside
        assert np.array_equal(_seed_component(mask, seed, before), _seed_component_whole(mask, seed, before))
    empty = np.zeros((3, 4, 4), bool)
    assert not _seed_component(empty, (1, 1, 1), empty).any()


def test_the_rough_domain_opened_at_a_click_in_the_shell_reads_as_one_found_with_the_shell_open_there():
    """``Head.rough_domain`` is found once per series; a click in the shell opens it there as the
    rough pass did when it found the domain with the click's voxel out of the shell."""
    rng = np.random.default_rng(8)
    low, high = 40.0, 90.0

    def domain(inside: np.ndarray, shell: np.ndarray) -> np.ndarray:
        near = (inside >= low) & (inside <= high)
        return np.where(shell & ~(dilate(near & ~shell) & near), np.float32(-1000.0), inside)

    for n in range(200):
        inside = rng.choice(np.array([-1000.0, 20.0, 50.0, 70.0, 300.0], np.float32), size=(3, 7, 8))
        shell = rng.random(inside.shape) < 0.5
        seed = (int(rng.integers(0, 3)), int(rng.integers(0, 7)), int(rng.integers(0, 8)))
        shell[seed] = True
        opened_shell = shell.copy()
        opened_shell[seed] = False
        assert np.array_equal(_open_at(domain(inside, shell), inside, seed, low, high), domain(inside, opened_shell))
