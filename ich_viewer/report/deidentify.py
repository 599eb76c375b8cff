"""De-identification of the DICOM objects we export: PS3.15 Annex E, Basic Application
Confidentiality Profile with the Retain UIDs Option.

No maintained library applies the profile to objects we build ourselves (pydicom's
``remove_private_tags``/``walk`` are building blocks, highdicom copies patient and study
attributes into every object), so the profile's actions for the attributes that can
reach our SR, KOS and key images are listed here, as in PS3.15 Table E.1-1:

- ``Z``: keep the attribute, empty (type 2 attributes the object must still hold);
- ``X``: remove it;
- UIDs are kept (Retain UIDs Option, column "K"), so the SR, the KOS and the key images
  still reference the study's images in the PACS; the export dialog says so.

Private attributes are removed. Free text we generate ourselves (series descriptions,
key-image captions) holds no identity and is put back by the caller; reader notes are
clinical content and stay as the reader wrote them (the export dialog says so).
"""
from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

ZERO: frozenset[str] = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "AccessionNumber", "ReferringPhysicianName", "StudyID",
    "ContentCreatorName", "VerifyingObserverName", "VerifyingObserverIdentificationCodeSequence",
    "PersonName",
})
"""Table E.1-1 action Z (or Z/D, where we choose Z) for attributes our objects hold."""

DUMMY: dict[str, str] = {"ContentDate": "19000101", "ContentTime": "000000", "DeviceSerialNumber": "none"}
"""Action Z/D (X/Z/D) where the object needs a value (type 1 in the SR and KOS; the serial number in
the SEG's Enhanced General Equipment): a dummy."""

REMOVE: frozenset[str] = frozenset({
    "PatientAge", "PatientSize", "PatientWeight", "PatientAddress", "OtherPatientIDs",
    "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
    "PatientBirthTime", "PatientTelephoneNumbers", "EthnicGroup", "Occupation", "MilitaryRank",
    "BranchOfService", "CountryOfResidence", "RegionOfResidence", "PatientReligiousPreference",
    "MedicalAlerts", "Allergies", "AdditionalPatientHistory", "PatientComments", "MedicalRecordLocator",
    "PatientInsurancePlanCodeSequence", "ResponsiblePerson", "ResponsibleOrganization",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "InstitutionCodeSequence",
    "StationName", "OperatorsName", "OperatorIdentificationSequence", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "RequestingPhysician",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "StudyDescription", "SeriesDescription", "ProtocolName", "ImageComments",
    "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime",
    "InstanceCreationDate", "InstanceCreationTime", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime", "PerformedProcedureStepDescription", "PerformedProcedureStepID",
    "RequestAttributesSequence", "ReferencedPatientSequence", "ReferencedStudySequence",
    "AdmittingDiagnosesDescription", "IssuerOfPatientID",
    "CurrentPatientLocation", "PatientState", "ScheduledProcedureStepDescription",
    "RequestedProcedureDescription", "ReasonForStudy", "TimezoneOffsetFromUTC",
})
"""Table E.1-1 action X (or X/Z, X/D where we choose X)."""

METHOD = ["DICOM PS3.15 E.1 Basic Application Confidentiality Profile", "Retain UIDs Option", "ICH Viewer"]
"""Several values: DeidentificationMethod is LO (64 characters each), one long text broke the limit."""
_CODES = (("113100", "Basic Application Confidentiality Profile"), ("113110", "Retain UIDs Option"))


def deidentify_dataset(ds: Dataset) -> Dataset:
    """Apply the profile to ``ds`` in place (nested sequences included) and mark it; returns ds."""
    _clean(ds)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    codes = []
    for value, meaning in _CODES:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    return ds


def _clean(ds: Dataset) -> None:
    ds.remove_private_tags()
    for element in list(ds):
        keyword = element.keyword
        if keyword in REMOVE:
            del ds[element.tag]
        elif keyword in DUMMY:
            element.value = DUMMY[keyword]
        elif keyword in ZERO:
            element.value = Sequence() if element.VR == "SQ" else None
        elif element.VR == "SQ":
            for item in element.value:
                _clean(item)
        elif element.VR == "PN":  # any other person name (observers, authors): emptied
            element.value = None
