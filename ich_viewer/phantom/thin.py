"""A thin series made from a thick one by resampling, for benchmarks and screenshots.

Real thin head CTs (0.6 mm, 240 slices) are not bundled; the real demo (CT-ICH 071,
5 mm) resampled along the slice axis has real anatomy and a real bleed at the right
places, and noise added back makes it compress and look like a thin slice (thin slices
are noisier than the thick ones averaged from them). Every series written from it says
it is synthetic (the phantom writer's markers), so it is never taken for an acquisition.
"""
from __future__ import annotations

from typing import Any

import numpy as np

THIN_NOISE_HU = 8.0


def resample_thin(series: Any, n_slices: int, size: int = 512, noise_hu: float = THIN_NOISE_HU,
                  seed: int = 0) -> tuple[np.ndarray, float, float]:
    """``series`` (a loaded ``Series``) resampled to ``n_slices`` of ``size``² over the same extent.

    Returns (volume HU float32 foot to head, slice spacing mm, pixel spacing mm). Linear
    interpolation (SimpleITK); ``noise_hu`` Gaussian noise is added after.
    """
    import SimpleITK as sitk

    volume = series.volume_hu()
    row_mm, _ = series.pixel_spacing
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((float(row_mm), float(row_mm), float(series.spacing_mm or 5.0)))
    extent = [s * (d - 1) for s, d in zip(image.GetSpacing(), image.GetSize())]
    spacing = (extent[0] / (size - 1), extent[1] / (size - 1), extent[2] / (n_slices - 1))
    resampled = sitk.Resample(image, [size, size, n_slices], sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                              spacing, image.GetDirection(), -1024.0, sitk.sitkFloat32)
    thin = sitk.GetArrayFromImage(resampled)
    if noise_hu > 0:
        thin += np.random.default_rng(seed).normal(0, noise_hu, thin.shape).astype(np.float32)
    return thin, spacing[2], spacing[0]
