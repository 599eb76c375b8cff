"""Measurement core: exact values on analytic shapes, clear refusals, phantom accuracy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ich_viewer.dicom.model import Series
from ich_viewer.measure.abc2 import abc2
from ich_viewer.measure.cavity import cranial_cavity
from ich_viewer.measure.planar import (Calibration, angle_deg, distance, ellipse_stats, midline_shift,
                                       polygon_area, polygon_mask, polygon_stats)
from ich_viewer.measure.region import deepest_point, dice, grow_region
from ich_viewer.measure.series import calibration, grow_in_series, seed_from_mm, voxel_spacing
from ich_viewer.measure.voxels import dilate, median_3x3

CAL = Calibration(0.5, 0.25)


def test_ruler_angle_and_midline_in_mm_from_pixel_spacing():
    assert distance((0, 0), (6, 16), CAL) == pytest.approx(5.0)  # 3 mm down, 4 mm across
    assert angle_deg((0, 10), (0, 0), (10, 0), CAL) == pytest.approx(90.0)
    assert angle_deg((10, 20), (0, 0), (0, 40), CAL) == pytest.approx(45.0)  # 5 mm x 5 mm arm
    shift = midline_shift((0, 100), (200, 100), (50, 120), CAL)  # 20 px x 0.25 mm
    assert shift.shift == pytest.approx(5.0) and shift.unit == "mm"
    assert midline_shift((0, 100), (200, 100), (50, 80), CAL).side != shift.side
    with pytest.raises(ValueError):
        angle_deg((1, 1), (1, 1), (2, 2), CAL)


def test_without_pixel_spacing_lengths_are_pixels_and_say_so():
    cal = Calibration.pixels()
    assert distance((0, 0), (3, 4), cal) == pytest.approx(5.0)
    assert cal.unit == "px" and "not mm" in cal.note


def test_polygon_roi_exact_on_a_rectangle():
    image = np.zeros((50, 60), np.float32)
    image[10:20, 20:40] = 70.0
    image[15:20, 20:40] = 30.0
    square = [(9.5, 19.5), (9.5, 39.5), (19.5, 39.5), (19.5, 19.5)]  # pixel edges
    mask = polygon_mask(image.shape, square)
    assert mask.sum() == 200 and mask[10:20, 20:40].all()
    stats = polygon_stats(image, square, CAL)
    assert stats.pixels == 200 and stats.mean == pytest.approx(50.0) and stats.sd == pytest.approx(20.0)
    assert (stats.min, stats.max) == (30.0, 70.0)
    assert stats.area == pytest.approx(10 * 0.5 * 20 * 0.25) and stats.area_unit == "mm²"
    assert polygon_area([(0, 0), (0, 4), (3, 0)], Calibration()) == pytest.approx(6.0)


def test_ellipse_roi_area_and_mean():
    yy, xx = np.mgrid[:200, :200]
    image = (yy * 0 + 40.0).astype(np.float32)
    stats = ellipse_stats(image, (100, 100), (40, 60), CAL)
    assert stats.area == pytest.approx(math.pi * 20 * 15)
    assert stats.mean == pytest.approx(40.0) and stats.sd == pytest.approx(0.0)
    assert stats.pixels == pytest.approx(math.pi * 40 * 60, rel=0.01)


def _skull(shape=(30, 160, 160), blood=None, spacing=(2.0, 1.0, 1.0), noise=0.0, seed=0):
    """Brain 30 HU in a 1000 HU skull ring, air outside, optionally a blood ellipsoid (60 HU)."""
    n, rows, cols = shape
    z, y, x = np.mgrid[:n, :rows, :cols].astype(np.float32)
    r = np.hypot(y - rows / 2, x - cols / 2)
    volume = np.full(shape, -1000.0, np.float32)
    volume[r < 70] = 1000.0
    volume[r < 62] = 30.0
    truth = np.zeros(shape, bool)
    if blood is not None:
        (cz, cy, cx), (az, ay, ax) = blood
        truth = ((z - cz) * spacing[0] / az) ** 2 + ((y - cy) * spacing[1] / ay) ** 2 + ((x - cx) * spacing[2] / ax) ** 2 <= 1
        volume[truth] = 60.0
    if noise:
        volume += np.random.default_rng(seed).normal(0, noise, shape).astype(np.float32)
    return volume, truth


def test_sphere_volume_and_abc2_match_analytic_values():
    spacing = (1.0, 1.0, 1.0)
    volume, truth = _skull((40, 160, 160), blood=((20, 80, 80), (12, 12, 12)), spacing=spacing, noise=3.0)
    region = grow_region(volume, spacing, (20, 80, 80))
    assert region.ok, region.reason
    analytic_ml = 4 / 3 * math.pi * 12 ** 3 / 1000
    assert region.volume_ml == pytest.approx(analytic_ml, rel=0.05)
    assert dice(region.mask, truth) > 0.95
    assert region.abc2.a_mm == pytest.approx(25, abs=1.5) and region.abc2.b_mm == pytest.approx(25, abs=1.5)
    assert region.abc2_ml == pytest.approx(25 ** 3 / 2000, rel=0.15)
    assert region.slices == list(range(9, 32)) and region.mean_hu == pytest.approx(60, abs=3)  # poles: 1 voxel


def test_abc2_of_a_box_is_exact():
    mask = np.zeros((10, 50, 50), bool)
    mask[2:6, 10:30, 20:25] = True
    est = abc2(mask, (5.0, 0.5, 0.5))
    assert est.a_mm == pytest.approx(math.hypot(10, 2.5), rel=0.01)
    assert est.c_mm == 20.0 and est.slice_index == 2


@pytest.mark.parametrize("seed, words", [
    ((15, 80, 5), "air"), ((15, 80, 13), "bone"), ((15, 80, 80), "blood range"), ((99, 0, 0), "outside the series"),
])
def test_bad_seeds_say_why_and_grow_nothing(seed, words):
    volume, _ = _skull(blood=((15, 60, 60), (8, 8, 8)))
    region = grow_region(volume, (2.0, 1.0, 1.0), seed)
    assert not region.ok and region.mask is None and words in region.reason and region.volume_ml == 0


def test_seed_in_the_scalp_is_outside_the_cavity():
    volume, _ = _skull()
    rr = np.hypot(*np.mgrid[:160, :160] - 80)
    volume[:, (rr >= 70) & (rr < 75)] = 50.0  # blood-like scalp outside the skull
    region = grow_region(volume, (2.0, 1.0, 1.0), (15, 80, 7))
    assert not region.ok and "cranial cavity" in region.reason


def _skull_with_open_arc(arc_hu):
    """The skull ring's left third reads ``arc_hu`` instead of bone, a blood ball in the middle."""
    volume, truth = _skull(blood=((15, 80, 80), (10, 10, 10)))
    rr = np.hypot(*np.mgrid[:160, :160] - 80)
    arc = (rr >= 62) & (rr < 70) & (np.mgrid[:160, :160][1] < 40)
    volume[:, arc] = arc_hu
    return volume, truth, arc


def test_a_thin_skull_base_plate_closes_the_cavity_but_soft_tissue_does_not():
    """On 5 mm slices the orbital roof and sphenoid wing read 100-300 HU: the ring is open at
    bone's 300 HU far wider than any gap closed, the slice had no cavity and an epidural there
    could not be grown. The ring is closed with the plates where bone alone leaves it open."""
    volume, truth, arc = _skull_with_open_arc(200.0)
    cavity = cranial_cavity(volume, (2.0, 1.0, 1.0))
    assert cavity[15, 80, 80] and not (cavity[:, arc]).any()  # the plate itself is not cavity
    region = grow_region(volume, (2.0, 1.0, 1.0), (15, 80, 80), cavity=cavity)
    assert region.ok, region.reason
    assert dice(region.mask, truth) > 0.9
    muscle, _, _ = _skull_with_open_arc(80.0)  # soft tissue never closes a ring
    refused = grow_region(muscle, (2.0, 1.0, 1.0), (15, 80, 80))
    assert not refused.ok and "cranial cavity" in refused.reason


