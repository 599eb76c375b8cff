"""What the growing reads of a series whatever the click, found once (``measure.head``)."""
from __future__ import annotations

import numpy as np

from ich_viewer.measure.cavity import cranial_cavity
from ich_viewer.measure.head import DEFAULT_HU, find_head
from ich_viewer.measure.region import grow_region


def test_a_bleed_grown_with_the_head_found_once_is_the_bleed_grown_from_its_cavity():
    """The window finds the head when the volume tool is chosen and every click reuses it: the
    outline must be the one the cavity alone gives, to the voxel (an epidural along the inner
    table, which reads each slice's band under it)."""
    from ich_viewer.measure.clicks import reader_clicks
    from ich_viewer.phantom import SUBTYPES, generate_phantom

    p = generate_phantom(seed=19, subtypes=["epidural"], matrix=256, thickness_mm=5.0)
    spacing = (p.spacing_mm, *p.pixel_spacing)
    click = reader_clicks(p.masks == SUBTYPES.index("epidural") + 1, spacing)[0]
    cavity = cranial_cavity(p.volume_hu, spacing)
    alone = grow_region(p.volume_hu, spacing, click, cavity=cavity)
    head = find_head(p.volume_hu, spacing, cavity=cavity)
    assert head.cavity is cavity and sorted(head.bands) == list(range(head.box[0].stop - head.box[0].start))
    assert list(head.domains) == [DEFAULT_HU] and sorted(head.greys) == [(s, DEFAULT_HU[1]) for s in (-1, 0, 1)]
    bands = dict(head.bands)
    with_head = grow_region(p.volume_hu, spacing, click, cavity=head)
    assert alone.ok and with_head.ok and np.array_equal(alone.mask, with_head.mask)
    assert all(head.bands[k] is bands[k] for k in bands)  # read, not found again
    assert head.greys  # the grey matter of the click's side, kept for the next click


def test_a_thin_series_finds_its_bands_as_they_are_read_not_ahead():
    """A thick series' bands are found ahead (about 0.7 MB a slice at 512²); a thin series' 250 would
    hold some 170 MB, so beyond ``EVERY_BAND_SLICES`` they are found as the growing reads them, and its
    rough pass's domain is not kept."""
    from ich_viewer.measure.head import EVERY_BAND_SLICES

    rows, cols = np.mgrid[:64, :64]
    radius = np.hypot(rows - 32, cols - 32)
    layer = np.where(radius < 28, 30.0, np.where(radius < 31, 1200.0, -1000.0)).astype(np.float32)
    for n, found in ((EVERY_BAND_SLICES, EVERY_BAND_SLICES), (EVERY_BAND_SLICES + 1, 0)):
        head = find_head(np.repeat(layer[None], n, axis=0), (1.0, 0.9, 0.9))
        assert head.cavity[:, 32, 32].all() and len(head.bands) == found
        assert len(head.domains) == (1 if found else 0)  # the rough pass's domain too: 4 bytes a voxel
