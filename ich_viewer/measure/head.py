"""The head as the growing reads it whatever the click: found once per series.

The cranial cavity (``measure.cavity``), its midline (``measure.midline``), the shell next to
bone, the inner table's HU, each slice's grey matter on either side of the midline, each
slice's band under the inner table (``measure.follow``) and the rough pass's domain at the default
range depend on the series, not on where the reader clicks. The window finds them in the background
when the volume tool is chosen (``find_head``), beside the cavity, so a click only grows: on a
40 x 512² series they were about a third of a thin subdural's growing (docs/benchmarks.md).
``region.grow_region`` finds what it is not given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ich_viewer.measure.cavity import cranial_cavity
from ich_viewer.measure.follow import Bands, band_layers
from ich_viewer.measure.midline import MIDLINE_MARGIN_MM, MIDLINE_SEED_MM, midline_side
from ich_viewer.measure.voxels import BONE_HU, dilate
from ich_viewer.tasks import TaskState

DEFAULT_HU = (45.0, 90.0)
"""Acute blood on CT (clotted blood 50-90 HU); grey matter 37-45 stays out."""
ROUGH_SLACK_HU = 5.0
"""The rough pass that sizes the growing's box reads this far below the low bound (``rough_domain``)."""
SHELL_MM = 1.5
"""Next to bone every head CT has a band blurred between brain and bone that reads like
blood all round the skull; the region never grows through it, only into it (``measure.region``)."""
INNER_TABLE_HU = 1400.0
"""Inner table HU when a series shows too little bone to measure it (cortex 1400-1800)."""
TABLE_PERCENTILE = 90.0
"""The inner table is read from the scan itself: this percentile of the bone within about
1 mm outside the cavity (lower percentiles are the blurred edge, not the table). A voxel
half blood, half bone reads half way between the blood and it."""
GREY_PERCENTILE = 80.0
"""Grey matter is the brightest normal brain: this percentile of the cavity's 15-60 HU
voxels estimates it (white matter and grey matter make up most of them)."""