def test_each_slice_closes_its_skull_ring_on_its_own():
    """A ring with a gap that only the 12 mm closing spans gets the same cavity in a stack as
    alone: the erosion's contour was found in 3D, so a slice between slices whose rings stay
    open lost its cavity (phantom seed 22's epidural lost a skull-base slice)."""
    rows, cols = np.mgrid[:160, :160]
    rr = np.hypot(rows - 80, cols - 80)
    layer = np.where(rr < 75, 35.0, -1000.0).astype(np.float32)
    layer[(rr >= 62) & (rr < 70) & ~((np.abs(cols - 80) < 4) & (rows < 80))] = 1200.0  # an 8 mm gap
    alone = cranial_cavity(layer[None], (5.0, 1.0, 1.0))[0]
    assert alone[80, 80] and alone.sum() > 0.9 * (rr < 62).sum()
    open_ring = np.where(rr < 46, 35.0, -1000.0).astype(np.float32)  # a smaller ring, open on one side
    open_ring[(rr >= 40) & (rr < 46) & (cols < 100)] = 1200.0
    stacked = cranial_cavity(np.stack([open_ring, layer, open_ring]), (5.0, 1.0, 1.0))
    assert np.array_equal(stacked[1], alone) and not stacked[0].any()


def test_a_skull_base_compartment_does_not_stand_for_the_slice_cavity():
    """The narrowest closing that encloses 8 cm² ended the search: at the skull base that may
    be a compartment (the anterior fossa between the orbital roofs) while the ring round the
    brain stays open wider (phantom seed 14's epidural lost a slice). A slice whose cavity is
    less than half its neighbour's is closed again with the wider gaps."""
    rows, cols = np.mgrid[:160, :160]
    rr, small = np.hypot(rows - 80, cols - 80), np.hypot(rows - 105, cols - 80)

    def layer(gap: bool) -> np.ndarray:
        out = np.where(rr < 75, 35.0, -1000.0).astype(np.float32)
        ring = (rr >= 62) & (rr < 70)
        if gap:  # 20 mm: only the foramen magnum's closing spans it
            ring &= ~((np.abs(cols - 80) < 10) & (rows < 80))
        out[ring] = 1200.0
        out[(small >= 20) & (small < 23)] = 1200.0  # a closed compartment of 12 cm²
        return out

    cavity = cranial_cavity(np.stack([layer(False), layer(True), layer(False)]), (5.0, 1.0, 1.0))
    assert cavity[1, 105, 80] and cavity[1, 40, 80]  # the compartment and the brain round it
    assert cavity[1].sum() > 0.9 * cavity[0].sum()
    assert not cavity[1][rr >= 73].any()  # nothing out through the gap


def test_a_vault_slice_open_wider_than_any_gap_is_closed_between_its_neighbours(monkeypatch):
    """On a 5 mm slice thin vault bone cut obliquely read below 150 HU over 30 mm (CT-ICH 066's
    Im 17): the slice had no cavity and its epidural could not be grown across it. Between two
    slices with a cavity such a slice is closed by its skull ring's convex hull, kept only when
    it gives about their brain; a ring open that wide at the top of the stack is not."""
    from ich_viewer.measure import cavity as cavity_module

    volume, truth = _skull(blood=((15, 80, 80), (10, 10, 10)))
    rows, cols = np.mgrid[:160, :160]
    rr, angle = np.hypot(rows - 80, cols - 80), np.arctan2(rows - 80, cols - 80)
    volume[15][(rr >= 62) & (rr < 70) & (np.abs(angle) < 0.3)] = 120.0  # 40 mm of the ring
    cavity = cranial_cavity(volume, (2.0, 1.0, 1.0))
    assert 0.9 * cavity[14].sum() < cavity[15].sum() < 1.1 * cavity[14].sum()
    assert not cavity[15][rr >= 70].any()  # nothing out through the gap
    region = grow_region(volume, (2.0, 1.0, 1.0), (12, 80, 80), cavity=cavity)
    assert region.ok and 15 in region.slices and dice(region.mask, truth) > 0.9

    monkeypatch.setattr(cavity_module, "_close_between", lambda *args: None)
    before = cranial_cavity(volume, (2.0, 1.0, 1.0))
    assert not before[15].any()
    cut = grow_region(volume, (2.0, 1.0, 1.0), (12, 80, 80), cavity=before)
    assert cut.ok and max(cut.slices) < 15  # the old cavity stopped the bleed at the open slice
    monkeypatch.undo()
    top = volume.copy()
    top[-1] = volume[15]  # the same opening on the last slice: no neighbour above to agree with
    assert not cranial_cavity(top, (2.0, 1.0, 1.0))[-1].any()


def test_empty_hu_range_is_refused():
    volume, _ = _skull(blood=((15, 60, 60), (8, 8, 8)))
    region = grow_region(volume, (2.0, 1.0, 1.0), (15, 60, 60), (90, 45))
    assert not region.ok and "empty" in region.reason


def test_series_wrapper_seed_mm_and_missing_pixel_spacing():
    volume, truth = _skull(blood=((15, 60, 60), (10, 10, 10)), spacing=(2.0, 0.5, 0.5))
    series = Series.from_array(volume, spacing_mm=2.0, pixel_spacing=(0.5, 0.5))
    assert voxel_spacing(series) == (2.0, 0.5, 0.5)
    assert seed_from_mm(series, (30.0, 30.0, 30.0)) == (15, 60, 60)  # x = col * 0.5, y = row * 0.5
    with pytest.raises(ValueError, match="outside"):
        seed_from_mm(series, (30.0, 30.0, 500.0))
    region = grow_in_series(series, (15, 60, 60))
    assert region.ok and dice(region.mask, truth) > 0.9
    for header in series.slices:
        header.pixel_spacing_known = False
    assert calibration(series).unit == "px"
    uncal = grow_in_series(series, (15, 60, 60))
    assert not uncal.calibrated and any("not a real mL" in n for n in uncal.notes)


# Phantoms whose bleed is >= 5 mL and at least ~10 HU denser than grey matter (an isodense
# bleed cannot be thresholded by anyone). The full table, failures included, is in
# docs/benchmarks.md ("measure"). The simulated reader (``reader_clicks``) clicks the point
# deepest inside each separate piece of the true mask of at least 1 mL that reads as blood,
# largest piece first, at the default 45-90 HU, no setting per phantom: the window offers
# exactly that (click, then Shift+click on each further piece). Seeds 0-23, which the rules
# were tuned on; on seeds they were not tuned on fewer meet the goal (docs/measure.md).
ACCURACY_CASES = [
    (2, "intraparenchymal"), (6, "intraparenchymal"),
    (19, "intraparenchymal"),  # 4 HU above the bound: the edge at the partial-volume iso-level
    (0, "subdural"),
    (4, "subdural"),  # three tentorial pieces apart from its convexity part: four clicks
    (16, "subdural"),  # with a sheet along the falx, 2 px wide (measure.sheet)
    (0, "epidural"), (2, "epidural"), (4, "epidural"), (6, "epidural"), (7, "epidural"),
    (14, "epidural"), (16, "epidural"), (20, "epidural"),
    (19, "epidural"),  # its lowest slices lie under the orbital roof, which reads 100-300 HU (THIN_BONE_HU)
]
"""Every bleed of seeds 0-23 that meets the goal against masks that count every voxel at least half
blood (the phantom's slices painted on five planes, 2026-11-30): 15 of 24. Not here (docs/measure.md):
seed 1's and 11's epidurals (-17 %) and 11's thin subdural (-18 %), 20's subdural (10 HU over grey
matter: +5.2 %, Dice 0.83), 14's and 19's subdurals, clicked on a thin layer of blood on the floor of
the anterior fossa that is the bleed's largest slice (-96 %: a reader clicks the crescent), and, since
the rings towards brain on the 256 grid are one, not two (``rim.DARK_RIM_MM``, fifteenth session),
2's and 6's subdurals (-10.1 and -11.4 %, Dice 0.92 and 0.86) and 22's epidural (-10.9 %, a swirl at
brain density on its margin): they had met it at -7.8, -9.6 and -7.0 %, while on seeds 192-335 the
one ring took nine more bleeds within it, and judged once three more on 384-431 and one fewer on 432-479."""


