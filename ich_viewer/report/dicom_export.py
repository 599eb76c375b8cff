"""DICOM exports that go back to the study: a TID 1500 measurement report (Comprehensive 3D
SR), a Segmentation of the reader's bleed outlines beside it (``report.seg_export``),
Secondary Capture key images and a Key Object Selection document.

Every object joins the analysed study (same Study Instance UID and patient) in a new
series, references the CT instances it is about, and is written to an export folder,
never into the study folder. Subtypes use a private coding scheme (99ICHV) because the
five RSNA categories have no single agreed code set; the finding type itself is the
SNOMED CT concept "Intracranial hemorrhage".
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import RLELossless, generate_uid

from ich_viewer import LABELS, RESEARCH_NOTICE
from ich_viewer.dicom.model import SliceHeader, Study
from ich_viewer.report.atomic import ExportError, atomic_write
from ich_viewer.report.deidentify import deidentify_dataset
from ich_viewer.report.dicom_reference import MANUFACTURER, SCHEME, common_attributes, reference_dataset
from ich_viewer.report.data import LABEL_ABBREVIATIONS, KeyImage, ReportContent, SeriesSection
from ich_viewer.report.key_images import KEY_WINDOWS, direction_letter
from ich_viewer.report.rows import SliceRow

SR_SERIES_NUMBER = 9901
KEY_IMAGE_SERIES_NUMBER = 9902
KOS_SERIES_NUMBER = 9903

PROCEDURE_CT_HEAD = hd.sr.CodedConcept("24725-4", "LN", "CT Head")
FINDING_ICH = hd.sr.CodedConcept("1386000", "SCT", "Intracranial hemorrhage")
SUBTYPE_CODES: dict[str, hd.sr.CodedConcept] = {
    label: hd.sr.CodedConcept(f"ICH-{LABEL_ABBREVIATIONS[label].upper()}", SCHEME, f"{label.capitalize()} hemorrhage")
    for label in LABELS[:-1]
}
PROBABILITY_CODES: dict[str, hd.sr.CodedConcept] = {
    label: hd.sr.CodedConcept(f"P-{LABEL_ABBREVIATIONS[label].upper()}", SCHEME,
                              f"Probability of {'any intracranial' if label == 'any' else label} hemorrhage")
    for label in LABELS
}
SUBTYPE_CONCEPT = hd.sr.CodedConcept("SUBTYPE", SCHEME, "Hemorrhage subtype over threshold")
REVIEW_CONCEPT = hd.sr.CodedConcept("REVIEW", SCHEME, "Reader review of flag")
REVIEW_VALUES: dict[str, hd.sr.CodedConcept] = {
    state: hd.sr.CodedConcept(state.upper(), SCHEME, state.capitalize()) for state in ("accepted", "rejected", "undecided")
}
NOTE_CONCEPT = hd.sr.CodedConcept("NOTE", SCHEME, "Reader note")
UNITLESS = hd.sr.CodedConcept("1", "UCUM", "no units")
@dataclass(frozen=True)
class DicomExport:
    sr: Path | None
    key_images: list[Path]
    kos: Path | None
    segs: list[Path] = field(default_factory=list)
    """One SEG per series with bleed volumes, written with the SR."""


def _frames(header: SliceHeader) -> list[int] | None:
    return None if header.frame is None else [header.frame + 1]


def _measurement_group(section: SeriesSection, row: SliceRow, reference: Dataset, study: Study) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    header = section.series.slices[row.index]
    model = section.model
    algorithm = hd.sr.AlgorithmIdentification(
        name=model.name or "unnamed model", version=model.version or "unknown",
        parameters=[f"sha256={model.sha256}", f"device={model.device}"],
    )
    measurements = [
        hd.sr.Measurement(name=PROBABILITY_CODES[label], value=round(float(row.probabilities[label]), 6), unit=UNITLESS)
        for label in LABELS
    ]
    evaluations = [hd.sr.QualitativeEvaluation(SUBTYPE_CONCEPT, SUBTYPE_CODES[label])
                   for label in row.flagged if label in SUBTYPE_CODES]
    evaluations.append(hd.sr.QualitativeEvaluation(REVIEW_CONCEPT, REVIEW_VALUES[row.decision or "undecided"]))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(), identifier=f"Flagged slice Im {row.index + 1} (instance {row.instance_number})",
        ),
        finding_type=FINDING_ICH,
        algorithm_id=algorithm,
        finding_sites=[hd.sr.FindingSite(codes.SCT.Brain)],
        measurements=measurements,
        qualitative_evaluations=evaluations,
        source_images=[hd.sr.SourceImageForMeasurementGroup(
            reference.SOPClassUID, header.sop_instance_uid, referenced_frame_numbers=_frames(header),
        )],
    )
    if row.note:
        note = hd.sr.TextContentItem(name=NOTE_CONCEPT, value=row.note[:1024],
                                     relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
        group[0].ContentSequence.append(note)
    return group


def build_sr(content: ReportContent, study: Study) -> hd.sr.Comprehensive3DSR | None:
    """The measurement report over every flagged slice (None when nothing was flagged)."""
    groups, evidence = [], []
    for section in content.sections:
        for row in section.flagged_rows:
            reference = reference_dataset(study, section.series, section.series.slices[row.index])
            evidence.append(reference)
            groups.append(_measurement_group(section, row, reference, study))

    measured, referenced = sr_groups(content, study)  # the reader's measurements and volumes
    groups += measured
    evidence += referenced
    if not groups:
        return None
    model = content.sections[0].model
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name="ICH Viewer", manufacturer_name=MANUFACTURER,
            model_name=f"{model.name} {model.version}".strip()[:64],
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=PROCEDURE_CT_HEAD,
        imaging_measurements=groups,
    )
    unique = {ds.SOPInstanceUID: ds for ds in evidence}
    return hd.sr.Comprehensive3DSR(
        evidence=list(unique.values()),
        content=report,
        series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        **common_attributes("ICH flags (research, not a diagnosis)"),
    )


def _key_picture(section: SeriesSection, key: KeyImage, content: ReportContent) -> np.ndarray:
    """Brain | subdural [| attention] side by side on black: one picture per key slice."""
    row = key.row
    panels = [content.key_picture(section.series, row.index, window, row.flagged) for window in KEY_WINDOWS]
    if content.overlay is not None:
        panels.append(content.key_picture(section.series, row.index, KEY_WINDOWS[0], row.flagged, attention=True))
    height = max(panel.shape[0] for panel in panels)
    gap = 8
    width = sum(panel.shape[1] for panel in panels) + gap * (len(panels) - 1)
    picture = np.zeros((height, width, 3), dtype=np.uint8)
    x = 0
    for panel in panels:
        picture[: panel.shape[0], x: x + panel.shape[1]] = panel
        x += panel.shape[1] + gap
    return picture


def build_key_images(content: ReportContent, study: Study) -> tuple[list[hd.sc.SCImage], hd.ko.KeyObjectSelectionDocument | None]:
    images: list[hd.sc.SCImage] = []
    originals: list[Dataset] = []
    series_uid = generate_uid()
    for section in content.sections:
        for key in section.key_images:
            header = section.series.slices[key.index]
            reference = reference_dataset(study, section.series, header)
            originals.append(reference)
            row = key.row
            flagged = ", ".join(f"{LABEL_ABBREVIATIONS[label]} {row.probabilities[label]:.2f}" for label in row.flagged)
            images.append(hd.sc.SCImage.from_ref_dataset(
                ref_dataset=reference,
                pixel_array=_key_picture(section, key, content),
                photometric_interpretation="RGB",
                bits_allocated=8,
                coordinate_system="PATIENT",
                series_instance_uid=series_uid,
                sop_instance_uid=generate_uid(),
                series_number=KEY_IMAGE_SERIES_NUMBER,
                instance_number=len(images) + 1,
                manufacturer=MANUFACTURER,
                patient_orientation=_patient_orientation(header),
                transfer_syntax_uid=RLELossless,  # lossless, ~5x smaller than raw RGB, fast to encode
                **common_attributes("ICH key images (research, not a diagnosis)"),
            ))
            images[-1].ImageComments = (f"Im {row.index + 1}, instance {row.instance_number}: {flagged}; "
                                        f"{row.decision or 'undecided'}. {RESEARCH_NOTICE}")[:10240]
            images[-1].BurnedInAnnotation = "NO"
            # a picture of the head, no paired organ: without the body part a validator (and a
            # PACS) cannot tell whether the series' Laterality is required
            images[-1].BodyPartExamined = reference.BodyPartExamined
    if not originals:
        return images, None
    # The KOS flags the original CT slices (and our pictures) "Of Interest", which PACS show as key images.
    referenced = originals + [_sc_reference(image) for image in images]
    kos = hd.ko.KeyObjectSelectionDocument(
        evidence=referenced,
        content=hd.ko.KeyObjectSelection(
            document_title=codes.DCM.OfInterest, referenced_objects=referenced,
            description="Slices flagged by a research ICH classifier and not rejected by the reader",
        ),
        series_instance_uid=generate_uid(),
        series_number=KOS_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        **common_attributes("ICH key image selection (research)"),
    )
    return images, kos


def _patient_orientation(header: SliceHeader) -> tuple[str, str]:
    """Directions of the picture's rows and columns (the panels keep the slice's orientation)."""
    if header.orientation is None or len(header.orientation) != 6:
        return ("L", "P")
    return direction_letter(header.orientation[:3]), direction_letter(header.orientation[3:])


def _sc_reference(image: hd.sc.SCImage) -> Dataset:
    ds = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
                    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "StudyID", "AccessionNumber", "ReferringPhysicianName", "Rows", "Columns"):
        if keyword in image:
            setattr(ds, keyword, getattr(image, keyword))
    return ds


def _write_dataset(path: Path, dataset: Dataset, overwrite: bool) -> Path:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    return atomic_write(path, lambda handle: handle.write(data), overwrite=overwrite)


def _finish(dataset: Dataset, deidentify: bool) -> Dataset:
    """De-identify (PS3.15 Basic Profile, UIDs retained) and put back the text we generated."""
    if not deidentify:
        return dataset
    ours = {key: dataset.get(key) for key in ("SeriesDescription", "ImageComments") if key in dataset}
    deidentify_dataset(dataset)
    for key, value in ours.items():  # our own wording: no identity in it
        setattr(dataset, key, value)
    return dataset


def write_dicom(out_dir: str | os.PathLike, content: ReportContent, study: Study, *, sr: bool = True,
                key_images: bool = True, overwrite: bool = False, deidentify: bool = False) -> DicomExport:
    """Write SR_<uid>.dcm, SEG_<uid>.dcm (bleed outlines, with the SR), KO_<uid>.dcm and
    SC_<n>_<uid>.dcm into ``out_dir`` (created when missing).

    ``deidentify``: every object is de-identified per ``report.deidentify``."""
    folder = Path(out_dir)
    written: list[Path] = []
    sr_path = kos_path = None
    sc_paths: list[Path] = []
    seg_paths: list[Path] = []
    try:
        if sr:
            document = build_sr(content, study)
            if document is not None:
                sr_path = _write_dataset(folder / f"SR_{document.SOPInstanceUID}.dcm", _finish(document, deidentify),
                                         overwrite)
                written.append(sr_path)
            from ich_viewer.report.seg_export import build_segs

            for seg in build_segs(content, study):
                seg_paths.append(_write_dataset(folder / f"SEG_{seg.SOPInstanceUID}.dcm", _finish(seg, deidentify),
                                                overwrite))
                written.append(seg_paths[-1])
        if key_images:
            images, kos = build_key_images(content, study)
            for number, image in enumerate(images, start=1):
                sc_paths.append(_write_dataset(folder / f"SC_{number:03d}_{image.SOPInstanceUID}.dcm",
                                               _finish(image, deidentify), overwrite))
                written.append(sc_paths[-1])
            if kos is not None:
                kos_path = _write_dataset(folder / f"KO_{kos.SOPInstanceUID}.dcm", _finish(kos, deidentify), overwrite)
                written.append(kos_path)
    except Exception as exc:
        # The objects only make sense together: remove what this call wrote before failing.
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"DICOM export failed: {type(exc).__name__}: {exc}") from exc
    return DicomExport(sr=sr_path, key_images=sc_paths, kos=kos_path, segs=seg_paths)


# --- the reader's measurements (TID 1501 groups) -----------------------------------------
def sr_groups(content: Any, study: Study) -> tuple[list, list]:
    """TID 1501 measurement groups for the measurements, and the referenced image headers."""
    ml = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
    mm_unit = hd.sr.CodedConcept("mm", "UCUM", "millimeter")
    px_unit = hd.sr.CodedConcept("{px}", "UCUM", "pixels")
    hu_unit = hd.sr.CodedConcept("[hnsf'U]", "UCUM", "Hounsfield unit")
    planimetric = hd.sr.CodedConcept("PLANIMETRIC", SCHEME, "Voxel count x voxel volume (3D region growing)")
    abc2_method = hd.sr.CodedConcept("ABC2", SCHEME, "ABC/2 ellipsoid estimate")
    subtype_codes = {name: hd.sr.CodedConcept(f"READER-{name[:8].upper()}", SCHEME, f"{name.capitalize()} hemorrhage")
                     for name in ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")}
    series_by_uid = {s.series.series_uid: s.series for s in content.sections}
    groups, evidence = [], []
    for number, m in enumerate(getattr(content, "measurements", []) or [], start=1):
        series = series_by_uid.get(m.series_uid)
        if series is None:
            continue
        d = m.details
        indices = [int(i) for i in d.get("slices", [])] if m.kind == "volume" else [m.slice_index]
        indices = [i for i in indices if 0 <= i < len(series.slices)] or [min(m.slice_index, len(series.slices) - 1)]
        references = [reference_dataset(study, series, series.slices[i]) for i in indices]
        evidence.extend(references)
        length_unit = mm_unit if m.unit == "mm" else px_unit
        measurements = []
        if m.kind == "volume":
            measurements.append(hd.sr.Measurement(name=codes.SCT.Volume, value=round(m.value, 3), unit=ml,
                                                  method=planimetric))
            if d.get("abc2_ml") is not None:
                measurements.append(hd.sr.Measurement(name=codes.SCT.Volume, value=round(float(d["abc2_ml"]), 3),
                                                      unit=ml, method=abc2_method))
        elif m.kind in ("distance", "midline"):
            measurements.append(hd.sr.Measurement(name=codes.SCT.Length, value=round(m.value, 3), unit=length_unit))
        elif m.kind == "angle":
            measurements.append(hd.sr.Measurement(name=codes.SCT.Angle, value=round(m.value, 3),
                                                  unit=hd.sr.CodedConcept("deg", "UCUM", "degree")))
        elif d.get("pixels"):
            for name, key in ((codes.SCT.Mean, "mean"), (codes.SCT.StandardDeviation, "sd"),
                              (codes.SCT.Minimum, "min"), (codes.SCT.Maximum, "max")):
                measurements.append(hd.sr.Measurement(name=name, value=round(float(d[key]), 3), unit=hu_unit))
            area_unit = hd.sr.CodedConcept("mm2", "UCUM", "square millimeter") if d.get("area_unit") == "mm²" \
                else hd.sr.CodedConcept("{px2}", "UCUM", "square pixels")
            measurements.append(hd.sr.Measurement(name=codes.SCT.Area, value=round(float(d["area"]), 3),
                                                  unit=area_unit))
        if not measurements:
            continue
        subtype = str(d.get("subtype", "unspecified"))
        evaluations = [hd.sr.QualitativeEvaluation(SUBTYPE_CONCEPT, subtype_codes[subtype])] \
            if subtype in subtype_codes else None
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(),
                                                         identifier=f"{m.label} {number} ({m.id})"),
            finding_type=FINDING_ICH if m.kind == "volume" else None,
            finding_sites=[hd.sr.FindingSite(codes.SCT.Brain)],
            measurements=measurements,
            qualitative_evaluations=evaluations,
            source_images=[hd.sr.SourceImageForMeasurementGroup(ref.SOPClassUID, ref.SOPInstanceUID,
                                                                referenced_frame_numbers=_frames(series.slices[i]))
                           for ref, i in zip(references, indices)],
        ))
    return groups, evidence
