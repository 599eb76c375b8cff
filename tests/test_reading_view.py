"""Standard viewer conventions (issue 11): orientation letters, scale bar, zoom, turn/flip/invert,
the HU readout on slice change, own presets, keys in text fields, help, title, File menu."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from ich_viewer.imaging.orientation import direction_letters, edge_letters, scale_bar_mm, screen_axes
from ich_viewer.imaging.presets import PRESETS, Preset, format_user_presets, parse_user_presets

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


# -- Qt-free ------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation, expected", [
    (AXIAL, {"left": "R", "right": "L", "top": "A", "bottom": "P"}),
    (CORONAL, {"left": "R", "right": "L", "top": "H", "bottom": "F"}),
    (SAGITTAL, {"left": "A", "right": "P", "top": "H", "bottom": "F"}),
    # an axial acquired upside down (prone, or turned by the scanner): rows run to the right hand
    ((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0), {"left": "L", "right": "R", "top": "P", "bottom": "A"}),
])
def test_edge_letters_of_standard_orientations(orientation, expected):
    assert edge_letters(orientation) == expected


def test_edge_letters_of_a_rotated_and_tilted_orientation():
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    rotated = (c, s, 0.0, -s, c, 0.0)  # axial, turned 30 degrees in plane
    letters = edge_letters(rotated)
    assert letters["right"] == "LP" and letters["left"] == "RA"
    assert letters["top"] == "AL" and letters["bottom"] == "PR"
    tilt = np.radians(20)  # gantry tilt: the column direction leans towards the head
    tilted = (1.0, 0.0, 0.0, 0.0, np.cos(tilt), np.sin(tilt))
    assert edge_letters(tilted)["bottom"] == "PH" and edge_letters(tilted)["top"] == "AF"
    assert direction_letters((0.0, 0.0, 1.0)) == "H" and direction_letters((0.1, 0.0, -1.0)) == "F"
    assert edge_letters(None) == {} and edge_letters((1.0, 0.0)) == {}


def test_turns_and_flips_move_the_letters_like_the_picture():
    # one clockwise turn: what was at the top (A) is now on the right
    assert edge_letters(AXIAL, quarter_turns=1) == {"left": "P", "right": "A", "top": "R", "bottom": "L"}
    assert edge_letters(AXIAL, quarter_turns=4) == edge_letters(AXIAL)
    assert edge_letters(AXIAL, quarter_turns=-1) == edge_letters(AXIAL, quarter_turns=3)
    assert edge_letters(AXIAL, flip_h=True) == {"left": "L", "right": "R", "top": "A", "bottom": "P"}
    assert edge_letters(AXIAL, flip_v=True)["top"] == "P"
    right, down = screen_axes(AXIAL, 2)
    assert tuple(right) == (-1.0, 0.0, 0.0) and tuple(down) == (0.0, -1.0, 0.0)


def test_scale_bar_is_a_round_length_that_fits():
    assert scale_bar_mm(0.5, 100) == 50.0
    assert scale_bar_mm(0.37, 100) == 20.0  # 37 mm fit: 20 is the round length below
    assert scale_bar_mm(0.01, 150) == 1.0
    assert scale_bar_mm(0.004, 150) == 0.5
    assert scale_bar_mm(0.0, 100) == 0.0


def test_own_presets_round_trip_and_drop_bad_rows():
    presets = [Preset("Shift+1", "Stroke", 40.0, 40.0), Preset("Shift+3", "Posterior fossa", 45.0, 120.0)]
    assert parse_user_presets(format_user_presets(presets)) == presets
    bad = ["Shift+2|no width|40|0", "1|takes a fixed key|40|80", "Shift+4||40|80", "Shift+5|x|a|b", "junk"]
    assert parse_user_presets(bad + format_user_presets(presets)) == presets


# -- in the window ----------------------------------------------------------------------------
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtWidgets import QLineEdit, QSpinBox  # noqa: E402

from ich_viewer.dicom.model import Series, Study  # noqa: E402
from ich_viewer.ui.overlays import overlay_texts  # noqa: E402


def _study(n: int = 6, orientation=AXIAL, thickness: float | None = 5.0, warnings=()) -> Study:
    volume = np.full((n, 64, 64), 20.0, np.float32)
    for i in range(n):
        volume[i, 10, 20] = 100 + 10 * i  # each slice its own value under the cursor
    series = Series.from_array(volume, series_uid="1.2.3.4", spacing_mm=5.0, pixel_spacing=(0.5, 0.5),
                               description="AXIAL")
    for header in series.slices:
        header.orientation = tuple(orientation)
        header.slice_thickness = thickness
    series.warnings = list(warnings)
    return Study(study_uid="1.2.3", source="/data/case-17", series=[series], patient_name="DOE^JANE",
                 patient_id="P17", study_description="CT HEAD")


@pytest.fixture
def window(make_window):
    return make_window(extensions=[])


def _show(qtbot, win, study: Study) -> None:
    win.show_study(study)
    qtbot.waitUntil(lambda: win.shown_index() == win.current_index(), timeout=5000)
    qtbot.wait(30)


def test_hu_readout_follows_the_slice_without_a_mouse_move(qtbot, window):
    _show(qtbot, window, _study())
    view = window.image_view()
    view._on_mouse_moved(view.image_item.mapToScene(QPointF(20.5, 10.5)))  # col 20, row 10
    middle = window.current_index()
    assert f"{100 + 10 * middle} HU" in window.cursor_text()
    assert f"{100 + 10 * middle} HU" in view.overlays.cursor_text(), "the readout is also next to the cursor"
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.current_index() == 0
    qtbot.waitUntil(lambda: window.shown_index() == 0, timeout=5000)
    assert "100 HU" in window.cursor_text(), "after Home the readout is the first slice's value"
    assert view.overlays.cursor_text().startswith("100 HU")
    z = window.current_series().slices[0].position[2]
    assert f"{z:.1f}) mm" in window.cursor_text()
    view.leaveEvent(None)
    assert window.cursor_text() == "" and view.overlays.cursor_text() == ""


def test_letters_zoom_scale_bar_and_smoothing_on_the_image(qtbot, window):
    _show(qtbot, window, _study(orientation=CORONAL))
    view = window.image_view()
    overlays = view.overlays
    assert overlays.letters() == {"left": "R", "right": "L", "top": "H", "bottom": "F"}
    blocks = overlays.layout()
    assert {"letter_left", "letter_right", "letter_top", "letter_bottom", "scale"} <= set(blocks)
    zoom = view.zoom_factor()
    assert f"Zoom {zoom:.2f}×" in overlays.corner_text("bottom_left")
    mm, px = overlays.scale_bar()
    assert px == pytest.approx(mm * zoom / 0.5, abs=1.0), "the bar is as long on screen as its mm say"
    assert view.image_item.smooth == (zoom > 1.0)
    view.zoom(4.0)
    qtbot.wait(20)
    assert view.zoom_factor() > 1.0 and view.image_item.smooth, "magnified: smooth interpolation"
    window.action("smooth").trigger()
    assert not view.image_item.smooth


def test_turn_flip_invert_and_one_key_reset(qtbot, window):
    _show(qtbot, window, _study())
    view = window.image_view()
    fitted = view.zoom_factor()
    qtbot.keyClick(window, Qt.Key.Key_Period)
    assert view.quarter_turns() == 1
    assert view.overlays.letters()["right"] == "A"
    # the pixel under the mouse is still the right one after the turn
    scene = view.image_item.mapToScene(QPointF(20.5, 10.5))
    view._on_mouse_moved(scene)
    assert f"{100 + 10 * window.current_index()} HU" in window.cursor_text()
    qtbot.keyClick(window, Qt.Key.Key_H)  # flips what is left-right on screen now
    assert view.overlays.letters()["right"] == "P"
    qtbot.keyClick(window, Qt.Key.Key_I)
    assert view.inverted and window.action("invert").isChecked()
    view.zoom(3.0)
    qtbot.keyClick(window, Qt.Key.Key_3)
    qtbot.keyClick(window, Qt.Key.Key_Backspace)
    assert view.quarter_turns() == 0 and not view.inverted and not (view.flip_h or view.flip_v)
    assert view.overlays.letters() == edge_letters(AXIAL)
    assert window.preset_name() == "Default" and view.zoom_factor() == pytest.approx(fitted, rel=0.01)


class _Drag:
    """The parts of a pyqtgraph drag event the ViewBox reads."""

    def __init__(self, dy: float, start: QPointF) -> None:
        self.dy, self.start = dy, start

    def button(self):
        return Qt.MouseButton.RightButton

    def screenPos(self):  # noqa: N802
        return QPointF(0.0, self.dy)

    def lastScreenPos(self):  # noqa: N802
        return QPointF(0.0, 0.0)

    def buttonDownPos(self, _button=None):  # noqa: N802
        return self.start

    def accept(self):
        pass


def test_right_drag_zoom_is_calm(qtbot, window):
    _show(qtbot, window, _study())
    view = window.image_view()
    before = view.zoom_factor()
    centre = view.view_box.boundingRect().center()
    for _ in range(10):  # 100 px up in 10 moves
        view.view_box.mouseDragEvent(_Drag(-10.0, centre))
    ratio = view.zoom_factor() / before
    assert 1.5 < ratio < 2.2, f"100 px magnify {ratio:.2f}x (pyqtgraph's own: about 7x)"


def test_corner_texts_never_overlap_at_any_size(qtbot, window):
    study = _study(warnings=["Uneven slice spacing: 12.5 mm between slices 3 and 4; typical spacing 5.00 mm"])
    study.patient_name = "VERY-LONG-FAMILY-NAME^WITH MANY GIVEN NAMES"
    study.institution = "A hospital with a long name and a longer department"
    study.series[0].description = "Axial 5 mm head without contrast, soft tissue kernel H30s, dose report"
    _show(qtbot, window, study)
    view = window.image_view()
    view.overlays.set_line("review", "✓ Flag accepted")
    for width, height in itertools.product((220, 360, 520, 800, 1300), (200, 320, 600, 1000)):
        view.resize(width, height)
        view.graphics.viewport().resize(width, height)
        blocks = {n: r for n, (r, _t) in view.overlays.layout().items() if n != "cursor"}
        for (a, ra), (b, rb) in itertools.combinations(blocks.items(), 2):
            assert not ra.intersects(rb), f"{a} overlaps {b} at {width}x{height}"
        for name, rect in blocks.items():
            assert rect.left() >= 0 and rect.right() < width and rect.bottom() < height, (name, width, height)
        if width >= 520 and height >= 320:
            assert {"top_left", "top_right", "bottom_left", "bottom_right", "letter_left"} <= set(blocks)


def test_every_corner_line_fits_inside_its_plate(qtbot, window):
    """The painter lays lines out at a rounded-up pitch (16 px for 15.125): a plate sized as
    lines x lineSpacing() cut the last line of the five-line patient corner in half."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QFontMetrics

    study = _study()
    study.patient_age, study.patient_sex, study.study_date, study.institution = "050Y", "O", "20261129", "A hospital"
    _show(qtbot, window, study)
    view = window.image_view()
    view.resize(900, 800)
    view.graphics.viewport().resize(900, 800)
    metrics = QFontMetrics(view.overlays.font)
    flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    blocks = view.overlays.layout()
    assert blocks["top_left"][1].count("\n") >= 4  # name, ID, age/sex, date, institution
    for name in ("top_left", "top_right", "bottom_left", "bottom_right"):
        rect, text = blocks[name]
        needed = metrics.boundingRect(QRect(0, 0, 4000, 4000), flags, text)
        inner = rect.adjusted(4, 4, -4, -4)  # the plate's padding
        assert needed.height() <= inner.height() and needed.width() <= inner.width() + 1, (name, text)