def _phantom_case(seed, subtype, matrix=256, thickness=5.0):
    from ich_viewer.phantom import SUBTYPES, generate_phantom
    from ich_viewer.phantom.generate import FINE_SLAB_PLANE_MM, slab_planes

    phantom = generate_phantom(seed=seed, subtypes=[subtype], matrix=matrix, thickness_mm=thickness,
                               max_work_size=matrix,
                               planes_per_slice=slab_planes(thickness, FINE_SLAB_PLANE_MM))  # the bench's protocol
    truth = phantom.masks == SUBTYPES.index(subtype) + 1
    spacing = (phantom.spacing_mm, *phantom.pixel_spacing)
    return phantom.volume_hu, truth, spacing, truth.sum() * np.prod(spacing) / 1000


ACCURACY_CASES_512 = [(6, "intraparenchymal"), (2, "epidural"), (6, "epidural")]
"""The same protocol on 512 series drawn at 512 (0.43-0.49 mm pixels, the matrix of most real head
CT). Subdurals come out shorter at 512 than at 256 against the five-plane masks (seed 0's -13.0 %,
2's -11.4 %; -7.3 and -7.8 % at 256)."""


ACCURACY_CASES_THIN = [(1, "epidural"), (11, "epidural"), (11, "subdural"), (19, "subdural")]
"""Bleeds of seeds 0-23 that miss the goal on 5 mm slices and meet it on 2.5 mm ones, as a scanner's
thin reconstruction shows them (``measure.thickness``): on 2.5 mm slices 22 of 24 meet it."""


@pytest.mark.slow
@pytest.mark.parametrize("seed, subtype, matrix, thickness", [(*case, 256, 5.0) for case in ACCURACY_CASES] +
                         [(*case, 512, 5.0) for case in ACCURACY_CASES_512] +
                         [(*case, 256, 2.5) for case in ACCURACY_CASES_THIN])
def test_phantom_bleeds_dice_and_volume(seed, subtype, matrix, thickness):
    from ich_viewer.measure.clicks import grow_clicks, reader_clicks

    volume, truth, spacing, truth_ml = _phantom_case(seed, subtype, matrix, thickness)
    assert truth_ml >= 5.0
    region = grow_clicks(volume, spacing, reader_clicks(truth, spacing, volume=volume))
    assert region.ok, region.reason
    assert dice(region.mask, truth) >= 0.85
    assert abs(region.volume_ml - truth_ml) <= 0.10 * truth_ml
    assert region.abc2_ml is not None and region.abc2_ml > 0


@pytest.mark.slow
def test_a_click_beside_the_bone_reads_the_blood_clear_of_its_blur(monkeypatch):
    """Seed 27's epidural, clicked where the reader clicks (Im 12, 48 HU around the click) and
    beside the bone on the same slice, where the bone's blur raises the blood read around the
    click (56 HU): the two outlines are within 6 % of each other, as the blood is read clear of
    the bone. With the blood read around the click only, the outline beside the bone is a quarter
    smaller. (Until the phantom's slices were painted on five planes, 2026-11-30, this was seed
    11's subdural clicked in a pocket over the middle fossa, 75 against 59 HU; that pocket is gone.)"""
    import ich_viewer.measure.region as module
    from ich_viewer.measure.clicks import reader_clicks

    volume, truth, spacing, truth_ml = _phantom_case(27, "epidural")
    [reader] = reader_clicks(truth, spacing, volume=volume)
    beside = (11, 115, 205)

    def disc_blood(k: int, i: int, j: int) -> float:  # as the growing reads it around a click
        disc = median_3x3(volume[k: k + 1])[0, i - 3: i + 4, j - 3: j + 4]
        return float(np.median(disc[(disc >= 45) & (disc <= 90)]))

    assert reader[0] == beside[0] and disc_blood(*beside) - disc_blood(*reader) >= 6.0  # 56 against 48 HU
    outlines = [grow_region(volume, spacing, seed) for seed in (reader, beside)]
    assert all(region.ok for region in outlines)
    assert abs(outlines[1].volume_ml - outlines[0].volume_ml) <= 0.10 * outlines[0].volume_ml  # 8.6 and 9.1 mL
    monkeypatch.setattr(module, "_blood_clear_of_bone", lambda *args: None)
    assert grow_region(volume, spacing, beside).volume_ml < 0.8 * outlines[1].volume_ml


@pytest.mark.slow
def test_a_falx_sheet_grown_with_rims_either_side_is_grown_along_its_line():
    """Seed 6's subdural (64 mL): a convexity crescent and a 13 mL sheet along the falx
    that never touches it, 2 px wide. With grey matter, not CSF, beside the falx its click (the
    sheet's tip) reads as blood in 3x3 (45.9 HU), and the ordinary growing put a half-volume rim on
    either side: 31.0 mL where the sheet holds 13.3, the bleed +22.9 %. Less that outer ring the
    region is a line (``sheet.is_thin``): the sheet is grown along its crest to its half-blood
    edges, against the crescent's blood, as wide as its blood accounts for (13.1 mL, Dice 0.83
    against the sheet). The whole bleed is 15 % short of its mask (since the phantom's slices are
    painted on five planes, 2026-11-30), its crescent's edge, not the sheet."""
    import SimpleITK as sitk

    from ich_viewer.measure.clicks import grow_clicks, reader_clicks

    volume, truth, spacing, truth_ml = _phantom_case(6, "subdural")
    clicks = reader_clicks(truth, spacing)
    tip_k, tip_i, tip_j = clicks[1]
    assert len(clicks) == 2 and median_3x3(volume[tip_k: tip_k + 1])[0, tip_i, tip_j] >= 45.0
    first = grow_region(volume, spacing, clicks[0])
    region = grow_clicks(volume, spacing, clicks)
    assert region.ok and region.more_seeds == [clicks[1]]
    assert any(note.startswith("click 2: grown as a thin sheet along the falx") for note in region.notes)
    sheet = region.mask & ~first.mask
    pieces = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(truth.astype(np.uint8)), True))
    true_sheet = pieces == pieces[clicks[1]]
    assert 11.4 < region.volume_ml - first.volume_ml < 15.4  # the 13.4 mL sheet, within 15 %: 13.1
    assert dice(sheet, true_sheet) >= 0.83
    assert dice(region.mask, truth) >= dice(first.mask, truth) + 0.08  # 0.74 -> 0.84 with the sheet


def _ball_and_patch() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float]]:
    """A bleed in two pieces that do not touch: a ball and a patch of 1.8 mL (volume, ball, patch, spacing)."""
    spacing = (2.0, 1.0, 1.0)
    volume, ball = _skull(blood=((15, 60, 60), (8, 8, 8)), spacing=spacing)
    patch = np.zeros_like(ball)
    patch[12:18, 95:105, 70:85] = True
    volume[patch] = 60.0
    return volume, ball, patch, spacing


