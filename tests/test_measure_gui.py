"""The measure extension in a window: tools draw, values are right, records persist."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFontMetricsF

from ich_viewer.dicom.model import Series, Study
from ich_viewer.ui.measure_panel import EXTENSION_NAME, FACTS_APART, MeasureController

EXT = ["ich_viewer.ui.measure_panel:attach_measure"]


def _study(uid: str = "1.2.826.0.1.3680043.8.498.77") -> Study:
    n, size = 20, 128
    z, y, x = np.mgrid[:n, :size, :size].astype(np.float32)
    r = np.hypot(y - size / 2, x - size / 2)
    volume = np.full((n, size, size), -1000.0, np.float32)
    volume[r < 60] = 1000.0
    volume[r < 54] = 30.0
    blood = ((z - 10) * 2.0 / 12) ** 2 + ((y - 50) * 0.5 / 12) ** 2 + ((x - 64) * 0.5 / 12) ** 2 <= 1
    volume[blood] = 65.0
    series = Series.from_array(volume, series_uid=uid + ".1", spacing_mm=2.0, pixel_spacing=(0.5, 0.5))
    return Study(source="", series=[series], study_uid=uid)


def _open(make_window, study):
    window = make_window(extensions=EXT)
    window.show_study(study)
    controller = window.extensions.get(EXTENSION_NAME, MeasureController)
    assert controller is not None
    window.set_slice(10)
    return window, controller


def _at(controller, row, col):
    view = controller.view
    scene = view.image_item.mapToScene(QPointF(col + 0.5, row + 0.5))
    return view.graphics.mapFromScene(scene)


def _drag(qtbot, controller, p0, p1):
    viewport = controller.view.graphics.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, *p0))
    qtbot.mouseMove(viewport, _at(controller, *p1))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, *p1))


def test_ruler_is_drawn_and_measures_mm(make_window, qtbot):
    window, controller = _open(make_window, _study())
    window.action("measure_distance").trigger()
    assert controller.tool == "distance"
    _drag(qtbot, controller, (20, 20), (50, 60))  # 30 x 40 px of 0.5 mm
    [record] = controller.measurements()
    assert record.kind == "distance" and record.unit == "mm"
    assert record.value == pytest.approx(25.0, abs=0.6)  # mouse positions snap to screen pixels
    assert controller.panel.list.count() == 1 and controller._items
    start = time.perf_counter()
    for _ in range(20):
        controller.redraw()
    assert (time.perf_counter() - start) / 20 < 0.05


def test_ellipse_roi_statistics_and_delete(make_window, qtbot):
    window, controller = _open(make_window, _study())
    window.action("measure_ellipse").trigger()
    _drag(qtbot, controller, (40, 54), (60, 74))  # inside the 65 HU bleed on its middle slice
    [record] = controller.measurements()
    assert record.details["mean"] == pytest.approx(65.0) and record.details["sd"] == pytest.approx(0.0)
    assert record.details["area"] == pytest.approx(math.pi * 5 * 5, rel=0.1)
    controller.panel.list.setCurrentRow(0)
    window.action("measure_delete").trigger()
    assert controller.measurements() == [] and controller.panel.list.count() == 0


def _grown(make_window, qtbot, study):
    """A window on ``study`` with one bleed volume grown from a click inside the ball."""
    window, controller = _open(make_window, study)
    window.action("measure_volume").trigger()
    viewport = controller.view.graphics.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, 50, 64))
    qtbot.waitUntil(lambda: bool(controller.masks), timeout=20000)
    [record] = controller.measurements()
    return window, controller, viewport, record


def test_marks_are_drawn_again_on_the_same_items_as_the_reader_scrolls(make_window, qtbot):
    """Each frame draws the shown slice's marks again; their labels, lines and outline images are
    hidden and reused, not made anew and taken out of the scene (most of a frame's time): the scene
    holds the same items however long the reader scrolls, and a selected mark's label changes colour."""
    from ich_viewer.ui.measure_panel import SELECTED

    window, controller, viewport, record = _grown(make_window, qtbot, _study())
    window.action("measure_distance").trigger()
    _drag(qtbot, controller, (20, 20), (50, 60))
    window.set_slice(10)
    drawn = list(controller._items)
    scene = controller.view.graphics.scene()
    count = len(scene.items())
    for index in (9, 11, 10, 3, 10):  # the ruler lies on slice 10, the volume on 9-11
        window.set_slice(index)
    assert len(scene.items()) == count
    assert {id(item) for item in controller._items} == {id(item) for item in drawn}
    assert sum(type(item).__name__ == "TextItem" for item in controller._items) == 2  # the volume's, the ruler's
    controller.selected_id = record.id
    controller.redraw()
    [outline_label] = [item for item in controller._items if type(item).__name__ == "TextItem"
                       and item.textItem.toPlainText().splitlines() == record.text.split(FACTS_APART)]
    assert outline_label.textItem.defaultTextColor().getRgb()[:3] == SELECTED
    # a fact a line: the whole text on one line ran out of a narrow view and cut off the volume itself
    assert len(record.text.split(FACTS_APART)) >= 4
    one_line = QFontMetricsF(outline_label.textItem.font()).horizontalAdvance(record.text)
    assert outline_label.textItem.boundingRect().width() < 0.5 * one_line


def test_volume_grows_in_background_and_comes_back_after_reopening(make_window, qtbot):
    study = _study()
    window, controller, viewport, record = _grown(make_window, qtbot, study)
    analytic = 4 / 3 * math.pi * 12 ** 3 / 1000
    assert record.kind == "volume" and record.value == pytest.approx(analytic, rel=0.15)
    assert record.details["abc2_ml"] > 0 and len(record.details["slices"]) >= 10
    assert any(type(item).__name__ == "ImageItem" for item in controller._items)  # the outline
    window.close()

    again, controller2 = _open(make_window, study)
    assert [m.id for m in controller2.measurements()] == [record.id]
    qtbot.waitUntil(lambda: record.id in controller2.masks, timeout=20000)
    assert controller2.masks[record.id].sum() == record.details["voxels"]


def test_the_subtype_the_reader_gives_names_the_volume_and_says_abc2_is_an_iph_formula(make_window, qtbot):
    """ABC/2 over-estimates a crescent or a lens several-fold (docs/measure.md): beside a bleed the
    reader calls anything but intraparenchymal, the label says what the formula is for; the facts
    come back unchanged whatever the reader picks in turn."""
    window, controller, viewport, record = _grown(make_window, qtbot, _study())
    plain = record.text
    assert "ABC/2" in plain and "(IPH formula)" not in plain
    controller.selected_id = record.id
    shown = {}
    for subtype in ("subdural", "epidural", "intraparenchymal", "unspecified"):
        controller.panel.subtype.setCurrentText(subtype)
        shown[subtype] = controller.measurements()[0].text
    facts = plain.split(FACTS_APART)
    assert facts[1].startswith("ABC/2 ")
    facts[1] += " (IPH formula)"
    assert shown["subdural"] == "subdural: " + FACTS_APART.join(facts)
    assert shown["epidural"].startswith("epidural: ") and "(IPH formula)" in shown["epidural"]
    assert shown["intraparenchymal"] == "intraparenchymal: " + plain
    assert shown["unspecified"] == plain
    assert controller.measurements()[0].details["subtype"] == "unspecified"
    window.close()


def test_shift_click_adds_a_separate_piece_to_the_volume_and_it_survives_reopening(make_window, qtbot):
    study = _study()
    series = study.series[0]
    volume = series.volume_hu().copy()
    volume[8:13, 85:96, 40:61] = 65.0  # a second piece of the bleed, apart from the ball
    study = Study(source="", series=[Series.from_array(volume, series_uid=series.series_uid, spacing_mm=2.0,
                                                       pixel_spacing=(0.5, 0.5))], study_uid=study.study_uid)
    window, controller, viewport, record = _grown(make_window, qtbot, study)
    assert not controller.masks[record.id][:, 85:96, 40:61].any()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, _at(controller, 90, 50))
    qtbot.waitUntil(lambda: bool(controller.measurements()[0].details.get("more_seeds")), timeout=20000)
    [added] = controller.measurements()  # the same record, not a second volume
    assert added.id == record.id and added.more_seeds == [(10, 90, 50)]
    assert controller.masks[record.id][8:13, 85:96, 40:61].all()
    assert added.details["voxels"] == pytest.approx(record.details["voxels"] + 5 * 11 * 21, abs=60)
    window.close()

    again, controller2 = _open(make_window, study)
    qtbot.waitUntil(lambda: record.id in controller2.masks, timeout=20000)
    assert controller2.masks[record.id].sum() == added.details["voxels"]


