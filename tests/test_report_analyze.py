"""`ich-viewer analyze --report F.pdf --sr DIR` goes through the same export as the window.

A randomly initialised tiny model supplies the predictions (meaningless clinically)."""
from __future__ import annotations

import json

import pydicom
from pypdf import PdfReader

from ich_viewer.cli import main
from test_report_support import phantom_study


def test_analyze_writes_pdf_sr_and_results_with_the_same_flags(tmp_path, isolated_settings, flagging_model_dir, capsys):
    study_dir = tmp_path / "study"
    study, series, _ = phantom_study(study_dir, n_slices=6, matrix=64)
    out = tmp_path / "out"
    out.mkdir()
    code = main(["analyze", str(study_dir), "--model-dir", str(flagging_model_dir), "--device", "cpu",
                 "--json", str(out / "r.json"), "--report", str(out / "r.pdf"), "--sr", str(out / "dicom")])
    assert code == 0, capsys.readouterr()
    document = json.loads((out / "r.json").read_text())
    flagged_uids = {row["sop_instance_uid"] for row in document["slices"] if row["flagged"]}
    assert flagged_uids, "the biased test model flags slices"
    text = " ".join("".join(p.extract_text() for p in PdfReader(str(out / "r.pdf")).pages).split())
    assert document["model"]["sha256"] in text
    assert f"Flagged: {len(flagged_uids)} of 6 slices." in text
    (sr_path,) = (out / "dicom").glob("SR_*.dcm")
    sr = pydicom.dcmread(sr_path)
    assert sr.StudyInstanceUID == study.study_uid
    referenced = {item.ReferencedSOPInstanceUID
                  for s in sr.CurrentRequestedProcedureEvidenceSequence for r in s.ReferencedSeriesSequence
                  for item in r.ReferencedSOPSequence}
    assert referenced == flagged_uids
    assert not any(p.suffix == ".pdf" or p.name.startswith("SR_") for p in study_dir.rglob("*"))


def test_analyze_refuses_report_inside_the_study(tmp_path, isolated_settings, flagging_model_dir, capsys):
    study_dir = tmp_path / "study"
    phantom_study(study_dir, n_slices=4, matrix=64)
    code = main(["analyze", str(study_dir), "--model-dir", str(flagging_model_dir), "--device", "cpu",
                 "--report", str(study_dir / "r.pdf")])
    assert code != 0
    assert "inside the study folder" in capsys.readouterr().err
    assert not (study_dir / "r.pdf").exists()
