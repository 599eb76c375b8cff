"""What makes a study folder messy in real life: a localizer, junk files, a DICOMDIR.

These exist so the loader's tests meet the same clutter a PACS export or a CD holds.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

import numpy as np
from pydicom import dcmread
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from ich_viewer.phantom.syntaxes import get_syntax
from ich_viewer.phantom.writer import SYNTHETIC, StudyInfo, base_dataset, set_pixels


def write_localizer(
    volume_hu: np.ndarray,
    out_path: str | Path,
    *,
    spacing_mm: float,
    pixel_spacing: tuple[float, float],
    study: StudyInfo,
    series_number: int = 100,
) -> Path:
    """A lateral scout (ImageType ...LOCALIZER, sagittal orientation) made from the volume."""
    volume = np.asarray(volume_hu, np.float32)
    n, rows, cols = volume.shape
    # mean attenuation along patient x, rendered head up like a scanner's topogram
    attenuation = np.clip(volume + 1000.0, 0, None).mean(axis=2)  # (n, rows)
    scout = (attenuation[::-1] / max(float(attenuation.max()), 1.0) * 2000.0 - 1000.0).astype(np.float32)
    syntax = get_syntax("explicit")
    ds = base_dataset(study, syntax)
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"{SYNTHETIC} TOPOGRAM"
    ds.PatientPosition = "HFS"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.InstanceNumber = 1
    ds.AcquisitionNumber = 1
    ds.KVP = 120
    ds.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    ds.ImagePositionPatient = [0.0, round(-(rows - 1) * pixel_spacing[0] / 2, 4), round((n - 1) * spacing_mm, 4)]
    ds.PixelSpacing = [round(spacing_mm, 6), round(pixel_spacing[0], 6)]
    ds.SliceThickness = 1.0
    set_pixels(ds, scout, True, syntax)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out_path, enforce_file_format=True)
    return out_path


def write_junk_files(folder: str | Path) -> list[Path]:
    """Files a loader must skip with a reason, never crash on."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    junk = {
        "README.TXT": b"Exported by a synthetic PACS. Not patient data.\n",
        "empty.dcm": b"",
        "notes.dcm": b"this file only pretends to be DICOM\n" * 4,
        ".DS_Store": bytes(range(64)),
        "Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(120),
        "fake_preamble.dcm": bytes(128) + b"DICM" + b"\x02\x00\x10\x00garbage" * 3,
    }
    paths = []
    for name, content in junk.items():
        path = folder / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def write_truncated_copy(source: str | Path, out_path: str | Path, keep_fraction: float = 0.5) -> Path:
    """A DICOM file cut short in its pixel data, like an interrupted copy."""
    data = Path(source).read_bytes()
    out_path = Path(out_path)
    out_path.write_bytes(data[: max(200, int(len(data) * keep_fraction))])
    return out_path


def write_dicomdir(files: Iterable[str | Path], out_dir: str | Path) -> Path:
    """Copy ``files`` into a standard File-set (PT*/ST*/SE*/IM*) under ``out_dir`` with a DICOMDIR."""
    fileset = FileSet()
    fileset.ID = "PHANTOM"
    for path in files:
        fileset.add(dcmread(path))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fileset.write(out_dir)
    return out_dir / "DICOMDIR"


def move_into_fileset(series_dir: str | Path, out_dir: str | Path) -> Path:
    """Replace a folder of written files by a DICOMDIR file-set in ``out_dir``."""
    series_dir = Path(series_dir)
    files = [p for p in sorted(series_dir.rglob("*")) if p.is_file()]
    dicomdir = write_dicomdir(files, out_dir)
    shutil.rmtree(series_dir)
    return dicomdir