def test_shift_click_without_a_volume_says_what_to_do(make_window, qtbot):
    window, controller = _open(make_window, _study())
    window.action("measure_volume").trigger()
    qtbot.mouseClick(controller.view.graphics.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ShiftModifier, _at(controller, 50, 64))
    assert "click a bleed first" in controller.panel.status.text() and controller.measurements() == []


def test_seed_in_air_says_why_and_draws_nothing(make_window, qtbot):
    window, controller = _open(make_window, _study())
    window.action("measure_volume").trigger()
    qtbot.mouseClick(controller.view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=_at(controller, 2, 2))
    qtbot.waitUntil(lambda: "air" in controller.panel.status.text(), timeout=20000)
    assert controller.measurements() == [] and not controller.masks


def test_without_pixel_spacing_the_ruler_says_pixels(make_window, qtbot):
    study = _study()
    for header in study.series[0].slices:
        header.pixel_spacing_known = False
    window, controller = _open(make_window, study)
    window.action("measure_distance").trigger()
    assert "not mm" in controller.panel.status.text()
    _drag(qtbot, controller, (20, 20), (50, 60))
    [record] = controller.measurements()
    assert record.unit == "px" and "not mm" in record.text


def test_escape_cancels_then_leaves_the_tool(make_window, qtbot):
    window, controller = _open(make_window, _study())
    window.action("measure_polygon").trigger()
    viewport = controller.view.graphics.viewport()
    for p in ((20, 20), (20, 60), (60, 60)):
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, *p))
    assert len(controller.points) >= 3
    window.action("measure_cancel").trigger()
    assert controller.points == [] and controller.tool == "polygon"
    window.action("measure_cancel").trigger()
    assert controller.tool is None and controller.measurements() == []