@dataclass
class Head:
    """A series' head as the growing reads it; all arrays but ``cavity`` within ``box``."""

    cavity: np.ndarray
    """bool (slices, rows, cols), the whole series."""
    box: tuple[slice, slice, slice]
    """The cavity's slices, rows and columns (two pixels more in-plane): the growing works there."""
    series_side: Any
    """The cavity's midline (``midline.midline_side``; None without one), read by the leak guard and
    the sheet along the falx."""
    side: Any
    """The midline of the cavity within ``box``, in its coordinates, read along the inner table
    (``measure.follow``), and ``brain_side`` that of the cavity less ``shell``, read for the grey matter
    (``slice_grey``): each step reads the midline it was measured with. Fitted to every fourth pixel, the
    three lie a fraction of a millimetre apart; one for all moved the demo's outline by 0.7 mL."""
    brain_side: Any
    shell: np.ndarray
    """Within ``SHELL_MM`` of bone, in the cavity."""
    table: float
    """The inner table's HU (``TABLE_PERCENTILE``)."""
    grey: float | None
    """Grey matter's HU over the whole head (``grey_level``)."""
    bands: Bands = field(default_factory=dict)
    """Each slice's band under the inner table (``follow.band_layers``), filled as they are read."""
    greys: dict[tuple[int, float], np.ndarray] = field(default_factory=dict)
    """Each slice's grey matter by the side it is read on and the range's high bound (``slice_grey``)."""

    domains: dict[tuple[float, float], np.ndarray] = field(default_factory=dict)
    """The rough pass's HU by range (``rough_domain``), kept for a series of at most ``EVERY_BAND_SLICES``."""

    def slice_grey(self, volume: np.ndarray, seed: tuple[int, ...], high: float) -> np.ndarray:
        """Each slice's grey-matter HU (NaN where unknown) in ``box``, read where the bleed is not:
        for a seed (in ``box``) off the midline the other half of the cavity (a bleed seldom reaches
        both), otherwise the whole slice. ``volume`` is the series' HU within ``box``."""
        if self.brain_side is None:
            return np.full(volume.shape[0], np.nan)
        seed_mm = float(self.brain_side(seed[0])[seed[1], seed[2]])
        return self.greys_on_side(volume, int(np.sign(seed_mm)) if abs(seed_mm) >= MIDLINE_SEED_MM else 0, high)

    def greys_on_side(self, volume: np.ndarray, sign: int, high: float) -> np.ndarray:
        """``slice_grey`` for a seed on side ``sign`` of the midline (0: near it), kept; ``find_head``
        finds all three ahead."""
        if (sign, high) not in self.greys:
            self.greys[(sign, high)] = _slice_grey(volume, self.cavity[self.box] & ~self.shell, self.brain_side, sign,
                                                   high)
        return self.greys[(sign, high)]

    def rough_domain(self, volume: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        """The HU of ``box`` (``volume``) with -1000 outside the cavity, and the same with the shell
        closed too, except where a shell voxel reads from ``ROUGH_SLACK_HU`` below ``low`` to ``high``
        and touches one that does outside the shell: the rough pass that sizes the growing's box runs
        through the shell only as the smoothed growing does (``region._grow_cropped`` opens it at a
        click in it)."""
        inside = np.where(self.cavity[self.box], volume, np.float32(-1000.0))
        if (low, high) in self.domains:
            return inside, self.domains[(low, high)]
        near = (inside >= low - ROUGH_SLACK_HU) & (inside <= high)
        domain = np.where(self.shell & ~(dilate(near & ~self.shell) & near), np.float32(-1000.0), inside)
        if volume.shape[0] <= EVERY_BAND_SLICES:  # a thin series' would hold hundreds of MB
            self.domains[(low, high)] = domain
        return inside, domain


EVERY_BAND_SLICES = 64
"""``find_head`` finds every slice's band under the inner table ahead only for a series of at most
this many slices (a 5 mm head CT has 25-40): each is about 0.7 MB on a 512² series, and a thin
series' 250 would hold some 170 MB. Beyond it they are found as the growing reads them, and kept."""


def find_head(volume: np.ndarray, spacing: tuple[float, float, float], state: TaskState | None = None,
              cavity: np.ndarray | None = None, *, every_band: bool = True) -> Head:
    """The head of a series (its cavity found when not given); ``every_band``: each slice's band
    under the inner table too, up to ``EVERY_BAND_SLICES`` (else as the growing reads them)."""
    if cavity is None:
        cavity = cranial_cavity(volume, spacing, state)
    zs = np.flatnonzero(cavity.any(axis=(1, 2)))
    if not len(zs):
        box = (slice(0, 0), slice(0, 0), slice(0, 0))
    else:
        rs, cs = np.flatnonzero(cavity.any(axis=(0, 2))), np.flatnonzero(cavity.any(axis=(0, 1)))
        box = (slice(int(zs[0]), int(zs[-1]) + 1), slice(max(0, int(rs[0]) - 2), int(rs[-1]) + 3),
               slice(max(0, int(cs[0]) - 2), int(cs[-1]) + 3))
    hu, inside = volume[box], cavity[box]
    shell = near_bone(hu, spacing) & inside
    head = Head(cavity=cavity, box=box, series_side=midline_side(cavity, spacing), side=midline_side(inside, spacing),
                brain_side=midline_side(inside & ~shell, spacing), shell=shell,
                table=inner_table_hu(hu, inside, spacing), grey=grey_level(hu[::2], inside[::2]))
    if every_band and hu.shape[0] <= EVERY_BAND_SLICES:
        for k in range(hu.shape[0]):
            band_layers(head.bands, k, hu, inside, spacing)
        # what a click at the default range reads whatever the click
        head.rough_domain(hu, *DEFAULT_HU)
        if head.brain_side is not None:
            for sign in (-1, 0, 1):
                head.greys_on_side(hu, sign, DEFAULT_HU[1])
    return head


def near_bone(volume: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Voxels within ``SHELL_MM`` of bone in their slice (4-neighbour steps), bone excluded."""
    bone = volume >= BONE_HU
    near = bone.copy()
    for _ in range(max(1, int(round(SHELL_MM / min(spacing[1], spacing[2]))))):
        near = dilate(near)
    return near & ~bone


def inner_table_hu(volume: np.ndarray, cavity: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """The inner table's HU as this scan shows it (``TABLE_PERCENTILE`` of the bone just outside the cavity)."""
    ring = dilate(cavity[:, ::2, ::2]) & ~cavity[:, ::2, ::2]
    for _ in range(max(1, int(round(1.0 / (2 * min(spacing[1], spacing[2])))))):
        ring |= dilate(ring) & ~cavity[:, ::2, ::2]
    values = volume[:, ::2, ::2][ring]
    values = values[values >= BONE_HU]
    return float(np.percentile(values, TABLE_PERCENTILE)) if values.size >= 50 else INNER_TABLE_HU


def grey_level(volume: np.ndarray, cavity: np.ndarray) -> float | None:
    """Grey matter's HU: ``GREY_PERCENTILE`` of the cavity's brain-range voxels (white and grey
    matter make up most of them); None when there is too little brain."""
    sample = volume[..., ::4, ::4][cavity[..., ::4, ::4]]
    sample = sample[(sample > 15.0) & (sample < 60.0)]
    return float(np.percentile(sample, GREY_PERCENTILE)) if sample.size >= 50 else None


def _slice_grey(volume: np.ndarray, brain: np.ndarray, side: Any, sign: int, high: float) -> np.ndarray:
    """``Head.slice_grey`` for a seed on side ``sign`` of the midline (0: near it)."""
    greys = np.full(volume.shape[0], np.nan)
    every_2nd = slice(None, None, 2)
    for k in range(volume.shape[0]):
        where = brain[k, ::2, ::2]
        if not where.any():
            continue
        if sign:
            where = where & (side(k, (every_2nd, every_2nd)) * sign < -MIDLINE_MARGIN_MM)
        values = volume[k, ::2, ::2][where]
        values = values[(values > 15.0) & (values < high)]
        if values.size >= 50:
            greys[k] = float(np.percentile(values, GREY_PERCENTILE))
    return greys
