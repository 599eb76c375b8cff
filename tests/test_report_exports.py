"""PDF, DICOM SR / key images and the single export entry point, on a written phantom study.

Predictions are hand-made (they exercise the writers, not the classifier)."""
from __future__ import annotations

import json
import re

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pypdf import PdfReader

from ich_viewer import RESEARCH_NOTICE
from ich_viewer.report import dicom_export
from ich_viewer.report.atomic import ExportError, OutputExistsError
from ich_viewer.report.data import build_report, summary_lines
from ich_viewer.report.decisions import Decision
from ich_viewer.report.export import export_report
from ich_viewer.report.pdf import paper_for_locale, render_pdf
from ich_viewer.report.review import ReviewStore, study_key
from test_report_support import PATIENT_ID, PATIENT_NAME, make_prediction, phantom_study

FLAGGED = {3: ("subdural",), 4: ("subdural", "subarachnoid"), 5: ("subdural",), 8: ("epidural",)}


@pytest.fixture
def case(tmp_path, isolated_settings):
    study_dir = tmp_path / "study"
    study, series, _ = phantom_study(study_dir, n_slices=12, matrix=64)
    prediction = make_prediction(series, FLAGGED)
    decisions = {series.series_uid: {
        series.slices[3].sop_instance_uid: Decision("accepted", "crescent along left convexity"),
        series.slices[8].sop_instance_uid: Decision("rejected", "bone edge"),
    }}
    out = tmp_path / "exports"
    return study, series, prediction, decisions, out