def test_angle_midline_and_polygon_take_the_clicked_points(make_window, qtbot):
    window, controller = _open(make_window, _study())
    viewport = controller.view.graphics.viewport()
    window.action("measure_angle").trigger()
    for p in ((20, 80), (60, 40), (60, 90)):  # arm, vertex, arm: 45° between (-20, 20) and (0, 25) mm
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, *p))
    [angle] = controller.measurements()
    assert angle.kind == "angle" and angle.value == pytest.approx(45.0, abs=1.5)

    window.action("measure_midline").trigger()
    _drag(qtbot, controller, (10, 64), (110, 64))  # a vertical midline
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, 50, 80))  # 16 px = 8 mm aside
    shift = controller.measurements()[-1]
    assert shift.kind == "midline" and shift.value == pytest.approx(8.0, abs=0.6) and shift.unit == "mm"

    window.action("measure_polygon").trigger()
    for p in ((30, 30), (30, 50), (50, 50)):
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, *p))
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, 50, 30))
    polygon = controller.measurements()[-1]
    assert polygon.kind == "polygon" and len(polygon.points) == 4
    assert polygon.details["area"] == pytest.approx(20 * 20 * 0.25, rel=0.1)
    # a real double-click: its first press arrives as a click, its second as the double-click
    for p in ((70, 30), (70, 50), (90, 50), (90, 30)):
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, *p))
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, 90, 30))
    assert len(controller.measurements()[-1].points) == 4


