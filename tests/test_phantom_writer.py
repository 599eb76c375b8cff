"""The phantom DICOM writer: every syntax readable with HU exact, geometry and clutter."""
from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest

from ich_viewer.phantom.syntaxes import SYNTAXES, available_syntaxes
from ich_viewer.phantom.writer import StudyInfo, write_series
from ich_viewer.phantom.extras import move_into_fileset, write_junk_files, write_localizer


def _volume(n=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    vol = rng.uniform(-1000, 1800, (n, size, size)).astype(np.float32)
    vol[:, :4, :4] = -1024.0
    vol[:, -4:, -4:] = 3071.0
    return vol


def _hu(ds):
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


LOSSLESS = available_syntaxes(lossless_only=True)


def test_all_lossless_syntaxes_have_encoders_here():
    # the loader's tests rely on these; a missing encoder must be noticed, not skipped
    assert set(LOSSLESS) >= {"implicit", "explicit", "big", "deflated", "rle", "jpeg-ls", "jpeg2000", "jpeg-lossless"}


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("syntax", LOSSLESS)
def test_round_trip_hu_exact(tmp_path, syntax, signed):
    vol = _volume()
    paths = write_series(vol, tmp_path, spacing_mm=2.5, pixel_spacing=(0.45, 0.5), syntax=syntax, signed=signed)
    assert len(paths) == 3
    for i, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == SYNTAXES[syntax].uid
        assert ds.PixelRepresentation == (1 if signed else 0)
        if not signed:
            assert float(ds.RescaleIntercept) == -1024 and ds.BitsStored == 12
        np.testing.assert_array_equal(_hu(ds), np.rint(vol[i]))


@pytest.mark.parametrize("syntax", [n for n, s in SYNTAXES.items() if not s.lossless and n in available_syntaxes()])
def test_lossy_syntaxes_are_readable_and_close(tmp_path, syntax):
    yy, xx = np.mgrid[:32, :32]
    vol = np.stack([40 + 10 * np.sin(xx / 5.0) + 5 * np.cos(yy / 7.0)] * 2).astype(np.float32)
    (path, _) = write_series(vol, tmp_path, spacing_mm=5, pixel_spacing=(0.5, 0.5), syntax=syntax)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == SYNTAXES[syntax].uid
    assert np.abs(_hu(ds) - np.rint(vol[0])).mean() < 5


def test_modules_and_synthetic_markers(tmp_path):
    study = StudyInfo.for_seed(3)
    paths = write_series(_volume(2), tmp_path, spacing_mm=5, pixel_spacing=(0.5, 0.5), study=study,
                         description="axial", window=(40, 80), series_number=4)
    a, b = (pydicom.dcmread(p) for p in paths)
    assert a.SOPClassUID == pydicom.uid.CTImageStorage == a.file_meta.MediaStorageSOPClassUID
    assert a.SOPInstanceUID != b.SOPInstanceUID and a.SOPInstanceUID == a.file_meta.MediaStorageSOPInstanceUID
    assert a.SeriesInstanceUID == b.SeriesInstanceUID and a.StudyInstanceUID == study.study_uid
    assert "SYNTHETIC PHANTOM" in str(a.PatientName) and "SYNTHETIC PHANTOM" in a.SeriesDescription
    assert a.Modality == "CT" and a.SeriesNumber == 4 and [a.InstanceNumber, b.InstanceNumber] == [1, 2]
    assert float(a.WindowCenter) == 40 and float(a.WindowWidth) == 80
    assert float(a.SliceThickness) == 5 and [float(v) for v in a.PixelSpacing] == [0.5, 0.5]
    # fresh UIDs each time a series is written
    again = pydicom.dcmread(write_series(_volume(1), tmp_path / "x", spacing_mm=5, pixel_spacing=(0.5, 0.5))[0])
    assert again.SeriesInstanceUID != a.SeriesInstanceUID and again.StudyInstanceUID != a.StudyInstanceUID


@pytest.mark.parametrize("tilt", [0.0, 15.0, -20.0])
def test_geometry_positions_and_tilt(tmp_path, tilt):
    rows = cols = 32
    paths = write_series(_volume(4), tmp_path, spacing_mm=3.0, pixel_spacing=(0.5, 0.5), tilt_deg=tilt)
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    iop = np.array(dss[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    pos = np.array([[float(v) for v in d.ImagePositionPatient] for d in dss])
    along = pos @ normal
    np.testing.assert_allclose(np.diff(along), 3.0 * math.cos(math.radians(tilt)), atol=1e-3)
    np.testing.assert_allclose(np.diff(pos[:, 2]), 3.0, atol=1e-3)  # the table moves along z
    assert float(dss[0].GantryDetectorTilt) == pytest.approx(tilt)
    # the image centre lies on the z axis
    centre = pos[0] + iop[:3] * (cols - 1) / 2 * 0.5 + iop[3:] * (rows - 1) / 2 * 0.5
    np.testing.assert_allclose(centre, [0, 0, 0], atol=1e-3)


def test_file_names_nesting_and_drop(tmp_path):
    ordered = write_series(_volume(5), tmp_path / "o", spacing_mm=5, pixel_spacing=(1, 1), drop_slices=[2])
    assert [p.name for p in ordered] == ["CT0001.dcm", "CT0002.dcm", "CT0004.dcm", "CT0005.dcm"]
    assert [pydicom.dcmread(p).InstanceNumber for p in ordered] == [1, 2, 4, 5]
    bare = write_series(_volume(5), tmp_path / "n", spacing_mm=5, pixel_spacing=(1, 1), file_names="no-extension", nested=True)
    assert all(p.suffix == "" for p in bare)
    assert len({p.parent for p in bare}) > 1 and all(p.parent != tmp_path / "n" for p in bare)
    rand = write_series(_volume(5), tmp_path / "r", spacing_mm=5, pixel_spacing=(1, 1), file_names="random")
    assert len({p.name for p in rand}) == 5
    assert all(p.suffix == ".dcm" and len(p.stem) == 16 and int(p.stem, 16) >= 0 for p in rand)
    with pytest.raises(ValueError):
        write_series(_volume(1), tmp_path / "bad", spacing_mm=5, pixel_spacing=(1, 1), syntax="jpeg-xl-nonsense")


def test_padding_value_marks_outside_field(tmp_path):
    vol = np.zeros((1, 32, 32), np.float32)
    (path,) = write_series(vol, tmp_path, spacing_mm=5, pixel_spacing=(1, 1), padding_value=-2000)
    ds = pydicom.dcmread(path)
    assert ds.PixelPaddingValue == -2000
    assert ds.pixel_array[0, 0] == -2000 and ds.pixel_array[16, 16] == 0


def test_localizer_junk_and_dicomdir(tmp_path):
    study = StudyInfo()
    vol = _volume(4)
    scout = pydicom.dcmread(write_localizer(vol, tmp_path / "s.dcm", spacing_mm=5, pixel_spacing=(1, 1), study=study))
    assert "LOCALIZER" in scout.ImageType and scout.StudyInstanceUID == study.study_uid
    junk = write_junk_files(tmp_path / "junk")
    for path in junk:
        with pytest.raises(Exception):
            pydicom.dcmread(path).pixel_array
    write_series(vol, tmp_path / "series", spacing_mm=5, pixel_spacing=(1, 1), syntax="rle", study=study)
    dicomdir = move_into_fileset(tmp_path / "series", tmp_path / "cd")
    fileset = pydicom.fileset.FileSet(dicomdir)
    instances = fileset.find(load=True)
    assert len(instances) == 4
    hus = sorted((int(inst.InstanceNumber), _hu(inst.load())) for inst in instances)
    for (number, hu), expected in zip(hus, vol):
        np.testing.assert_array_equal(hu, np.rint(expected))
    assert not (tmp_path / "series").exists()
