"""The worklist panel: the window's node receives a study, the list updates live, double-click opens it."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from ich_viewer.options import ViewOptions
from node_fixtures import pacs  # noqa: F401 (fixture)
from orthanc_helpers import free_port

WORKLIST_EXTENSION = "ich_viewer.commands.node:attach_worklist"


def _send(port: int, files: list[Path], calling: str = "SCANNER") -> None:
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="ICHVIEWER")
    assert assoc.is_established
    for f in files:
        assert assoc.send_c_store(dcmread(f)).Status == 0
    assoc.release()


@pytest.fixture
def node_settings_for_test(isolated_settings, monkeypatch, flagging_model_dir):
    from ich_viewer.ui.worklist_panel import save_node_settings

    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(flagging_model_dir))
    port = free_port()
    save_node_settings({"port": port, "ae_title": "ICHVIEWER", "allow": "", "quiet": 0.3,
                        "data": str(isolated_settings / "nodedata"), "send_to": "", "pacs": ""})
    return port


def test_worklist_panel_receives_lists_flagged_first_and_opens(make_window, qtbot, node_settings_for_test, tmp_path):
    from ich_viewer.phantom.study import write_phantom_study
    from ich_viewer.ui.worklist_panel import EXTENSION_NAME, WorklistController

    port = node_settings_for_test
    window = make_window(ViewOptions(device="cpu"), extensions=[WORKLIST_EXTENSION])
    controller = window.extensions.get(EXTENSION_NAME, WorklistController)
    assert controller is not None and controller.panel.table.rowCount() == 0
    controller.panel.receive_button.setChecked(True)
    assert controller.node is not None and controller.node.port == port
    assert "Receiving as ICHVIEWER on port" in controller.panel.state.text()

    files = sorted(write_phantom_study(tmp_path / "s", seed=31, subtypes=["subdural"], n_slices=8, matrix=128)
                   .rglob("*.dcm"))
    _send(port, files)
    table = controller.panel.table
    qtbot.waitUntil(lambda: table.rowCount() == 1, timeout=5000)  # live, while the study is still being analysed
    qtbot.waitUntil(lambda: table.item(0, 0).text() == "FLAGGED", timeout=60000)
    assert table.item(0, 1).text() and "PHANTOM-31" in table.item(0, 2).text()
    assert table.item(0, 5).text() == "8"

    table.cellDoubleClicked.emit(0, 0)
    qtbot.waitUntil(lambda: window.current_study() is not None, timeout=20000)
    assert len(window.current_series()) == 8
    assert str(window.current_study().source).startswith(str(controller.node.store.studies))
    assert window.current_study().study_uid == controller.entries[0].study_instance_uid
    assert controller.worklist().get(controller.entries[0].study_instance_uid).review == "read"

    window.close()  # the node stops with the window; the toggle is remembered
    assert controller.node is None
    second = make_window(ViewOptions(device="cpu"), extensions=[WORKLIST_EXTENSION])
    again = second.extensions.get(EXTENSION_NAME, WorklistController)
    assert again.node is not None and again.node.port == port, "listening again after a restart"
    qtbot.waitUntil(lambda: again.panel.table.rowCount() == 1, timeout=3000)
    again.panel.receive_button.setChecked(False)
    assert again.node is None and "Node stopped" in again.panel.state.text()


def test_worklist_panel_follows_a_node_in_another_process_order(make_window, qtbot, node_settings_for_test,
                                                                 isolated_settings):
    """Rows written by any node on the same data folder appear; flagged ones come first."""
    from ich_viewer.node.worklist import Worklist
    from ich_viewer.ui.worklist_panel import EXTENSION_NAME, WorklistController

    worklist = Worklist(isolated_settings / "nodedata" / "node" / "worklist.sqlite")
    now = time.time()
    for i, status in enumerate(("negative", "flagged", "failed")):
        uid = f"1.2.3.{i}"
        worklist.add_instance(study_uid=uid, series_uid=uid + ".1", sop_uid=uid + ".1.1", path="x", sha256="0",
                              folder="/nowhere", identity={"patient_id": f"P{i}"}, source="test", now=now + i)
        worklist.take_due(0.0, now=now + 10)
        worklist.finish(uid, status, suspected=["subdural"] if status == "flagged" else [],
                        reason="no image series" if status == "failed" else "")
    window = make_window(ViewOptions(device="cpu"), extensions=[WORKLIST_EXTENSION])
    controller = window.extensions.get(EXTENSION_NAME, WorklistController)
    table = controller.panel.table
    qtbot.waitUntil(lambda: table.rowCount() == 3, timeout=3000)
    assert [table.item(r, 0).text() for r in range(3)] == ["FLAGGED", "Failed", "Nothing flagged"]
    assert table.item(1, 1).text() == "no image series"
    worklist.close()


def test_query_dialog_and_retrieve_from_orthanc_with_progress(make_window, qtbot, node_settings_for_test, pacs,
                                                              tmp_path):
    """Query PACS… finds the study on a real Orthanc; Retrieve runs as a task, then the study is
    analysed (no node running) and listed; double-click opens it; its results are sent back."""
    from ich_viewer.phantom.study import write_phantom_study
    from ich_viewer.ui.worklist_panel import EXTENSION_NAME, QueryDialog, WorklistController

    files = sorted(write_phantom_study(tmp_path / "q", seed=33, subtypes=["epidural"], n_slices=8, matrix=128)
                   .rglob("*.dcm"))
    pacs.upload(files)
    window = make_window(ViewOptions(device="cpu"), extensions=[WORKLIST_EXTENSION])
    controller = window.extensions.get(EXTENSION_NAME, WorklistController)
    dialog = QueryDialog(controller, controller.panel)
    dialog.peer.setText(pacs.peer)
    dialog.patient_id.setText("PHANTOM-33")
    dialog.run_search()  # on a TaskRunner: the window stays responsive
    qtbot.waitUntil(lambda: dialog.message.text() == "1 studies found.", timeout=20000)
    assert dialog.results.rowCount() == 1
    dialog.results.selectRow(0)
    dialog.run_retrieve()
    assert controller.panel.progress.isVisible() or not controller.retrieve.is_idle() or controller.entries
    qtbot.waitUntil(lambda: controller.retrieve.is_idle() and not controller.panel.progress.isVisible(), timeout=60000)
    qtbot.waitUntil(lambda: controller.panel.table.rowCount() == 1, timeout=3000)
    assert controller.panel.table.item(0, 0).text() == "FLAGGED"
    assert controller.entries[0].source.endswith("(C-GET)")
    controller.panel.table.cellDoubleClicked.emit(0, 0)
    qtbot.waitUntil(lambda: window.current_study() is not None, timeout=20000)
    assert len(window.current_series()) == 8

    # the SR, key images and KOS go back to Orthanc, into the same study
    from ich_viewer.ui.worklist_panel import save_node_settings

    save_node_settings({"send_to": pacs.peer})
    controller.panel.table.selectRow(0)
    controller.panel.send_button.click()
    qtbot.waitUntil(lambda: controller.sending.is_idle(), timeout=30000)
    study_id = pacs.find_study(controller.entries[0].study_instance_uid)
    modalities = {s["MainDicomTags"].get("Modality") for s in pacs.get(f"/studies/{study_id}/series")}
    assert {"CT", "SR", "KO"} <= modalities

    dialog = QueryDialog(controller, controller.panel)
    dialog.peer.setText("NOBODY@127.0.0.1:1")
    dialog.run_search()
    qtbot.waitUntil(lambda: "cannot reach" in dialog.message.text(), timeout=20000)
    dialog.done(0)
