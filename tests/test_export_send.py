"""Export dialog > "Send to PACS": the SR, key images and KOS go to a real Orthanc with C-STORE.

The destination is the one the worklist panel's settings store ("Send results to", else the
PACS). A refusing peer is our own node with non-image objects refused: its status
(0x0122) must reach the reader. The model is a random network biased to flag (plumbing only).
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from ich_viewer.node.config import NodeConfig  # noqa: E402
from ich_viewer.node.scp import StorageNode  # noqa: E402
from ich_viewer.options import ViewOptions  # noqa: E402
from node_fixtures import pacs  # noqa: E402,F401 (fixture)

EXTENSIONS = ["ich_viewer.ui.inference_panel:attach_inference", "ich_viewer.ui.review_panel:attach_review"]


@pytest.fixture
def flagged_window(make_window, qtbot, isolated_settings, flagging_model_dir, monkeypatch, tmp_path):
    """A window with a phantom study open and classified (every slice flagged)."""
    from ich_viewer.phantom.study import write_phantom_study

    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(flagging_model_dir))
    folder = write_phantom_study(tmp_path / "study", seed=51, subtypes=["subdural"], n_slices=6, matrix=96)
    window = make_window(ViewOptions(device="cpu"), EXTENSIONS)
    with qtbot.waitSignal(window.extensions["inference"].series_finished, timeout=60000):
        window.open_path(folder)
    return window


def _settings(send_to: str = "", pacs_peer: str = "") -> None:
    from ich_viewer.ui.worklist_panel import save_node_settings

    save_node_settings({"send_to": send_to, "pacs": pacs_peer, "ae_title": "ICHVIEWER"})


def test_export_dialog_sends_sr_key_images_and_kos_to_orthanc(flagged_window, qtbot, pacs, tmp_path):
    from ich_viewer.ui.export_dialog import ExportDialog

    window = flagged_window
    review = window.extensions["review"]
    _settings(pacs_peer=pacs.peer)  # no "Send results to": the PACS is the destination
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialog = review.export_dialog
    assert isinstance(dialog, ExportDialog) and dialog.send.isEnabled() and pacs.peer in dialog.send.text()
    assert not dialog.send.isChecked(), "sending patient data is asked for each time"
    dialog.folder.setText(str(tmp_path / "reports"))
    for fmt, box in dialog.format_boxes.items():
        box.setChecked(fmt in ("json", "sr", "key_images"))
    dialog.send.setChecked(True)
    dialog.accept()
    qtbot.waitUntil(lambda: review.last_send is not None, timeout=60000)
    result = review.last_export
    sent = [result.sr, *result.key_images, result.kos]
    assert review.last_send == f"Sent {len(sent)} DICOM object(s) to {pacs.peer}"
    assert review.last_send in window.statusBar().currentMessage()

    study_id = pacs.find_study(window.current_study().study_uid)
    assert study_id is not None, "the objects belong to the study that was opened"
    series = pacs.get(f"/studies/{study_id}/series")
    assert {"SR", "KO"} <= {s["MainDicomTags"].get("Modality") for s in series}
    assert len(pacs.get(f"/studies/{study_id}/instances")) == len(sent)


def test_send_failures_name_the_remote_status_or_the_missing_destination(flagged_window, qtbot, tmp_path):
    from ich_viewer.ui.export_dialog import ExportChoice, open_export_dialog, run_export

    window = flagged_window
    review = window.extensions["review"]
    _settings()  # nowhere to send: the option is off, and says why
    dialog = open_export_dialog(review)
    assert not dialog.send.isEnabled() and "no destination" in dialog.send.text()
    assert "Settings" in dialog.send.toolTip()
    dialog.send.setChecked(True)
    assert dialog.choice().send_to == ""
    dialog.reject()

    choice = ExportChoice(tmp_path / "r", "report", ("json",), send_to="ICHVIEWER@127.0.0.1:1")
    assert run_export(review, choice, overwrite=True) is None  # a JSON file is nothing to send
    assert "Structured Report or the key images" in window.last_error[1]
    bad = ExportChoice(tmp_path / "r", "report", ("sr",), send_to="nonsense")
    assert run_export(review, bad, overwrite=True) is None
    assert window.last_error[0] == "Cannot send to PACS" and "must be AE@HOST:PORT" in window.last_error[1]

    refusing = StorageNode(NodeConfig(data_dir=tmp_path / "refusing", port=0, store_non_image=False))
    refusing.start()
    try:
        destination = f"REFUSER@127.0.0.1:{refusing.port}"
        _settings(send_to=destination)
        review.last_export, window.last_error = None, None
        choice = ExportChoice(tmp_path / "r2", "report", ("sr", "key_images"), send_to=destination)
        assert run_export(review, choice, overwrite=True) is not None
        qtbot.waitUntil(lambda: window.last_error is not None, timeout=60000)
        title, text = window.last_error
        assert title == "Sending to PACS failed" and "0x0122" in text and destination in text and not text.startswith("RemoteError")
        assert review.last_export is not None and review.last_send is None
        assert refusing.counts["refused"] == 1 and refusing.counts["stored"] == 0
    finally:
        refusing.stop()
    assert Path(tmp_path / "r2").is_dir()
