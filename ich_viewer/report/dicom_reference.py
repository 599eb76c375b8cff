"""What every DICOM object the app writes shares: its maker, its research marking and the
headers of the images it references (the SR, key images, KOS and SEG all point back at the CT)."""
from __future__ import annotations

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from ich_viewer import __version__
from ich_viewer.dicom.model import Series, SliceHeader, Study
from ich_viewer.report.atomic import ExportError

MANUFACTURER = "ICH Viewer (research software)"
SCHEME = "99ICHV"
"""Private coding scheme designator for the app's own concepts (subtypes, probabilities, review)."""
CODING_SCHEME = hd.coding_schemes.CodingSchemeIdentificationItem(
    designator=SCHEME, name="ICH Viewer local codes", responsible_organization="ICH Viewer project",
)


def common_attributes(series_description: str) -> dict:
    """Marks every object as research content made by this software (PS3.3 Content Qualification)."""
    return {
        "series_description": series_description,
        "software_versions": __version__,
        "manufacturer_model_name": "ICH Viewer",
        "content_qualification": "RESEARCH",
        "coding_schemes": [CODING_SCHEME],
    }


def reference_dataset(study: Study, series: Series, header: SliceHeader) -> Dataset:
    """The header of a referenced image with the patient/study attributes highdicom copies.

    Uses the loader's header when there is one; an in-memory series gets a minimal header
    built from the study (same UIDs, so references still resolve).
    """
    dataset = header.full_dataset()
    source = dataset if isinstance(dataset, Dataset) else Dataset()
    ds = Dataset()
    ds.SOPClassUID = source.get("SOPClassUID", CTImageStorage)
    ds.SOPInstanceUID = header.sop_instance_uid
    ds.StudyInstanceUID = source.get("StudyInstanceUID", study.study_uid or series.study_uid)
    ds.SeriesInstanceUID = source.get("SeriesInstanceUID", series.series_uid)
    ds.Modality = source.get("Modality", series.modality or "CT")
    ds.PatientName = source.get("PatientName", study.patient_name)
    ds.PatientID = source.get("PatientID", study.patient_id)
    ds.PatientBirthDate = source.get("PatientBirthDate", "")
    ds.PatientSex = source.get("PatientSex", study.patient_sex)
    ds.StudyDate = source.get("StudyDate", study.study_date)
    ds.StudyTime = source.get("StudyTime", "")
    ds.StudyID = source.get("StudyID", "")
    ds.AccessionNumber = source.get("AccessionNumber", study.accession_number)
    ds.ReferringPhysicianName = source.get("ReferringPhysicianName", "")
    ds.BodyPartExamined = source.get("BodyPartExamined") or "HEAD"  # the viewer reads head CT
    if not ds.StudyInstanceUID:
        raise ExportError("the study has no Study Instance UID, so DICOM objects cannot be attached to it")
    if header.frame is not None:
        ds.NumberOfFrames = max(header.frame + 1, int(source.get("NumberOfFrames", 1)))
    return ds