def test_thickness_missing_shows_the_measured_spacing_and_warnings_show_on_the_image(qtbot, window):
    study = _study(thickness=None, warnings=["Missing slice(s): between 15.0 and 25.0 mm; expected spacing 5.00 mm"])
    texts = overlay_texts(study, study.series[0], 0, (40.0, 80.0), "Brain")
    assert "Thk ? (spacing 5.0 mm, measured)" in texts["bottom_left"]
    _show(qtbot, window, study)
    line = window.image_view().overlays.line("load")
    assert line.startswith("⚠ Missing slice(s)") and "Ctrl+L" in line
    assert "line_load" in window.image_view().overlays.layout()


def test_window_title_names_the_program_once(qtbot, window):
    assert window.windowTitle() == "ICH Viewer"
    _show(qtbot, window, _study())
    title = window.windowTitle()
    assert title == "DOE, JANE · CT HEAD — ICH Viewer"
    assert title.count("ICH Viewer") == 1 and title.endswith("ICH Viewer"), "Qt adds the name unless it ends the title"
    window.close_study()
    assert window.windowTitle() == "ICH Viewer"


def test_single_series_hides_the_series_panel(qtbot, window):
    _show(qtbot, window, _study())
    assert not window.series_dock.isVisible()
    two = _study()
    extra = Series.from_array(np.zeros((3, 32, 32), np.float32), series_uid="9.9", description="THIN")
    two.series.append(extra)
    _show(qtbot, window, two)
    assert window.series_dock.isVisible()


