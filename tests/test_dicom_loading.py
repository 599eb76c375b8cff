"""Loader: folders of every shape, series splitting, order, geometry warnings, bad files, no writes."""
from __future__ import annotations

import json
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dicom_helpers import ct_dataset, make_volume, save, slice_marker, tree_digest
from ich_viewer.dicom.inspect import run_inspect, study_summary
from ich_viewer.dicom.loader import load_study
from ich_viewer.options import InspectOptions
from ich_viewer.phantom.extras import write_dicomdir, write_junk_files, write_localizer, write_truncated_copy
from ich_viewer.phantom.writer import StudyInfo, write_series

SPACING = 5.0
PIXEL = (0.5, 0.5)


def write(volume, folder, **options):
    return write_series(volume, folder, spacing_mm=SPACING, pixel_spacing=PIXEL, **options)


def assert_in_order(series, volume, expected_indices=None):
    """Slices come back foot to head with the right pixels."""
    expected = list(range(len(volume))) if expected_indices is None else list(expected_indices)
    assert [slice_marker(series.hu(i)) for i in range(len(series))] == expected
    for i, k in enumerate(expected):
        np.testing.assert_array_equal(series.hu(i), np.rint(volume[k]))


@pytest.mark.parametrize("names", ["random", "no-extension"])
def test_shuffled_names_in_nested_folders_load_in_position_order(tmp_path, names):
    volume = make_volume(7)
    write(volume, tmp_path / "study", file_names=names, nested=True)
    study = load_study(tmp_path / "study")
    assert len(study.series) == 1 and not study.skipped
    series = study.series[0]
    assert_in_order(series, volume)
    assert series.positions_mm == pytest.approx([i * SPACING for i in range(7)], abs=1e-3)
    assert series.spacing_mm == pytest.approx(SPACING)
    assert series.gantry_tilt_deg == 0.0 and series.warnings == []
    assert all(h.path.startswith(str(tmp_path / "study")) for h in series.slices)


def test_position_beats_instance_number(tmp_path):
    volume = make_volume(5)
    uid = "1.2.826.0.1.3680043.8.498.77"
    for k in range(5):  # instance numbers deliberately reversed against the positions
        ds = ct_dataset(volume[k].astype(np.int16), position=(0, 0, 2.5 * k), series_uid=uid, instance=5 - k)
        save(ds, tmp_path / f"{random.Random(k).random():.8f}")
    series = load_study(tmp_path).series[0]
    assert_in_order(series, volume)


def test_instance_number_is_the_fallback_without_positions(tmp_path):
    volume = make_volume(4)
    uid = "1.2.826.0.1.3680043.8.498.78"
    for k, instance in enumerate([3, 1, 4, 2]):
        save(ct_dataset(volume[k].astype(np.int16), position=None, series_uid=uid, instance=instance), tmp_path / f"f{k}")
    series = load_study(tmp_path).series[0]
    assert [h.instance_number for h in series.slices] == [1, 2, 3, 4]
    assert any("InstanceNumber" in w for w in series.warnings)


def test_mixed_series_localizer_and_junk(tmp_path):
    study_info = StudyInfo()
    brain, bone = make_volume(6, seed=1), make_volume(4, seed=2)
    write(brain, tmp_path / "a", description="BRAIN", series_number=2, study=study_info, file_names="random")
    write(bone, tmp_path / "a", description="BONE", series_number=3, study=study_info, file_names="random", seed=5)
    write_localizer(brain, tmp_path / "b" / "scout.dcm", spacing_mm=SPACING, pixel_spacing=PIXEL, study=study_info,
                    series_number=1)
    junk = write_junk_files(tmp_path / "c")
    study = load_study(tmp_path)
    images = study.image_series
    assert [s.description.split()[-1] for s in images] == ["BRAIN", "BONE"]  # by SeriesNumber
    assert [len(s) for s in images] == [6, 4]
    assert_in_order(images[0], brain)
    assert_in_order(images[1], bone)
    localizers = [s for s in study.series if s.is_localizer]
    assert len(localizers) == 1 and study.series[-1].is_localizer  # kept apart, listed last
    skipped = {Path(f.path).name: f.reason for f in study.skipped}
    assert set(skipped) == {p.name for p in junk}
    assert skipped["empty.dcm"] == "empty file (0 bytes)"
    assert "not a DICOM file" in skipped["notes.dcm"]
    assert all(reason for reason in skipped.values())
    assert study.patient_id and study.study_uid == images[0].study_uid


def test_lone_slice_in_another_orientation_is_a_localizer(tmp_path):
    volume = make_volume(4)
    uid = "1.2.826.0.1.3680043.8.498.79"
    for k in range(4):
        save(ct_dataset(volume[k].astype(np.int16), position=(0, 0, 3.0 * k), series_uid=uid, instance=k + 2),
             tmp_path / f"ax{k}")
    save(ct_dataset(volume[0].astype(np.int16), orientation=(0, 1, 0, 0, 0, -1), series_uid=uid, instance=1),
         tmp_path / "scout")
    study = load_study(tmp_path)
    assert [(len(s), s.is_localizer) for s in study.series] == [(4, False), (1, True)]
    assert study.image_series[0].series_uid == uid


