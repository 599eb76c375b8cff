"""The loaded study as plain data: what every other part of the program reads.

Headers are parsed up front; pixels are decoded lazily (and in the background by the
loader) through a per-series ``PixelSource``, so the first slice can be shown before the
rest of the series is decoded. Nothing here imports Qt.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the study, and why, for the load log."""

    path: str
    reason: str


@dataclass
class SliceHeader:
    """What the loader read from one image (or one frame of a multi-frame image)."""

    path: str
    """File path; for a member of a zip file ``<zip path>!/<member>``."""
    sop_instance_uid: str
    frame: int | None = None
    """Frame index inside a multi-frame file, else None."""
    instance_number: int | None = None
    position: tuple[float, float, float] | None = None
    """ImagePositionPatient (mm)."""
    orientation: tuple[float, float, float, float, float, float] | None = None
    """ImageOrientationPatient direction cosines (row then column)."""
    rows: int = 0
    columns: int = 0
    pixel_spacing: tuple[float, float] = (1.0, 1.0)
    """(row spacing, column spacing) in mm, i.e. DICOM PixelSpacing order."""
    pixel_spacing_known: bool = True
    """False when the file had no usable PixelSpacing (then ``pixel_spacing`` is a 1 x 1
    placeholder and measurements must be given in pixels, not mm)."""
    slice_thickness: float | None = None
    slice_location: float | None = None
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    rescale_problem: str | None = None
    """Why this slice's HU scale cannot be trusted (then it is never analysed), else None."""
    window_center: float | None = None
    """First value of WindowCenter, None when absent."""
    window_width: float | None = None
    transfer_syntax_uid: str = ""
    image_type: tuple[str, ...] = ()
    dataset: Any = None
    """The pydicom header (no pixel data) for the tag browser and reports; may be None when the
    headers were read in worker processes: use ``full_dataset()``."""
    reread: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    """Reads the header again from the file (set when ``dataset`` was left out)."""

    def full_dataset(self) -> Any:
        """The pydicom header, read again from the file when the loader did not keep it (None
        when there is none, or the file can no longer be read)."""
        if self.dataset is None and self.reread is not None:
            try:
                self.dataset = self.reread()
            except Exception as exc:  # the file went away or changed since it was loaded
                logging.getLogger(__name__).info("header of %s cannot be read again: %s", self.path, exc)
                self.reread = None
        return self.dataset


class PixelSource(Protocol):
    """Turns one slice header into an HU image (float32, rows x columns)."""

    def __call__(self, header: SliceHeader) -> np.ndarray: ...