def test_brush_edits_the_outline_live_and_the_edit_survives_regrow_and_reopen(make_window, qtbot):
    study = _study()
    window, controller, viewport, grown = _grown(make_window, qtbot, study)
    voxel_ml = 2.0 * 0.5 * 0.5 / 1000

    window.action("measure_brush_erase").trigger()
    controller.panel.brush.setValue(2.0)  # 4 px
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, 50, 40))
    qtbot.mouseMove(viewport, _at(controller, 50, 88))  # across the bleed on its middle slice
    assert "(editing)" in controller.panel.status.text()  # the volume follows the brush before release
    live = float(controller.panel.status.text().split(": ")[1].split()[0])
    assert live < grown.value
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=_at(controller, 50, 88))
    [erased] = controller.measurements()
    assert erased.value < grown.value and erased.value == pytest.approx(live, abs=0.05)
    assert erased.details["voxels"] == controller.masks[erased.id].sum() and "edited" in erased.text
    assert not controller.masks[erased.id][10, 49:52, 48:80].any() and len(erased.details["edits"]) > 1

    window.action("measure_brush_add").trigger()
    _drag(qtbot, controller, (80, 64), (80, 70))  # brain below the bleed: added (a separate dab of blood)
    [added] = controller.measurements()
    assert added.details["voxels"] > erased.details["voxels"]
    assert added.value == pytest.approx(added.details["voxels"] * voxel_ml)
    _drag(qtbot, controller, (2, 2), (2, 8))  # air: the add brush paints nothing there
    assert controller.measurements()[0].details["voxels"] == added.details["voxels"]

    controller.panel.low_slider.setValue(50)  # the threshold edit regrows, the strokes are replayed
    assert controller.panel.low.value() == 50.0
    controller.panel.list.setCurrentRow(0)
    controller.panel.low_slider.sliderReleased.emit()
    qtbot.waitUntil(lambda: controller.measurements()[0].details["hu_range"][0] == 50.0, timeout=20000)
    assert controller.measurements()[0].details["voxels"] == added.details["voxels"]
    window.close()

    again, controller2 = _open(make_window, study)
    qtbot.waitUntil(lambda: added.id in controller2.masks, timeout=20000)
    assert controller2.masks[added.id].sum() == added.details["voxels"]
    assert not controller2.masks[added.id][10, 49:52, 48:80].any()


def test_brush_without_a_volume_says_what_to_do(make_window, qtbot):
    window, controller = _open(make_window, _study())
    window.action("measure_brush_add").trigger()
    _drag(qtbot, controller, (50, 60), (50, 64))
    assert "grow a bleed volume first" in controller.panel.status.text() and controller.measurements() == []


def test_the_panel_tool_row_turns_tools_on_and_off_like_the_keys(make_window, qtbot):
    window, controller = _open(make_window, _study())
    controller.buttons["distance"].click()
    assert controller.tool == "distance" and window.action("measure_distance").isChecked()
    window.action("measure_brush_add").trigger()  # the key's action: the row follows
    assert controller.tool == "brush_add" and controller.buttons["brush_add"].isChecked()
    assert not controller.buttons["distance"].isChecked()
    controller.buttons["brush_add"].click()
    assert controller.tool is None and not any(b.isChecked() for b in controller.buttons.values())
    assert [b.text().split()[0] for b in controller.buttons.values()] == ["D", "K", "E", "L", "M", "V", "B", "Shift+B"]


def test_choosing_the_volume_tool_prepares_the_head_so_a_click_only_grows(make_window, qtbot):
    window, controller = _open(make_window, _study())
    series = window.current_series()
    assert series.series_uid not in controller._heads
    window.action("measure_volume").trigger()
    qtbot.waitUntil(lambda: series.series_uid in controller._heads, timeout=20000)
    head = controller._heads[series.series_uid]
    cavity = head.cavity
    assert cavity.shape == (20, 128, 128) and cavity[10, 64, 64] and not cavity[10, 2, 2]
    assert sorted(head.bands) == list(range(head.box[0].stop - head.box[0].start))  # every slice's band, found once
    qtbot.mouseClick(controller.view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=_at(controller, 50, 64))
    qtbot.waitUntil(lambda: bool(controller.masks), timeout=20000)
    assert controller._heads[series.series_uid] is head  # the click used it, not a new one
