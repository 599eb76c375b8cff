"""The classifier in the real main window (pytest-qt, offscreen), with a random test network.

Checks plumbing and what the reader sees, never accuracy.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, Qt  # noqa: E402

from ich_viewer import LABELS  # noqa: E402
from ich_viewer.dicom.model import Series, Study  # noqa: E402
from ich_viewer.imaging.palette import band_labels, label_hex  # noqa: E402
from ich_viewer.inference.weights import CARD_NAME  # noqa: E402
from ich_viewer.options import ViewOptions  # noqa: E402

N_SLICES = 14
INFERENCE = "inference"


@pytest.fixture
def window(qtbot, make_window, graded_model_dir, monkeypatch):
    """The full window with the graded model loaded (closed and checked by make_window)."""
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(graded_model_dir))
    win = make_window()
    qtbot.waitUntil(lambda: win.extensions[INFERENCE].loaded is not None, timeout=20000)
    return win


def show(qtbot, win, *series: Series) -> Study:
    study = Study(source="/nonexistent/test-study", series=list(series))
    win.show_study(study)
    return study


def wait_complete(qtbot, win, series: Series) -> None:
    qtbot.waitUntil(lambda: win.extensions[INFERENCE].session.is_complete(series), timeout=30000)


def test_results_arrive_and_strip_plot_frame_match(qtbot, window, phantom_series):
    ctl = window.extensions[INFERENCE]
    assert "ich_viewer.ui.inference_panel:attach_inference" in __import__("ich_viewer.ui.app", fromlist=["x"]).EXTENSIONS
    series = phantom_series(1)
    show(qtbot, window, series)
    wait_complete(qtbot, window, series)
    predictions = ctl.session.predictions_of(series)
    assert sorted(predictions) == list(range(N_SLICES))
    flagged = ctl.flagged_indices()
    assert 0 < len(flagged) < N_SLICES, "thresholds flag some slices, not all"
    values = ctl.plot.values()
    for index, prediction in predictions.items():
        expected = band_labels(prediction.flagged)
        assert ctl.strip.labels_at(index) == expected
        assert ctl.strip.colour_names_at(index) == ([label_hex(label) for label in expected] or ["#464646"])
        np.testing.assert_allclose(values[index], [prediction.probabilities[label] for label in LABELS])
    # the frame shows the current slice's colours
    window.set_slice(flagged[0])
    assert ctl.frame.labels() == band_labels(predictions[flagged[0]].flagged)
    assert f"Slice {flagged[0] + 1}" in ctl.frame.caption_text()
    unflagged = next(i for i in range(N_SLICES) if i not in flagged)
    window.set_slice(unflagged)
    assert ctl.frame.labels() == [] and ctl.frame.caption_text() == ""
    # banner: study-level summary with the research notice
    text = ctl.banner.plain_text()
    assert f"{len(flagged)} of {N_SLICES} slices flagged" in text
    assert "not a diagnosis" in text and ctl.banner.state == "suspected"
    assert "Classifier: CPU" in ctl.device_label.text()
    # the result the report reads is the same
    assert [s.index for s in ctl.series_prediction(series).slices] == list(range(N_SLICES))


def test_strip_bands_follow_the_slider(qtbot, window, phantom_series):
    ctl = window.extensions[INFERENCE]
    series = phantom_series(1)
    show(qtbot, window, series)
    wait_complete(qtbot, window, series)
    centres = ctl.strip.centres()
    assert len(centres) == N_SLICES and all(b > a for a, b in zip(centres, centres[1:])), "slice 1 at the top"
    rects = [ctl.strip.band_rect(i) for i in range(N_SLICES)]
    assert all(rects[i].bottom() + 1 == rects[i + 1].top() for i in range(N_SLICES - 1)), "no gaps"
    qtbot.mouseClick(ctl.strip, Qt.MouseButton.LeftButton, pos=rects[3].center())
    assert window.current_index() == 3


def test_n_and_p_keys_jump_between_runs_of_flagged_slices(qtbot, window, phantom_series):
    ctl = window.extensions[INFERENCE]
    series = phantom_series(1)
    show(qtbot, window, series)
    wait_complete(qtbot, window, series)
    flagged = ctl.flagged_indices()
    starts = [i for i in flagged if i - 1 not in flagged]  # first slice of each run
    assert flagged and starts == [first for first, _last in ctl.session.flagged_runs()]
    window.set_slice(0)
    after = [i for i in starts if i > 0]
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert window.current_index() == after[0]
    if len(after) > 1:
        qtbot.keyClick(window, Qt.Key.Key_N)
        assert window.current_index() == after[1], "N skips the rest of a run"
        qtbot.keyClick(window, Qt.Key.Key_P)
        assert window.current_index() == after[0]
    window.set_slice(N_SLICES - 1)
    qtbot.keyClick(window, Qt.Key.Key_P)
    assert window.current_index() == max(i for i in starts if i < N_SLICES - 1)
    window.set_slice(0)
    singles = [i for i in flagged if i > 0]
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    assert window.current_index() == singles[0]
    if len(singles) > 1:
        qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
        assert window.current_index() == singles[1], "Shift+N goes one flagged slice at a time"
    last = flagged[-1]
    window.set_slice(last)
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert window.current_index() == last
    assert "No flagged slice after" in window.statusBar().currentMessage()


def test_plot_click_jumps_to_the_slice(qtbot, window, phantom_series):
    ctl = window.extensions[INFERENCE]
    series = phantom_series(1)
    show(qtbot, window, series)
    wait_complete(qtbot, window, series)
    vb = ctl.plot.getPlotItem().getViewBox()
    scene_point = vb.mapViewToScene(QPointF(9.0, 0.5))  # slice number 9 -> index 8
    pos = ctl.plot.mapFromScene(scene_point)
    qtbot.mouseClick(ctl.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert window.current_index() == 8


def test_study_switch_cancels_the_old_run_without_late_updates(qtbot, window, phantom_series):
    ctl = window.extensions[INFERENCE]
    slow = phantom_series(2, n=40, uid="1.2.826.0.1.3680043.8.498.88")
    source = slow.pixel_source
    slow.pixel_source = lambda header: (time.sleep(0.05), source(header))[1]  # a slow disk
    seen: list[str] = []
    ctl.slice_predicted.connect(lambda uid, p: seen.append(uid))
    show(qtbot, window, slow)
    qtbot.waitUntil(lambda: len(ctl.session.predictions_of(slow)) >= 1, timeout=20000)
    assert ctl.is_running()
    fresh = phantom_series(1)
    show(qtbot, window, fresh)  # a different study
    switched_at = len(seen)
    wait_complete(qtbot, window, fresh)
    qtbot.waitUntil(ctl.runner.is_idle, timeout=10000)
    qtbot.wait(200)  # let any queued signal of the old run arrive
    late = [uid for uid in seen[switched_at:] if uid == slow.series_uid]
    assert late == [], "no result of the cancelled series after the switch"
    assert not ctl.session.is_complete(slow) and not ctl.session.predictions_of(slow)
    assert sorted(ctl.session.predictions_of(fresh)) == list(range(N_SLICES))
    assert len(ctl.strip.centres()) == N_SLICES


def test_localizer_and_other_modalities_are_not_analysed(qtbot, window, phantom_series):
    ctl = window.extensions[INFERENCE]
    scout = phantom_series(1, n=3, uid="1.2.826.0.1.3680043.8.498.90")
    scout.is_localizer = True
    axial = phantom_series(1)
    show(qtbot, window, axial, scout)
    wait_complete(qtbot, window, axial)
    window.show_series(1)
    qtbot.wait(100)
    assert ctl.runner.is_idle() and not ctl.session.predictions_of(scout)
    assert "Not analysed" in ctl.banner.plain_text() and "localizer" in ctl.banner.plain_text()


def test_stop_button_keeps_partial_results_and_says_so(qtbot, window, phantom_series):
    ctl = window.extensions[INFERENCE]
    slow = phantom_series(2, n=30, uid="1.2.826.0.1.3680043.8.498.89")
    source = slow.pixel_source
    slow.pixel_source = lambda header: (time.sleep(0.05), source(header))[1]
    show(qtbot, window, slow)
    qtbot.waitUntil(lambda: len(ctl.session.predictions_of(slow)) >= 2, timeout=20000)
    assert ctl.panel.run_button.text() == "Stop" and ctl.panel.progress.isVisible()
    qtbot.mouseClick(ctl.panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(ctl.runner.is_idle, timeout=10000)
    assert "Stopped after" in ctl.banner.plain_text() and "partial" in ctl.banner.plain_text()
    assert ctl.panel.run_button.text() == "Run" and not ctl.panel.progress.isVisible()
    assert 2 <= len(ctl.session.predictions_of(slow)) < 30
    qtbot.mouseClick(ctl.panel.run_button, Qt.MouseButton.LeftButton)  # Run: the series afresh
    wait_complete(qtbot, window, slow)
    assert len(ctl.session.predictions_of(slow)) == 30 and not ctl.panel.run_button.isVisible()
    assert "Stopped" not in ctl.banner.plain_text()


def test_attention_overlay_toggles_with_g(qtbot, window, phantom_series):
    ctl = window.extensions[INFERENCE]
    series = phantom_series(1)
    show(qtbot, window, series)
    wait_complete(qtbot, window, series)
    qtbot.keyClick(window, Qt.Key.Key_G)
    qtbot.waitUntil(ctl.attention_visible, timeout=10000)
    heat = ctl.attention.item.image
    assert heat.shape == series.shape and np.isfinite(heat).all()
    assert ctl.attention.item.zValue() > window.image_view().image_item.zValue()
    assert "where the network looked" in ctl.frame.caption_text()
    window.set_slice(window.current_index() + 1)  # a new slice gets its own map
    qtbot.waitUntil(ctl.attention_visible, timeout=10000)
    assert ctl.attention.current.index == window.current_index()
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert not ctl.attention_visible()


def test_model_information_dialog(qtbot, window):
    dialog = window.extensions[INFERENCE].show_model_info()
    text = dialog.text()
    assert "untrained" in text.lower() and "not a diagnosis" in text
    for label in LABELS:
        assert label in text
    assert window.extensions[INFERENCE].loaded.info.sha256 in text
    dialog.close()


def test_device_preference_is_saved_and_used(qtbot, window):
    from ich_viewer.ui.settings import app_settings

    ctl = window.extensions[INFERENCE]
    ctl.set_device_preference("cpu")
    qtbot.waitUntil(lambda: ctl.loaded is not None, timeout=20000)
    assert app_settings().value("inference/device") == "cpu"
    assert str(ctl.loaded.device) == "cpu"
    ctl.device_menu.aboutToShow.emit()  # as when the reader opens it
    texts = [a.text() for a in ctl.device_menu.actions()]
    assert any(t.startswith("CPU") for t in texts)


def test_unavailable_device_is_explained(qtbot, make_window, model_dir, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(model_dir))
    win = make_window(ViewOptions(device="cuda"))
    qtbot.waitUntil(lambda: bool(win.extensions[INFERENCE].session.reason), timeout=20000)
    assert "no CUDA GPU" in win.extensions[INFERENCE].banner.plain_text()
    assert win.extensions[INFERENCE].device_label.text() == "Classifier: off"


def test_saved_device_that_is_missing_falls_back_with_a_note(qtbot, make_window, model_dir, monkeypatch):
    import torch

    from ich_viewer.ui.settings import app_settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(model_dir))
    settings = app_settings()
    settings.setValue("inference/device", "cuda")  # saved on a machine with a GPU
    settings.sync()
    win = make_window()
    qtbot.waitUntil(lambda: win.extensions[INFERENCE].loaded is not None, timeout=20000)
    assert str(win.extensions[INFERENCE].loaded.device) == "cpu"
    assert "preference not usable" in win.statusBar().currentMessage()


@pytest.mark.parametrize("damage, reason", [("missing", "No classifier model"), ("tampered", "does not match")])
def test_viewer_works_without_a_usable_model(qtbot, make_window, phantom_series, model_dir, tmp_path, monkeypatch,
                                            damage, reason):
    folder = tmp_path / "models"
    folder.mkdir()
    if damage == "tampered":
        for item in model_dir.iterdir():
            (folder / item.name).write_bytes(item.read_bytes())
        card = json.loads((folder / CARD_NAME).read_text())
        weights = folder / card["weights_file"]
        weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(folder))
    win = make_window()
    ctl = win.extensions[INFERENCE]
    qtbot.waitUntil(lambda: bool(ctl.session.reason), timeout=20000)
    series = phantom_series(1)
    show(qtbot, win, series)
    assert win.current_series() is series  # the viewer still reads the study
    assert reason in ctl.banner.plain_text() and ctl.banner.state == "off"
    assert ctl.device_label.text() == "Classifier: off"
    assert not ctl.plot.isVisible() and not ctl.strip.isVisible()
    qtbot.keyClick(win, Qt.Key.Key_N)  # harmless
    qtbot.keyClick(win, Qt.Key.Key_G)
    assert not ctl.attention_visible()
    assert reason in ctl.show_model_info().text() or "No classifier is loaded" in ctl.show_model_info().text()


def test_no_model_option_switches_the_classifier_off(qtbot, make_window, phantom_series, model_dir, monkeypatch):
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(model_dir))
    win = make_window(ViewOptions(no_model=True))
    show(qtbot, win, phantom_series(1))
    assert "--no-model" in win.extensions[INFERENCE].banner.plain_text()
    assert win.extensions[INFERENCE].runner.is_idle() and win.extensions[INFERENCE].loaded is None


def test_the_model_line_says_when_a_thin_series_is_scored_as_slabs(qtbot, make_window, tmp_path, monkeypatch):
    from ich_viewer.inference.preprocess import InputSpec
    from ich_viewer.inference.testing import SMALL_ARCH, export_random_model

    model_dir = export_random_model(tmp_path / "slabs", spec=InputSpec(size=32, slab_mm=5.0), arch_changes=SMALL_ARCH)
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(model_dir))
    win = make_window()
    ctl = win.extensions[INFERENCE]
    qtbot.waitUntil(lambda: ctl.loaded is not None, timeout=20000)
    volume = np.full((24, 32, 32), -1000.0, np.float32)
    volume[:, 4:28, 4:28] = 35.0
    thin = Series.from_array(volume, series_uid="1.2.826.0.1.3680043.8.498.91", spacing_mm=0.625)
    thick = Series.from_array(volume[:6], series_uid="1.2.826.0.1.3680043.8.498.92", spacing_mm=5.0)
    show(qtbot, win, thin, thick)
    qtbot.waitUntil(lambda: "5 mm slabs" in ctl.panel.model_line.text(), timeout=20000)
    assert "slab around it" in ctl.panel.model_line.toolTip()
    win.show_series(thick)
    qtbot.waitUntil(lambda: ctl.panel.model_line.text().startswith("Model "), timeout=20000)