def pdf_text(path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


def test_pdf_holds_study_model_summary_table_and_notice_on_every_page(case):
    study, series, prediction, decisions, out = case
    result = export_report(study, [(series, prediction)], pdf=out / "r.pdf", decisions=decisions, paper="A4")
    reader = PdfReader(str(result.pdf))
    assert len(reader.pages) >= 2
    for page in reader.pages:
        text = " ".join(page.extract_text().split())
        assert RESEARCH_NOTICE in text
        assert re.search(r"Page \d+ of %d" % len(reader.pages), text)
    text = " ".join(pdf_text(result.pdf).split())
    assert "ZYXWV, Quentin" in text and PATIENT_ID in text and "ACC4455" in text and "Test Hospital" in text
    assert prediction.model.sha256 in text and "ich-test-net 0.0-test" in text
    assert "Suspected: epidural, subarachnoid, subdural." not in text  # epidural only on a rejected slice
    assert "Suspected: subarachnoid, subdural." in text
    assert "Flagged: 4 of 12 slices." in text
    assert "Reviewed: 2 of 4 (accepted 1, rejected 1, undecided 2)." in text
    assert "crescent along left convexity" in text and "bone edge" in text
    # one table row per flagged slice: "Im i/12 instance location probabilities... decision"
    for index in FLAGGED:
        header = series.slices[index]
        assert re.search(rf"{index + 1}/12 {header.instance_number} ", text), index
    assert f"{prediction.slices[4].probabilities['subarachnoid']:.2f}" in text
    # key images: flagged and not rejected -> 3 blocks
    assert len(re.findall(r"Im \d+/12 · Inst", text)) == 3
    assert reader.pages[0].mediabox.width == pytest.approx(595.3, abs=1)


def test_deidentified_pdf_and_csv_hold_no_name_or_id(case):
    study, series, prediction, decisions, out = case
    result = export_report(study, [(series, prediction)], pdf=out / "d.pdf", csv=out / "d.csv", json=out / "d.json",
                           decisions=decisions, deidentify=True)
    pdf = pdf_text(result.pdf)
    reader = PdfReader(str(result.pdf))
    metadata = " ".join(str(v) for v in (reader.metadata or {}).values())
    for secret in (PATIENT_NAME, "ZYXWV", "Zyxwv", "Quentin", PATIENT_ID, "ACC4455", "Test Hospital",
                   "20250301", "2025-03-01"):
        assert secret not in pdf and secret not in metadata, secret
        assert secret not in result.csv.read_text(encoding="utf-8-sig")
        assert secret not in result.json.read_text()
    assert "de-identified" in pdf.lower()
    assert "crescent along left convexity" in pdf  # the clinical content stays


def test_letter_paper_by_locale(case):
    study, series, prediction, decisions, _ = case
    assert paper_for_locale("en_US.UTF-8") == "Letter"
    assert paper_for_locale("fr_CA") == "Letter"
    assert paper_for_locale("de_DE.UTF-8") == "A4"
    assert paper_for_locale("en_GB") == "A4"
    assert paper_for_locale("C") == "A4"
    assert paper_for_locale("English_United States.1252") == "Letter"
    data = render_pdf(build_report(study, [(series, prediction)], decisions), paper="Letter")
    import io

    assert PdfReader(io.BytesIO(data)).pages[0].mediabox.width == pytest.approx(612, abs=1)


def test_attention_overlay_appears_when_given(case):
    study, series, prediction, decisions, _ = case
    calls = []

    def overlay(s, index):
        calls.append(index)
        heat = np.zeros((8, 8), np.float32)
        heat[2:4, 5:7] = 1.0
        return heat

    content = build_report(study, [(series, prediction)], decisions, overlay=overlay)
    text = "".join(p.extract_text() for p in PdfReader(__import__("io").BytesIO(render_pdf(content, "A4"))).pages)
    assert sorted(set(calls)) == [3, 4, 5]
    assert "where the network looked" in text


def test_no_flags_says_so(case):
    study, series, _, _, out = case
    quiet = make_prediction(series, {})
    assert summary_lines(build_report(study, [(series, quiet)]).sections[0]) == ["No slice above any threshold (12 slices analysed)."]
    result = export_report(study, [(series, quiet)], pdf=out / "q.pdf", dicom_dir=out / "dcm")
    assert "No slice above any threshold" in pdf_text(result.pdf)
    assert result.sr is None and result.kos is None and result.key_images == []


def test_sr_reads_back_and_references_the_flagged_instances(case):
    study, series, prediction, decisions, out = case
    result = export_report(study, [(series, prediction)], dicom_dir=out / "dicom", decisions=decisions)
    raw = pydicom.dcmread(result.sr)
    assert raw.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert raw.StudyInstanceUID == study.study_uid
    assert raw.SeriesInstanceUID != series.series_uid
    assert raw.PatientID == PATIENT_ID and str(raw.PatientName) == PATIENT_NAME
    assert raw.ContentQualification == "RESEARCH"
    sr = hd.sr.srread(result.sr)
    groups = sr.content.get_image_measurement_groups()
    assert len(groups) == len(FLAGGED)
    referenced = {}
    for group in groups:
        (source,) = group.source_images
        uid = source.referenced_sop_instance_uid
        referenced[uid] = group
        assert group.finding_type.value == "1386000"
    expected = {series.slices[i].sop_instance_uid: i for i in FLAGGED}
    assert set(referenced) == set(expected)
    for uid, index in expected.items():
        group = referenced[uid]
        values = {m.name.meaning: m.value for m in group.get_measurements()}
        assert values["Probability of subdural hemorrhage"] == pytest.approx(prediction.slices[index].probabilities["subdural"], abs=1e-6)
        evaluations = {(q.name.value, q.value.meaning) for q in group.get_qualitative_evaluations()}
        subtypes = {meaning for name, meaning in evaluations if name == "SUBTYPE"}
        assert subtypes == {f"{label.capitalize()} hemorrhage" for label in FLAGGED[index]}
        review = {meaning for name, meaning in evaluations if name == "REVIEW"}
        expected_review = {3: "Accepted", 8: "Rejected"}.get(index, "Undecided")
        assert review == {expected_review}
    evidence_uids = {item.ReferencedSOPInstanceUID
                     for study_item in raw.CurrentRequestedProcedureEvidenceSequence
                     for series_item in study_item.ReferencedSeriesSequence
                     for item in series_item.ReferencedSOPSequence}
    assert evidence_uids == set(expected)
    notes = [item.TextValue for item in _walk(raw) if getattr(item, "ValueType", "") == "TEXT"]
    assert "crescent along left convexity" in notes and "bone edge" in notes


def _walk(dataset):
    for item in getattr(dataset, "ContentSequence", []):
        yield item
        yield from _walk(item)


def test_key_images_and_kos(case):
    study, series, prediction, decisions, out = case
    result = export_report(study, [(series, prediction)], dicom_dir=out / "dicom", decisions=decisions)
    assert len(result.key_images) == 3  # 4 flagged, 1 rejected
    originals = set()
    for path in result.key_images:
        image = pydicom.dcmread(path)
        assert image.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert image.StudyInstanceUID == study.study_uid and image.PhotometricInterpretation == "RGB"
        pixels = image.pixel_array
        assert pixels.ndim == 3 and pixels.shape[2] == 3
        # the subtype frame: the outer ring is the first flagged subtype's colour
        from ich_viewer.imaging.palette import LABEL_COLOURS

        index = int(image.ImageComments.split(",")[0].split()[1]) - 1
        first = [label for label in ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
                 if label in FLAGGED[index]][0]
        assert tuple(int(v) for v in pixels[0, 0]) == LABEL_COLOURS[first]
        originals.add(index)
    assert originals == {3, 4, 5}
    kos = pydicom.dcmread(result.kos)
    assert kos.SOPClassUID == pydicom.uid.KeyObjectSelectionDocumentStorage
    referenced = {item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for item in kos.ContentSequence
                  if "ReferencedSOPSequence" in item}
    assert {series.slices[i].sop_instance_uid for i in (3, 4, 5)} <= referenced
    assert series.slices[8].sop_instance_uid not in referenced


def test_nothing_is_written_into_the_study_folder(case):
    study, series, prediction, decisions, out = case
    before = sorted(p.name for p in (out.parent / "study").rglob("*"))
    with pytest.raises(ExportError, match="inside the study folder"):
        export_report(study, [(series, prediction)], pdf=out / "ok.pdf", dicom_dir=out.parent / "study" / "sr")
    assert not (out / "ok.pdf").exists()  # checked before anything was written
    assert sorted(p.name for p in (out.parent / "study").rglob("*")) == before


def test_existing_file_refused_before_any_write(case):
    study, series, prediction, decisions, out = case
    out.mkdir()
    (out / "r.csv").write_text("mine")
    with pytest.raises(OutputExistsError):
        export_report(study, [(series, prediction)], pdf=out / "r.pdf", csv=out / "r.csv")
    assert not (out / "r.pdf").exists() and (out / "r.csv").read_text() == "mine"


def test_failed_dicom_export_removes_its_partial_files(case, monkeypatch):
    study, series, prediction, decisions, out = case
    real = dicom_export._write_dataset
    count = {"n": 0}

    def fail_on_third(path, dataset, overwrite):
        count["n"] += 1
        if count["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(path, dataset, overwrite)

    monkeypatch.setattr(dicom_export, "_write_dataset", fail_on_third)
    with pytest.raises(ExportError, match="No space left on device"):
        export_report(study, [(series, prediction)], dicom_dir=out / "dicom", decisions=decisions)
    assert list((out / "dicom").iterdir()) == []


def test_stored_decisions_go_into_every_export(case):
    study, series, prediction, _, out = case
    store = ReviewStore()
    key = study_key(study.study_uid, study.source)
    store.set_decision(key, series.series_uid, series.slices[5].sop_instance_uid, state="rejected", note="motion")
    result = export_report(study, [(series, prediction)], json=out / "r.json", pdf=out / "r.pdf")
    rows = {row["index"]: row for row in json.loads(result.json.read_text())["slices"]}
    assert (rows[5]["decision"], rows[5]["note"]) == ("rejected", "motion")
    assert "motion" in pdf_text(result.pdf)
