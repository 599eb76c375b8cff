"""Phantom studies on disk: loader and SimpleITK round trips, ground truth, CLI, demo."""
from __future__ import annotations

import csv

import numpy as np
import pydicom
import pytest

from ich_viewer import LABELS
from ich_viewer.cli import main as cli_main
from ich_viewer.dicom.loader import load_study
from ich_viewer.phantom import generate_phantom
from ich_viewer.phantom.study import write_phantom_study
from ich_viewer.phantom.syntaxes import available_syntaxes
from ich_viewer.phantom.writer import write_series


@pytest.fixture(scope="module")
def small_phantom():
    return generate_phantom(seed=3, subtypes=["subdural", "intraventricular"], matrix=64, thickness_mm=5.0)


def _only_image_series(study):
    series = study.image_series
    assert len(series) == 1, [s.description for s in series]
    return series[0]


@pytest.mark.parametrize("signed", [True, False])
def test_loader_round_trip_order_spacing_hu_exact(tmp_path, small_phantom, signed):
    p = small_phantom
    folder = write_phantom_study(tmp_path / "out", phantom=p, signed=signed, file_names="random")
    study = load_study(folder)
    series = _only_image_series(study)
    assert len(series) == p.n_slices
    assert series.spacing_mm == pytest.approx(p.spacing_mm, abs=1e-3)
    assert series.pixel_spacing == pytest.approx(p.pixel_spacing, abs=1e-5)
    np.testing.assert_array_equal(series.volume_hu(), np.rint(p.volume_hu))  # order and HU exact
    assert "SYNTHETIC PHANTOM" in study.patient_name and "SYNTHETIC PHANTOM" in series.description
    assert not study.skipped, "ground truth lives beside the series, not inside it"


@pytest.mark.parametrize("syntax", available_syntaxes(lossless_only=True))
def test_every_lossless_syntax_through_the_loader(tmp_path, syntax):
    vol = np.random.default_rng(1).uniform(-1024, 1800, (3, 40, 40)).astype(np.float32)
    write_series(vol[::-1], tmp_path, spacing_mm=2.0, pixel_spacing=(0.7, 0.7), syntax=syntax, file_names="no-extension")
    series = _only_image_series(load_study(tmp_path))
    np.testing.assert_array_equal(series.volume_hu(), np.rint(vol[::-1]))


def test_tilt_and_missing_slice_reach_the_loader(tmp_path, small_phantom):
    p = small_phantom
    folder = write_phantom_study(tmp_path / "o", phantom=p, tilt_deg=12.0, drop_slices=[5])
    series = _only_image_series(load_study(folder))
    assert len(series) == p.n_slices - 1
    assert abs(series.gantry_tilt_deg) == pytest.approx(12.0, abs=0.1)
    expected = np.delete(np.rint(p.volume_hu), 5, axis=0)
    np.testing.assert_array_equal(series.volume_hu(), expected)
    rows = list(csv.DictReader(open(tmp_path / "o" / "ground_truth" / "labels.csv")))
    assert len(rows) == p.n_slices and rows[5]["file"] == ""


def test_simpleitk_reads_the_series(tmp_path, small_phantom):
    import SimpleITK as sitk

    p = small_phantom
    folder = write_phantom_study(tmp_path / "o", phantom=p)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    assert image.GetSpacing()[2] == pytest.approx(p.spacing_mm, abs=1e-3)
    array = sitk.GetArrayFromImage(image)
    np.testing.assert_array_equal(array, np.rint(p.volume_hu))


def test_ground_truth_beside_the_series(tmp_path, small_phantom):
    p = small_phantom
    folder = write_phantom_study(tmp_path / "o", phantom=p)
    truth = tmp_path / "o" / "ground_truth"
    assert "SYNTHETIC" in (truth / "README.txt").read_text()
    saved = np.load(truth / "masks.npz")
    np.testing.assert_array_equal(saved["masks"], p.masks)
    np.testing.assert_array_equal(saved["labels"], p.labels)
    rows = list(csv.DictReader(open(truth / "labels.csv")))
    assert [int(r["any"]) for r in rows] == p.labels[:, -1].tolist()
    for row in rows[:3]:
        ds = pydicom.dcmread(folder / row["file"])
        assert ds.SOPInstanceUID == row["sop_instance_uid"] and ds.InstanceNumber == int(row["instance_number"])
        for label in LABELS:  # nothing in the DICOM reads like a finding
            assert label not in str(ds).lower()
    assert not any(folder.rglob("*.npz")) and not any(folder.rglob("*.csv"))


def test_messy_study_and_dicomdir(tmp_path, small_phantom):
    p = small_phantom
    messy = load_study(write_phantom_study(tmp_path / "m", phantom=p, messy=True, syntax="rle"))
    main = [s for s in messy.image_series if len(s) == p.n_slices]
    assert len(main) == 1 and len(messy.image_series) == 2  # axial + thick bone series
    np.testing.assert_array_equal(main[0].volume_hu(), np.rint(p.volume_hu))
    assert any(s.is_localizer for s in messy.series)
    assert len(messy.skipped) >= 5  # junk files, each with a reason
    assert all(s.reason for s in messy.skipped)
    cd = write_phantom_study(tmp_path / "d", phantom=p, dicomdir=True, syntax="jpeg-ls")
    assert (cd / "DICOMDIR").is_file()
    series = _only_image_series(load_study(cd / "DICOMDIR"))
    np.testing.assert_array_equal(series.volume_hu(), np.rint(p.volume_hu))


def test_cli_writes_a_study_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main(["phantom", str(out), "--matrix", "64", "--slices", "4", "--thickness", "5",
                     "--subtypes", "epidural", "--seed", "2", "--syntax", "jpeg2000"]) == 0
    assert (out / "ground_truth" / "labels.csv").is_file()
    files = [f for f in (out / "dicom").rglob("*.dcm")]
    assert len(files) == 4
    assert cli_main(["phantom", str(out), "--matrix", "64", "--slices", "2"]) == 2  # not empty
    assert cli_main(["phantom", str(tmp_path / "x"), "--subtypes", "chronic"]) == 2
    assert cli_main(["phantom", str(tmp_path / "y"), "--syntax", "jpeg-xl"]) == 2
    err = capsys.readouterr().err
    assert "chronic" in err and "jpeg-xl" in err
    assert cli_main(["phantom", str(tmp_path / "n"), "--matrix", "32", "--slices", "2", "--subtypes", "none"]) == 0


def test_demo_study_is_generated_once_and_loads(isolated_settings):
    from ich_viewer.phantom.demo import demo_study_path

    first = demo_study_path()
    stamp = sorted(p.stat().st_mtime_ns for p in first.rglob("*.dcm"))
    assert demo_study_path() == first
    assert sorted(p.stat().st_mtime_ns for p in first.rglob("*.dcm")) == stamp
    series = _only_image_series(load_study(first))
    assert len(series) >= 20
    truth = np.load(first.parent / "ground_truth" / "masks.npz")
    assert truth["labels"][:, -1].any(), "the demo has hemorrhage to show"
