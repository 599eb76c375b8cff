"""Slab and three views in the window: the slab is drawn, the views are linked, flags are findable."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from ich_viewer.dicom.loader import load_study
from ich_viewer.phantom.writer import write_series
from ich_viewer.ui.reformat_view import EXTENSION_NAME, ReformatController
from tests.test_reformat import MARKER_HU, MARKERS, N, PIXEL, SIZE, SPACING, _phantom

EXT = ["ich_viewer.ui.reformat_view:attach_reformat"]


def _click(qtbot, view, row: float, col: float) -> None:
    qtbot.wait(50)  # a view just shown gets its size (and its mapping) from the event loop
    scene = view.image_item.mapToScene(QPointF(col + 0.5, row + 0.5))
    qtbot.mouseClick(view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=view.graphics.mapFromScene(scene))


@pytest.fixture
def tilted(tmp_path, make_window, qtbot):
    write_series(_phantom(), tmp_path, spacing_mm=SPACING, pixel_spacing=(PIXEL, PIXEL), tilt_deg=15.0)
    window = make_window(extensions=EXT)
    window.show_study(load_study(tmp_path))
    controller = window.extensions.get(EXTENSION_NAME, ReformatController)
    assert controller is not None
    return window, controller


def test_slab_shows_a_marker_from_neighbouring_slices(tilted, qtbot):
    window, controller = tilted
    k, r, c = MARKERS[0]
    window.set_slice(k + 2)  # the 3-slice cube ends one slice before this one
    assert window.image_view().image_item.image[r, c] != MARKER_HU
    with qtbot.waitSignal(controller.ready, timeout=20000):
        window.action("slab").trigger()
    corner = window.image_view().overlays.text
    assert controller.slab_on and "Slab 5 mm avg" in corner("bottom_left")
    # 5 planes of 0.97 mm (1 mm table at 15 degrees), slices k .. k+4: two of them hold the cube
    # (read to the nearest grid pixel along the tilt, so the cube's edge may blend in a little)
    assert window.image_view().image_item.image[r, c] == pytest.approx(MARKER_HU * 2 / 5, rel=0.05)
    window.action("slab_mode").trigger()
    assert window.image_view().image_item.image[r, c] == MARKER_HU and "Slab 5 mm MIP" in corner("bottom_left")
    window.set_preset("9")  # the window rewrites its corner texts: the slab's line stays
    assert "Slab 5 mm MIP" in corner("bottom_left") and window.image_view().image_item.image[r, c] == MARKER_HU
    window.action("slab").trigger()  # off: the acquired slice again
    assert "Slab" not in corner("bottom_left") and "Thk" in corner("bottom_left")
    assert window.image_view().image_item.image.shape == (SIZE, SIZE)
    assert window.image_view().image_item.image[r, c] != MARKER_HU


def test_three_views_are_linked_by_clicks(tilted, qtbot):
    window, controller = tilted
    with qtbot.waitSignal(controller.ready, timeout=20000):
        window.action("three_views").trigger()
    panel, reformat = controller.panel, controller.reformat
    assert panel.isVisible() and reformat is not None and reformat.tilt_corrected
    k, r, c = MARKERS[1]
    window.set_slice(k)
    _click(qtbot, window.image_view(), r, c)  # a click on the axial image moves both reformat planes
    plane, row, col = np.rint(reformat.grid_index(k, r, c)).astype(int)
    assert (controller.cross_row, controller.cross_col) == (row, col)
    display = int(round(reformat.display_row(plane)))
    assert panel.coronal.image_item.image[display, col] == MARKER_HU
    assert panel.sagittal.image_item.image[display, row] == MARKER_HU
    # the cross-reference lines in the reformats sit on the axial slice and the other plane
    horizontal, vertical = panel.cross["coronal"]
    assert horizontal.value() == pytest.approx((display + 0.5) * reformat.grid.spacing[0])
    assert vertical.value() == pytest.approx((col + 0.5) * PIXEL)
    # a click on the coronal view opens the acquired slice at that height
    k0, r0, c0 = MARKERS[0]
    plane0, _, col0 = reformat.grid_index(k0, r0, c0)
    _click(qtbot, panel.coronal, reformat.display_row(plane0), col0)
    assert window.current_index() == k0 and controller.cross_col == int(col0)
    controller.move_plane("coronal", 3)
    assert controller.cross_row == row + 3
    window.action("three_views").trigger()
    assert not panel.isVisible() and not controller.axial_cross[0].isVisible()


def test_flagged_slices_are_ticks_on_the_reformats(qtbot, make_window, graded_model_dir, monkeypatch,
                                                   phantom_series):
    from ich_viewer.dicom.model import Study

    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(graded_model_dir))
    window = make_window()
    inference = window.extensions["inference"]
    qtbot.waitUntil(lambda: inference.loaded is not None, timeout=20000)
    series = phantom_series(1)
    window.show_study(Study(source="/nonexistent/test-study", series=[series]))
    qtbot.waitUntil(lambda: inference.session.is_complete(series), timeout=30000)
    controller = window.extensions[EXTENSION_NAME]
    with qtbot.waitSignal(controller.ready, timeout=20000):
        window.action("three_views").trigger()
    flagged = inference.flagged_indices()
    assert flagged and controller.flagged_slices() == flagged
    reformat = controller.reformat
    xs, ys = controller.panel.ticks["coronal"].getData()
    expected = {round((reformat.display_row(k) + 0.5) * reformat.grid.spacing[0], 6) for k in flagged}
    assert {round(float(y), 6) for y in ys} == expected and len(xs) == 4 * len(flagged)
    # a click at a tick's height opens that flagged slice
    target = flagged[-1]
    _click(qtbot, controller.panel.sagittal, reformat.display_row(target), 5)
    assert window.current_index() == target


def test_a_single_image_gets_a_reason_not_a_spinner(make_window, qtbot):
    from ich_viewer.dicom.model import Series, Study

    window = make_window(extensions=EXT)
    window.show_study(Study(source="", series=[Series.from_array(np.zeros((1, 16, 16), np.float32))]))
    controller = window.extensions[EXTENSION_NAME]
    window.action("slab").trigger()
    qtbot.waitUntil(lambda: controller.failure is not None, timeout=10000)
    assert "No slab: ValueError: a single image" in window.image_view().overlays.text("bottom_left")
    window._update_overlays()  # what a slice whose pixels arrive late does: the corner is rewritten
    assert "No slab: ValueError: a single image" in window.image_view().overlays.text("bottom_left")
    assert controller.reformat is None
    assert window.image_view().image_item.image.shape == (16, 16)  # the image itself stays


def test_another_series_never_shows_the_last_ones_planes(tilted, qtbot):
    window, controller = tilted
    with qtbot.waitSignal(controller.ready, timeout=20000):
        window.action("three_views").trigger()
    assert controller.panel.coronal.image_item.image is not None
    window.close_study()
    assert controller.reformat is None and controller.panel.coronal.image_item.image is None
    assert controller.panel.sagittal.overlays.text("top_left") == ""