def test_further_clicks_add_separate_pieces_and_say_what_they_could_not_add():
    from ich_viewer.measure.clicks import grow_clicks, reader_clicks

    volume, ball, patch, spacing = _ball_and_patch()
    one = grow_region(volume, spacing, (15, 60, 60))
    assert one.ok and not (one.mask & patch).any()
    both = grow_clicks(volume, spacing, [(15, 60, 60), (15, 100, 77)])
    assert both.ok and both.more_seeds == [(15, 100, 77)] and both.seed == (15, 60, 60)
    assert dice(both.mask, ball | patch) > 0.95 and both.voxels == one.voxels + int((both.mask & ~one.mask).sum())
    assert both.volume_ml == pytest.approx(both.voxels * 2.0 / 1000) and both.to_dict()["more_seeds"] == [[15, 100, 77]]
    same = grow_clicks(volume, spacing, [(15, 60, 60), (15, 62, 60)])  # a click inside what is outlined adds nothing
    assert (same.mask == one.mask).all() and same.notes == []
    brain = grow_clicks(volume, spacing, [(15, 60, 60), (15, 80, 110)])  # brain, 30 HU
    assert (brain.mask == one.mask).all()
    assert brain.notes == [f"click 2 (15,80,110) added nothing: {grow_region(volume, spacing, (15, 80, 110)).reason}"]
    assert not grow_clicks(volume, spacing, [(15, 80, 110), (15, 60, 60)]).ok  # without the first piece, nothing
    truth = ball | patch
    assert reader_clicks(truth, spacing) == [deepest_point(ball), deepest_point(patch)]
    assert reader_clicks(truth, spacing, min_ml=2.0) == [deepest_point(ball)]  # ball 2.1 mL, patch 1.8 mL
    swirl = volume.copy()  # a dark swirl at the ball's centre: the reader clicks its blood, not the swirl
    k, i, j = deepest_point(ball)
    swirl[k, i - 2: i + 3, j - 2: j + 3] = 35.0
    k2, i2, j2 = reader_clicks(truth, spacing, volume=swirl)[0]
    assert k2 == k and max(abs(i2 - i), abs(j2 - j)) >= 2 and median_3x3(swirl[k2: k2 + 1])[0, i2, j2] == 60.0
    assert grow_region(swirl, spacing, (k2, i2, j2)).ok and not grow_region(swirl, spacing, (k, i, j)).ok


def test_the_readers_second_look_clicks_a_piece_the_outline_left_out_not_its_rim():
    from ich_viewer.measure.clicks import grow_clicks, reader_second_look

    volume, ball, patch, spacing = _ball_and_patch()
    one = grow_region(volume, spacing, (15, 60, 60))
    [again] = reader_second_look(ball | patch, one.mask, spacing, volume)
    assert patch[again] and deepest_point(patch) == again  # the piece left out, where it is deepest
    both = grow_clicks(volume, spacing, [(15, 60, 60), again])
    assert reader_second_look(ball | patch, both.mask, spacing, volume) == []  # nothing left to click
    assert reader_second_look(ball | patch, None, spacing, volume)[0] == deepest_point(ball)  # a refused click
    rim = dilate(one.mask)  # the truth one pixel wider than the outline all round
    volume[rim] = 60.0
    assert (rim & ~one.mask).sum() * 2.0 / 1000 >= 0.5  # a rim of more than half a millilitre, but no piece
    assert reader_second_look(rim, one.mask, spacing, volume, min_ml=0.5) == []
    assert reader_second_look(ball | patch, one.mask, spacing, volume, min_ml=2.0) == []  # the patch is 1.8 mL


def test_attention_proposes_a_seed_in_blood_not_on_the_hot_skull():
    from ich_viewer.measure.region import propose_seed

    volume, _ = _skull(blood=((15, 60, 60), (8, 8, 8)))
    heat = np.zeros((160, 160), np.float32)
    heat[80, 12] = 1.0  # hottest on the skull
    heat[55:66, 55:66] = 0.6  # warm over the bleed
    assert propose_seed(heat, volume[15]) is not None
    row, col = propose_seed(heat, volume[15])
    assert 55 <= row <= 65 and 55 <= col <= 65 and volume[15, row, col] == 60.0
    assert propose_seed(np.zeros_like(heat), volume[15]) is None
    assert propose_seed(heat, volume[0] * 0 - 1000) is None  # nothing in the blood range


def test_a_region_that_runs_across_the_falx_is_cut_there_and_says_so():
    volume, truth = _skull((30, 160, 160), blood=((15, 80, 115), (12, 10, 10)))  # 35 mm left of the midline
    volume[13:17, 78:82, 30:115] = 60.0  # a blood-like band (the falx's own density) to the other side
    volume[10:20, 60:100, 30:50] = 60.0  # and a blood-like patch there
    region = grow_region(volume, (2.0, 1.0, 1.0), (15, 80, 115))
    assert region.ok, region.reason
    assert not region.mask[:, :, :70].any()  # nothing beyond 5 mm across the midline (column 80)
    assert region.mask[:, 78:82, 72:80].any()  # the band up to there is kept
    assert dice(region.mask & truth, truth) > 0.95
    assert any("falx" in note for note in region.notes)


def test_a_cut_of_a_few_voxels_says_under_a_tenth_of_a_millilitre_not_nothing():
    """The phantoms' notes read "cut at the falx: 0.0 mL ... left out": a reader takes that for nothing cut."""
    volume, _ = _skull((30, 160, 160), blood=((15, 80, 115), (12, 10, 10)))  # 35 mm left of the midline
    volume[15, 79:82, 71:115] = 60.0  # a blood-like band one slice thick that reaches 9 mm across the midline
    region = grow_region(volume, (2.0, 1.0, 1.0), (15, 80, 115))
    assert region.ok, region.reason
    cut = [note for note in region.notes if note.startswith("cut at the falx")]
    assert cut and "under 0.1 mL" in cut[0] and "0.0 mL" not in cut[0]


def test_a_convexity_bleed_does_not_run_along_the_sinus_where_the_falx_meets_the_table(monkeypatch):
    """CT-ICH 073's frontal epidural joined, along the inner table, the superior sagittal sinus
    (blood, in the blood range) and ran down it for 9 slices within the falx cut's margin."""
    import ich_viewer.measure.region as region_module

    z, rows, cols = np.mgrid[:30, :170, :140]
    across = np.hypot((rows[0] - 85) / 70.0, (cols[0] - 70) / 55.0)  # a head longer than wide
    volume = np.where(across < 1.0, 1000.0, -1000.0).astype(np.float32)[None].repeat(30, axis=0)
    volume[:, across < 0.88] = 30.0  # brain; the midline is column 70
    truth = np.hypot(np.hypot((z - 15) * 2.0, rows - 45), cols - 100) <= 8  # 30 mm right of the midline
    volume[truth] = 60.0
    under_table = (across >= 0.8) & (across < 0.88) & (rows[0] < 85)
    band = under_table & (cols[0] >= 70) & (cols[0] <= 102)
    volume[13:18, band] = 60.0  # the bleed reaches the midline along the inner table
    sinus = under_table & (np.abs(cols[0] - 70) <= 3)
    volume[2:28, sinus] = 60.0  # the sinus under the table at the midline, on every slice
    region = grow_region(volume, (2.0, 1.0, 1.0), (15, 45, 100))
    assert region.ok, region.reason
    assert not region.mask[:, sinus].any()  # the sinus is left out, on the bleed's slices too
    assert dice(region.mask & truth, truth) > 0.95 and region.mask[15, band & (cols[0] >= 80)].all()
    assert set(region.slices) <= set(range(11, 20))  # the bleed's own slices, no run-on
    assert any("falx" in note for note in region.notes)
    monkeypatch.setattr(region_module, "SINUS_MM", -1.0)  # without the cut it runs down the sinus
    leaked = grow_region(volume, (2.0, 1.0, 1.0), (15, 45, 100))
    assert leaked.mask[2, sinus].any() and leaked.mask[27, sinus].any()


