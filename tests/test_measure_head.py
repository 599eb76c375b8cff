"""What the growing reads of a series whatever the click, found once (``measure.head``)."""
from __future__ import annotations

import numpy as np

from ich_viewer.measure.cavity import cranial_cavity
from ich_viewer.measure.head import find_head
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
    bands = dict(head.bands)
    with_head = grow_region(p.volume_hu, spacing, click, cavity=head)
    assert alone.ok and with_head.ok and np.array_equal(alone.mask, with_head.mask)
    assert all(head.bands[k] is bands[k] for k in bands)  # read, not found again
    assert head.greys  # the grey matter of the click's side, kept for the next click
