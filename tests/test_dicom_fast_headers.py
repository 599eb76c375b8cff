"""The fast header pass gives exactly what the pydicom path gives, or steps aside.

Every file is read twice, ``read_image_file(fast=False)`` (pydicom) and ``read_image_file``
(fast pass first): the outcomes must be equal in every field (or the same refusal with
the same reason), and the fast pass must have read the plain files itself.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_files

from dicom_helpers import ct_dataset, enhanced_ct, make_volume, save
from ich_viewer.demo import demo_study_path
from ich_viewer.dicom.headers import ImageFile, NotAnImage, read_fast, read_image_file
from ich_viewer.dicom.sources import FileRef, discover
from ich_viewer.phantom.syntaxes import SYNTAXES, encoder_available
from ich_viewer.phantom.writer import write_series
from test_dicom_fuzz import SEEDS, mutate, mutation


def _comparable(image: ImageFile) -> dict:
    """Every field of the image file and its slice headers, but the pydicom data set itself."""
    fields = dataclasses.asdict(dataclasses.replace(
        image, headers=[dataclasses.replace(h, dataset=None, reread=None) for h in image.headers]))
    return fields


def _outcome(ref: FileRef, fast: bool) -> dict | str:
    try:
        return _comparable(read_image_file(ref, fast=fast))
    except NotAnImage as exc:
        return f"NotAnImage: {exc}"
    except Exception as exc:  # a crash must be the same crash on both paths
        return f"{type(exc).__name__}: {exc}"


def assert_same(ref: FileRef) -> bool:
    """Both paths agree on ``ref``; returns whether the fast pass read it itself."""
    slow = _outcome(ref, fast=False)
    assert _outcome(ref, fast=True) == slow, ref.display
    fast = read_fast(ref, ref.size())
    if isinstance(slow, str):
        assert fast is None, f"{ref.display}: the fast pass accepted a file pydicom refuses ({slow})"
        return False
    if fast is not None:
        assert _comparable(fast) == slow
        assert all(h.dataset is None and h.full_dataset() is not None for h in fast.headers)
    return fast is not None


def test_demo_study_is_read_by_the_fast_pass_with_identical_fields():
    refs = discover(demo_study_path("ct-ich")).files
    assert refs
    assert all(assert_same(ref) for ref in refs)


@pytest.mark.parametrize("syntax", [name for name in SYNTAXES if encoder_available(name)])
def test_phantom_writer_syntaxes_agree(tmp_path, syntax):
    volume = make_volume(2, size=40)
    signed = syntax not in ("implicit", "jpeg-ls")
    paths = write_series(volume, tmp_path, spacing_mm=1.25, pixel_spacing=(0.7, 0.7), syntax=syntax,
                         tilt_deg=12.0, padding_value=-2000 if signed else None, signed=signed, window=None)
    used = [assert_same(FileRef(str(path))) for path in paths]
    if syntax not in ("big", "deflated"):
        assert all(used), f"{syntax}: plain files must not fall back to pydicom"
    else:
        assert not any(used)


def _odd_datasets() -> dict[str, object]:
    stored = np.arange(16 * 16, dtype=np.int16).reshape(16, 16)
    unsigned = stored.astype(np.uint16)
    return {
        "plain": ct_dataset(stored),
        "no geometry": ct_dataset(stored, position=None, orientation=None, instance=None),
        "no rescale": ct_dataset(stored, slope=None, intercept=None),
        "rsna wrap": ct_dataset(unsigned, signed=False, bits_stored=12, intercept=-10.0),
        "monochrome1": ct_dataset(stored, photometric="MONOCHROME1"),
        "bad rescale": ct_dataset(stored, slope=0.0),
        "windows": ct_dataset(stored, WindowCenter=["40", "400"], WindowWidth=["80", "2000"]),
        "utf-8 names": ct_dataset(stored, SpecificCharacterSet="ISO_IR 192", SeriesDescription="Schädel nativ",
                                  PatientID="Zoë-1"),
        "latin-1 names": ct_dataset(stored, SpecificCharacterSet="ISO_IR 100", SeriesDescription="Crâne"),
        "multi-valued text": ct_dataset(stored, SeriesDescription="A\\B", PatientID=" padded \x00"),
        "odd spacing": ct_dataset(stored, PixelSpacing=["0", "0.5"], ImagerPixelSpacing=["0.4", "0.4"]),
        "padding range": ct_dataset(stored, PixelPaddingValue=-2000, PixelPaddingRangeLimit=-1024),
        "colour": ct_dataset(stored, SamplesPerPixel=3),
        "no rows": ct_dataset(stored, Rows=0),
        "private sequence": _with_private_sequence(ct_dataset(stored)),
        "undefined-length sequences": _with_private_sequence(ct_dataset(stored), undefined=True),
        "enhanced multi-frame": enhanced_ct(np.stack([stored, stored]), [(0, 0, 0), (0, 0, 2)], [1, 1], [0, -5]),
    }


def _with_private_sequence(ds, undefined: bool = False):
    """Sequences as scanners write them: private and standard, nested, with empty items;
    ``undefined``: every sequence and item of undefined length (what pydicom parses as it reads)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    deepest = Dataset()
    deepest.ReferencedSOPInstanceUID = "1.2.3.4"
    inner = Dataset()
    inner.add_new(0x00091010, "LO", "inner")
    inner.ReferencedSOPSequence = Sequence([deepest, Dataset()])
    ds.add_new(0x00090010, "LO", "ICH TEST")
    ds.add_new(0x00091001, "SQ", Sequence([inner, Dataset()]))
    ds.ReferencedImageSequence = Sequence([Dataset()])
    if undefined:
        for element in (ds[0x00091001], ds["ReferencedImageSequence"], inner["ReferencedSOPSequence"]):
            element.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
    return ds


