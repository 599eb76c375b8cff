"""The image gets the screen (issue 11): viewport share, image-only view, toolbar overflow,
and the review keys that save keystrokes (runs, accept-and-next, study level, on the image)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QDockWidget, QToolButton  # noqa: E402

from ich_viewer.dicom.model import Series, Study  # noqa: E402
from ich_viewer.options import ViewOptions  # noqa: E402


def _study() -> Study:
    series = Series.from_array(np.full((8, 512, 512), 30.0, np.float32), series_uid="5.6.7",
                               spacing_mm=5.0, pixel_spacing=(0.45, 0.45), description="AXIAL 5 mm")
    for header in series.slices:
        header.orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return Study(study_uid="5.6", source="/data/head", series=[series], patient_id="P5")


def _settle(qtbot, win, width: int, height: int) -> None:
    """``width`` x ``height`` after the first show's own sizing (the offscreen screen is smaller)."""
    qtbot.waitUntil(lambda: win.reading.laid_out, timeout=5000)
    win.resize(width, height)
    qtbot.waitUntil(lambda: win.width() == width and win.height() == height, timeout=5000)
    qtbot.wait(50)


@pytest.mark.parametrize("width, height, share", [(1920, 1080, 0.70), (1366, 768, 0.60)])
def test_the_image_viewport_takes_most_of_the_width(qtbot, make_window, width, height, share):
    win = make_window(ViewOptions(no_model=True))  # every extension: classifier, review, measure, worklist
    win.show_study(_study())
    _settle(qtbot, win, width, height)
    viewport = win.image_view().graphics.viewport().width()
    assert viewport / win.width() >= share, f"viewport {viewport} of {win.width()} px"
    docks = {d.objectName(): d for d in win.findChildren(QDockWidget)}
    assert not docks["dock_series"].isVisible(), "one series: no series list"
    classifier, review = docks["dock_classifier"], docks["dock_review"]
    assert classifier.isVisible() and review.isVisible(), "the plot stays in sight while reviewing"
    assert classifier.geometry().bottom() < review.geometry().top(), "review under the classifier, not a tab of it"
    assert win.minimumSizeHint().height() <= 768, "everything fits a 1366x768 screen"


def test_toolbar_overflows_into_a_menu_instead_of_cutting_buttons(qtbot, make_window):
    win = make_window(ViewOptions(no_model=True))
    for width in (1920, 1366, 900):
        _settle(qtbot, win, width, 700)
        bar = win.actions_.toolbar
        extension = bar.findChild(QToolButton, "qt_toolbar_ext_button")
        hidden = [a.text() for a in bar.actions()
                  if not a.isSeparator() and not bar.widgetForAction(a).isVisible()]
        if hidden:
            assert extension is not None and extension.isVisible(), f"{hidden} cut off at {width} px"
            assert extension.geometry().right() <= bar.width()
        for action in bar.actions():
            button = bar.widgetForAction(action)
            if not action.isSeparator() and button.isVisible():
                assert button.geometry().right() <= bar.width(), f"{action.text()} cut at {width} px"


def test_f11_shows_the_image_alone_and_brings_everything_back(qtbot, make_window):
    win = make_window(ViewOptions(no_model=True))
    win.show_study(_study())
    _settle(qtbot, win, 1366, 768)
    visible_before = sorted(d.objectName() for d in win.findChildren(QDockWidget) if d.isVisible())
    qtbot.keyClick(win, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: not win.menuBar().isVisible(), timeout=3000)
    assert win.reading.image_only() and win.action("image_only").isChecked()
    assert not any(d.isVisible() for d in win.findChildren(QDockWidget))
    assert not win.statusBar().isVisible() and not win.actions_.toolbar.isVisible()
    qtbot.wait(50)
    assert win.image_view().graphics.viewport().width() / win.width() >= 0.9
    qtbot.keyClick(win, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: win.menuBar().isVisible(), timeout=3000)
    assert sorted(d.objectName() for d in win.findChildren(QDockWidget) if d.isVisible()) == visible_before
    assert win.statusBar().isVisible() and win.actions_.toolbar.isVisible() and not win.reading.image_only()


# -- review in fewer keystrokes --------------------------------------------------------------
EXTENSIONS = ["ich_viewer.ui.inference_panel:attach_inference", "ich_viewer.ui.review_panel:attach_review"]


@pytest.fixture
def review_window(qtbot, make_window, flagging_model_dir, tmp_path, monkeypatch):
    from test_report_support import phantom_study

    folder = tmp_path / "study"
    phantom_study(folder, n_slices=8, matrix=64)
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(flagging_model_dir))
    win = make_window(ViewOptions(device="cpu"), EXTENSIONS)
    with qtbot.waitSignal(win.extensions["inference"].series_finished, timeout=60000):
        win.open_path(folder)
    qtbot.waitUntil(lambda: win.extensions["review"].panel.table.rowCount() > 0, timeout=5000)
    yield win
    win.close()


def test_enter_accepts_the_run_and_the_decision_is_on_the_image(qtbot, review_window):
    win = review_window
    review, session = win.extensions["review"], win.extensions["inference"].session
    runs = session.flagged_runs()
    assert runs, "the biased test model flags slices"
    first, last = runs[0]
    win.set_slice(first)
    overlays = win.image_view().overlays
    assert overlays.line("review").startswith("Flag not reviewed")
    qtbot.keyClick(win, Qt.Key.Key_Return)
    assert all(review.decision_at(i).state == "accepted" for i in range(first, last + 1))
    expected = runs[1][0] if len(runs) > 1 else first
    assert win.current_index() == expected, "Enter goes on to the next run"
    win.set_slice(first)
    assert overlays.line("review") == "✓ Flag accepted"
    qtbot.keyClick(win, Qt.Key.Key_R)
    assert overlays.line("review") == "✗ Flag rejected"


