"""Pixels to HU: every transfer syntax against the uncompressed original, and the HU rules."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from dicom_helpers import ct_dataset, enhanced_ct, make_volume, save, transcode_with_gdcm
from ich_viewer.dicom.loader import load_study
from ich_viewer.dicom.model import PixelDecodeError
from ich_viewer.dicom.pixels import PixelSpec, stored_to_hu
from ich_viewer.phantom.syntaxes import SYNTAXES
from ich_viewer.phantom.writer import write_series

LOSSLESS = [name for name, s in SYNTAXES.items() if s.lossless]


def only_series(path):
    study = load_study(path)
    assert not study.skipped, study.skipped
    (series,) = study.series
    return series


@pytest.mark.parametrize("syntax", LOSSLESS)
@pytest.mark.parametrize("signed", [True, False])
def test_every_lossless_syntax_gives_the_original_hu(tmp_path, syntax, signed):
    volume = make_volume(3, size=48)
    write_series(volume, tmp_path, spacing_mm=2.0, pixel_spacing=(0.5, 0.5), syntax=syntax, signed=signed)
    series = only_series(tmp_path)
    assert series.slices[0].transfer_syntax_uid == SYNTAXES[syntax].uid
    np.testing.assert_array_equal(series.volume_hu(), np.rint(volume))


@pytest.mark.parametrize("syntax", [name for name, s in SYNTAXES.items() if not s.lossless])
def test_lossy_syntaxes_are_close(tmp_path, syntax):
    ramp = np.add.outer(np.arange(48), np.arange(48)).astype(np.float32) * 20 - 900
    volume = np.stack([ramp, ramp[::-1] + 50])  # smooth, like anatomy (noise would not compress)
    write_series(volume, tmp_path, spacing_mm=2.0, pixel_spacing=(0.5, 0.5), syntax=syntax)
    error = np.abs(only_series(tmp_path).volume_hu() - volume)
    assert error.mean() < 20 and error.max() < 200  # lossy, but the same image


def test_jpeg_baseline_8bit(tmp_path):
    image = (np.add.outer(np.arange(64), np.arange(64)) * 2).astype(np.uint8)
    plain = save(ct_dataset(image, signed=False, slope=4, intercept=-1024), tmp_path / "plain" / "x.dcm")
    transcode_with_gdcm(plain, tmp_path / "jpeg.dcm", "JPEGBaselineProcess1")
    assert pydicom.dcmread(tmp_path / "jpeg.dcm").file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    hu = only_series(tmp_path / "jpeg.dcm").hu(0)
    expected = image.astype(np.float32) * 4 - 1024
    assert np.abs(hu - expected).mean() < 8  # within ~2 stored steps on average


@pytest.mark.parametrize(
    "name",
    ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm",
     "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"],
)
def test_pydicom_reference_files_agree(name):
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array.astype(np.float32)
    series = only_series(get_testdata_file(name))
    np.testing.assert_array_equal(series.hu(0), reference)


def test_pydicom_ct_with_rescale():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(only_series(path).hu(0), expected.astype(np.float32))


@pytest.mark.parametrize(
    "uid, name", [("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile"), ("1.2.840.10008.1.2.4.110", "JPEG XL Lossless")]
)
def test_undecodable_syntax_names_it(tmp_path, uid, name):
    ds = ct_dataset(np.zeros((8, 8), np.int16))
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # known to pydicom, no decoder installed
    path = save(ds, tmp_path / "video.dcm")
    # JPEG XL is too new for pydicom to write: swap the UID in place (same length)
    path.write_bytes(path.read_bytes().replace(b"1.2.840.10008.1.2.4.100", uid.encode()))
    series = only_series(tmp_path)
    with pytest.raises(PixelDecodeError, match=f"{name}.*{uid.replace('.', '[.]')}"):
        series.hu(0)
    assert name in series.decode_error(0)
    with pytest.raises(PixelDecodeError):  # remembered: fails fast the second time
        series.hu(0)


def test_corrupt_compressed_slice_fails_alone(tmp_path):
    volume = make_volume(3, size=48)
    paths = write_series(volume, tmp_path, spacing_mm=2.0, pixel_spacing=(0.5, 0.5), syntax="jpeg-ls")
    data = bytearray(paths[1].read_bytes())
    start = data.index(b"\xff\xd8")  # JPEG-LS stream: keep its markers, scramble the scan
    data[start + 40:start + 400] = bytes(360)
    data[start + 2:start + 4] = b"\x00\x00"
    paths[1].write_bytes(bytes(data))
    series = only_series(tmp_path)
    np.testing.assert_array_equal(series.hu(0), volume[0])
    np.testing.assert_array_equal(series.hu(2), volume[2])
    with pytest.raises(PixelDecodeError, match="JPEG-LS Lossless"):
        series.hu(1)


# --- HU rules -----------------------------------------------------------------------------

def spec(**kw):
    base = dict(rows=2, columns=3, bits_allocated=16, bits_stored=16, signed=True)
    base.update(kw)
    return PixelSpec(**base)


def test_rescale_slope_and_intercept():
    stored = np.array([[0, 1, 2], [10, 20, 30]], np.int16)
    np.testing.assert_array_equal(stored_to_hu(stored, spec(slope=2, intercept=-1024)), stored * 2 - 1024)
    half = stored_to_hu(stored, spec(slope=0.5, intercept=-10.25))
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, stored * 0.5 - 10.25)


def test_unsigned_storage_and_unused_high_bits():
    stored = np.array([[0, 4095, 4096 + 7], [0xF000 | 100, 2048, 1]], np.uint16)  # overlay bits above 12
    hu = stored_to_hu(stored, spec(signed=False, bits_stored=12, intercept=-1024))
    np.testing.assert_array_equal(hu, np.array([[0, 4095, 7], [100, 2048, 1]]) - 1024)


def test_signed_12_bit_is_sign_extended():
    stored = np.array([[0x0FFF, 0x0800, 0x07FF], [1, 0, 0x0FFE]], np.uint16).view(np.int16)
    hu = stored_to_hu(stored, spec(bits_stored=12))
    np.testing.assert_array_equal(hu, [[-1, -2048, 2047], [1, 0, -2]])


def test_padding_value_becomes_air_signed_and_unsigned():
    stored = np.array([[-2000, 0, 40], [-2000, 1000, -1000]], np.int16)
    hu = stored_to_hu(stored, spec(padding=(-2000, -2000)))
    np.testing.assert_array_equal(hu, [[-1000, 0, 40], [-1000, 1000, -1000]])
    unsigned = np.array([[0, 1024, 1064]], np.uint16)
    hu = stored_to_hu(unsigned, spec(rows=1, signed=False, intercept=-1024, padding=(0, 0)))
    np.testing.assert_array_equal(hu, [[-1000, 0, 40]])


def test_padding_read_from_header_including_range_and_us_encoded_negative(tmp_path):
    image = np.array([[-2000, -1990, 50], [-1500, 30, -2005]], np.int16)
    # PixelPaddingValue written as US 63536 (= -2000 as int16), range limit -1990: both ends padding
    ds = ct_dataset(image, intercept=0)
    ds.add_new(0x00280120, "US", 63536)
    ds.add_new(0x00280121, "SS", -1990)
    save(ds, tmp_path / "p.dcm")
    hu = only_series(tmp_path).hu(0)
    np.testing.assert_array_equal(hu, [[-2005, -2005, 50], [-1500, 30, -2005]])  # padding = darkest real value


def test_rsna_12_bit_wrap_is_corrected(tmp_path):
    true_hu = np.array([[-1000, -1, 0, 40], [1000, 3000, -500, 2095]], np.int32)
    # how the affected RSNA files hold it: HU + 1000 wrapped into 12 bits, stored with intercept 0
    wrapped_stored = ((true_hu + 1000) % 4096 - 1000) % 4096
    ds = ct_dataset(wrapped_stored.astype(np.uint16), signed=False, bits_stored=12, intercept=0)
    save(ds, tmp_path / "rsna.dcm")
    series = only_series(tmp_path)
    np.testing.assert_array_equal(series.hu(0), true_hu)
    assert any("RSNA 2019 wrap" in w for w in series.warnings)


def test_12_bit_unsigned_with_normal_intercept_is_left_alone(tmp_path):
    stored = np.array([[0, 1024, 4095]], np.uint16)
    save(ct_dataset(stored, signed=False, bits_stored=12, intercept=-1024), tmp_path / "a.dcm")
    series = only_series(tmp_path)
    np.testing.assert_array_equal(series.hu(0), [[-1024, 0, 3071]])
    assert not series.warnings


def test_monochrome1_is_inverted(tmp_path):
    hu_expected = np.array([[-1000, 0, 40], [80, 1000, 3071]], np.int16)
    stored_m2 = (hu_expected + 1024).astype(np.uint16)
    stored_m1 = (4095 - stored_m2).astype(np.uint16)  # the same image written as MONOCHROME1
    save(ct_dataset(stored_m1, signed=False, bits_stored=12, intercept=-1024, photometric="MONOCHROME1"),
         tmp_path / "m1.dcm")
    series = only_series(tmp_path)
    np.testing.assert_array_equal(series.hu(0), hu_expected)
    assert any("MONOCHROME1" in w for w in series.warnings)


def test_enhanced_multiframe_uses_per_frame_positions_and_rescale(tmp_path):
    frames = np.stack([np.full((6, 6), 10 * k, np.int16) for k in range(4)])
    positions = [(0, 0, 9.0), (0, 0, 0.0), (0, 0, 6.0), (0, 0, 3.0)]
    save(enhanced_ct(frames, positions, slopes=[1, 1, 2, 1], intercepts=[-1000, 0, 5, 0]), tmp_path / "mf.dcm")
    series = only_series(tmp_path)
    assert [h.frame for h in series.slices] == [1, 3, 2, 0]
    assert series.positions_mm == pytest.approx([0, 3, 6, 9])
    assert series.pixel_spacing == (0.7, 0.7) and series.slices[0].slice_thickness == 2.5
    assert [float(series.hu(i)[0, 0]) for i in range(4)] == [10.0, 30.0, 45.0, -1000.0]


def test_legacy_multiframe_steps_along_the_normal(tmp_path):
    frames = np.stack([np.full((4, 4), k, np.int16) for k in range(3)])
    ds = ct_dataset(frames[0], position=(1.0, 2.0, 3.0), SpacingBetweenSlices=2.5, NumberOfFrames=3)
    ds.PixelData = frames.tobytes()
    save(ds, tmp_path / "mf.dcm")
    series = only_series(tmp_path)
    assert series.positions_mm == pytest.approx([3.0, 5.5, 8.0])
    assert [float(series.hu(i)[0, 0]) for i in range(3)] == [0.0, 1.0, 2.0]


def test_cache_holds_int16_and_hu_returns_float32(tmp_path):
    volume = make_volume(4, size=64)
    write_series(volume, tmp_path, spacing_mm=2.0, pixel_spacing=(0.5, 0.5))
    series = only_series(tmp_path)
    first = series.hu(0)
    assert first.dtype == np.float32
    series.volume_hu()
    assert series.cache_nbytes() == 4 * 64 * 64 * 2  # exactly the int16 volume
    first[:] = 0  # callers may scribble on what they get without touching the cache
    np.testing.assert_array_equal(series.hu(0), volume[0])


def test_non_integral_hu_stay_float32(tmp_path):
    save(ct_dataset(np.array([[1, 2], [3, 4]], np.int16), slope=0.25, intercept=0), tmp_path / "f.dcm")
    series = only_series(tmp_path)
    np.testing.assert_array_equal(series.hu(0), [[0.25, 0.5], [0.75, 1.0]])
    assert series.cache_nbytes() == 4 * 4


def test_big_endian_native_fast_path_matches_pydicom(tmp_path):
    volume = make_volume(2, size=16)
    paths = write_series(volume, tmp_path, spacing_mm=1.0, pixel_spacing=(1, 1), syntax="big")
    series = only_series(tmp_path)
    assert series.pixel_source.job(series.slices[0]).native is not None  # read straight from its offset
    for i, path in enumerate(sorted(paths)):
        ds = pydicom.dcmread(path)
        np.testing.assert_array_equal(series.hu(i), ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))


def test_file_changed_after_loading_gives_a_clear_error(tmp_path):
    """Pixels are read again on decode, so a file cut short meanwhile fails with a reason."""
    volume = make_volume(1, size=16)
    (path,) = write_series(volume, tmp_path, spacing_mm=1.0, pixel_spacing=(1, 1))
    series = only_series(tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PixelDecodeError, match="file ends inside the pixel data"):
        series.hu(0)