def test_keys_go_to_a_focused_text_field_not_to_the_window(qtbot, window):
    _show(qtbot, window, _study())
    field, spin = QLineEdit(), QSpinBox()
    spin.setRange(0, 5000)
    panel_dock = window.add_side_panel(field, "Note")
    window.add_side_panel(spin, "Number")
    panel_dock.raise_()
    index, preset = window.current_index(), window.preset_name()
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=2000)
    qtbot.keyClicks(field, "t2 h")
    qtbot.keyClick(field, Qt.Key.Key_Home)
    qtbot.keyClick(field, Qt.Key.Key_I)
    assert field.text() == "it2 h", "every key went into the field"
    assert window.preset_name() == preset and window.image_view().quarter_turns() == 0
    assert not window.image_view().inverted and window.current_index() == index
    spin.show()
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=2000)
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "40")
    qtbot.keyClick(spin, Qt.Key.Key_Down)
    assert spin.value() == 39 and window.current_index() == index and window.preset_name() == preset
    dialog = window.actions_.edit_user_presets()  # a dialog: its table takes the keys, even not editing
    dialog.table.setFocus()
    qtbot.keyClick(dialog.table, Qt.Key.Key_3)
    qtbot.keyClick(dialog.table, Qt.Key.Key_Period)
    assert window.preset_name() == preset and window.image_view().quarter_turns() == 0
    dialog.reject()
    window.image_view().setFocus()
    qtbot.waitUntil(lambda: not field.hasFocus() and not spin.hasFocus(), timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_2)
    assert window.preset_name() == "Brain", "without a text field the key works again"


