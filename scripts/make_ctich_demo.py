"""Build the bundled demo study from one CT-ICH patient: resources/demo/ct-ich-071/.

    .venv/bin/python scripts/make_ctich_demo.py --ct-ich ../shared/data/ct-ich

Reads the patient's brain (40/120) and bone (700/3200) JPEG windows, rebuilds HU with
the trainer's own rule (``trainer.data.ctich.rebuild_hu``, so the demo holds exactly what
the classifier was trained on), and writes one axial CT series in signed 16-bit HU with
JPEG-LS lossless compression. Bone-window grey 0 (all that is known there is "-900 HU or
less") is stored as -1000 HU, the value of air, so the cursor reads air as air. UIDs are
derived from fixed text, so running the script again writes the same study.

Written beside the DICOM files: manifest.json (UIDs, the data set's per-slice labels,
sha256 of every source JPEG, so the tests can check the demo against its source) and
README.md (credit, licence, what was changed). Run once; the output is committed.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEGLSLossless, PYDICOM_IMPLEMENTATION_UID, generate_uid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ich_viewer import LABELS, __version__  # noqa: E402
from ich_viewer import demo  # noqa: E402
from trainer.data.ctich import CSV_COLUMNS, _read_grey, rebuild_hu  # noqa: E402

PIXEL_SPACING_MM = 0.32
"""Assumed: the data set gives none (its README: ~0.32 mm per JPEG pixel is a fair value)."""
SLICE_MM = 5.0
"""The data set's slices are about 5 mm thick and contiguous."""
AIR_HU = -1000
MAX_BYTES = 5 * 2**20


def uid(*parts: str) -> str:
    """A UID that depends only on ``parts`` (re-running the script gives the same study)."""
    return generate_uid(entropy_srcs=["ich-viewer demo", demo.CT_ICH_FOLDER, *parts])


def slice_hu(folder: Path, number: int) -> np.ndarray:
    brain = _read_grey(folder / "brain" / f"{number}.jpg")
    bone = _read_grey(folder / "bone" / f"{number}.jpg")
    hu = rebuild_hu(brain, bone)
    hu[(bone == 0) & (hu < -800)] = AIR_HU
    return np.rint(hu).astype(np.int16)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_labels(csv_path: Path, patient: int) -> dict[int, dict[str, int]]:
    rows: dict[int, dict[str, int]] = {}
    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if int(row["PatientNumber"]) == patient:
                labels = {name: int(float(row[column])) for name, column in CSV_COLUMNS.items()}
                labels["any"] = 1 - int(float(row["No_Hemorrhage"]))
                rows[int(row["SliceNumber"])] = labels
    return rows


def dataset(number: int, index: int, n: int, pixels: np.ndarray, labels: dict[str, int]) -> Dataset:
    study_uid, series_uid = uid("study"), uid("series")
    sop_uid = uid("image", str(number))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"ICHVIEWER_{__version__}"[:16]
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "CT"
    ds.Manufacturer = ""
    ds.InstitutionName = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDate = ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.StudyDescription = demo.STUDY_DESCRIPTION
    ds.SeriesDescription = "Axial 5 mm, HU rebuilt from JPEG windows"
    ds.DerivationDescription = "HU rebuilt from the brain (40/120) and bone (700/3200) JPEG windows of CT-ICH v1.0.0"
    ds.PatientName = f"CT-ICH^{demo.CT_ICH_PATIENT}"
    ds.PatientID = f"CT-ICH-{demo.CT_ICH_PATIENT}"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Public de-identified data set (PhysioNet CT-ICH v1.0.0)"
    ds.BodyPartExamined = "HEAD"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    # Type 2 attributes the data set does not give (the CT Image module's tube voltage and
    # acquisition, the General Series' patient position): present and empty, as the
    # standard asks of an unknown value (dciodvfy checks it)
    ds.KVP = None
    ds.AcquisitionNumber = None
    ds.PatientPosition = None
    ds.FrameOfReferenceUID = uid("frame")
    ds.PositionReferenceIndicator = ""
    # Slice 1 of the data set is the lowest (skull base): z grows with the slice number.
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    rows, cols = pixels.shape
    ds.ImagePositionPatient = [-(cols - 1) * PIXEL_SPACING_MM / 2, -(rows - 1) * PIXEL_SPACING_MM / 2,
                               round(index * SLICE_MM, 2)]
    ds.SliceLocation = round(index * SLICE_MM, 2)
    ds.SliceThickness = SLICE_MM
    ds.PixelSpacing = [PIXEL_SPACING_MM, PIXEL_SPACING_MM]
    ds.WindowCenter, ds.WindowWidth = 40, 80
    ds.WindowCenterWidthExplanation = "BRAIN"
    ds.LossyImageCompression = "01"  # the source JPEGs were lossy; this file itself is lossless
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    flagged = ", ".join(label for label in LABELS[:-1] if labels.get(label)) or "none"
    ds.ImageComments = (f"CT-ICH patient {demo.CT_ICH_PATIENT} slice {number}; data set label: {flagged}. "
                        f"{demo.TRAINING_NOTE} {demo.credit_text(' ')}")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
    ds.PixelData = pixels.astype("<i2").tobytes()
    ds.compress(JPEGLSLossless, generate_instance_uid=False)
    return ds


