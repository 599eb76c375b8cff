"""The first start: the demo opens with the guide over it, one key closes it for good,
Help brings it back; the demo's notice strip and the about box carry the credit."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QKeySequence  # noqa: E402

from ich_viewer import RESEARCH_NOTICE, demo  # noqa: E402

from ich_viewer.options import ViewOptions  # noqa: E402

ARGS = ViewOptions(device="cpu", no_model=True)


def sized(make_window, size=(1400, 900)):
    """A window from the shared fixture, at a given size."""
    win = make_window(ARGS)
    win.resize(*size)
    return win


def close(win) -> None:
    win.close()


def wait_demo(qtbot, win) -> None:
    qtbot.waitUntil(lambda: win.current_series() is not None and win.slice_view.image_item.image is not None,
                    timeout=30000)


def test_first_start_opens_the_demo_under_the_guide_and_one_key_closes_it_for_good(qtbot, make_window, isolated_settings):
    from ich_viewer.ui.first_run import first_start, guide_shown

    win = sized(make_window)
    assert not guide_shown()
    assert first_start(win, ARGS) is True
    guide = win.extensions["first_run"].guide
    assert guide.isVisible() and guide_shown()
    wait_demo(qtbot, win)
    assert demo.is_demo_study(win.current_study())
    assert win.extensions["first_run"].notice.isVisible()
    text = guide.plain_text()
    for needed in (demo.TRAINING_NOTE, RESEARCH_NOTICE, "N / P", "attention map", "1 Default", "0 Grey-white",
                   "A / R / U", "Ctrl+E", "MODEL_CARD.md", "intraparenchymal on slices 11-15"):
        assert needed in text, needed

    start = win.current_index()
    qtbot.keyClick(win.slice_view, Qt.Key.Key_Shift)  # a modifier alone starts a chord: guide stays
    assert guide.isVisible()
    qtbot.keyClick(win.slice_view, Qt.Key.Key_Down)
    assert not guide.isVisible()
    assert win.current_index() == start, "the key that closed the guide must do nothing else"
    qtbot.keyClick(win.slice_view, Qt.Key.Key_Down)
    assert win.current_index() == start + 1, "keys work again once the guide is closed"
    close(win)

    again = sized(make_window)
    assert first_start(again, ARGS) is False
    assert not again.extensions["first_run"].guide.isVisible() and again.current_study() is None
    again.extensions["first_run"].action.trigger()  # Help > First-run guide
    assert again.extensions["first_run"].guide.isVisible()
    assert again.extensions["first_run"].action in again.menu("Help").actions()
    qtbot.mouseClick(again.extensions["first_run"].guide, Qt.MouseButton.LeftButton)
    assert not again.extensions["first_run"].guide.isVisible()
    close(again)


def test_first_start_with_a_path_opens_nothing_itself_but_still_teaches(qtbot, make_window, isolated_settings, tmp_path):
    from ich_viewer.ui.first_run import first_start

    win = sized(make_window)
    assert first_start(win, ViewOptions(path=str(tmp_path))) is False
    assert win.extensions["first_run"].guide.isVisible() and win.current_study() is None
    close(win)


@pytest.mark.parametrize("size", [(1366, 740), (1920, 1050)])
def test_guide_fits_common_screens_without_scrolling(qtbot, make_window, isolated_settings, size):
    win = sized(make_window, size)
    guide = win.extensions["first_run"].guide
    guide.open()
    qtbot.waitUntil(guide.isVisible)
    qtbot.wait(100)  # let the scroll area lay out
    card = guide.card.geometry()
    assert guide.rect().contains(card), (card, guide.rect())
    assert guide.geometry().top() >= win.menuBar().height() - 1, "the menu bar stays usable"
    assert guide.text.height() <= guide.scroll_area.viewport().height() + 1, "the whole guide is readable at once"
    assert not guide.scroll_area.verticalScrollBar().isVisible()
    guide.dismiss()
    close(win)


def test_guide_names_the_keys_the_window_really_has(qtbot, make_window, isolated_settings):
    from ich_viewer.ui.first_run import DEFAULT_KEYS, action_keys, guide_html

    win = sized(make_window)
    registry = win.actions_.by_name
    for name in ("review_accept", "export_report", "controls", "cine"):
        assert action_keys(win)[name] == registry[name].shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    registry["review_accept"].setShortcut(QKeySequence("J"))
    assert action_keys(win)["review_accept"] == "J" and "<b>J / R / U</b>" in guide_html(win)
    assert DEFAULT_KEYS["next_flagged"] == "N"
    close(win)


def test_not_flagged_grey_matches_the_strip(qapp):
    from ich_viewer.ui.first_run import NOT_FLAGGED_HEX
    from ich_viewer.ui.inference_widgets import NOT_FLAGGED

    assert NOT_FLAGGED.name() == NOT_FLAGGED_HEX


def test_notice_strip_only_while_the_demo_is_open_and_about_box_has_the_credit(qtbot, make_window, isolated_settings, tmp_path):
    from ich_viewer.phantom.writer import write_series

    from ich_viewer.ui.app import open_initial

    win = sized(make_window)
    notice = win.extensions["first_run"].notice
    open_initial(win, ViewOptions(demo="ct-ich"))  # ich-viewer --demo
    wait_demo(qtbot, win)
    assert notice.isVisible()
    assert demo.SHORT_CREDIT in notice.plain_text() and demo.TRAINING_NOTE_SHORT in notice.plain_text()

    about = win.show_about()
    text = " ".join(about.plain_text().split())
    for ref in demo.CREDIT_REFERENCES:
        assert " ".join(ref.split()) in text
    for needed in ("CC BY 4.0", demo.TRAINING_NOTE, RESEARCH_NOTICE, "MODEL_CARD.md", "0.32 mm"):
        assert needed in text, needed
    assert win.show_about() is about, "one about box, raised again"

    qtbot.mouseClick(notice.credit_button, Qt.MouseButton.LeftButton)
    assert about.isVisible()

    volume = np.full((3, 32, 32), 30.0, np.float32)
    write_series(volume, tmp_path / "other", spacing_mm=5.0, pixel_spacing=(0.5, 0.5))
    with qtbot.waitSignal(win.study_opened, timeout=20000):
        win.open_path(tmp_path / "other")
    assert not notice.isVisible()
    close(win)


def test_phantom_demo_still_opens_from_the_menu(qtbot, make_window, isolated_settings):
    win = sized(make_window)
    with qtbot.waitSignal(win.study_opened, timeout=120000):
        win.actions_.by_name["open_phantom"].trigger()
    assert "SYNTHETIC" in win.current_study().study_description.upper()
    assert not win.extensions["first_run"].notice.isVisible()
    close(win)