@pytest.mark.parametrize("name", list(_odd_datasets()))
@pytest.mark.parametrize("implicit", [False, True])
def test_odd_headers_agree(tmp_path, name, implicit):
    ds = _odd_datasets()[name]
    if implicit:
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2"
    path = save(ds, tmp_path / "x.dcm")
    used = assert_same(FileRef(str(path)))
    if name in ("plain", "utf-8 names", "private sequence", "undefined-length sequences", "windows"):
        assert used, "a plain file must not fall back to pydicom"


def test_pydicom_test_files_agree():
    """pydicom's own test files: every transfer syntax, odd encodings, broken files."""
    used = [assert_same(FileRef(path)) for path in sorted(get_testdata_files()) if not path.endswith(".gz")]
    assert sum(used) >= 20


def test_damaged_and_not_dicom_files_agree(tmp_path):
    plain = save(ct_dataset(np.zeros((16, 16), np.int16)), tmp_path / "plain.dcm").read_bytes()
    cases = {
        "empty": b"",
        "text": b"hello, not a DICOM file\n" * 20,
        "zeros after DICM": plain[:132] + bytes(4096),
        "header cut": plain[:300],
        "pixels cut": plain[:-100],
        "no preamble": plain[128 + 4:],
        "junk in the data set": plain[:400] + bytes(range(256)) * 8,
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert_same(FileRef(str(path)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(range(len(SEEDS))), mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_files_agree(seed, mutations):
    """Fuzzed files: whatever the pydicom path makes of them, the fast pass makes the same."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutant.dcm"
        path.write_bytes(mutate(SEEDS[seed], mutations))
        assert_same(FileRef(str(path)))


@pytest.mark.parametrize("charset", [None, "ISO_IR 100", "ISO_IR 192", "\\ISO 2022 IR 87", "GB18030"])
def test_names_parsed_from_raw_bytes_equal_pydicoms_values(tmp_path, charset):
    """``_get``'s shortcut for LO/SH text gives exactly pydicom's value (what both paths rely on)."""
    import pydicom

    from ich_viewer.dicom.headers import _get

    for k, text in enumerate(["HEAD ", "Head\x00", " lead", "A\\B", "Schädel", "", "x" * 63, "tab\tin"]):
        extra = {"SpecificCharacterSet": charset} if charset else {}
        ds = ct_dataset(np.zeros((4, 4), np.int16), SeriesDescription=text, PatientID=text[:16], **extra)
        path = save(ds, tmp_path / f"{k}.dcm")
        raw = pydicom.dcmread(path, stop_before_pixels=True)  # values still raw bytes
        converted = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in ("SeriesDescription", "PatientID"):
            assert _get(raw, keyword) == converted.get(keyword), (charset, text, keyword)


def test_zip_members_are_read_by_the_fast_pass_with_identical_fields(tmp_path):
    import zipfile

    files = discover(demo_study_path("ct-ich")).files[:4]
    with zipfile.ZipFile(tmp_path / "study.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for ref in files:
            archive.write(ref.path, Path(ref.path).name)
    refs = discover(tmp_path / "study.zip").files
    assert len(refs) == 4 and all(ref.member for ref in refs)
    assert all(assert_same(ref) for ref in refs)