def test_an_epidural_that_crosses_the_midline_along_the_table_is_kept_whole(monkeypatch):
    """An epidural crosses the midline (the dura and the sinus stripped off the bone with it):
    cut at the falx, phantom epidurals were 14-24 % short. What lies across is kept when it is a
    lens along the inner table on the region's own slices; a run along the sinus to other slices
    is still cut (CT-ICH 073), the sinus 2-5 mm under the table included: the region's box ends at
    the table's inner edge there, and read within the box alone the sinus was kept on every slice."""
    import ich_viewer.measure.region as region_module

    z, rows, cols = np.mgrid[:30, :170, :140]
    across = np.hypot((rows[0] - 85) / 70.0, (cols[0] - 70) / 55.0)  # a head longer than wide
    volume = np.where(across < 1.0, 1000.0, -1000.0).astype(np.float32)[None].repeat(30, axis=0)
    volume[:, across < 0.88] = 30.0  # brain; the midline is column 70
    lens = (across >= 0.74) & (across < 0.88) & (rows[0] < 50) & (cols[0] >= 55) & (cols[0] <= 105)
    truth = np.zeros(volume.shape, bool)
    truth[10:20, lens] = True  # a frontal epidural from 15 mm left to 35 mm right of the midline
    volume[truth] = 70.0
    spacing = (5.0, 1.0, 1.0)
    seed = (15, int(np.argwhere(lens[:, 92])[:, 0].mean()), 92)  # 22 mm right of the midline
    region = grow_region(volume, spacing, seed)
    assert region.ok, region.reason
    assert dice(region.mask, truth) > 0.97 and region.mask[:, :, 55:60].any()
    assert any("kept" in note and "across the midline" in note for note in region.notes)
    monkeypatch.setattr(region_module, "LENS_BEYOND", 2.0)  # never a lens: cut at the falx
    cut = grow_region(volume, spacing, seed)
    assert not cut.mask[:, :, :65].any() and dice(cut.mask, truth) < 0.9
    assert any("cut at the falx" in note for note in cut.notes)
    monkeypatch.undo()
    sinus = (across >= 0.8) & (across < 0.88) & (rows[0] < 85) & (np.abs(cols[0] - 70) <= 3)
    volume[2:28, sinus] = 70.0  # the sinus under the table at the midline, on every slice
    leaky = grow_region(volume, spacing, seed)
    assert not leaky.mask[:, sinus].any() and set(leaky.slices) <= set(range(9, 21))
    assert any("cut at the falx" in note for note in leaky.notes)


def test_growing_stops_where_the_region_is_the_normal_brain_bone_band(monkeypatch):
    """Towards the vertex a 5 mm slice cuts the skull obliquely and the brain beside it reads
    in the blood range all round the head (CT-ICH 087's epidural ran round the whole
    convexity of Im 27): the region's top slices that are only that band are left out."""
    import ich_viewer.measure.band as band_module

    z, rows, cols = np.mgrid[:30, :170, :140]
    across = np.hypot((rows[0] - 85) / 70.0, (cols[0] - 70) / 55.0)  # a head longer than wide
    volume = np.where(across < 1.0, 1000.0, -1000.0).astype(np.float32)[None].repeat(30, axis=0)
    volume[:, across < 0.88] = 30.0  # brain; the midline is column 70
    lens = (across >= 0.70) & (across < 0.88) & (cols[0] > 100) & (np.abs(rows[0] - 85) < 30)
    truth = np.zeros(volume.shape, bool)
    truth[8:21, lens] = True  # an epidural 10 mm thick on slices 8-20
    volume[truth] = 70.0
    band = (across >= 0.83) & (across < 0.88) & ~lens
    volume[18:, band] = 55.0  # from slice 18 up, a 3 mm band under the whole inner table
    spacing = (5.0, 1.0, 1.0)
    region = grow_region(volume, spacing, (14, 85, 113))
    assert region.ok, region.reason
    assert region.slices == list(range(8, 21)) and dice(region.mask & truth, truth) > 0.97
    assert any("left out slices 21-29 (Im 22-30)" in note and "brain-bone band" in note for note in region.notes)
    monkeypatch.setattr(band_module, "NORMAL_BAND_SHARE", 2.0)  # never the band: it runs to the top
    leaked = grow_region(volume, spacing, (14, 85, 113))
    assert leaked.slices[-1] == 29 and np.count_nonzero(leaked.mask[25]) > 200  # its side's half of the band


def test_a_click_on_a_darker_speck_of_the_bleed_grows_the_same_outline():
    """The click's own 3x3 median may read below the half-blood bound that the disc around it
    sets (a noisy crescent): the bound fell back to 45 HU and took the brain, which on the demo
    reads 46 HU (a click in its subdural grew 215 mL against 137 mL from the hematoma). Now
    the bound's growing starts from the disc's voxels above it."""
    spacing = (2.0, 1.0, 1.0)
    volume, truth = _skull((30, 160, 160), blood=((15, 80, 110), (8, 10, 10)), spacing=spacing)
    volume[volume == 30.0] = 46.0  # brain as dense as the demo's
    volume[15, 79:82, 104:107] = 50.0  # a darker speck in the bleed: the click's 3x3 median reads 50
    dark = grow_region(volume, spacing, (15, 80, 105))
    bright = grow_region(volume, spacing, (15, 80, 112))
    assert dark.ok and bright.ok, (dark.reason, bright.reason)
    assert (dark.mask == bright.mask).all() and dice(dark.mask, truth) > 0.85
    assert not dark.notes  # nothing leaked, nothing cut


def test_a_click_beside_the_falx_at_the_inner_table_is_kept_to_its_side():
    """A seed 5-15 mm off the midline is one-sided when it lies near the inner table (the end
    of a subdural or epidural beside the falx): a click on the demo's subdural 10 mm off the
    midline ran round the other hemisphere's inner table (176 mL against 137 mL)."""
    z, rows, cols = np.mgrid[:30, :170, :140]
    across = np.hypot((rows[0] - 85) / 70.0, (cols[0] - 70) / 55.0)  # a head longer than wide
    volume = np.where(across < 1.0, 1000.0, -1000.0).astype(np.float32)[None].repeat(30, axis=0)
    volume[:, across < 0.88] = 30.0  # brain; the midline is column 70
    lens = (across >= 0.75) & (across < 0.88) & (cols[0] >= 76) & (cols[0] <= 92) & (rows[0] < 40)
    truth = np.zeros(volume.shape, bool)
    truth[10:20, lens] = True  # a frontal epidural 6-22 mm right of the midline
    volume[truth] = 70.0
    volume[10:20, (across >= 0.83) & (across < 0.88) & ~lens] = 55.0  # the band under the whole inner table
    region = grow_region(volume, (5.0, 1.0, 1.0), (15, 30, 80))  # 10 mm off the midline, 5 mm from the table
    assert region.ok, region.reason
    assert (region.mask | ~truth).all()  # the whole epidural
    assert not region.mask[:, :, :65].any()  # nothing beyond 5 mm across the midline
    assert any("falx" in note for note in region.notes)


