"""Atomic writes and the CSV/JSON exports."""
from __future__ import annotations

import csv
import json
import os

import pytest

from ich_viewer import LABELS
from ich_viewer.report import atomic
from ich_viewer.report.atomic import ExportError, OutputExistsError, atomic_write, atomic_write_bytes
from ich_viewer.report.decisions import Decision
from ich_viewer.report.tabular import CSV_FIELDS, write_csv, write_json
from test_report_support import MODEL, PATIENT_ID, PATIENT_NAME, make_prediction, make_study


@pytest.fixture(autouse=True)
def _own_data_folder(isolated_settings):
    """Writers read stored review decisions by default; keep them in a temporary folder."""


def test_atomic_write_creates_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    atomic_write_bytes(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_atomic_write_refuses_existing_unless_told(tmp_path):
    target = tmp_path / "out.txt"
    target.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="already exists"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    atomic_write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"


def test_failure_while_writing_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.txt"

    def half_then_fail(handle):
        handle.write(b"half a file")
        raise OSError(28, "No space left on device")

    with pytest.raises(ExportError, match="No space left on device"):
        atomic_write(target, half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_existing_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_bytes(b"previous export")

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(ExportError, match="Input/output error"):
        atomic_write_bytes(target, b"replacement", overwrite=True)
    assert target.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_unwritable_folder_gives_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write"):
        atomic_write_bytes(blocker / "out.json", b"{}")


def _results():
    study, series = make_study(n_slices=8)
    prediction = make_prediction(series, {2: ("subdural",), 3: ("subdural", "subarachnoid"), 6: ("epidural",)})
    decisions = {series.series_uid: {
        series.slices[2].sop_instance_uid: Decision("accepted", "thin crescent, left"),
        series.slices[6].sop_instance_uid: Decision("rejected", "beam hardening"),
    }}
    return study, series, prediction, decisions


def test_json_and_csv_hold_the_predictions_and_decisions(tmp_path):
    study, series, prediction, decisions = _results()
    json_path = write_json(tmp_path / "r.json", study, [(series, prediction)], decisions)
    csv_path = write_csv(tmp_path / "r.csv", study, [(series, prediction)], decisions)
    document = json.loads(json_path.read_text())
    with open(csv_path, encoding="utf-8-sig", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))

    assert document["model"]["sha256"] == MODEL.sha256
    assert document["model"]["thresholds"] == MODEL.thresholds
    assert document["model"]["device"] == "cpu"
    assert document["analyzed_at"] == prediction.started_at
    assert document["study"]["patient_id"] == PATIENT_ID
    assert document["series"][0]["suspected"] == ["epidural", "subarachnoid", "subdural", "any"]
    assert document["series"][0]["review"] == {"flagged": 3, "accepted": 1, "rejected": 1, "undecided": 1, "reviewed": 2}
    assert len(document["slices"]) == len(csv_rows) == 8
    assert tuple(csv_rows[0].keys()) == CSV_FIELDS

    for pred, jrow, crow in zip(prediction.slices, document["slices"], csv_rows):
        header = series.slices[pred.index]
        assert jrow["index"] == int(crow["index"]) == pred.index
        assert jrow["sop_instance_uid"] == crow["sop_instance_uid"] == header.sop_instance_uid
        assert jrow["file"] == crow["file"] == header.path
        assert jrow["instance_number"] == int(crow["instance_number"]) == header.instance_number
        assert jrow["location_mm"] == pytest.approx(float(crow["location_mm"])) == series.positions_mm[pred.index]
        for label in LABELS:
            assert jrow["probabilities"][label] == pytest.approx(pred.probabilities[label])
            assert float(crow[label]) == pytest.approx(pred.probabilities[label], abs=1e-6)
        assert jrow["flagged"] == list(pred.flagged) == [x for x in crow["flagged"].split(";") if x]
        assert jrow["decision"] == crow["decision"]
        assert jrow["note"] == crow["note"]
        assert crow["model_sha256"] == MODEL.sha256

    by_index = {row["index"]: row for row in document["slices"]}
    assert (by_index[2]["decision"], by_index[2]["note"]) == ("accepted", "thin crescent, left")
    assert (by_index[6]["decision"], by_index[6]["note"]) == ("rejected", "beam hardening")
    assert by_index[3]["decision"] == "undecided"
    assert by_index[0]["decision"] == ""


def test_deidentified_exports_hold_no_name_or_id(tmp_path):
    study, series, prediction, decisions = _results()
    study.source = str(tmp_path / f"{PATIENT_NAME}_{PATIENT_ID}")
    for header in series.slices:
        header.path = f"{study.source}/{header.instance_number}.dcm"
    prediction = make_prediction(series, {2: ("subdural",)})
    write_json(tmp_path / "d.json", study, [(series, prediction)], decisions, deidentify=True)
    write_csv(tmp_path / "d.csv", study, [(series, prediction)], decisions, deidentify=True)
    write_csv(tmp_path / "full.csv", study, [(series, prediction)], decisions)
    for name in ("d.json", "d.csv"):
        text = (tmp_path / name).read_text(encoding="utf-8-sig")
        for secret in (PATIENT_NAME, "Zyxwv", PATIENT_ID, "ACC4455", "Test Hospital", "20260301"):
            assert secret not in text, (name, secret)
    assert json.loads((tmp_path / "d.json").read_text())["study"]["patient_age"] == "90Y+"
    # the identified export does carry the path, so the search above can fail
    assert PATIENT_ID in (tmp_path / "full.csv").read_text(encoding="utf-8-sig")


def test_refuses_to_write_inside_the_study_folder(tmp_path):
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    study, series = make_study(source=str(study_dir))
    prediction = make_prediction(series, {})
    with pytest.raises(ExportError, match="inside the study folder"):
        write_json(study_dir / "results.json", study, [(series, prediction)])
    with pytest.raises(ExportError, match="inside the study folder"):
        write_csv(study_dir / "deeper" / "results.csv", study, [(series, prediction)])
    assert os.listdir(study_dir) == []


def test_existing_export_is_not_overwritten_without_consent(tmp_path):
    study, series, prediction, decisions = _results()
    target = tmp_path / "r.json"
    target.write_text("keep me")
    with pytest.raises(OutputExistsError):
        write_json(target, study, [(series, prediction)])
    assert target.read_text() == "keep me"
    write_json(target, study, [(series, prediction)], overwrite=True)
    assert json.loads(target.read_text())["format_version"] == 1


def test_stored_decisions_are_used_unless_given(tmp_path):
    from ich_viewer.report.review import ReviewStore, study_key

    study, series, prediction, _ = _results()
    uid = series.slices[3].sop_instance_uid
    ReviewStore().set_decision(study_key(study.study_uid, study.source), series.series_uid, uid,
                               state="accepted", note="stored")
    stored = json.loads(write_json(tmp_path / "a.json", study, [(series, prediction)]).read_text())
    given = json.loads(write_json(tmp_path / "b.json", study, [(series, prediction)], {}).read_text())
    assert (stored["slices"][3]["decision"], stored["slices"][3]["note"]) == ("accepted", "stored")
    assert (given["slices"][3]["decision"], given["slices"][3]["note"]) == ("undecided", "")