def test_matrix_size_splits_a_series(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.80"
    for k in range(3):
        save(ct_dataset(np.full((16, 16), k, np.int16), position=(0, 0, k), series_uid=uid, instance=k), tmp_path / f"s{k}")
        save(ct_dataset(np.full((8, 8), k, np.int16), position=(0, 0, k), series_uid=uid, instance=k), tmp_path / f"t{k}")
    study = load_study(tmp_path)
    assert sorted(s.shape for s in study.series) == [(8, 8), (16, 16)]
    assert all(len(s) == 3 and not s.is_localizer for s in study.series)
    assert any("2 stacks" in w for w in study.warnings)


def test_missing_slice_is_reported(tmp_path):
    volume = make_volume(8)
    write(volume, tmp_path, drop_slices=[4])
    series = load_study(tmp_path).series[0]
    assert len(series) == 7
    assert_in_order(series, volume, [0, 1, 2, 3, 5, 6, 7])
    assert series.spacing_mm == pytest.approx(SPACING)
    (warning,) = [w for w in series.warnings if "Missing" in w]
    assert "1 between 15.0 and 25.0 mm" in warning


def test_two_missing_slices_and_uneven_spacing(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.81"
    positions = [0, 2, 4, 6, 12, 14, 17.1, 19.1]
    for k, z in enumerate(positions):
        save(ct_dataset(np.zeros((8, 8), np.int16), position=(0, 0, z), series_uid=uid, instance=k), tmp_path / f"{k}")
    warnings = load_study(tmp_path).series[0].warnings
    assert any("Missing slice(s): 2 between 6.0 and 12.0 mm" in w for w in warnings)
    assert any("Uneven slice spacing: 3.10 mm between 14.0 and 17.1 mm" in w for w in warnings)


def test_duplicate_positions_and_duplicate_files(tmp_path):
    volume = make_volume(4)
    paths = write(volume, tmp_path / "s")
    shutil.copy(paths[1], tmp_path / "copy_of_second.dcm")  # same SOPInstanceUID twice
    uid = load_study(tmp_path / "s").series[0].series_uid
    save(ct_dataset(volume[2].astype(np.int16), position=(-7.75, -7.75, 10.0), series_uid=uid, instance=9),
         tmp_path / "same_place.dcm")  # a different image at an existing position
    study = load_study(tmp_path)
    series = study.series[0]
    assert len(series) == 5
    assert [f.reason for f in study.skipped] == [f"duplicate of {paths[1]} (same SOPInstanceUID)"] or [
        f.reason for f in study.skipped
    ] == [f"duplicate of {tmp_path / 'copy_of_second.dcm'} (same SOPInstanceUID and pixel data)"]
    assert any("duplicate slice position" in w for w in series.warnings)


def test_gantry_tilt_is_measured(tmp_path):
    write(make_volume(6), tmp_path, tilt_deg=15.0)
    series = load_study(tmp_path).series[0]
    assert series.gantry_tilt_deg == pytest.approx(15.0, abs=0.05)
    assert any("Gantry tilt of 15.0 degrees" in w for w in series.warnings)
    assert series.spacing_mm == pytest.approx(SPACING * np.cos(np.radians(15.0)), abs=1e-3)


def test_single_file(tmp_path):
    volume = make_volume(3)
    paths = write(volume, tmp_path)
    study = load_study(paths[1])
    assert len(study.series) == 1 and len(study.series[0]) == 1
    np.testing.assert_array_equal(study.series[0].hu(0), volume[1])


def test_zip_is_read_in_memory(tmp_path):
    volume = make_volume(5)
    paths = write(volume, tmp_path / "src", file_names="random", nested=True)
    archive = tmp_path / "export" / "study.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, path in enumerate(paths):
            zf.write(path, f"DICOM/{k % 2}/{path.name}")
        zf.writestr("DICOM/readme.txt", "not an image")
    before = tree_digest(archive.parent)
    study = load_study(archive)
    assert tree_digest(archive.parent) == before  # nothing extracted beside the zip
    series = study.series[0]
    assert_in_order(series, volume)
    assert all(h.path.startswith(f"{archive}!/DICOM/") for h in series.slices)
    assert [f.path for f in study.skipped] == [f"{archive}!/DICOM/readme.txt"]


def test_dicomdir_records_are_used(tmp_path):
    volume = make_volume(5)
    paths = write(volume, tmp_path / "src", file_names="random")
    dicomdir = write_dicomdir(paths, tmp_path / "cd")
    (tmp_path / "cd" / "stray.dcm").write_bytes(Path(paths[0]).read_bytes())  # not listed in the DICOMDIR
    study = load_study(dicomdir)
    assert_in_order(study.series[0], volume)
    assert not any("stray" in h.path for h in study.series[0].slices)
    listed = sorted(p for p in (tmp_path / "cd").rglob("*") if p.is_file() and p.name not in ("DICOMDIR", "stray.dcm"))
    listed[2].unlink()
    study = load_study(dicomdir)
    assert len(study.series[0]) == 4
    assert [f.reason for f in study.skipped] == ["listed in the DICOMDIR but missing"]
    assert load_study(tmp_path / "cd").series[0].n_slices == 4  # the folder itself: scanned (stray is a copy)


def test_broken_dicomdir_falls_back_to_scanning(tmp_path):
    volume = make_volume(3)
    write(volume, tmp_path)
    (tmp_path / "DICOMDIR").write_bytes(b"\x00" * 10)
    study = load_study(tmp_path / "DICOMDIR")
    assert_in_order(study.series[0], volume)
    assert any("scanned its folder instead" in w for w in study.warnings)


def test_opening_never_writes_into_the_folder(tmp_path):
    root = tmp_path / "study"
    volume = make_volume(6)
    write(volume, root, file_names="random", nested=True)
    write(volume[:3], root / "jpeg", syntax="jpeg-lossless", series_number=2)
    write_junk_files(root / "junk")
    before = tree_digest(root)
    study = load_study(root)
    for series in study.series:
        series.volume_hu()
    study_summary(study)
    assert tree_digest(root) == before


def test_bad_files_of_each_kind_are_skipped_with_reasons(tmp_path):
    volume = make_volume(4)
    paths = write(volume, tmp_path / "good")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty").write_bytes(b"")
    (bad / "text.dcm").write_text("patient list\nnot dicom\n")
    write_truncated_copy(paths[0], bad / "truncated.dcm", keep_fraction=0.6)
    write_truncated_copy(paths[0], bad / "header_only.dcm", keep_fraction=0.05)
    no_pixels = ct_dataset(np.zeros((4, 4), np.int16))
    del no_pixels.PixelData
    save(no_pixels, bad / "no_pixels.dcm")
    jpeg = write(volume[:1], tmp_path / "jpeg", syntax="jpeg-ls", series_number=7)[0]
    write_truncated_copy(jpeg, bad / "truncated_jpeg.dcm", keep_fraction=0.7)
    with zipfile.ZipFile(bad / "inner.zip", "w") as zf:
        zf.writestr("x.txt", "x")
    study = load_study(tmp_path)
    reasons = {Path(f.path).name: f.reason for f in study.skipped}
    assert reasons["empty"] == "empty file (0 bytes)"
    assert reasons["text.dcm"].startswith("not a DICOM file")
    assert reasons["truncated.dcm"].startswith("truncated: the file ends inside the pixel data")
    assert "truncated" in reasons["header_only.dcm"] or "unreadable" in reasons["header_only.dcm"]
    assert reasons["no_pixels.dcm"] == "no pixel data (CT Image Storage)"
    assert reasons["truncated_jpeg.dcm"].startswith("truncated")
    assert reasons["inner.zip"].startswith("zip archive")
    assert [len(s) for s in study.series] == [4, 1]  # the good files still load


def test_progress_and_cancel(tmp_path):
    write(make_volume(6), tmp_path)
    calls = []
    load_study(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (6, 6)
    seen = []

    def cancel():
        seen.append(1)
        return len(seen) > 3

    study = load_study(tmp_path, cancel=cancel)
    assert any("cancelled after" in w for w in study.warnings)
    assert sum(len(s) for s in study.series) < 6


def test_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_study(tmp_path / "nope")


def test_inspect_json_and_text(tmp_path, capsys):
    volume = make_volume(5)
    write(volume, tmp_path / "s", file_names="random", drop_slices=[2], tilt_deg=10)
    (tmp_path / "s" / "junk.txt").write_text("x")
    assert run_inspect(InspectOptions(path=str(tmp_path / "s"), json=True)) == 0
    report = json.loads(capsys.readouterr().out)
    (series,) = report["series"]
    for key in ("series_uid", "description", "modality", "n_slices", "files", "positions_mm", "spacing_mm",
                "gantry_tilt_deg", "warnings"):
        assert key in series
    assert series["n_slices"] == 4 and series["modality"] == "CT"
    assert len(series["files"]) == 4 and len(series["positions_mm"]) == 4
    assert series["positions_mm"] == sorted(series["positions_mm"])
    assert series["gantry_tilt_deg"] == pytest.approx(10.0, abs=0.05)
    assert any("Missing" in w for w in series["warnings"])
    assert report["skipped"] == [{"path": str(tmp_path / "s" / "junk.txt"), "reason": report["skipped"][0]["reason"]}]
    assert run_inspect(InspectOptions(path=str(tmp_path / "s"), json=False)) == 0
    text = capsys.readouterr().out
    assert "4 slices" in text and "Gantry tilt" in text and "junk.txt" in text


def test_inspect_exit_codes(tmp_path, capsys):
    assert run_inspect(InspectOptions(path=str(tmp_path / "missing"), json=True)) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "only_text.txt").write_text("hello")
    assert run_inspect(InspectOptions(path=str(tmp_path), json=False)) == 1
    captured = capsys.readouterr()
    assert "no readable DICOM images" in captured.err and "only_text.txt" in captured.out