def test_growing_stops_at_a_slice_where_the_brain_itself_reads_as_blood():
    spacing = (2.0, 1.0, 1.0)
    volume, truth = _skull((30, 160, 160), blood=((12, 80, 120), (10, 8, 8)), spacing=spacing)
    cols = np.arange(160)
    volume[20:, :, cols >= 80] = np.where(volume[20:, :, cols >= 80] == 30.0, 58.0, volume[20:, :, cols >= 80])
    volume[14:20, 76:84, 116:124] = 60.0  # the bleed reaches the bright slices
    region = grow_region(volume, spacing, (12, 80, 120))
    assert region.ok, region.reason
    assert not region.mask[20:].any() and region.mask[12].any()
    assert any("stopped at slice 20 (Im 21)" in note for note in region.notes)


def test_brush_strokes_add_and_erase_exact_discs_and_never_paint_bone_or_air():
    from ich_viewer.measure.edit import Stroke, apply_stroke, replay

    volume, _ = _skull()
    spacing = (2.0, 0.5, 0.5)
    mask = np.zeros(volume.shape, bool)
    added = apply_stroke(mask, Stroke(15, 80, 80, 5.0, True), spacing, volume)  # 10 px radius in brain
    assert added == mask.sum() == pytest.approx(math.pi * 10 ** 2, rel=0.03) and mask[15].sum() == added
    lattice = sum(1 for r in range(-5, 6) for c in range(-5, 6) if r * r + c * c <= 25)  # 81 pixel centres
    assert apply_stroke(mask, Stroke(15, 80, 80, 2.5, False), spacing, volume) == -lattice
    assert not mask[15, 76:85, 80].any() and mask[15, 72, 80]  # a 5 px hole in the middle
    edge = np.zeros_like(mask)
    apply_stroke(edge, Stroke(15, 80, 14, 4.0, True), spacing, volume)  # over skull (rows 80, cols 10-18) and air
    assert edge.any() and (volume[edge] > -200).all() and (volume[edge] < 300).all()
    again = replay(np.zeros_like(mask), [Stroke(15, 80, 80, 5.0, True), Stroke(15, 80, 80, 2.5, False)], spacing,
                   volume)
    assert (again == mask).all()
    assert Stroke.from_list(Stroke(3, 1.25, 2.5, 3.0, False).to_list()) == Stroke(3, 1.25, 2.5, 3.0, False)
    with pytest.raises(ValueError, match="radius"):
        Stroke.from_list([0, 1, 1, 0, 1])
    with pytest.raises(ValueError, match="5 values"):
        Stroke.from_list([0, 1, 1])


def test_a_stored_volume_is_rebuilt_with_its_brush_edits():
    from ich_viewer.measure.edit import Stroke
    from ich_viewer.measure.records import volume_measurement
    from ich_viewer.measure.series import grow_record
    from ich_viewer.report.measure_export import regrow

    volume, truth = _skull(blood=((15, 60, 60), (10, 10, 10)), spacing=(2.0, 0.5, 0.5))
    series = Series.from_array(volume, spacing_mm=2.0, pixel_spacing=(0.5, 0.5))
    edits = [Stroke(15, 60, 60, 3.0, False)]
    region = grow_record(series, (15, 60, 60), (45, 90), edits)
    plain = grow_in_series(series, (15, 60, 60))
    assert region.ok and not region.mask[15, 55:66, 60].any() and plain.mask[15, 55:66, 60].all()
    assert region.voxels == plain.voxels - int((plain.mask & ~region.mask).sum()) and region.voxels < plain.voxels
    record = volume_measurement(region, series_uid=series.series_uid, edits=edits)
    assert record.details["edits"] == [[15, 60.0, 60.0, 3.0, 0]] and "edited" in record.text
    assert (regrow(series, record) == region.mask).all()


def test_a_stored_volume_with_two_clicks_is_rebuilt_with_both_pieces():
    from ich_viewer.measure.records import Measurement, volume_measurement
    from ich_viewer.measure.series import grow_in_series
    from ich_viewer.report.measure_export import regrow

    volume, _ = _skull(blood=((15, 60, 60), (10, 10, 10)), spacing=(2.0, 0.5, 0.5))
    volume[12:18, 95:105, 70:85] = 60.0  # a second piece
    series = Series.from_array(volume, spacing_mm=2.0, pixel_spacing=(0.5, 0.5))
    region = grow_in_series(series, (15, 60, 60), more_seeds=[(15, 100, 77)])
    assert region.ok and region.mask[15, 100, 77] and region.mask[15, 60, 60]
    stored = Measurement.from_dict(volume_measurement(region, series_uid=series.series_uid).to_dict())
    assert stored.seed == (15, 60, 60) and stored.more_seeds == [(15, 100, 77)]
    assert (regrow(series, stored) == region.mask).all()


def test_the_ring_towards_csf_is_read_against_the_blood_itself_not_a_median_raised_by_bone():
    """A thin collection under the inner table: most of its voxels are blurred with the bone
    (85, 250 HU), so the region's median (~70) is far above the blood at the seed (55-58).
    The half-volume ring towards the CSF under it (40 HU: half blood, half 15 HU CSF) is more
    blood than CSF and belongs to the outline; the CSF itself does not."""
    n, size = 30, 160
    z, y, x = np.mgrid[:n, :size, :size].astype(np.float32)
    r = np.hypot(y - 80, x - 80)
    volume = np.full((n, size, size), -1000.0, np.float32)
    volume[r < 70] = 1000.0
    volume[r < 62] = 30.0
    arc = (x > 95) & (np.abs(y - 80) < 35) & (z >= 8) & (z <= 22)
    for inner, outer, hu in ((53, 57, 15.0), (57, 58, 40.0), (58, 59, 55.0), (59, 60, 58.0), (60, 61, 85.0),
                             (61, 62, 250.0)):
        volume[arc & (r >= inner) & (r < outer)] = hu
    region = grow_region(volume, (2.0, 1.0, 1.0), (15, 80, 138))
    assert region.ok, region.reason
    ring, csf, blood = arc & (r >= 57) & (r < 58), arc & (r < 57), arc & (r >= 58) & (r < 61)
    assert np.median(volume[region.mask & ~ring]) > 65  # what the ring was read against before
    assert (region.mask & ring).sum() >= 0.85 * ring.sum()  # the old median-based ring took none of it
    assert not (region.mask & csf).any() and (region.mask & blood).sum() >= 0.95 * blood.sum()


def _vertex_crescent(thin: bool):
    """A head longer front to back (midline: column 80) with the normal band under the
    skull all round (bone blur 70 HU, then CSF); a crescent on the right, thick on slices
    8-19 (76 HU, 120 next to bone) and, with ``thin``, 3 voxels thin on slices 20-23 where
    it reads 120 / 52 / 48 HU from the bone inwards: below the raised low bound (~53 HU)."""
    n, rows, cols = 30, 180, 160
    z, y, x = np.mgrid[:n, :rows, :cols].astype(np.float32)
    r = np.hypot((y - 90) * 0.85, x - 80)
    volume = np.full((n, rows, cols), -1000.0, np.float32)
    volume[r < 70] = 1000.0
    volume[r < 62] = 30.0
    for inner, outer, hu in ((57, 60, 12.0), (60, 61, 25.0), (61, 62, 70.0)):
        volume[(r >= inner) & (r < outer)] = hu
    arc = (x > 100) & (np.abs(y - 90) < 40)
    thick = arc & (z >= 8) & (z < 20) & (r >= 54) & (r < 62)
    volume[thick] = 76.0
    volume[thick & (r >= 61)] = 120.0
    top = arc & (z >= 20) & (z < 24) & (r >= 58) & (r < 62)
    if thin:
        for inner, outer, hu in ((58, 59, 22.0), (59, 60, 48.0), (60, 61, 52.0), (61, 62, 120.0)):
            volume[top & (r >= inner) & (r < outer)] = hu
    return volume, arc, top & (r >= 59)