def test_own_presets_on_shift_numbers_are_kept_in_settings(qtbot, window, isolated_settings):
    from ich_viewer.ui.settings import app_settings

    _show(qtbot, window, _study())
    assert [a.shortcut().toString() for a in window.actions_.presets.values()] == list("1234567890")
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ShiftModifier)
    assert window.preset_name() == "Stroke" and window.current_window() == (40.0, 40.0)
    window.set_window(45.0, 120.0)
    dialog = window.actions_.save_current_as_preset()
    row = 1  # Shift+1 holds Stroke: the window goes to the first free key
    assert dialog.table.item(row, 0).text() == "Shift+2"
    dialog.table.item(row, 1).setText("Posterior fossa")
    dialog.table.item(2, 1).setText("broken")
    dialog.table.item(2, 2).setText("0")
    dialog._accept()
    assert dialog.isVisible() and "Shift+3" in dialog.message.text(), "a bad row keeps the dialog open"
    dialog.table.item(2, 1).setText("")
    dialog._accept()
    assert "Posterior fossa" in str(app_settings().value("presets/own"))
    window.set_preset(PRESETS[1])
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ShiftModifier)
    assert window.preset_name() == "Posterior fossa" and window.current_window() == (45.0, 120.0)
    assert window.actions_.presets["2"].text() == "2 Brain", "the fixed ten are unchanged"


def test_help_is_grouped_by_task_and_cuts_nothing_off(qtbot, window):
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QFontMetrics

    dialog = window.show_controls()
    table = dialog.table
    assert list(dialog.group_rows)[:4] == ["Mouse", "Move through the study", "Grey-level window",
                                           "Zoom, turn and screen"]
    rows = {table.item(r, 0).text(): r for r in range(table.rowCount()) if table.item(r, 1) is not None}
    assert dialog.group_rows["Grey-level window"] < rows["2"] < dialog.group_rows["Zoom, turn and screen"]
    assert dialog.group_rows["Zoom, turn and screen"] < rows["F11"] < dialog.group_rows["Open, look up, quit"]
    metrics = QFontMetrics(table.font())
    for r in range(table.rowCount()):
        if table.item(r, 1) is None:
            continue
        assert table.columnWidth(0) >= metrics.horizontalAdvance(table.item(r, 0).text()), table.item(r, 0).text()
        needed = metrics.boundingRect(QRect(0, 0, table.columnWidth(1) - 8, 10000),
                                      int(Qt.TextFlag.TextWordWrap), table.item(r, 1).text()).height()
        assert table.rowHeight(r) >= needed, table.item(r, 1).text()


def test_file_menu_in_the_usual_order(qtbot, make_window):
    window = make_window(extensions=["ich_viewer.ui.review_panel:attach_review"])
    names = [a.objectName() or ("-" if a.isSeparator() else a.text()) for a in window.menu("File").actions()]
    names = [n for n in names if n != "-"]
    assert names[:3] == ["action_open_folder", "action_open_file", "Open &recent"]
    assert names.index("action_export_report") < names.index("action_load_log") < names.index("action_quit")
    assert names[-1] == "action_quit"


def test_screen_position_of_the_cursor_readout_stays_inside(qtbot, window):
    _show(qtbot, window, _study())
    overlays = window.image_view().overlays
    viewport = window.image_view().graphics.viewport()
    overlays.set_cursor("100 HU\n(1.0, 2.0, 3.0) mm", QPoint(viewport.width() - 2, viewport.height() - 2))
    rect = overlays.layout()["cursor"][0]
    assert rect.right() < viewport.width() and rect.bottom() < viewport.height()
