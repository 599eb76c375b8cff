"""Small DICOM builders for the loader tests: special headers the phantom writer has no option for.

Whole series in every transfer syntax come from ``ich_viewer.phantom.writer``; this file
only builds single slices with unusual headers (wrapped 12-bit values, padding ranges,
MONOCHROME1, enhanced multi-frame, 8-bit JPEG baseline) and hashes folders.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, EnhancedCTImageStorage, ExplicitVRLittleEndian, generate_uid


def make_volume(n: int = 6, size: int = 32, seed: int = 0) -> np.ndarray:
    """Integer HU volume whose slices differ (slice i has a block of 100 + 10 i HU)."""
    rng = np.random.default_rng(seed)
    volume = rng.integers(-1000, 1500, size=(n, size, size)).astype(np.float32)
    for i in range(n):
        volume[i, :4, :4] = 100 + 10 * i
    return volume


def slice_marker(hu: np.ndarray) -> int:
    """Which slice of ``make_volume`` an HU image is (reads the marker block)."""
    return int(round((float(hu[0, 0]) - 100) / 10))


def ct_dataset(
    stored: np.ndarray,
    *,
    signed: bool = True,
    bits_stored: int | None = None,
    slope: float | None = 1.0,
    intercept: float | None = 0.0,
    position: tuple[float, float, float] | None = (0.0, 0.0, 0.0),
    orientation: tuple[float, ...] | None = (1, 0, 0, 0, 1, 0),
    series_uid: str | None = None,
    instance: int | None = 1,
    photometric: str = "MONOCHROME2",
    syntax: str = ExplicitVRLittleEndian,
    **extra: Any,
) -> Dataset:
    """A minimal single-frame CT image with exactly the header values a test needs."""
    stored = np.asarray(stored)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.900"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = "CT"
    ds.PatientName = "TEST^LOADER"
    ds.PatientID = "LOADER-1"
    ds.SeriesNumber = 1
    if instance is not None:
        ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = list(position)
    if orientation is not None:
        ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 5
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope = f"{slope:g}"
    if intercept is not None:
        ds.RescaleIntercept = f"{intercept:g}"
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.PixelData = stored.tobytes()
    return ds


def save(ds: Dataset, path: str | Path, **encoding: Any) -> Path:
    """Write ``ds`` as a DICOM file (``encoding``: e.g. implicit_vr/little_endian for unknown syntaxes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True, **encoding)
    return path


def enhanced_ct(frames_stored: np.ndarray, positions: list[tuple[float, float, float]], slopes: list[float],
                intercepts: list[float]) -> Dataset:
    """Enhanced CT multi-frame with per-frame positions and rescale (functional groups)."""
    frames_stored = np.asarray(frames_stored, dtype=np.int16)
    n, rows, cols = frames_stored.shape
    ds = ct_dataset(frames_stored[0], position=None, orientation=None)
    ds.file_meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    ds.SOPClassUID = EnhancedCTImageStorage
    del ds.RescaleSlope, ds.RescaleIntercept, ds.PixelSpacing, ds.SliceThickness
    ds.NumberOfFrames = n
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures = Dataset()
    measures.PixelSpacing = [0.7, 0.7]
    measures.SliceThickness = 2.5
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for k in range(n):
        item = Dataset()
        plane = Dataset()
        plane.ImagePositionPatient = list(positions[k])
        transform = Dataset()
        transform.RescaleSlope = f"{slopes[k]:g}"
        transform.RescaleIntercept = f"{intercepts[k]:g}"
        transform.RescaleType = "HU"
        item.PlanePositionSequence = Sequence([plane])
        item.PixelValueTransformationSequence = Sequence([transform])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = frames_stored.tobytes()
    return ds


def transcode_with_gdcm(source: Path, target: Path, syntax_name: str) -> Path:
    """Re-encode a file with python-gdcm (e.g. 'JPEGBaselineProcess1', which pydicom cannot write)."""
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(str(source))
    assert reader.Read(), f"gdcm cannot read {source}"
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, syntax_name)))
    change.SetInput(reader.GetImage())
    assert change.Change(), f"gdcm cannot encode {syntax_name}"
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(target))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write()
    return target


def tree_digest(root: str | Path) -> dict[str, str]:
    """Every file and folder below ``root`` with a hash of its content and its mtime."""
    digest: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            digest[os.path.relpath(os.path.join(folder, name), root) + "/"] = "dir"
        for name in files:
            full = os.path.join(folder, name)
            stat = os.stat(full)
            content = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            digest[os.path.relpath(full, root)] = f"{content}:{stat.st_size}:{stat.st_mtime_ns}"
    return digest


def read_header(path: str | Path) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)