def test_a_thin_collection_is_followed_along_the_inner_table_but_the_normal_band_is_not():
    """Beyond the last slice the threshold reached, the crescent is followed slice by slice
    where it reads above the midpoint between the region's own profile across the band and
    the other hemisphere's band; the normal band (70 HU next to bone, in the blood range, on
    every slice) is never followed: it reads the same on both sides."""
    thin, arc, top = _vertex_crescent(True)
    region = grow_region(thin, (5.0, 1.0, 1.0), (14, 90, 138))
    assert region.ok, region.reason
    assert region.slices == list(range(8, 24))
    per_slice = (region.mask & top).sum(axis=(1, 2))[20:24]
    assert (per_slice >= 0.6 * top[20].sum()).all()
    # beside each end of the followed crescent its bone-side ring takes at most the one voxel
    # next to it along the table (as on the thick slices 8-19), never the band beyond
    beside = region.mask[20:] & ~arc[20:]
    assert (beside.sum(axis=(1, 2)) <= 2).all() and set(np.nonzero(beside)[1]) <= {50, 130}
    plain, _, _ = _vertex_crescent(False)
    normal = grow_region(plain, (5.0, 1.0, 1.0), (14, 90, 138))
    assert normal.ok and normal.slices == list(range(8, 20))
    assert (normal.mask[:20] == region.mask[:20]).all()  # the thick part is grown as before


def test_a_lesion_just_above_the_bound_is_outlined_at_its_half_level_edge_not_the_brain(monkeypatch):
    """A lesion only 4 HU above the 45 HU bound (49 HU in 30 HU brain, blurred): the threshold
    stops well inside its half-blood edge (39.5 HU); the iso-level band reaches it and takes
    no brain beyond it. Without the band the rings towards brain get part of the way (0.92 of the
    lesion; 0.82 with one ring at the surround's median, before 2026-11-30)."""
    import SimpleITK as sitk

    from ich_viewer.measure import region as module

    spacing = (2.0, 1.0, 1.0)
    volume, truth = _skull(blood=((15, 80, 80), (14, 10, 10)), spacing=spacing)
    volume[truth] = 49.0
    blurred = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(volume), [1.5, 1.5, 0.01]))
    blurred += np.random.default_rng(0).normal(0, 2.0, volume.shape).astype(np.float32)
    truth_ml = truth.sum() * 2.0 / 1000
    region = grow_region(blurred, spacing, (15, 80, 80))
    assert region.ok, region.reason
    assert region.volume_ml >= 0.86 * truth_ml and dice(region.mask, truth) >= 0.93
    near = truth.copy()
    for _ in range(2):
        near = dilate(near)
    assert not (region.mask & ~near).any()  # the 30 HU brain beyond the edge stays out
    monkeypatch.setattr(module, "ISO_GATE_HU", 0.0)  # without the band: the threshold's edge
    plain = grow_region(blurred, spacing, (15, 80, 80))
    assert plain.volume_ml <= 0.94 * truth_ml and plain.volume_ml < region.volume_ml - 0.2  # 0.92 against 0.97


@pytest.mark.slow
def test_a_thin_crescent_is_followed_to_its_ends_along_the_inner_table_without_the_normal_band():
    """Seed 11's subdural (54 mL) is 2-3 voxels thin along the convexity; much of its mask reads
    above 90 HU (blurred with the inner table). The threshold grows a few slices of it; following
    it slice by slice, then within each slice to its thin ends (where the blood itself reads
    90-120 HU a pixel from the bone) and across a 5 mm slice where the inner table moves in by
    4-6 px, outlines 78 % of it (a third before the following); what the outline adds outside
    the mask stays a few percent (the normal band is not taken). Since the phantom's slices are
    painted on five planes (2026-11-30) its mask reaches two vertex slices more (Im 27-28), which
    the following does not reach, and covers the floor of the middle fossa on Im 11."""
    from ich_viewer.measure.clicks import grow_clicks, reader_clicks

    volume, truth, spacing, truth_ml = _phantom_case(11, "subdural")
    region = grow_clicks(volume, spacing, reader_clicks(truth, spacing, volume=volume))
    assert region.ok, region.reason
    assert region.volume_ml >= 0.75 * truth_ml and dice(region.mask, truth) >= 0.80  # was -66 %, Dice 0.50
    # the normal band along the table taken would add a band on every slice
    assert (region.mask & ~truth).sum() <= 0.07 * region.mask.sum()
    per_slice = (region.mask & truth).sum(axis=(1, 2))
    assert (per_slice[11:24] >= 0.75 * truth[11:24].sum(axis=(1, 2))).all()  # Im 12-24


def test_the_collection_is_looked_for_where_the_inner_table_moved_in_on_the_next_slice():
    """Towards the vertex the inner table moves in by more than the follow step between 5 mm
    slices: the next slice's collection is looked for that much further in."""
    from ich_viewer.measure.follow import FOLLOW_STEP_MM, _near_shifted

    y, x = np.mgrid[:160, :160].astype(np.float32)
    r = np.hypot(y - 80, x - 80)
    previous = (r >= 58) & (r < 61) & (x > 110)  # the collection under the inner table (radius 61)
    cavity = r < 55  # the next slice's inner table 6 mm further in
    near = _near_shifted(previous, cavity, (5.0, 1.0, 1.0))
    assert near[80, 80 + 53] and near[80, 80 + 50]  # the band under the moved table
    assert not near[80, 80 + 58 - int(FOLLOW_STEP_MM) - 7]  # not the brain beyond it
    assert not near[80, 80 - 58]  # nor the other side
    assert (_near_shifted(previous, r < 61, (5.0, 1.0, 1.0)) == (_distance_le(previous, FOLLOW_STEP_MM))).all()


def _distance_le(mask: np.ndarray, mm: float) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(sitk.GetImageFromArray(mask.astype(np.uint8)),
                                                               insideIsPositive=False, squaredDistance=False,
                                                               useImageSpacing=True)) <= mm


def test_a_voxel_beside_thin_bone_is_judged_against_that_bones_own_peak():
    """Thin bone (the temporal squama, the skull base) blurs to a lower peak than the vault's
    inner table: beside it a voxel more bone than blood reads well under the half-way point
    between the blood and the scan-wide inner table. Judged against the bone beside it, it is
    not blood; beside the vault, or away from bone, the inner table's HU stands."""
    from ich_viewer.measure.rim import below_half_bone

    raw = np.full((1, 20, 40), 40.0, np.float32)
    raw[0, :, 10] = 700.0  # a thin plate, blurred to 700 HU
    raw[0, :, 30:] = 1500.0  # the vault's inner table
    raw[0, 5, [11, 12, 20, 28, 29]] = (450.0, 370.0, 200.0, 450.0, 770.0)
    where = np.zeros(raw.shape, bool)
    where[0, 5, [11, 12, 20, 28, 29]] = True
    below = below_half_bone(raw, where, 60.0, 1500.0, 1.0)
    assert below[0, 5].tolist() == [c in (12, 20, 28, 29) for c in range(40)]  # 450 > (60 + 700) / 2 beside the plate
    assert below_half_bone(raw, where, 60.0, 1500.0, 0.5)[0, 5, 12]  # 3 px: still the plate's peak
    raw[0, 5, 10] = 1500.0
    assert below_half_bone(raw, where, 60.0, 1500.0, 1.0)[0, 5, 11]  # thick bone: 450 is blood