def test_shift_a_accepts_every_open_flag_of_the_study_and_keeps_decided_ones(qtbot, review_window):
    win = review_window
    review = win.extensions["review"]
    flagged = [p.index for p in review.flagged_predictions()]
    win.set_slice(flagged[0])
    qtbot.keyClick(win, Qt.Key.Key_R)
    qtbot.keyClick(win, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert review.decision_at(flagged[0]).state == "rejected", "a decision already made is kept"
    assert all(review.decision_at(i).state == "accepted" for i in flagged[1:])
    assert f"accepted {len(flagged) - 1}" in review.panel.summary.text()
    assert review.set_study_state("rejected") == 0, "nothing open is left"


def test_review_table_shows_each_subtype_with_its_marker(qtbot, review_window):
    from ich_viewer.imaging.palette import SHORT_NAMES, band_labels
    from ich_viewer.ui.inference_widgets import label_sample_html

    review = review_window.extensions["review"]
    prediction = review.flagged_predictions()[0]
    text = review.panel.table.cellWidget(0, 1).text()
    labels = band_labels(prediction.flagged)
    assert labels
    for label in labels:
        assert label_sample_html(label) in text and SHORT_NAMES[label] in text


def test_the_window_opens_filling_the_screen_unless_a_saved_place_fits(qtbot, make_window):
    from PySide6.QtCore import QRect

    win = make_window(extensions=[])
    available = win.screen().availableGeometry()
    assert win.width() <= available.width() and win.height() <= available.height(), "sized to the screen"
    win.reading.show_window()
    qtbot.waitUntil(lambda: bool(win.windowState() & Qt.WindowState.WindowMaximized), timeout=3000)
    win.showNormal()
    win.reading.restored = True
    win.setGeometry(QRect(available.x() + 10, available.y() + 30, 400, 300))
    win.reading.show_window()
    assert not win.windowState() & Qt.WindowState.WindowMaximized, "a saved place that fits is kept"
    win.setGeometry(QRect(0, 0, available.width() + 300, available.height() + 200))
    win.reading.show_window()
    qtbot.waitUntil(lambda: bool(win.windowState() & Qt.WindowState.WindowMaximized), timeout=3000)


def test_plot_tells_close_colours_apart_and_names_every_threshold_readably(qtbot):
    from ich_viewer.imaging.palette import LABEL_LINES, LABEL_MARKERS
    from ich_viewer.ui.inference_plot import ProbabilityPlot

    for a, b in (("epidural", "intraparenchymal"), ("intraventricular", "subarachnoid")):
        assert (LABEL_LINES[a], LABEL_MARKERS[a]) != (LABEL_LINES[b], LABEL_MARKERS[b])
        assert LABEL_LINES[a] != LABEL_LINES[b] and LABEL_MARKERS[a][0] != LABEL_MARKERS[b][0]
    plot = ProbabilityPlot()
    qtbot.addWidget(plot)
    plot.resize(300, 150)
    plot.show()
    thresholds = {"epidural": 0.26, "intraparenchymal": 0.058, "intraventricular": 0.03, "subarachnoid": 0.02,
                  "subdural": 0.062, "any": 0.11}  # about the bundled model's
    plot.reset(60, thresholds)
    for i in range(60):
        plot.set_values(i, {label: 0.01 * (i % 7) for label in thresholds})
    plot.redraw()
    qtbot.wait(50)
    names = [item.textItem.toPlainText() for _value, item in plot.threshold_labels]
    assert names == ["SAH 0.02", "IVH 0.03", "IPH·SDH 0.06", "ICH 0.11", "EDH 0.26"]
    rects = [item.sceneBoundingRect() for _value, item in plot.threshold_labels]
    assert all(not a.intersects(b) for k, a in enumerate(rects) for b in rects[k + 1:]), "no name hides another"
    area = plot.getPlotItem().getViewBox().sceneBoundingRect()
    assert all(area.top() <= r.top() and r.bottom() <= area.bottom() + 1 for r in rects), "none cut off"
    assert len(plot.threshold_lines) == 6
    assert 0 < len(plot.markers["epidural"].getData()[0]) <= 30, "a few markers, not one per slice"


def test_no_two_actions_of_the_full_window_share_a_key(make_window):
    """Every extension adds its own keys; one key with two meanings fires neither in Qt."""
    from PySide6.QtGui import QAction

    win = make_window()
    owners: dict[str, str] = {}
    for action in win.findChildren(QAction):
        for sequence in action.shortcuts():
            key = sequence.toString()
            if not key:
                continue
            assert key not in owners, f"{key} is both {owners[key]!r} and {action.text()!r}"
            owners[key] = action.text()
    assert {"T", "X", ".", ","} <= set(owners)


def test_a_redraw_queued_before_the_plot_closes_does_nothing_after(qtbot):
    """Results streaming in start a redraw timer; closing the window before it fires once raised."""
    from ich_viewer.ui.inference_plot import REDRAW_MS, ProbabilityPlot

    plot = ProbabilityPlot()
    plot.reset(10, None)
    plot.set_values(3, {label: 0.5 for label in ("epidural", "intraparenchymal", "intraventricular",
                                                  "subarachnoid", "subdural", "any")})
    assert plot._timer.isActive()
    plot.close()
    assert not plot._timer.isActive()
    qtbot.wait(2 * REDRAW_MS)  # pytest-qt fails the test on an exception raised in the event loop