@dataclass
class Series:
    """One displayable stack of slices, in display order (foot to head)."""

    series_uid: str
    slices: list[SliceHeader]
    pixel_source: PixelSource
    description: str = ""
    modality: str = ""
    study_uid: str = ""
    series_number: int | None = None
    positions_mm: list[float] = field(default_factory=list)
    """Each slice's position along the slice normal (mm), same order as ``slices``."""
    spacing_mm: float | None = None
    """Typical distance between neighbouring slices along the normal."""
    gantry_tilt_deg: float = 0.0
    warnings: list[str] = field(default_factory=list)
    is_localizer: bool = False
    refusal: str | None = None
    """Why this series must not be analysed although it can be viewed (broken HU scale,
    images that cannot be told apart); None when nothing speaks against it."""

    def __post_init__(self) -> None:
        self._cache: dict[int, np.ndarray] = {}
        self._errors: dict[int, str] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.slices)

    @property
    def n_slices(self) -> int:
        return len(self.slices)

    @property
    def shape(self) -> tuple[int, int]:
        first = self.slices[0]
        return first.rows, first.columns

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        return self.slices[0].pixel_spacing

    def hu(self, index: int) -> np.ndarray:
        """The slice in HU (float32). Decodes on first use; safe from any thread.

        Raises ``PixelDecodeError`` with a readable reason when the pixels cannot be
        decoded (the error is remembered, so a bad slice fails fast the next time).
        The cache keeps whole-number HU as int16 (half of float32); each call returns
        float32, a fresh array when the cache holds int16.
        """
        cached = self._cache.get(index)
        if cached is None:
            if index in self._errors:
                raise PixelDecodeError(self._errors[index])
            try:
                image = self.pixel_source(self.slices[index])
            except PixelDecodeError as exc:
                self._errors[index] = str(exc)
                raise
            except Exception as exc:  # any decoder failure becomes a readable message
                message = f"{self.slices[index].path}: {type(exc).__name__}: {exc}"
                self._errors[index] = message
                raise PixelDecodeError(message) from exc
            self.store_hu(index, image)
            cached = self._cache[index]
        return cached.astype(np.float32) if cached.dtype != np.float32 else cached

    def store_hu(self, index: int, image: np.ndarray) -> None:
        """Put an image decoded elsewhere (the background decoder) into the cache."""
        compact = compact_hu(np.asarray(image))
        with self._lock:
            self._cache.setdefault(index, compact)
            self._errors.pop(index, None)

    def store_error(self, index: int, message: str) -> None:
        """Remember that a slice could not be decoded elsewhere (the background decoder)."""
        with self._lock:
            if index not in self._cache:
                self._errors[index] = message

    def is_decoded(self, index: int) -> bool:
        return index in self._cache

    def decode_error(self, index: int) -> str | None:
        return self._errors.get(index)

    def cache_nbytes(self) -> int:
        """Bytes held by decoded slices (for memory reports)."""
        return sum(image.nbytes for image in list(self._cache.values()))

    def volume_hu(self) -> np.ndarray:
        """All slices as one (n, rows, columns) float32 array."""
        rows, columns = self.shape
        volume = np.empty((len(self.slices), rows, columns), dtype=np.float32)
        for i in range(len(self.slices)):
            volume[i] = self.hu(i)
        return volume

    @classmethod
    def from_array(
        cls,
        volume_hu: np.ndarray,
        *,
        series_uid: str = "1.2.826.0.1.3680043.8.498.1",
        spacing_mm: float = 5.0,
        pixel_spacing: tuple[float, float] = (0.5, 0.5),
        description: str = "in-memory series",
        window: tuple[float, float] | None = (40.0, 80.0),
    ) -> "Series":
        """A series held in memory, for tests and generated data that has no files."""
        volume = np.asarray(volume_hu, dtype=np.float32)
        n, rows, cols = volume.shape
        headers = [
            SliceHeader(
                path=f"<memory>/{i}",
                sop_instance_uid=f"{series_uid}.{i + 1}",
                instance_number=i + 1,
                position=(0.0, 0.0, i * spacing_mm),
                orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
                rows=rows,
                columns=cols,
                pixel_spacing=pixel_spacing,
                slice_thickness=spacing_mm,
                window_center=None if window is None else window[0],
                window_width=None if window is None else window[1],
            )
            for i in range(n)
        ]
        lookup: dict[str, int] = {h.path: i for i, h in enumerate(headers)}
        series = cls(
            series_uid=series_uid,
            slices=headers,
            pixel_source=lambda header: volume[lookup[header.path]],
            description=description,
            modality="CT",
            positions_mm=[i * spacing_mm for i in range(n)],
            spacing_mm=spacing_mm,
        )
        return series


@dataclass
class Study:
    """Everything found under one path the user opened."""

    source: str
    series: list[Series] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    patient_name: str = ""
    patient_id: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    study_date: str = ""
    study_description: str = ""
    accession_number: str = ""
    institution: str = ""
    study_uid: str = ""

    @property
    def image_series(self) -> list[Series]:
        """Series a reader scrolls through (localizers last, kept apart)."""
        return [s for s in self.series if not s.is_localizer]


class PixelDecodeError(RuntimeError):
    """A slice's pixel data could not be turned into HU; the message says why."""


def compact_hu(image: np.ndarray) -> np.ndarray:
    """int16 when every value is a whole number in int16 range, else float32."""
    if image.dtype == np.int16:
        return image
    if np.issubdtype(image.dtype, np.integer):
        fits = image.size and image.min() >= -32768 and image.max() <= 32767
        return image.astype(np.int16 if fits else np.float32)
    as_float = image.astype(np.float32, copy=False)
    if as_float.size and np.isfinite(as_float).all() and as_float.min() >= -32768 and as_float.max() <= 32767:
        as_int = as_float.astype(np.int16)
        if np.array_equal(as_int, as_float):
            return as_int
    return as_float


ProgressCallback = Callable[[int, int], None]
"""(done, total) progress reports from long operations."""
