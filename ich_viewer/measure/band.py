"""The normal brain-bone band along the inner table, read against the other hemisphere.

Towards the vertex and the skull base a 5 mm slice cuts the skull obliquely: the brain
beside it is averaged with bone and reads in the blood range in a band a few millimetres
deep, on both sides of the head. A region that reaches such a slice runs round the skull
along it (CT-ICH 087's epidural along the whole convexity of Im 27). ``is_normal_band``
tells such a slice of a region apart: the region lies mostly in the band, and at each depth
from the bone its voxels read no brighter than the other hemisphere's band does there (a
bleed in the band adds its blood to it). The leak guard (``measure.region.leak_guard``)
leaves out a region's top slices that are such; not at the skull base, where the two sides
of a slice differ.
"""
from __future__ import annotations

import numpy as np

from ich_viewer.measure.follow import band_depth, percentiles_by_layer
from ich_viewer.measure.midline import MIDLINE_MARGIN_MM
from ich_viewer.measure.voxels import largest_piece, median_at

NORMAL_BAND_SHARE = 0.6
"""A slice is looked at only where at least this share of the region lies in the band
(within ``FOLLOW_BAND_MM`` of bone): a bleed's own slices lie mostly deeper."""
NORMAL_BAND_LEVEL = 90.0
"""The other hemisphere's band at a depth: this percentile of its 3x3 medians there (its
brighter part, as ``measure.follow`` reads it)."""
NORMAL_BAND_MARGIN_HU = 5.0
"""A region's voxel counts as brighter than the normal band when it reads this much above
that level."""
NORMAL_BAND_BRIGHTER = 0.05
"""At most this share of the region's band voxels brighter, and the slice is normal band
(a phantom bleed's slices that lie mostly in the band have 12 % or more brighter; the run-on
at the top of phantom seed 20's epidural and of CT-ICH 087's and 073's, 0-1 %)."""
MIN_LAYER_VOXELS = 20
"""A depth is compared only where the other hemisphere's band has this many voxels."""


def is_normal_band(volume: np.ndarray, cavity: np.ndarray, region: np.ndarray, across: np.ndarray,
                   spacing: tuple[float, float, float]) -> bool:
    """Whether a slice of a region (``region``, on ``volume``'s slice with its ``cavity``) is
    the normal brain-bone band; ``across``: each pixel's distance (mm) from the midline,
    positive on the region's side."""
    depth, _ = band_depth(volume, largest_piece(cavity), spacing)
    band = depth >= 0
    mine = region & band
    if np.count_nonzero(mine) < NORMAL_BAND_SHARE * np.count_nonzero(region):
        return False
    other = band & (across < -MIDLINE_MARGIN_MM)
    smooth = median_at(np.where(cavity, volume, np.float32(-1000.0)), mine | other, 1)
    n_layers = int(depth.max()) + 1
    [level] = percentiles_by_layer(depth[other], smooth[other], n_layers, (NORMAL_BAND_LEVEL,), MIN_LAYER_VOXELS)
    level = level[depth[mine]]
    compared = np.isfinite(level)
    brighter = int(np.count_nonzero(smooth[mine][compared] > level[compared] + NORMAL_BAND_MARGIN_HU))
    return bool(compared.any()) and brighter <= NORMAL_BAND_BRIGHTER * int(np.count_nonzero(compared))
