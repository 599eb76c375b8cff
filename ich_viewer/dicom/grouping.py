"""Image files to series: split by SeriesInstanceUID, then orientation and matrix size.

Localizers (ImageType LOCALIZER, or lone images whose orientation differs from the
stack of their series) are kept apart so scrolling and the classifier never see them.
"""
from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from ich_viewer.dicom.geometry import common_orientation, orientation_key, slice_normal, stack_geometry
from ich_viewer.dicom.headers import ImageFile
from ich_viewer.dicom.model import PixelDecodeError, Series, SkippedFile, SliceHeader
from ich_viewer.dicom import workers as worker_pool
from ich_viewer.dicom.pixels import DecodeJob, decode_job, decode_job_isolated
from ich_viewer.dicom.plausibility import series_refusal

NO_SERIES_UID = "(no SeriesInstanceUID)"


class SeriesPixels:
    """The pixel source of a series read from DICOM files (one decode job per slice)."""

    def __init__(self, jobs: dict[tuple[str, int | None], DecodeJob]) -> None:
        self._jobs = jobs

    def job(self, header: SliceHeader) -> DecodeJob:
        return self._jobs[(header.path, header.frame)]

    def __call__(self, header: SliceHeader) -> np.ndarray:
        """Compressed slices go to the warm worker pool when there is one (faster, and a
        decoder crash cannot take the program down); everything else is decoded here."""
        job = self.job(header)
        pool = worker_pool.ready_pool() if job.native is None else None
        if pool is not None:
            try:
                return pool.submit(decode_job_isolated, job).result()
            except PixelDecodeError:
                raise
            except BrokenProcessPool:  # a worker died (maybe on another slice): decode here, safely
                worker_pool.discard_pool(pool)
            except RuntimeError:  # the pool was shut down meanwhile
                pass
        return decode_job(job)

    def decode_here(self, header: SliceHeader) -> np.ndarray:
        """Decode in this process, with the decoders that are safe here (never the pool)."""
        return decode_job(self.job(header))

    @property
    def compressed(self) -> bool:
        """True when decoding costs real CPU (anything but raw uncompressed frames)."""
        return any(job.native is None for job in self._jobs.values())


@dataclass(eq=False)
class _Entry:
    header: SliceHeader
    job: DecodeJob
    image: ImageFile


def assemble_series(images: list[ImageFile]) -> tuple[list[Series], list[SkippedFile], list[str]]:
    """Series in reading order (image series by SeriesNumber, localizers last)."""
    entries, skipped = _unique_entries(images)
    by_uid: dict[str, list[_Entry]] = defaultdict(list)
    for entry in entries:
        by_uid[entry.image.series_uid or NO_SERIES_UID].append(entry)
    series: list[Series] = []
    notes: list[str] = []
    for uid, members in by_uid.items():
        stacks = _split_stacks(members)
        localizer_flags = _localizer_flags(stacks)
        image_stacks = [s for s, loc in zip(stacks, localizer_flags) if not loc]
        if len(image_stacks) > 1:
            notes.append(
                f"Series {_label(members[0].image)} holds {len(image_stacks)} stacks of different "
                "orientation or image size; each is shown as its own series"
            )
        part = 0
        for stack, localizer in zip(stacks, localizer_flags):
            part += 0 if localizer else 1
            numbered = part if not localizer and len(image_stacks) > 1 else None
            series.append(_build_series(uid, stack, localizer, numbered))
    series.sort(key=_reading_order)
    return series, skipped, notes


def _label(image: ImageFile) -> str:
    number = f"{image.series_number} " if image.series_number is not None else ""
    return f"{number}'{image.description}'" if image.description else f"{number}{image.series_uid}"


def _unique_entries(images: list[ImageFile]) -> tuple[list[_Entry], list[SkippedFile]]:
    """Drop copies of the same image (same SOPInstanceUID and the same pixel data) found twice.

    Images that only share the UID but hold different pixels are all kept: dropping them
    would turn a 36-slice series into one slice that looks clean (``_shared_uids`` then
    stops the series from being analysed, loudly).
    """
    by_uid: dict[str, list[ImageFile]] = defaultdict(list)
    for image in images:
        if image.headers[0].sop_instance_uid:
            by_uid[image.headers[0].sop_instance_uid].append(image)
    copies: dict[int, ImageFile] = {}
    for group in by_uid.values():
        if len(group) < 2:
            continue
        first_with: dict[bytes, ImageFile] = {}
        for image in group:
            digest = _pixel_digest(image)
            if digest is not None and digest in first_with:
                copies[id(image)] = first_with[digest]
            elif digest is not None:
                first_with[digest] = image
    entries: list[_Entry] = []
    skipped: list[SkippedFile] = []
    for image in images:
        original = copies.get(id(image))
        if original is not None:
            skipped.append(SkippedFile(image.ref.display,
                                       f"duplicate of {original.ref.display} (same SOPInstanceUID and pixel data)"))
            continue
        entries.extend(_Entry(h, j, image) for h, j in zip(image.headers, image.jobs))
    return entries, skipped


