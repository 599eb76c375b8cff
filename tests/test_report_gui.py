"""Review in the window: A / R / U keys, the note, persistence across reopen, and export.

Uses a randomly initialised tiny model biased to flag slices: its predictions mean nothing,
they only give the review something to act on."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from ich_viewer.inference.testing import SMALL_ARCH, export_random_model  # noqa: E402
from ich_viewer.options import ViewOptions  # noqa: E402
from ich_viewer.report.review import ReviewStore, study_key  # noqa: E402
from test_report_support import PATIENT_ID, PATIENT_NAME, phantom_study  # noqa: E402

EXTENSIONS = ["ich_viewer.ui.inference_panel:attach_inference", "ich_viewer.ui.review_panel:attach_review"]


@pytest.fixture
def study_dir(tmp_path):
    folder = tmp_path / "study"
    phantom_study(folder, n_slices=8, matrix=64)
    return folder


def _window(make_window, model_dir, monkeypatch):
    """The window with the classifier and the review only (no smoke-test hook)."""
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(model_dir))
    return make_window(ViewOptions(device="cpu"), EXTENSIONS)


def _open_and_predict(qtbot, win, folder):
    with qtbot.waitSignal(win.extensions["inference"].series_finished, timeout=60000):
        win.open_path(folder)
    qtbot.waitUntil(lambda: win.extensions["review"].panel.table.rowCount() > 0, timeout=5000)


def _close(win):
    win.close()
    assert win.extensions["review"].export_job.is_idle()


def test_keys_change_decisions_which_survive_reopen(qtbot, make_window, flagging_model_dir, study_dir, monkeypatch):
    win = _window(make_window, flagging_model_dir, monkeypatch)
    try:
        _open_and_predict(qtbot, win, study_dir)
        review = win.extensions["review"]
        flagged = [p.index for p in review.flagged_predictions()]
        assert flagged, "the biased test model flags every slice"
        first, second = flagged[0], flagged[1]
        win.set_slice(first)
        qtbot.keyClick(win, Qt.Key.Key_A)
        assert review.decision_at(first).state == "accepted"
        review.panel.note.setText("left convexity")
        qtbot.keyClick(review.panel.note, Qt.Key.Key_Return)
        assert review.decision_at(first).note == "left convexity"
        win.set_slice(second)
        qtbot.keyClick(win, Qt.Key.Key_R)
        assert review.decision_at(second).state == "rejected"
        qtbot.keyClick(win, Qt.Key.Key_U)
        assert review.decision_at(second).state == "undecided"
        qtbot.keyClick(win, Qt.Key.Key_R)
        table = review.panel.table
        row = [p.index for p in review.flagged_predictions()].index(second)
        assert table.item(row, 2).text() == "Rejected"
        assert "accepted 1" in review.panel.summary.text() and "rejected 1" in review.panel.summary.text()
        study = win.current_study()
        key = study_key(study.study_uid, study.source)
        series_uid = win.current_series().series_uid
    finally:
        _close(win)

    stored = ReviewStore().series_decisions(key, series_uid)
    assert {d.state for d in stored.values()} == {"accepted", "rejected"}
    assert not any(p.name.endswith(".json") for p in study_dir.rglob("*"))  # nothing in the study folder

    win = _window(make_window, flagging_model_dir, monkeypatch)
    try:
        _open_and_predict(qtbot, win, study_dir)
        assert win.extensions["review"].decision_at(first).state == "accepted"
        assert win.extensions["review"].decision_at(first).note == "left convexity"
        assert win.extensions["review"].decision_at(second).state == "rejected"
    finally:
        _close(win)


def test_keys_ignore_a_slice_that_is_not_flagged(qtbot, make_window, tmp_path, study_dir, monkeypatch):
    quiet = export_random_model(tmp_path / "quiet", arch_changes=SMALL_ARCH, seed=1, any_bias=-6.0)
    win = _window(make_window, quiet, monkeypatch)
    try:
        with qtbot.waitSignal(win.extensions["inference"].series_finished, timeout=60000):
            win.open_path(study_dir)
        assert win.extensions["review"].flagged_predictions() == []
        qtbot.keyClick(win, Qt.Key.Key_A)
        assert win.extensions["review"].decision_at(win.current_index()).state == "undecided"
        assert "not flagged" in win.statusBar().currentMessage()
    finally:
        _close(win)


def test_export_from_the_window(qtbot, make_window, tmp_path, flagging_model_dir, study_dir, monkeypatch):
    from ich_viewer.ui.export_dialog import ExportDialog, run_export

    win = _window(make_window, flagging_model_dir, monkeypatch)
    try:
        _open_and_predict(qtbot, win, study_dir)
        review = win.extensions["review"]
        index = review.flagged_predictions()[0].index
        win.set_slice(index)
        qtbot.keyClick(win, Qt.Key.Key_A)

        qtbot.keyClick(win, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
        dialog = review.export_dialog
        assert isinstance(dialog, ExportDialog) and dialog.isVisible()
        assert PATIENT_ID not in dialog.base_name.text() and "Zyxwv" not in dialog.base_name.text()
        out = tmp_path / "reports"
        dialog.folder.setText(str(out))
        for fmt, box in dialog.format_boxes.items():
            box.setChecked(fmt in ("pdf", "csv", "json", "sr"))
        named = dialog.base_name.text()
        assert win.current_study().study_date in named
        dialog.deidentify.setChecked(True)
        assert "20250301" in named and "20250301" not in dialog.base_name.text()
        dialog.accept()
        qtbot.waitUntil(lambda: review.last_export is not None, timeout=60000)
        result = review.last_export
        assert result.pdf.exists() and result.csv.exists() and result.json.exists() and result.sr.exists()
        assert result.key_images == []
        document = json.loads(result.json.read_text())
        rows = {row["index"]: row for row in document["slices"]}
        assert rows[index]["decision"] == "accepted"
        assert len(document["slices"]) == len(win.current_series())
        csv_text = result.csv.read_text(encoding="utf-8-sig")
        assert PATIENT_ID not in csv_text and PATIENT_NAME not in csv_text

        # the same names again: refused without consent, nothing changed
        before = result.pdf.read_bytes()
        review.last_export = None
        choice = dialog.choice()
        assert set(choice.existing()) == {result.pdf, result.csv, result.json}
        assert run_export(review, choice, overwrite=False) is not None
        qtbot.waitUntil(lambda: win.error_box() is not None, timeout=30000)
        assert "already exists" in win.error_box().text()
        assert result.pdf.read_bytes() == before
    finally:
        _close(win)
