"""The reading window on the offscreen platform: opening, presets, scrolling, overlays, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QWheelEvent  # noqa: E402

from ich_viewer.dicom.model import Series, Study  # noqa: E402
from ich_viewer.imaging.presets import PRESETS  # noqa: E402
from ich_viewer.imaging.windowing import window_bounds  # noqa: E402
from ich_viewer.phantom.writer import StudyInfo, write_series  # noqa: E402

N_SLICES = 12
TAG_WINDOW = (35.0, 90.0)


def _volume(n: int, rows: int = 64, cols: int = 64, offset: float = 0.0) -> np.ndarray:
    """Each slice has a distinct value at pixel (0, 0) so tests can tell slices apart."""
    yy, xx = np.mgrid[0:rows, 0:cols]
    head = ((yy - rows / 2) / (rows * 0.45)) ** 2 + ((xx - cols / 2) / (cols * 0.4)) ** 2 < 1
    vol = np.where(head, 30.0, -1000.0)[None].repeat(n, axis=0).astype(np.float32)
    for i in range(n):
        vol[i, 0, 0] = 100 + i + offset
    return vol


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory) -> Path:
    """Two series of one study, written by the project's phantom writer (shuffled names)."""
    root = tmp_path_factory.mktemp("study")
    info = StudyInfo(patient_name="TEST^READER", patient_sex="F", patient_age="061Y", study_date="20261122")
    write_series(_volume(N_SLICES), root / "axial", spacing_mm=5.0, pixel_spacing=(0.5, 0.8), study=info,
                 file_names="random", series_number=2, description="AXIAL BRAIN", window=TAG_WINDOW)
    write_series(_volume(4, offset=1000), root / "second", spacing_mm=2.5, pixel_spacing=(0.5, 0.5),
                 study=info, series_number=3, description="THIN", window=None)
    (root / "notes.txt").write_text("not a DICOM file")
    return root


@pytest.fixture
def window(make_window):
    """The bare reading window: other teams' extensions are tested in their own files."""
    return make_window(extensions=[])


def _open(qtbot, win, path) -> None:
    with qtbot.waitSignal(win.study_opened, timeout=20000):
        win.open_path(path)
    _wait_image(qtbot, win)


def _wait_image(qtbot, win) -> None:
    qtbot.waitUntil(lambda: win.shown_index() == win.current_index(), timeout=10000)


def _pixel00(win) -> float:
    return float(win.image_view().image_item.image[0, 0])