def _pixel_digest(image: ImageFile) -> bytes | None:
    """sha256 of the bytes after the header (the pixel data), None when unreadable."""
    job = image.jobs[0]
    start = job.native.offset if job.native is not None else 0
    digest = hashlib.sha256()
    try:
        with image.ref.open() as stream:
            stream.seek(start)
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.digest()


def _split_stacks(members: list[_Entry]) -> list[list[_Entry]]:
    groups: dict[tuple, list[_Entry]] = defaultdict(list)
    for entry in members:
        h = entry.header
        groups[(orientation_key(h.orientation), h.rows, h.columns)].append(entry)
    return sorted(groups.values(), key=len, reverse=True)


def _localizer_flags(stacks: list[list[_Entry]]) -> list[bool]:
    """LOCALIZER in ImageType, or a lone image whose orientation differs from the stack.

    Several lone images in different orientations and no stack (a 3-plane scout) are
    localizers too; lone images without orientation are left alone.
    """
    flags = [any("LOCALIZER" in e.header.image_type for e in stack) for stack in stacks]
    main = next((s for s, f in zip(stacks, flags) if not f and len(s) > 1), None)
    main_key = orientation_key(main[0].header.orientation) if main else None
    lone_keys = {orientation_key(s[0].header.orientation) for s in stacks if len(s) == 1} - {None}
    for k, stack in enumerate(stacks):
        key = orientation_key(stack[0].header.orientation)
        if flags[k] or len(stack) != 1 or key is None:
            continue
        if (main is not None and main_key is not None and key != main_key) or (main is None and len(lone_keys) > 1):
            flags[k] = True
    return flags


def _orientation_name(headers: list[SliceHeader]) -> str:
    orientation = common_orientation(headers)
    if orientation is None:
        return ""
    axis = int(np.argmax(np.abs(slice_normal(orientation))))
    return ("sagittal", "coronal", "axial")[axis]


def _build_series(uid: str, stack: list[_Entry], localizer: bool, part: int | None) -> Series:
    headers = [e.header for e in stack]
    geometry = stack_geometry(headers)
    ordered = [stack[i] for i in geometry.order]
    first = ordered[0].image
    description = first.description
    if part is not None:
        shape = f"{headers[0].rows}x{headers[0].columns}"
        description = f"{description} [stack {part}: {_orientation_name(headers)} {shape}]".strip()
    warnings = list(geometry.warnings) if not localizer else []
    for entry in ordered:
        for note in entry.image.notes:
            if note not in warnings:
                warnings.append(note)
    refusals = [series_refusal([h.rescale_problem for h in headers], len(headers))]
    shared = _shared_uids(headers)
    if shared:
        refusals.append(shared)
    refusal = "; ".join(r for r in refusals if r) or None
    if refusal and not localizer:
        warnings.append("Not analysed: " + refusal.replace("unsafe to analyse: ", ""))
    return Series(
        series_uid=uid,
        slices=[e.header for e in ordered],
        pixel_source=SeriesPixels({(e.header.path, e.header.frame): e.job for e in ordered}),
        description=description,
        modality=first.modality,
        study_uid=first.study_uid,
        series_number=first.series_number,
        positions_mm=geometry.positions_mm,
        spacing_mm=geometry.spacing_mm,
        gantry_tilt_deg=geometry.gantry_tilt_deg,
        warnings=warnings,
        is_localizer=localizer,
        refusal=refusal,
    )


def _shared_uids(headers: list[SliceHeader]) -> str | None:
    """Distinct images under one SOPInstanceUID: viewable, but results could not name their image."""
    counts: dict[tuple[str, int | None], int] = defaultdict(int)
    for header in headers:
        if header.sop_instance_uid:
            counts[(header.sop_instance_uid, header.frame)] += 1
    clashes = sum(n for n in counts.values() if n > 1)
    if not clashes:
        return None
    return (f"unsafe to analyse: {clashes} of {len(headers)} images with different pixel data share a "
            "SOPInstanceUID (a broken export), so results could not be traced to one image")


def _reading_order(series: Series) -> tuple:
    number = series.series_number if series.series_number is not None else math.inf
    return (series.is_localizer, number, series.description, series.series_uid, -len(series))