README = """# Demo study: CT-ICH patient {patient}

A real non-contrast head CT, bundled as ICH Viewer's built-in demo (`ich-viewer --demo`):
{n} axial slices of 5 mm, {rows} x {cols} pixels, DICOM CT in Hounsfield units
(signed 16 bit, JPEG-LS lossless). The data set's readers labelled {summary}.

**This patient was part of the classifier's training data.** What the classifier flags
on this study shows how the program works, not how accurate it is; accuracy on patients
the network never saw is in `models/MODEL_CARD.md`.

## Source, licence and credit

Patient {patient} of "{dataset}", used under the {licence}
({licence_url}). Credit:

{references}

## What was changed

- HU rebuilt from the brain window (level 40, width 120) where it is open and the bone
  window (700/3200) agrees, else from the bone window - the same rule the trainer uses
  (`trainer/data/ctich.py`). Bone-window grey 0 ("-900 HU or less") is stored as -1000
  HU (air). Values rounded to whole HU. The source JPEGs were lossy (DICOM
  LossyImageCompression = 01); the DICOM files themselves are compressed losslessly.
- **Assumed, not in the data:** pixel spacing {spacing} mm (the data set gives none; one
  patient's published NIfTI header suggests about this), slice spacing 5 mm, standard
  axial orientation as the JPEGs are displayed (patient's left on the image's right),
  slice 1 the lowest.
- Patient name, ID and all UIDs are made up; no dates. `manifest.json` lists the sha256
  of every source JPEG and the data set's labels per slice.

Made by `scripts/make_ctich_demo.py`.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct-ich", type=Path, default=ROOT.parent / "shared" / "data" / "ct-ich")
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "demo" / demo.CT_ICH_FOLDER)
    args = parser.parse_args(argv)
    patient = int(demo.CT_ICH_PATIENT)
    source = args.ct_ich / "Patients_CT" / demo.CT_ICH_PATIENT
    labels = read_labels(args.ct_ich / "hemorrhage_diagnosis.csv", patient)
    numbers = sorted(labels)
    missing = [n for n in numbers if not (source / "brain" / f"{n}.jpg").is_file()
               or not (source / "bone" / f"{n}.jpg").is_file()]
    if missing:
        raise SystemExit(f"slices {missing} lack a brain or bone JPEG under {source}")
    tmp = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "dicom").mkdir(parents=True)
    sources = []
    rows = cols = 0
    for index, number in enumerate(numbers):
        pixels = slice_hu(source, number)
        rows, cols = pixels.shape
        dataset(number, index, len(numbers), pixels, labels[number]).save_as(
            tmp / "dicom" / f"IM{number:04d}.dcm", enforce_file_format=True)
        sources.append({"slice": number, "file": f"dicom/IM{number:04d}.dcm",
                        "brain": f"Patients_CT/{demo.CT_ICH_PATIENT}/brain/{number}.jpg",
                        "brain_sha256": sha256(source / "brain" / f"{number}.jpg"),
                        "bone": f"Patients_CT/{demo.CT_ICH_PATIENT}/bone/{number}.jpg",
                        "bone_sha256": sha256(source / "bone" / f"{number}.jpg"),
                        "labels": [label for label in LABELS if labels[number][label]]})
    by_label = {label: [n for n in numbers if labels[n][label]] for label in LABELS[:-1]}
    manifest = {
        "dataset": demo.DATASET_NAME, "licence": demo.LICENCE, "patient": demo.CT_ICH_PATIENT,
        "study_uid": uid("study"), "series_uid": uid("series"), "n_slices": len(numbers),
        "rows": rows, "columns": cols, "pixel_spacing_mm_assumed": PIXEL_SPACING_MM, "slice_mm": SLICE_MM,
        "air_hu": AIR_HU, "labels": {k: v for k, v in by_label.items() if v}, "slices": sources,
    }
    (tmp / demo.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    info = demo.DemoInfo(tmp, manifest["study_uid"], manifest["series_uid"], len(numbers), manifest["labels"])
    (tmp / "README.md").write_text(README.format(
        patient=demo.CT_ICH_PATIENT, n=len(numbers), rows=rows, cols=cols, summary=demo.label_summary(info),
        dataset=demo.DATASET_NAME, licence=demo.LICENCE, licence_url=demo.LICENCE_URL, spacing=PIXEL_SPACING_MM,
        references="\n".join(f"- {ref}" for ref in demo.CREDIT_REFERENCES)), encoding="utf-8")
    size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    if size > MAX_BYTES:
        raise SystemExit(f"the demo is {size / 2**20:.2f} MiB, over the {MAX_BYTES / 2**20:.0f} MiB budget")
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    print(f"{args.out}: {len(numbers)} slices, {size / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
