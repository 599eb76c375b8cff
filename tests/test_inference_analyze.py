"""``ich-viewer analyze``: outputs, exit codes, and the same numbers as the window."""
from __future__ import annotations

import csv
import json

import pytest

from ich_viewer import LABELS
from ich_viewer.cli import main
from ich_viewer.phantom.study import write_phantom_study

N_SLICES = 8


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    return write_phantom_study(tmp_path_factory.mktemp("study"), seed=4, subtypes=["subdural"],
                               matrix=128, n_slices=N_SLICES)


def analyze(*extra: str) -> int:
    return main(["analyze", *extra])


def test_json_and_csv_have_every_slice_and_the_model(study_dir, model_dir, tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    code = analyze(str(study_dir), "--json", str(out_json), "--csv", str(out_csv), "--model-dir", str(model_dir),
                   "--device", "cpu")
    printed = capsys.readouterr().out
    assert code == 0
    assert "not a diagnosis" in printed and "slices analysed" in printed
    assert "untrained test weights" in printed
    doc = json.loads(out_json.read_text())
    card = json.loads((model_dir / "model_card.json").read_text())
    assert doc["model"]["sha256"] == card["sha256"] and doc["model"]["device"] == "cpu"
    assert doc["model"]["name"] == card["name"] and doc["model"]["version"] == card["version"]
    slices = doc["slices"]
    assert [s["index"] for s in slices] == list(range(N_SLICES))
    for row in slices:
        assert list(row["probabilities"]) == list(LABELS)
        assert row["file"] and row["sop_instance_uid"]
        assert row["flagged"] == [label for label in LABELS
                                  if row["probabilities"][label] >= card["thresholds"][label]]
        assert row["probabilities"]["any"] >= max(row["probabilities"][label] for label in LABELS[:-1])
    with open(out_csv, encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == N_SLICES and rows[0]["model_sha256"] == card["sha256"]
    assert [r["sop_instance_uid"] for r in rows] == [s["sop_instance_uid"] for s in slices]


def test_no_model_is_a_clear_failure(study_dir, tmp_path, capsys):
    code = analyze(str(study_dir), "--json", str(tmp_path / "r.json"), "--model-dir", str(tmp_path / "none"))
    err = capsys.readouterr().err
    assert code != 0 and "No classifier model" in err
    assert not (tmp_path / "r.json").exists()


def test_nothing_to_analyse_is_a_clear_failure(model_dir, tmp_path, capsys):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "readme.txt").write_text("not DICOM")
    code = analyze(str(junk), "--json", str(tmp_path / "r.json"), "--model-dir", str(model_dir))
    assert code == 1 and "nothing to analyse" in capsys.readouterr().err
    assert analyze(str(tmp_path / "missing"), "--model-dir", str(model_dir)) == 2


def test_outputs_are_checked_before_the_work(study_dir, model_dir, tmp_path, capsys):
    existing = tmp_path / "r.json"
    existing.write_text("keep me")
    assert analyze(str(study_dir), "--json", str(existing), "--model-dir", str(model_dir)) == 2
    assert "already exists" in capsys.readouterr().err and existing.read_text() == "keep me"
    inside = study_dir / "r.json"
    assert analyze(str(study_dir), "--json", str(inside), "--model-dir", str(model_dir)) == 2
    assert not inside.exists()
    assert analyze(str(study_dir), "--json", str(existing), "--model-dir", str(model_dir), "--overwrite") == 0
    assert json.loads(existing.read_text())["slices"]


def test_unavailable_device_is_refused(study_dir, model_dir, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert analyze(str(study_dir), "--model-dir", str(model_dir), "--device", "cuda") == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_analyze_and_the_window_give_the_same_numbers(study_dir, model_dir, tmp_path, qtbot, monkeypatch, request):
    pytest.importorskip("pytestqt")
    out_json = tmp_path / "r.json"
    assert analyze(str(study_dir), "--json", str(out_json), "--model-dir", str(model_dir)) == 0
    by_uid = {row["sop_instance_uid"]: row for row in json.loads(out_json.read_text())["slices"]}

    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(model_dir))
    win = request.getfixturevalue("make_window")()  # Qt only when pytest-qt is there
    win.open_path(study_dir)
    qtbot.waitUntil(lambda: win.current_series() is not None, timeout=30000)
    series = win.current_series()
    controller = win.extensions["inference"]
    qtbot.waitUntil(lambda: controller.session.is_complete(series), timeout=30000)
    gui = controller.session.predictions_of(series)
    assert len(gui) == N_SLICES
    for prediction in gui.values():
        row = by_uid[prediction.sop_instance_uid]
        assert row["index"] == prediction.index
        assert row["flagged"] == list(prediction.flagged)
        for label in LABELS:
            assert row["probabilities"][label] == pytest.approx(prediction.probabilities[label], abs=1e-6)
