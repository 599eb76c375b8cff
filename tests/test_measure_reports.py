"""Measurements and bleed volumes in every export: JSON, CSV, PDF (with the outline) and SR TID 1500."""
from __future__ import annotations

import csv
import json

import numpy as np
import pydicom
import pytest
from pypdf import PdfReader

from ich_viewer.measure.planar import Calibration
from ich_viewer.measure.records import planar_measurement, volume_measurement
from ich_viewer.measure.series import grow_in_series
from ich_viewer.phantom import generate_phantom
from ich_viewer.report.export import export_report
from ich_viewer.report.measurements import MeasurementStore
from ich_viewer.report.review import study_key
from ich_viewer.measure.region import deepest_point
from test_report_support import make_prediction, phantom_study


@pytest.fixture
def measured(tmp_path, isolated_settings):
    study, series, flagged = phantom_study(tmp_path / "study", n_slices=24, matrix=128, subtypes=("subdural",), seed=2)
    truth = generate_phantom(seed=2, subtypes=["subdural"], n_slices=24, matrix=128).masks == 5
    region = grow_in_series(series, deepest_point(truth))
    assert region.ok, region.reason
    volume = volume_measurement(region, series_uid=series.series_uid,
                                slice_uid=series.slices[region.seed[0]].sop_instance_uid, subtype="subdural")
    k = region.seed[0]
    ruler = planar_measurement("distance", [(10, 10), (10, 50)], series.hu(k), Calibration(*series.pixel_spacing),
                               series_uid=series.series_uid, slice_index=k, slice_uid=series.slices[k].sop_instance_uid)
    store = MeasurementStore()
    key = study_key(study.study_uid, study.source)
    store.add(key, volume)
    store.add(key, ruler)
    return study, series, make_prediction(series, flagged), volume, ruler, tmp_path / "out"


