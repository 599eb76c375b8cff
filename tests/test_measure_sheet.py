"""A subdural's thin sheet along the falx: grown from a click on (or beside) it, never from a
line that is not blood or a patch that is no line."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from ich_viewer.measure.clicks import grow_clicks
from ich_viewer.measure.region import dice, grow_region

SPACING = (5.0, 1.0, 1.0)


def _head_with_sheet(sheet_hu: float, noise: float = 3.0, ball: bool = False, beside_hu: float = 40.0):
    """An oval skull ring round brain (40 HU), an interhemispheric fissure (CSF, 15 HU) along the
    midline (column 80) with the falx (45 HU) in it, and a sheet 2 px wide of ``sheet_hu``
    beside the falx on slices 4-14, blurred like a CT (sigma 0.8 px) before the noise.
    With ``ball`` a 60 HU bleed lies off the midline too; ``beside_hu`` is the brain on the
    sheet's side. Returns (volume, sheet, ball)."""
    shape = (18, 160, 160)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(np.float32)
    r = np.hypot((y - 80) / 1.2, x - 80)  # longer front to back, as a head: the midline runs along the rows
    volume = np.full(shape, -1000.0, np.float32)
    volume[r < 70] = 1000.0
    volume[r < 62] = 40.0
    volume[(r < 62) & (x > 80)] = beside_hu
    volume[(r < 62) & (np.abs(x - 80) <= 3)] = 15.0
    volume[(r < 62) & (x == 80)] = 45.0
    sheet = (z >= 4) & (z <= 14) & (y >= 40) & (y <= 120) & ((x == 82) | (x == 83))
    volume[sheet] = sheet_hu
    blob = np.zeros(shape, bool)
    if ball:
        blob = (z - 9) ** 2 * 25 + (y - 80) ** 2 + (x - 115) ** 2 <= 12 ** 2
        volume[blob] = 60.0
    blurred = sitk.DiscreteGaussian(sitk.GetImageFromArray(volume), variance=[0.64, 0.64, 0.0], useImageSpacing=False)
    volume = np.where(r < 62, sitk.GetArrayFromImage(blurred), volume).astype(np.float32)
    volume += np.random.default_rng(3).normal(0, noise, shape).astype(np.float32)
    return volume, sheet, blob


def test_a_click_beside_a_thin_bright_sheet_along_the_falx_grows_the_sheet():
    volume, sheet, _ = _head_with_sheet(65.0)
    click = (9, 80, 84)  # a pixel beside the line: its 3x3 median reads the CSF
    assert np.median(volume[9, 79:82, 83:86]) < 45.0
    region = grow_region(volume, SPACING, click)
    assert region.ok, region.reason
    assert any("thin sheet along the falx" in note for note in region.notes)
    assert dice(region.mask, sheet) > 0.8
    assert region.volume_ml == pytest.approx(sheet.sum() * 5.0 / 1000, rel=0.25)
    assert region.slices == list(range(4, 15))
    assert not region.mask[:, :, :80].any() and not region.mask[:, :, 86:].any()  # not the falx, not the cortex
    middle = grow_region(volume, SPACING, (9, 80, 82))  # on the line its 3x3 median is blood: still a sheet, not
    assert middle.ok and (middle.mask == region.mask).all()  # doubled by the partial-volume rings on both sides


def test_a_further_click_on_the_sheet_reads_its_edge_against_the_first_regions_blood():
    volume, sheet, ball = _head_with_sheet(60.0, ball=True)
    region = grow_clicks(volume, SPACING, [(9, 80, 115), (9, 60, 82)])
    assert region.ok, region.reason
    assert dice(region.mask & ~ball, sheet) > 0.8 and dice(region.mask & ball, ball) > 0.9
    alone = grow_region(volume, SPACING, (9, 60, 82))  # one click: the crest's own reading stands for the blood
    assert alone.ok and dice(alone.mask, sheet) > 0.75


def test_a_thin_line_that_is_not_blood_is_refused_and_says_what_it_reads():
    volume, _, _ = _head_with_sheet(38.0, noise=1.0)  # bright beside the CSF, but as dim as the brain
    region = grow_region(volume, SPACING, (9, 80, 84))
    assert not region.ok and region.mask is None
    assert "outside the blood range" in region.reason and "a line there reads" in region.reason
    assert ("HU along the falx)" in region.reason) and ("no thin sheet" not in region.reason)


def test_the_bright_edge_of_a_broad_area_is_no_sheet():
    volume, _, _ = _head_with_sheet(55.0, noise=1.0, beside_hu=50.0)  # the line as bright as the brain beyond it
    region = grow_region(volume, SPACING, (9, 80, 81))
    assert not region.ok and "but it is no thin sheet of blood" in region.reason


def test_a_line_grown_with_a_rim_on_either_side_is_still_a_line():
    """A 2 px sheet that the ordinary growing widened by a half-volume rim on either side (and
    noise crests: 6 px) is a line once that outer ring is off; a 12 px band is not. With the ring
    counted the 6 px band had a third of its voxels two deep and was no line (seed 6's falx sheet
    with grey matter beside it, docs/benchmarks.md, ninth session)."""
    from ich_viewer.measure.sheet import is_thin

    band = np.zeros((5, 80, 80), bool)
    band[:, 10:70, 30:36] = True
    assert is_thin(band)
    wide = np.zeros_like(band)
    wide[:, 10:70, 30:42] = True
    assert not is_thin(wide)
    assert not is_thin(np.zeros_like(band))


def test_a_line_is_judged_in_millimetres_and_must_be_long():
    """The same sheet on 0.45 mm pixels (a 512 series) is twice as many pixels wide: judged in
    blocks of about 0.9 mm (``SHEET_PIXEL_MM``) it is still a line, a band 11 mm wide is not. A
    10 mm blob is no sheet along the falx however thin (CT-ICH 092's bleed beside the falx)."""
    from ich_viewer.measure.sheet import is_thin

    band = np.zeros((5, 160, 160), bool)
    band[:, 20:140, 60:72] = True  # 5.4 mm: a 2 mm sheet with its rims, on 0.45 mm pixels
    assert is_thin(band, 0.45)
    wide = np.zeros_like(band)
    wide[:, 20:140, 60:84] = True
    assert not is_thin(wide, 0.45)
    blob = np.zeros_like(band)
    blob[:, 60:82, 60:72] = True  # 10 x 5.4 mm
    assert not is_thin(blob, 0.45)
