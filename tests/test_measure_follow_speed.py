"""The faster pieces of following a thin collection give what the slower ones gave.

``_bone_distance`` replaced ITK's whole signed Maurer map with one that stops at the band
under the inner table, and ``_percentiles_by_layer`` a ``np.percentile`` call per depth
layer: the outlines must not move (docs/benchmarks.md, "Measure", 2026-11-29 08:04).
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ich_viewer.measure.region import BONE_HU, _bone_distance, _percentiles_by_layer, cranial_cavity
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
            full, band = _itk_distance(bone, spacing), _bone_distance(bone, spacing, 3.0)
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
    d = _bone_distance(bone, (5.0, 0.5, 0.5), 3.0)
    assert d[9, 9] == 0.0 and d[10, 11] == 0.0  # beside it, corner to corner too
    assert d[10, 13] == 1.0 and d[10, 17] == 3.0 and np.isinf(d[10, 18]) and np.isinf(d[10, 10])


def test_layer_percentiles_are_numpys():
    rng = np.random.default_rng(5)
    for n in (0, 15, 300, 4000):
        layers = rng.integers(0, 13, n)
        values = rng.normal(30.0, 25.0, n).astype(np.float32)
        got = _percentiles_by_layer(layers, values, 13, (50.0, 90.0))
        for layer in range(13):
            these = values[layers == layer]
            want = np.percentile(these, [50.0, 90.0]) if len(these) >= 20 else [np.nan, np.nan]
            assert np.array_equal(got[:, layer], want, equal_nan=True)