def test_open_folder_shows_the_middle_slice_with_true_aspect(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    study, series = window.current_study(), window.current_series()
    assert len(study.series) == 2 and series.n_slices == N_SLICES
    assert window.current_index() == N_SLICES // 2
    assert _pixel00(window) == 100 + N_SLICES // 2
    rect = window.image_view().image_rect()
    assert (rect.width(), rect.height()) == pytest.approx((64 * 0.8, 64 * 0.5))
    assert window.image_view().image_item.image.dtype == np.float32
    assert "Im 7/12" in window.image_view().overlays.text("top_right")
    assert "TEST" in study.patient_name and study.patient_name.replace("^", " ").split()[-1] in \
        window.image_view().overlays.text("top_left")
    assert "061Y F" in window.image_view().overlays.text("top_left")
    assert "2026-11-22" in window.image_view().overlays.text("top_left")


def test_default_window_is_the_slice_tag_and_keys_1_to_0_set_exact_levels(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    item = window.image_view().image_item
    assert window.current_window() == TAG_WINDOW
    assert tuple(item.getLevels()) == window_bounds(*TAG_WINDOW)
    image_before = item.image
    for preset in PRESETS[1:] + PRESETS[:1]:
        qtbot.keyClick(window, preset.key)
        center, width = TAG_WINDOW if preset.is_default else (preset.center, preset.width)
        expected = (center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2)
        assert tuple(item.getLevels()) == pytest.approx(expected), preset.name
        assert window.preset_name() == preset.name
        assert preset.name in window.window_label.text()
        assert f"W {width:g}  L {center:g}" in window.image_view().overlays.text("bottom_right")
        assert window.actions_.presets[preset.key].isChecked()
    assert item.image is image_before  # a window change never recomputes the array


def test_overlay_texts_for_a_dicom_person_name():
    from ich_viewer.ui.overlays import overlay_texts

    study = Study(source="mem", patient_name="DOE^Jane", patient_age="067Y", patient_sex="F", study_date="20261122")
    series = Series.from_array(_volume(3))
    texts = overlay_texts(study, series, 2, (40.0, 80.0), "Brain")
    assert texts["top_left"].splitlines()[:3] == ["DOE, Jane", "067Y F", "2026-11-22"]
    assert "Im 3/3" in texts["top_right"] and texts["bottom_right"] == "W 80  L 40\nBrain"
    assert texts["bottom_left"].splitlines()[:2] == ["Loc 10.0 mm", "Thk 5.0 mm"]


def test_default_falls_back_to_brain_without_window_tags(qtbot, window):
    window.show_study(Study(source="mem", series=[Series.from_array(_volume(3), window=None)]))
    _wait_image(qtbot, window)
    assert window.current_window() == (40.0, 80.0)
    assert tuple(window.image_view().image_item.getLevels()) == (0.0, 79.0)


def test_scrolling_keys_wheel_and_slider_change_the_slice(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    start = N_SLICES // 2
    steps = [(Qt.Key.Key_Down, start + 1), (Qt.Key.Key_Up, start), (Qt.Key.Key_PageDown, N_SLICES - 1),
             (Qt.Key.Key_PageUp, N_SLICES - 11), (Qt.Key.Key_Home, 0), (Qt.Key.Key_End, N_SLICES - 1),
             (Qt.Key.Key_Up, N_SLICES - 2)]
    for key, expected in steps:
        with qtbot.waitSignal(window.slice_changed, timeout=2000) as blocker:
            qtbot.keyClick(window, key)
        assert blocker.args == [expected] and window.current_index() == expected
        _wait_image(qtbot, window)
        assert _pixel00(window) == 100 + expected
        assert f"Im {expected + 1}/{N_SLICES}" in window.image_view().overlays.text("top_right")
    viewport = window.image_view().graphics.viewport()
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)
    for delta, expected in ((-120, N_SLICES - 1), (120, N_SLICES - 2), (240, N_SLICES - 4)):
        event = QWheelEvent(centre, viewport.mapToGlobal(centre), QPoint(0, 0), QPoint(0, delta),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        qtbot.mouseMove(viewport, centre.toPoint())
        from PySide6.QtWidgets import QApplication
        QApplication.sendEvent(viewport, event)
        assert window.current_index() == expected
    window.slider.setValue(2)
    assert window.current_index() == 2
    window.set_slice(999)
    assert window.current_index() == N_SLICES - 1 and window.slider.value() == N_SLICES - 1


def test_ctrl_wheel_zooms_instead_of_scrolling(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    view = window.image_view()
    viewport = view.graphics.viewport()
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)
    before_index, before_range = window.current_index(), view.view_box.viewRange()[0]
    event = QWheelEvent(centre, viewport.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    from PySide6.QtWidgets import QApplication
    QApplication.sendEvent(viewport, event)
    after_range = view.view_box.viewRange()[0]
    assert window.current_index() == before_index
    assert after_range[1] - after_range[0] < before_range[1] - before_range[0]
    qtbot.keyClick(window, Qt.Key.Key_F)
    fitted = view.view_box.viewRange()[0]
    assert fitted[1] - fitted[0] >= view.image_rect().width()


def test_mouse_drag_windows_with_fine_and_coarse_steps(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    qtbot.keyClick(window, "2")
    drag = window.image_view().view_box.window_dragged
    drag.emit(10.0, -5.0, Qt.KeyboardModifier.NoModifier)
    assert window.current_window() == (45.0, 90.0)
    assert window.preset_name() == "Custom" and "Custom" in window.window_label.text()
    assert window.actions_.preset_group.checkedAction() is None
    drag.emit(10.0, 0.0, Qt.KeyboardModifier.ShiftModifier)
    assert window.current_window() == pytest.approx((45.0, 92.0))
    drag.emit(-1.0, 1.0, Qt.KeyboardModifier.ControlModifier)
    assert window.current_window() == pytest.approx((35.0, 82.0))
    assert tuple(window.image_view().image_item.getLevels()) == pytest.approx(window_bounds(35.0, 82.0))


def test_viewbox_left_drag_is_window_and_middle_drag_pans(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    import pyqtgraph as pg

    vb = window.image_view().view_box

    class FakeDrag:
        def __init__(self, button, delta):
            self._button, self._delta, self.accepted = button, delta, False
        def button(self): return self._button
        def screenPos(self): return QPointF(100 + self._delta[0], 100 + self._delta[1])
        def lastScreenPos(self): return QPointF(100, 100)
        def pos(self): return pg.Point(100 + self._delta[0], 100 + self._delta[1])
        def lastPos(self): return pg.Point(100, 100)
        def modifiers(self): return Qt.KeyboardModifier.NoModifier
        def accept(self): self.accepted = True
        def isFinish(self): return False
        def isStart(self): return False

    window_before = window.current_window()
    range_before = vb.viewRange()
    vb.mouseDragEvent(FakeDrag(Qt.MouseButton.LeftButton, (20, 0)))
    assert window.current_window() == (window_before[0], window_before[1] + 20)
    assert vb.viewRange() == range_before
    vb.mouseDragEvent(FakeDrag(Qt.MouseButton.MiddleButton, (30, 0)))
    assert vb.viewRange()[0] != range_before[0]
    assert window.current_window() == (window_before[0], window_before[1] + 20)


def test_overlays_toggle_with_a_key(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    overlays = window.image_view().overlays
    assert window.overlays_visible() and len(overlays.visible_texts()) == 4
    qtbot.keyClick(window, Qt.Key.Key_O)
    assert not window.overlays_visible() and overlays.visible_texts() == {}
    assert not window.actions_.by_name["overlays"].isChecked()
    qtbot.keyClick(window, Qt.Key.Key_O)
    texts = overlays.visible_texts()
    assert set(texts) == {"top_left", "top_right", "bottom_left", "bottom_right"}
    assert "Thk 5.0 mm" in texts["bottom_left"] and "Loc " in texts["bottom_left"]


def test_series_switching_by_keys_and_browser(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    browser = window.series_browser
    assert browser.count() == 2
    qtbot.waitUntil(lambda: browser.has_thumbnail(0) and browser.has_thumbnail(1), timeout=10000)
    first = window.current_series()
    with qtbot.waitSignal(window.series_shown, timeout=2000) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_Right)
    second = window.current_series()
    assert blocker.args == [second] and second is not first and second.n_slices == 4
    _wait_image(qtbot, window)
    assert _pixel00(window) == 1100 + window.current_index()
    assert window.current_window() == (40.0, 80.0)  # this series has no window tags
    qtbot.keyClick(window, Qt.Key.Key_Right)  # already the last: stays
    assert window.current_series() is second
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert window.current_series() is first
    browser.series_activated.emit(1)
    assert window.current_series() is second and browser.currentRow() == 1


def test_cursor_shows_hu_and_patient_position(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    qtbot.wait(30)  # the ViewBox applies its range when it is painted
    view = window.image_view()
    series, index = window.current_series(), window.current_index()
    scene_pos = view.image_item.mapToScene(QPointF(0.5, 0.5))
    view._on_mouse_moved(scene_pos)
    header = series.slices[index]
    text = window.cursor_text()
    assert f"{100 + index:.0f} HU" in text
    x, y, z = header.position
    assert f"({x:.1f}, {y:.1f}, {z:.1f}) mm" in text
    scene_pos = view.image_item.mapToScene(QPointF(10.5, 20.5))  # col 10, row 20
    view._on_mouse_moved(scene_pos)
    assert f"({x + 10 * 0.8:.1f}, {y + 20 * 0.5:.1f}, {z:.1f}) mm" in window.cursor_text()
    assert "x 10  y 20" in window.cursor_text()


def test_tag_browser_is_searchable_and_follows_the_slice(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    qtbot.keyClick(window, "t", Qt.KeyboardModifier.ControlModifier)
    from ich_viewer.ui.tag_browser import TagBrowser

    browser = window.findChild(TagBrowser)
    assert browser.isVisible()
    browser.search.setText("0028,1050")
    rows = browser.visible_rows()
    assert rows == [("(0028,1050)", "35.0")] or rows == [("(0028,1050)", "35")]
    browser.search.setText("instancenumber")
    assert browser.visible_rows() == [("(0020,0013)", str(window.current_index() + 1))]
    window.step_slice(1)
    assert browser.visible_rows() == [("(0020,0013)", str(window.current_index() + 1))]
    browser.search.clear()
    assert len(browser.visible_rows()) > 20


def test_load_log_lists_skipped_files(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    dialog = window.show_load_log()
    texts = [dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())]
    assert any(t.endswith("notes.txt") for t in texts)
    assert "1 files skipped" in dialog.summary.text() or "skipped" in dialog.summary.text()


def test_errors_are_shown_without_blocking(qtbot, window, tmp_path):
    window.open_path(tmp_path / "does-not-exist")
    assert window.last_error[0] == "Cannot open" and "does not exist" in window.last_error[1]
    assert window.error_box() is not None and window.error_box().isVisible()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "junk.dcm").write_bytes(b"\x00" * 10)
    window.open_path(empty)
    qtbot.waitUntil(lambda: window.last_error[0] == "No images found", timeout=10000)
    assert str(empty) in window.last_error[1] and "1 files were skipped" in window.last_error[1]
    assert window.error_box().isVisible() and window.current_study() is None
    assert "No images found" in window.statusBar().currentMessage()


def test_recent_studies_are_remembered(qtbot, window, study_folder, isolated_settings):
    from ich_viewer.ui.settings import app_settings, recent_studies

    assert recent_studies() == []
    _open(qtbot, window, study_folder)
    assert recent_studies() == [str(study_folder)]
    assert Path(app_settings().fileName()).parent == isolated_settings
    window.rebuild_recent_menu()
    texts = [a.text() for a in window.actions_.recent_menu.actions()]
    assert str(study_folder) in texts and "Clear recent" in texts


def test_drop_a_folder_opens_it(qtbot, window, study_folder):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(study_folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.study_opened, timeout=20000):
        window.dropEvent(event)
    assert window.current_study().source in (str(study_folder), str(study_folder.resolve()))


def test_a_newer_open_wins_over_a_slower_older_one(qtbot, window, study_folder, tmp_path):
    other = tmp_path / "other"
    write_series(_volume(3, offset=500), other, spacing_mm=5.0, pixel_spacing=(0.5, 0.5))
    opened: list[str] = []
    window.study_opened.connect(lambda study: opened.append(study.source))
    window.open_path(study_folder)  # may even finish in the pool before the next line: still stale
    with qtbot.waitSignal(window.study_opened, timeout=20000):
        window.open_path(other)
    _wait_image(qtbot, window)
    qtbot.wait(200)  # room for a late result of the first open to arrive (it must not)
    assert opened == [str(other)] and window.current_series().n_slices == 3


def test_cine_plays_and_stops_on_close(qtbot, window, study_folder):
    _open(qtbot, window, study_folder)
    start = window.current_index()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.cine_running()
    qtbot.waitUntil(lambda: window.current_index() != start, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.cine_running()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.cine_running()  # the fixture's teardown checks close() stops it


def test_menus_and_controls_show_every_key(qtbot, window):
    preset_menu_texts = [a.text() for a in window.actions_.presets.values()]
    assert preset_menu_texts == [f"{p.key} {p.name}" for p in PRESETS]
    assert [a.shortcut().toString() for a in window.actions_.presets.values()] == list("1234567890")
    toolbar_texts = [a.text() for a in window.actions_.toolbar.actions()]
    assert all(t in toolbar_texts for t in preset_menu_texts)
    dialog = window.show_controls()
    rows = [(dialog.table.item(r, 0).text(), dialog.table.item(r, 1).text()) for r in range(dialog.table.rowCount())
            if dialog.table.item(r, 1) is not None]  # the others are the task headings
    keys = {k for k, _ in rows}
    assert {"Left drag", "Middle drag", "Wheel", "Ctrl + wheel", "Space", "PgDown", "Home", "O"} <= keys
    assert ("2", "2 Brain") in rows
    names = [m.title().replace("&", "") for m in (a.menu() for a in window.menuBar().actions()) if m]
    assert names == ["File", "View", "Help"]
    window.menu("Tools")
    names = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert names == ["File", "View", "Tools", "Help"]
    assert window.menu("Tools") is window.menu("Tools")


def test_side_panel_and_slider_decoration(qtbot, window):
    from PySide6.QtWidgets import QLabel

    panel = QLabel("panel")
    dock = window.add_side_panel(panel, "Findings")
    assert dock.widget() is panel and window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    strip = QLabel("strip")
    window.add_slider_decoration(strip)
    layout = window.slice_slider().parentWidget().layout()
    assert layout.indexOf(strip) == layout.indexOf(window.slice_slider()) - 1
    window.show_status("hello")
    assert window.statusBar().currentMessage() == "hello"
