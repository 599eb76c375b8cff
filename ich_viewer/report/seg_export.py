"""The reader's bleed outlines as a DICOM Segmentation (highdicom), written beside the SR.

One SEG per series with bleed volumes, one binary segment per volume (its subtype as the
segmented property's label), frames only where the outline is (empty frames omitted), in
the CT's own geometry so any viewer that reads SEG lays the outline over the study. A
series without PixelSpacing or positions gets none: a SEG in placeholder geometry would sit
in the wrong place; nor does a series read from multi-frame files (not referenced frame by
frame yet).
"""
from __future__ import annotations

from typing import Any, Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ich_viewer import __version__
from ich_viewer.dicom.model import Series, Study
from ich_viewer.measure.records import Measurement
from ich_viewer.report.dicom_reference import MANUFACTURER, common_attributes, reference_dataset

SEG_SERIES_NUMBER = 9904
ALGORITHM = hd.AlgorithmIdentificationSequence(
    name="ICH Viewer region growing with reader edits", family=codes.cid7162.NeighborhoodAnalysis,
    version=__version__)
"""SEMIAUTOMATIC: grown by SimpleITK from the reader's seed and HU range, then brushed by the reader."""


def seg_source(study: Study, series: Series, index: int) -> Dataset:
    """A CT header with what a SEG copies and checks: identity, study, and plane geometry."""
    header = series.slices[index]
    ds = reference_dataset(study, series, header)
    full = header.full_dataset()  # (read again from the file when the loader kept no data set)
    source = full if isinstance(full, Dataset) else Dataset()
    ds.FrameOfReferenceUID = source.get("FrameOfReferenceUID") or _frame_of_reference(series)
    ds.Rows, ds.Columns = header.rows, header.columns
    ds.PixelSpacing = [float(v) for v in header.pixel_spacing]
    ds.ImagePositionPatient = [float(v) for v in header.position or (0.0, 0.0, 0.0)]
    ds.ImageOrientationPatient = [float(v) for v in header.orientation or (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)]
    ds.SliceThickness = float(header.slice_thickness or series.spacing_mm or 1.0)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.pop("NumberOfFrames", None)
    return ds


def _frame_of_reference(series: Series) -> str:
    """A stable frame of reference for a series whose files had none (same on every export)."""
    return generate_uid(entropy_srcs=["ich-viewer-frame-of-reference", series.series_uid])


def can_segment(series: Series) -> bool:
    """PixelSpacing, positions and orientation known: the outline can be placed in the patient."""
    first = series.slices[0]
    return (getattr(first, "pixel_spacing_known", True) and first.orientation is not None
            and all(h.position is not None and h.frame is None for h in series.slices))


def build_seg(study: Study, series: Series,
              volumes: Sequence[tuple[Measurement, np.ndarray]]) -> hd.seg.Segmentation | None:
    """One SEG for ``series`` with a segment per (record, mask); None when nothing can be placed."""
    volumes = [(m, mask) for m, mask in volumes if mask is not None and mask.any()]
    if not volumes or not can_segment(series):
        return None
    sources = [seg_source(study, series, i) for i in range(len(series.slices))]
    pixels = np.stack([mask for _, mask in volumes], axis=-1).astype(np.uint8)
    descriptions = []
    for number, (record, _mask) in enumerate(volumes, start=1):
        subtype = str(record.details.get("subtype", "unspecified"))
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=f"Bleed volume {number} ({subtype}) {record.value:.1f} mL"[:64],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Hemorrhage,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=ALGORITHM,
            tracking_uid=generate_uid(),
            tracking_id=f"Bleed volume {number} ({record.id})",
            anatomic_regions=[codes.SCT.Brain],
        ))
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        device_serial_number="none",
        **common_attributes("Bleed outlines (research, reader-checked)"),
        content_label="BLEED",
        content_description="Bleed volumes grown and edited in ICH Viewer",
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )


def build_segs(content: Any, study: Study) -> list[hd.seg.Segmentation]:
    """A SEG per reported series that has bleed volumes (masks from the window, else regrown)."""
    from ich_viewer.report.measure_export import regrow

    out = []
    for section in content.sections:
        series = section.series
        records = [m for m in getattr(content, "measurements", []) or []
                   if m.kind == "volume" and m.series_uid == series.series_uid]
        masks = getattr(content, "volume_masks", {}) or {}
        pairs = [(m, masks[m.id] if m.id in masks else regrow(series, m)) for m in records]
        seg = build_seg(study, series, [(m, mask) for m, mask in pairs if mask is not None])
        if seg is not None:
            out.append(seg)
    return out
