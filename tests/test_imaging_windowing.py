"""Windowing against the DICOM VOI LINEAR function (PS3.3 C.11.2.1.2.1), every preset."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ich_viewer.dicom.model import SliceHeader
from ich_viewer.imaging.geometry import patient_position, physical_size
from ich_viewer.imaging.presets import BRAIN, PRESETS, default_window, preset_for_key, resolve
from ich_viewer.imaging.windowing import adjust_window, apply_window, window_bounds, window_to_uint8

EXPECTED = [  # DESIGN.md, key order 1..9, 0
    ("1", "Default", None, None),
    ("2", "Brain", 40, 80),
    ("3", "Subdural min", 50, 130),
    ("4", "Subdural mid", 75, 215),
    ("5", "Subdural max", 100, 300),
    ("6", "Tissue min", 20, 350),
    ("7", "Tissue mid", 40, 375),
    ("8", "Tissue max", 60, 400),
    ("9", "Bone", 600, 2800),
    ("0", "Grey-white", 32, 8),
]


def linear_reference(x: float, c: float, w: float) -> float:
    """The standard's pseudo-code, one value at a time, output range 0..1."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0.0
    if x > c - 0.5 + (w - 1) / 2:
        return 1.0
    return ((x - (c - 0.5)) / (w - 1) + 0.5)


def test_presets_are_the_ten_of_the_design_in_key_order():
    assert [(p.key, p.name, p.center, p.width) for p in PRESETS] == EXPECTED
    assert [preset_for_key(k).name for k in "1234567890"] == [e[1] for e in EXPECTED]


@pytest.mark.parametrize("preset", [p for p in PRESETS if not p.is_default], ids=lambda p: p.name)
def test_apply_window_matches_the_standard_for_every_preset(preset):
    c, w = preset.center, preset.width
    lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
    hu = np.concatenate([
        np.linspace(-1100, 3100, 997),
        [lo, lo + 1e-3, hi, hi + 1e-3, c, c - 0.5, np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)],
    ])
    got = apply_window(hu, c, w)
    want = np.array([linear_reference(x, c, w) for x in hu])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got.dtype == np.float32 and got.min() == 0.0 and got.max() == 1.0


@pytest.mark.parametrize("preset", [p for p in PRESETS if not p.is_default], ids=lambda p: p.name)
def test_levels_for_pyqtgraph_reproduce_the_linear_function(preset):
    """ImageItem maps (x - lo) / (hi - lo) clipped to [0, 1]: that must equal LINEAR."""
    c, w = preset.center, preset.width
    lo, hi = window_bounds(c, w)
    assert lo == c - 0.5 - (w - 1) / 2 and hi == c - 0.5 + (w - 1) / 2
    hu = np.linspace(-1100, 3100, 4001)
    display = np.clip((hu - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(display, apply_window(hu, c, w), atol=1e-6)


def test_brain_window_numbers():
    assert window_bounds(40, 80) == (0.0, 79.0)
    assert apply_window(np.array([0.0, 0.01, 39.5, 79.0, 79.01]), 40, 80).tolist() == pytest.approx(
        [0.0, 0.01 / 79, 0.5, 1.0, 1.0], abs=1e-6)


def test_the_seed_typo_is_not_used():
    """Min = WC - WC/2 would put Bone's black point at 300 HU; LINEAR puts it at -800.5."""
    lo, hi = window_bounds(600, 2800)
    assert (lo, hi) == (-800.0, 1999.0)
    assert apply_window(np.array([0.0]), 600, 2800)[0] == pytest.approx(800.0 / 2799.0)


def test_width_one_is_a_step_and_narrower_widths_are_clamped():
    x = np.array([-1.0, 9.5, 9.51, 20.0])
    assert apply_window(x, 10, 1).tolist() == [0.0, 0.0, 1.0, 1.0]
    assert apply_window(x, 10, 0.2).tolist() == [0.0, 0.0, 1.0, 1.0]
    lo, hi = window_bounds(10, 1)
    assert lo == 9.5 and 0 < hi - lo <= 1e-3


def test_window_to_uint8_rounds_the_linear_output():
    out = window_to_uint8(np.array([[0.0, 39.5, 79.0]]), 40, 80)
    assert out.dtype == np.uint8 and out.tolist() == [[0, 128, 255]]


def test_default_comes_from_the_slice_tags_else_brain():
    tagged = SliceHeader(path="a", sop_instance_uid="1", window_center=35.0, window_width=90.0)
    assert default_window(tagged) == (35.0, 90.0)
    assert resolve(PRESETS[0], tagged) == (35.0, 90.0)
    assert resolve(PRESETS[8], tagged) == (600.0, 2800.0)
    for header in (SliceHeader(path="b", sop_instance_uid="2"), None,
                   SliceHeader(path="c", sop_instance_uid="3", window_center=40.0, window_width=0.0),
                   SliceHeader(path="d", sop_instance_uid="4", window_center=math.nan, window_width=80.0)):
        assert default_window(header) == (BRAIN.center, BRAIN.width)


@pytest.mark.parametrize("step", [0.2, 1.0, 10.0])
def test_drag_right_widens_drag_up_raises_the_level(step):
    c, w = adjust_window(40, 80, dx=10, dy=-4, hu_per_pixel=step)
    assert (c, w) == pytest.approx((40 + 4 * step, 80 + 10 * step))
    c, w = adjust_window(40, 80, dx=-1000, dy=0, hu_per_pixel=step)
    assert w == 1.0  # never below the DICOM minimum


def test_patient_position_follows_ipp_iop_and_row_column_spacing():
    header = SliceHeader(path="a", sop_instance_uid="1", position=(-100.0, -50.0, 20.0),
                         orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), pixel_spacing=(0.5, 0.8))
    assert patient_position(header, 0, 0) == (-100.0, -50.0, 20.0)
    # column index moves along the row direction by the column spacing, and vice versa
    assert patient_position(header, row=10, col=5) == pytest.approx((-100 + 5 * 0.8, -50 + 10 * 0.5, 20.0))
    sagittal = SliceHeader(path="b", sop_instance_uid="2", position=(0.0, 0.0, 0.0),
                           orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0), pixel_spacing=(2.0, 1.0))
    assert patient_position(sagittal, row=3, col=4) == pytest.approx((0.0, 4.0, -6.0))
    assert patient_position(SliceHeader(path="c", sop_instance_uid="3"), 1, 1) is None


def test_physical_size_uses_column_spacing_for_width():
    assert physical_size(rows=100, columns=200, pixel_spacing=(0.5, 0.8)) == (160.0, 50.0)
    assert physical_size(rows=10, columns=10, pixel_spacing=(0.0, 1.0)) == (10.0, 10.0)
