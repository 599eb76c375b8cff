"""The worklist panel: the window's node receives a study, the list updates live, double-click opens it."""
from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
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


# -- studies opened in the window ---------------------------------------------------------------
INFERENCE_EXTENSION = "ich_viewer.ui.inference_panel:attach_inference"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and mtime: what must not change."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_opened_study_is_listed_with_the_classifiers_status_and_reopens(make_window, qtbot, node_settings_for_test,
                                                                        isolated_settings, tmp_path):
    """File > Open puts the study in the worklist (one row however often it is opened), flagged
    once the window's classifier finished; double-click opens the folder again; the folder is untouched."""
    from ich_viewer.commands.node import run_worklist
    from ich_viewer.options import WorklistOptions
    from ich_viewer.phantom.study import write_phantom_study
    from ich_viewer.ui.worklist_panel import EXTENSION_NAME, WorklistController

    folder = write_phantom_study(tmp_path / "opened", seed=41, subtypes=["subdural"], n_slices=8, matrix=128)
    before = _snapshot(folder)
    window = make_window(ViewOptions(device="cpu"), extensions=[INFERENCE_EXTENSION, WORKLIST_EXTENSION])
    controller = window.extensions.get(EXTENSION_NAME, WorklistController)
    table = controller.panel.table
    with qtbot.waitSignal(window.extensions["inference"].series_finished, timeout=60000):
        window.open_path(folder)
    qtbot.waitUntil(lambda: table.rowCount() == 1 and table.item(0, 0).text() == "FLAGGED", timeout=5000)
    entry = controller.entries[0]
    study = window.current_study()
    assert entry.study_instance_uid == study.study_uid and entry.folder == str(study.source)
    assert entry.source == "opened" and table.item(0, 7).text() == "Opened here"
    assert entry.patient_id == "PHANTOM-41" and "PHANTOM-41" in table.item(0, 2).text()
    assert entry.study_date == study.study_date and entry.study_time == "120000"
    assert entry.description == study.study_description and entry.instances == 8
    assert entry.suspected and entry.flagged_slices > 0 and entry.analysed_at is not None
    arrived = entry.received_at

    with qtbot.waitSignal(window.extensions["inference"].series_finished, timeout=60000):
        window.open_path(folder)  # opened again: the same row, the same arrival
    qtbot.waitUntil(lambda: controller.entries[0].analyses == 2, timeout=5000)
    assert table.rowCount() == 1 and controller.entries[0].received_at == arrived
    assert controller.entries[0].status == "flagged"

    window.close_study()
    assert window.current_study() is None
    table.cellDoubleClicked.emit(0, 0)
    qtbot.waitUntil(lambda: window.current_study() is not None, timeout=20000)
    assert window.current_study().study_uid == entry.study_instance_uid
    assert Path(window.current_study().source) == Path(entry.folder)
    qtbot.waitUntil(lambda: controller.entries[0].analyses == 3, timeout=60000)

    out = io.StringIO()
    with redirect_stdout(out):
        run_worklist(WorklistOptions(json=True, data=str(isolated_settings / "nodedata")))
    listed = json.loads(out.getvalue())
    assert [(s["study_instance_uid"], s["status"], s["source"]) for s in listed] == [
        (entry.study_instance_uid, "flagged", "opened")]
    assert listed[0]["received_at"] and listed[0]["suspected"] == entry.suspected
    window.close()
    assert _snapshot(folder) == before, "nothing may be written into the study folder"


def test_opened_studies_negative_and_failed_with_reason(make_window, qtbot, node_settings_for_test, monkeypatch,
                                                        tmp_path):
    """A quiet classifier lists the study as negative; without a classifier it is failed, with the reason."""
    from ich_viewer.inference.testing import SMALL_ARCH, export_random_model
    from ich_viewer.phantom.study import write_phantom_study
    from ich_viewer.ui.worklist_panel import EXTENSION_NAME, WorklistController

    quiet = export_random_model(tmp_path / "quiet", arch_changes=SMALL_ARCH, seed=2, any_bias=-8.0)
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(quiet))
    first = write_phantom_study(tmp_path / "a", seed=42, subtypes=["subdural"], n_slices=6, matrix=96)
    second = write_phantom_study(tmp_path / "b", seed=43, subtypes=[], n_slices=6, matrix=96)
    window = make_window(ViewOptions(device="cpu"), extensions=[INFERENCE_EXTENSION, WORKLIST_EXTENSION])
    controller = window.extensions.get(EXTENSION_NAME, WorklistController)
    with qtbot.waitSignal(window.extensions["inference"].series_finished, timeout=60000):
        window.open_path(first)
    qtbot.waitUntil(lambda: [e.status for e in controller.entries] == ["negative"], timeout=5000)
    assert controller.panel.table.item(0, 0).text() == "Nothing flagged" and controller.entries[0].suspected == []
    window.close()

    bare = make_window(ViewOptions(device="cpu", no_model=True), extensions=[INFERENCE_EXTENSION, WORKLIST_EXTENSION])
    controller = bare.extensions.get(EXTENSION_NAME, WorklistController)
    bare.open_path(second)
    qtbot.waitUntil(lambda: len(controller.entries) == 2, timeout=20000)
    failed = next(e for e in controller.entries if e.patient_id == "PHANTOM-43")
    assert failed.status == "failed" and "--no-model" in failed.reason
    assert next(e for e in controller.entries if e.patient_id == "PHANTOM-42").status == "negative"


def test_worklist_index_of_opened_studies(tmp_path):
    """Qt-free: an opened row keeps its last result on reopen; a received copy takes the row over;
    the node never requeues an opened study; a received study is never turned into an opened one."""
    from ich_viewer.node.worklist import OPENED, Worklist

    worklist = Worklist(tmp_path / "worklist.sqlite")
    identity = {"patient_id": "P1", "study_date": "20250101", "study_time": "101500", "description": "CT head"}
    assert worklist.add_opened(study_uid="1.2.3", folder="/studies/a", identity=identity, images=30, now=100.0)
    assert worklist.get("1.2.3").status == "analysing"
    assert worklist.requeue_interrupted() == 0 and worklist.get("1.2.3").status == "analysing"
    assert worklist.record_opened("1.2.3", "flagged", suspected=["subdural"], flagged_slices=4, now=120.0)
    assert not worklist.record_opened("1.2.3", "failed", reason="closed", only_if_analysing=True)
    assert worklist.add_opened(study_uid="1.2.3", folder="/studies/a2", identity=identity, images=30, now=200.0)
    entry = worklist.get("1.2.3")
    assert (entry.status, entry.suspected, entry.received_at, entry.folder) == ("flagged", ["subdural"], 100.0,
                                                                                "/studies/a2")
    assert entry.source == OPENED and entry.study_time == "101500" and len(worklist.entries()) == 1
    with pytest.raises(ValueError, match="Study Instance UID"):
        worklist.add_opened(study_uid="", folder="/x", identity={}, images=1)

    worklist.add_instance(study_uid="1.2.3", series_uid="1.2.3.1", sop_uid="1.2.3.1.1", path="p", sha256="0",
                          folder="/store/abc", identity=identity, source="ORTHANC@127.0.0.1", now=300.0)
    entry = worklist.get("1.2.3")
    assert (entry.folder, entry.source, entry.status, entry.instances) == ("/store/abc", "ORTHANC@127.0.0.1",
                                                                           "receiving", 1)
    assert not worklist.add_opened(study_uid="1.2.3", folder="/studies/a", identity=identity, images=30)
    assert not worklist.record_opened("1.2.3", "negative")
    assert worklist.get("1.2.3").folder == "/store/abc"
    worklist.close()