def test_json_and_csv_carry_the_stored_measurements(measured):
    study, series, prediction, volume, ruler, out = measured
    result = export_report(study, [(series, prediction)], json=out / "r.json", csv=out / "r.csv")
    document = json.loads((out / "r.json").read_text())
    kinds = {m["kind"]: m for m in document["measurements"]}
    assert set(kinds) == {"volume", "distance"}
    assert kinds["volume"]["details"]["volume_ml"] == pytest.approx(volume.value, abs=0.01)
    assert kinds["volume"]["details"]["subtype"] == "subdural"
    assert kinds["distance"]["value"] == pytest.approx(40 * series.pixel_spacing[1])
    rows = list(csv.DictReader((out / "r-measurements.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert [r["kind"] for r in rows] == ["volume", "distance"]
    assert float(rows[0]["volume_ml"]) == pytest.approx(volume.value, abs=0.01) and rows[0]["abc2_ml"]
    assert out / "r-measurements.csv" in result.written


def test_pdf_lists_the_volume_and_shows_its_outline(measured):
    study, series, prediction, volume, ruler, out = measured
    result = export_report(study, [(series, prediction)], pdf=out / "r.pdf", paper="A4")
    reader = PdfReader(str(result.pdf))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Measurements (2)" in text and "Bleed volume" in text and f"{volume.value:.1f} mL" in text
    assert "ABC/2" in text and "Red: outline" in text
    assert series.spacing_mm == 2.5 and "less exact" not in text  # thin slices: no caveat (below, thick ones)
    images = sum(len(page.images) for page in reader.pages)
    without = export_report(study, [(series, prediction)], pdf=out / "none.pdf", paper="A4", measurements={})
    assert images == sum(len(page.images) for page in PdfReader(str(without.pdf)).pages) + 1


def test_the_volume_caption_says_when_the_slices_are_thick():
    from ich_viewer.dicom.model import Series
    from ich_viewer.report.pdf import volume_caption

    thick = volume_caption(Series.from_array(np.zeros((4, 8, 8)), spacing_mm=5.0))
    assert thick.endswith("The volume was measured on 5 mm slices: the bleed's edge is averaged through the slice, "
                          "so the volume is less exact than on thin slices.")
    assert volume_caption(Series.from_array(np.zeros((4, 8, 8)), spacing_mm=2.5)) == (
        "Red: outline on the slice with the largest area; blue: ABC/2's A diameter.")


def _items(dataset):
    for item in getattr(dataset, "ContentSequence", []):
        yield item
        yield from _items(item)


def test_sr_holds_tid1500_volume_with_tracking_id_and_image_references(measured):
    study, series, prediction, volume, ruler, out = measured
    result = export_report(study, [(series, prediction)], dicom_dir=out / "dicom", key_images=False)
    sr = pydicom.dcmread(result.sr)
    items = list(_items(sr))
    volumes = [i for i in items if i.ValueType == "NUM" and i.ConceptNameCodeSequence[0].CodeMeaning == "Volume"]
    values = sorted(float(v.MeasuredValueSequence[0].NumericValue) for v in volumes)
    assert values[0] == pytest.approx(volume.value, abs=0.01)
    assert values[1] == pytest.approx(volume.details["abc2_ml"], abs=0.01)
    assert all(v.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "ml" for v in volumes)
    lengths = [i for i in items if i.ValueType == "NUM" and i.ConceptNameCodeSequence[0].CodeMeaning == "Length"]
    assert float(lengths[0].MeasuredValueSequence[0].NumericValue) == pytest.approx(ruler.value, abs=1e-3)
    trackers = [i.TextValue for i in items if i.ValueType == "TEXT" and "Bleed volume" in str(i.get("TextValue", ""))]
    assert trackers, "the volume's tracking identifier"
    referenced = {i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in items if i.ValueType == "IMAGE"}
    touched = {series.slices[k].sop_instance_uid for k in volume.details["slices"]}
    assert touched <= referenced


def test_seg_beside_the_sr_holds_the_edited_outline_frame_by_frame(measured):
    import highdicom as hd

    from ich_viewer.measure.edit import Stroke
    from ich_viewer.measure.series import grow_record

    study, series, prediction, volume, ruler, out = measured
    k, i, j = volume.slice_index, int(volume.points[0][0]), int(volume.points[0][1])
    edits = [Stroke(k, i, j, 4.0, False)]  # the reader erased a disc around the seed
    region = grow_record(series, (k, i, j), tuple(volume.details["hu_range"]), edits)
    edited = volume_measurement(region, series_uid=series.series_uid, slice_uid=volume.slice_uid,
                                subtype="subdural", edits=edits)
    edited.id = volume.id
    MeasurementStore().replace(study_key(study.study_uid, study.source), edited)
    result = export_report(study, [(series, prediction)], dicom_dir=out / "dicom", key_images=False)
    [path] = result.segs
    assert path.parent == result.sr.parent and path.name.startswith("SEG_") and path in result.written

    raw = pydicom.dcmread(path)
    assert raw.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and raw.StudyInstanceUID == study.study_uid
    assert raw.SegmentationType == "BINARY" and raw.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert raw.ContentQualification == "RESEARCH" and raw.Manufacturer.startswith("ICH Viewer")  # marked like the SR
    mask = region.mask
    index = {h.sop_instance_uid: n for n, h in enumerate(series.slices)}
    frames = raw.pixel_array.reshape(-1, *mask.shape[1:])
    sources = [index[fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
               for fg in raw.PerFrameFunctionalGroupsSequence]
    assert sorted(sources) == [int(s) for s in np.flatnonzero(mask.any(axis=(1, 2)))]  # empty frames omitted
    for frame, n in zip(frames, sources):
        assert (frame.astype(bool) == mask[n]).all()
    assert volume.details["voxels"] > mask.sum() and not frames[sources.index(k)][i, j]  # the erased disc is not in it

    seg = hd.seg.segread(path)
    uids = [h.sop_instance_uid for h in series.slices]
    stack = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1],
                                              ignore_spatial_locations=True, assert_missing_frames_are_empty=True)
    assert (stack[..., 0].astype(bool) == mask).all()
    assert "subdural" in seg.get_segment_description(1).segment_label


def test_no_seg_for_a_series_without_pixel_spacing(measured):
    from ich_viewer.measure.records import Measurement
    from ich_viewer.report.seg_export import build_seg

    study, series, prediction, volume, ruler, out = measured
    mask = np.zeros((len(series.slices), *series.shape), bool)
    mask[volume.slice_index, 40:50, 40:50] = True
    record = Measurement.from_dict(volume.to_dict())
    assert build_seg(study, series, [(record, mask)]) is not None
    for header in series.slices:
        header.pixel_spacing_known = False
    assert build_seg(study, series, [(record, mask)]) is None  # it would sit in the wrong place


def test_deidentified_export_writes_the_seg_too(measured):
    study, series, prediction, volume, ruler, out = measured
    result = export_report(study, [(series, prediction)], dicom_dir=out / "dicom", key_images=False, deidentify=True)
    [path] = result.segs
    seg = pydicom.dcmread(path)
    assert seg.PatientName != study.patient_name or not study.patient_name
    assert seg.StudyInstanceUID == study.study_uid and seg.NumberOfFrames == len(volume.details["slices"])