def test_a_cut_lets_go_of_what_it_severed_and_keeps_what_was_followed_apart():
    """After the falx cut (or a stop), of each piece that was apart before it one part stays: the
    seed's, or the largest. A thin crescent's pieces followed along the inner table near the
    vertex never touch from slice to slice: they were apart before the cut and stay (a click on
    phantom seed 16's crescent lost its top three slices, nearly all blood; a click there kept
    only its own); what the cut severed from a piece is let go."""
    from ich_viewer.measure.region import _seed_component

    before = np.zeros((5, 20, 20), bool)
    before[0:3, 2:8, 2:18] = True  # the seed's piece
    before[3, 10:12, 2:18] = True  # followed: the slice above, apart from it in-plane
    mask = before.copy()
    mask[0:3, 2:8, 6:8] = False  # the cut severs the seed's piece: 4 columns on the seed's side, 10 beyond
    kept = _seed_component(mask, (1, 4, 3), before)
    assert kept[0:3, 2:8, 2:6].all() and kept[3, 10:12, 2:18].all()
    assert not kept[0:3, 2:8, 8:18].any()
    clicked_above = _seed_component(mask, (3, 10, 5), before)  # on the followed piece: the other's larger part
    assert clicked_above[3, 10:12, 2:18].all() and clicked_above[0:3, 2:8, 8:18].all()
    assert not clicked_above[0:3, 2:8, 2:6].any()


def test_what_surrounds_a_region_is_read_at_the_same_millimetres_at_any_pixel():
    """2-3 voxels out on a 0.86 mm grid; 4-6 on a 512 series' 0.43 mm, where 2-3 voxels out lay
    within a bleed's own blurred edge (the 512 phantoms' IPHs came out 4-10 % small)."""
    from ich_viewer.measure.rim import surround
    from ich_viewer.measure.voxels import dilate

    region = np.zeros((1, 60, 60), bool)
    region[0, 25:35, 25:35] = True
    inner = np.ones_like(region)
    rings = [region]
    for _ in range(8):
        rings.append(dilate(rings[-1]))
    assert np.array_equal(surround(region, inner, 0.86), rings[3] & ~rings[1])
    assert np.array_equal(surround(region, inner, 0.43), rings[6] & ~rings[3])
    assert not surround(region, np.zeros_like(region), 0.43).any()


@pytest.mark.parametrize("pixel", [0.95, 0.47, 0.32])
def test_the_rings_towards_brain_reach_the_same_millimetres_at_any_pixel(pixel):
    """On thick slices the rings reach at least ``DARK_RIM_MM``: one 0.95 mm ring on the phantoms'
    256 grid (two took a ring of cortex beside thin subdurals), two on real 0.32 mm slices; on thin
    slices one ring at any pixel."""
    from ich_viewer.measure.rim import DARK_RIM_MM, dark_rings, partial_volume_rim

    size = int(round(20.0 / pixel))
    centre = size // 2
    rows, cols = np.mgrid[:size, :size]
    out_mm = np.maximum(np.abs(rows - centre), np.abs(cols - centre)) * pixel - 3.0  # mm beyond a 6 mm square
    raw = np.where(out_mm <= 0, 65.0, np.where(out_mm <= 2.0, 55.0, 20.0)).astype(np.float32)[None]
    region = (out_mm <= 0)[None]
    inner = np.ones_like(region)
    for thickness, least_mm, most_mm in ((5.0, DARK_RIM_MM, 1.0), (2.5, pixel, pixel)):
        added = partial_volume_rim(raw, region, inner, 60.0, 1500.0, pixel, 65.0, dark_rings(thickness, pixel))
        width_mm = added[0, centre].sum() / 2 * pixel  # the row through the centre crosses the ring twice
        assert least_mm - 1e-6 <= width_mm <= most_mm + 1e-6, (thickness, width_mm)


@pytest.mark.parametrize("piece_hu, taken", [(60.0, True), (51.0, False)])
def test_a_piece_joined_only_through_half_blood_voxels_is_taken_when_it_reads_as_the_bleed(piece_hu, taken):
    """On a 5 mm slice a subdural's sheet along the falx meets its convexity part only through
    voxels the slab shares with brain: they read between the low bound and the half-blood bound
    the click's blood raises it to, so the growing parted them (seed 491's subdural -19 %). The
    piece is taken, without those voxels, when it reads as blood; one just above the bound is the
    noise along a faint edge and is not."""
    spacing = (5.0, 1.0, 1.0)
    volume, truth = _skull((20, 160, 160), blood=((10, 80, 120), (20, 12, 12)), spacing=spacing)
    volume[volume == 30.0] = 38.0  # grey matter: the 60 HU bleed raises the bound to 49 HU
    piece = np.zeros_like(truth)
    piece[7:14, 50:110, 96:100] = True  # a sheet 4 mm wide, 4 mm from the bleed
    volume[piece] = piece_hu
    bridge = np.zeros_like(truth)
    bridge[9:12, 79:82, 100:110] = True
    bridge &= ~truth
    volume[bridge] = 47.0  # half blood, half brain
    volume += np.random.default_rng(0).normal(0, 2.0, volume.shape).astype(np.float32)
    region = grow_region(volume, spacing, (10, 80, 120))
    assert region.ok, region.reason
    assert dice(region.mask & ~piece, truth) > 0.95
    assert np.count_nonzero(region.mask & bridge) <= 0.2 * np.count_nonzero(bridge)
    assert not (region.mask & ~truth & ~piece & ~bridge).any()
    inside = np.count_nonzero(region.mask & piece) / np.count_nonzero(piece)
    assert inside >= 0.85 if taken else inside == 0.0


def test_a_bright_piece_is_not_joined_through_brain_as_dense_as_the_low_bound(monkeypatch):
    """Brain that reads 46 HU (the demo's) lies within the default range: grown at the low bound,
    the region runs through the whole brain, and a piece it reaches there (a venous sinus, another
    bleed) is not joined to the bleed by any edge of it."""
    import ich_viewer.measure.region as region_module

    spacing = (5.0, 1.0, 1.0)
    volume, truth = _skull((20, 160, 160), blood=((10, 80, 120), (20, 12, 12)), spacing=spacing)
    volume[volume == 30.0] = 46.0
    other = np.zeros_like(truth)
    other[8:12, 35:50, 100:110] = True  # 2 cm off in the brain, on the bleed's side and slices, as dense
    volume[other] = 60.0
    volume += np.random.default_rng(0).normal(0, 2.0, volume.shape).astype(np.float32)
    region = grow_region(volume, spacing, (10, 80, 120))
    assert region.ok, region.reason
    assert not (region.mask & other).any() and dice(region.mask, truth) > 0.9
    monkeypatch.setattr(region_module, "JOINED_LOOSE_MAX", 1e9)  # without the guard the brain joins them
    assert (grow_region(volume, spacing, (10, 80, 120)).mask & other).any()


@pytest.mark.parametrize("speck_hu, told", [(47.0, True), (70.0, False)])
def test_a_click_that_grows_a_speck_at_the_low_bound_says_to_click_where_the_bleed_is_brightest(speck_hu, told):
    """A slab half blood, half brain reads at the low bound: the outline is a speck, and the reader
    is told why and where to click; a small dense bleed is no such slab."""
    spacing = (5.0, 1.0, 1.0)
    volume, _ = _skull((20, 160, 160), spacing=spacing)
    volume[10, 75:84, 105:114] = speck_hu  # 0.4 mL on one slice
    region = grow_region(volume, spacing, (10, 79, 109))
    assert region.ok and region.volume_ml < 1.0, region.reason
    said = [note for note in region.notes if "click where it is brightest" in note]
    assert said == ([f"the click reads {speck_hu:.0f} HU, at the range's low bound, and grew {region.volume_ml:.1f} "
                     "mL: on a thick slice at the skull base this may be a slab half blood, half brain. If the bleed "
                     "is larger, click where it is brightest"] if told else [])
