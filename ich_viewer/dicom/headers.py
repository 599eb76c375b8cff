"""Read the header of one candidate file: slice headers and decode jobs, or why it is left out.

Only the header is parsed (pydicom ``stop_before_pixels``); the pixel data element is
then checked by hand without reading it: where it starts (so uncompressed frames can be
read directly later), whether the file is long enough, and whether compressed data ends
properly. A file that fails any of this becomes a ``NotAnImage`` with a readable reason.
"""
from __future__ import annotations

import re
import struct
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Any, BinaryIO, Callable

from ich_viewer.dicom.model import SkippedFile, SliceHeader
from ich_viewer.dicom.pixels import NATIVE_SYNTAXES, DecodeJob, NativeLayout, PixelSpec
from ich_viewer.dicom.plausibility import check_rescale
from ich_viewer.dicom.sources import FileRef

MAX_MATRIX = 8192
MAX_FRAMES = 10000

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"

_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_TAGS = {0x7FE00008: "Float Pixel Data", 0x7FE00009: "Double Float Pixel Data"}
_ITEM = 0xFFFEE000
_SEQUENCE_END = 0xFFFEE0DD
_LONG_VRS = {b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}


def _quiet_pydicom() -> None:
    """Real studies hold many slightly invalid values; reading them must not warn per value.

    (pydicom's reading validation is a process-wide setting; a viewer never wants it.)
    """
    global _quiet
    if not _quiet:  # (setting it costs 12 us: more than a third of a fast header)
        from pydicom import config

        config.settings.reading_validation_mode = config.IGNORE
        _quiet = True


_quiet = False


class NotAnImage(Exception):
    """The file is left out of the study; ``str(exc)`` is the reason for the load log."""


@dataclass
class ImageFile:
    """One readable image file: a slice header (and decode job) per frame."""

    ref: FileRef
    headers: list[SliceHeader]
    jobs: list[DecodeJob]
    series_uid: str
    study_uid: str
    series_number: int | None
    description: str
    modality: str
    notes: list[str] = field(default_factory=list)
    """Facts worth a series warning (e.g. corrected 12-bit wrap)."""
    patient_id: str = ""


def read_image_file(ref: FileRef, cancel: Callable[[], bool] | None = None, fast: bool = True) -> ImageFile:
    """Parse the header of ``ref``; raises ``NotAnImage`` with the reason it cannot be used.

    ``cancel`` is asked while the header is parsed, so a huge file cannot hold up a cancel.
    A plain file is read by ``fastheader`` (same result, a third of the time, but no
    ``dataset`` kept: ``full_dataset()`` reads it again); ``fast=False`` always uses pydicom.
    """
    _quiet_pydicom()
    try:
        size = ref.size()
    except OSError as exc:
        raise NotAnImage(f"cannot read the file: {exc.strerror or exc}") from exc
    if size == 0:
        raise NotAnImage("empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about every odd value; reasons go to the log
        image = read_fast(ref, size) if fast else None  # a plain header, walked without pydicom's parser
        if image is not None:
            return image
        try:
            with ref.open() as stream:
                ds, pixel = _read_header(stream, size, cancel)
        except NotAnImage:
            raise
        except OSError as exc:
            raise NotAnImage(f"cannot read the file: {exc.strerror or exc}") from exc
        try:
            return _image_file(ref, ds, pixel)
        except NotAnImage:
            raise
        except Exception as exc:  # values are decoded lazily: a corrupt one surfaces here
            raise NotAnImage(f"unreadable DICOM header value ({type(exc).__name__}: {exc})") from exc


def read_fast(ref: FileRef, size: int) -> ImageFile | None:
    """``read_image_file`` of a plain file by ``fastheader``'s tag walk; None for any other file.

    The same result but for ``SliceHeader.dataset``, left out (``full_dataset()`` reads it
    again on demand, as for headers read by workers).
    """
    from ich_viewer.dicom.fastheader import walk_plain_header

    try:
        with ref.open() as stream:
            plain = walk_plain_header(stream, size)
            stream.seek(plain.pixel_start)
            pixel = _pixel_element(stream, size, None, plain.syntax)
        image = _image_file(ref, plain.dataset, pixel)
    except Exception:  # any doubt: the pydicom path decides, in its own words
        return None
    reread = partial(reread_dataset, ref)
    for header in image.headers:
        header.dataset = None
        header.reread = reread
    return image


def read_outcome(ref: FileRef, cancel: Callable[[], bool] | None = None) -> "ImageFile | SkippedFile":
    """The image file, or why it is left out; never raises for a bad file."""
    try:
        return read_image_file(ref, cancel)
    except NotAnImage as exc:
        return SkippedFile(ref.display, str(exc))
    except Exception as exc:  # a reader bug on one file must not lose the study
        return SkippedFile(ref.display, f"unexpected error: {type(exc).__name__}: {exc}")


def read_outcomes_lean(refs: list[FileRef]) -> list["ImageFile | SkippedFile"]:
    """``read_outcome`` of each file without the pydicom data sets: the job of a worker process,
    where sending the data sets back would cost more than parsing them (``reread_dataset``
    reads one again when it is needed)."""
    outcomes = [read_outcome(ref) for ref in refs]
    for outcome in outcomes:
        if isinstance(outcome, ImageFile):
            for header in outcome.headers:
                header.dataset = None
    return outcomes


def reread_dataset(ref: FileRef) -> Any:
    """The pydicom header of ``ref`` again (``SliceHeader.reread`` of a header read by a worker)."""
    _quiet_pydicom()
    with warnings.catch_warnings(), ref.open() as stream:
        warnings.simplefilter("ignore")
        return _read_header(stream, ref.size())[0]


@dataclass(frozen=True)
class _PixelElement:
    transfer_syntax: str
    native: NativeLayout | None
    value_length: int | None
    fragments: int | None


MAX_HEADER_ELEMENTS = 100_000
"""More top-level elements than any real header holds (a few hundred); beyond it, junk."""
MAX_IMPLAUSIBLE_RUN = 64
"""Consecutive elements in group 0000 or out of tag order before the header counts as junk."""


class _HeaderGuard:
    """pydicom ``stop_when`` callback: stop at the pixel data, on junk, or on cancel.

    Without it a file of zeros after 'DICM' parses as millions of empty (0000,0000)
    elements: 8 s for 16 MB. With it every file is accepted or refused in bounded work.
    """

    _PIXEL_TAGS = frozenset({_PIXEL_DATA, *_FLOAT_PIXEL_TAGS})

    def __init__(self, cancel: Callable[[], bool] | None) -> None:
        self.cancel = cancel
        self.last = -1
        self.count = 0
        self.run = 0
        self.reason: str | None = None

    def __call__(self, tag: int, vr: str | None, length: int) -> bool:
        tag = int(tag)  # pydicom's Tag compares in Python; a plain int in C (a third of the header time)
        if tag in self._PIXEL_TAGS:
            return True
        self.count += 1
        self.run = self.run + 1 if (tag >> 16 == 0 or tag <= self.last) else 0
        if tag > self.last:
            self.last = tag
        if self.run >= MAX_IMPLAUSIBLE_RUN:
            self.reason = (f"not a DICOM header: {self.run} elements in a row are in group 0000 or out of order "
                           "(zeros or junk where the data set should be)")
        elif self.count > MAX_HEADER_ELEMENTS:
            self.reason = f"not a DICOM header: more than {MAX_HEADER_ELEMENTS} elements before any pixel data"
        elif self.count % 256 == 0 and self.cancel is not None and self.cancel():
            self.reason = "loading cancelled"
        return self.reason is not None


def _precheck_data_set(stream: BinaryIO, start: int) -> None:
    """Refuse, before pydicom sees them, inputs pydicom would spend unbounded work on.

    - zeros (or other group-0000 runs) after the meta header: pydicom reads group 0000 as
      a network command set with no limit and no callback, and a file of zeros is
      millions of such empty elements (real files hold none or a handful);
    - a deflated data set that inflates to a bomb (pydicom inflates it whole in memory).
    """
    stream.seek(start)
    syntax = b""
    while True:  # skip the explicit-VR little-endian meta group 0002
        head = stream.read(8)
        if len(head) < 8 or head[:2] != b"\x02\x00":
            break
        if head[4:6] in _LONG_VRS:
            extra = stream.read(4)
            if len(extra) < 4:
                return
            length = struct.unpack("<I", extra)[0]
        else:
            length = struct.unpack("<H", head[6:8])[0]
        if head[:4] == b"\x02\x00\x10\x00" and length < 256:
            syntax = stream.read(length)
        else:
            stream.seek(length, 1)
    stream.seek(-len(head), 1)
    if syntax.rstrip(b"\x00 ").decode("latin-1") == DEFLATED_LE:
        _refuse_deflate_bomb(stream)
        return
    run = 0
    while run < MAX_IMPLAUSIBLE_RUN:
        head = stream.read(8)
        if len(head) < 8 or head[:2] != b"\x00\x00":
            return
        (length,) = struct.unpack("<I", head[4:8])
        if length == 0xFFFFFFFF:
            return
        stream.seek(length, 1)
        run += 1
    raise NotAnImage(f"not a DICOM header: {run} elements in a row in group 0000 (zeros or junk where the "
                     "data set should be)")


MAX_INFLATED_BYTES = 2 * 1024**3
"""A deflated data set larger than this when inflated is refused (pydicom inflates it whole)."""


def _refuse_deflate_bomb(stream: BinaryIO) -> None:
    """Inflate the deflated data set in bounded chunks, counting, before pydicom inflates it whole."""
    import zlib

    begin = stream.tell()
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    packed = inflated = 0
    try:
        while True:
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            packed += len(chunk)
            data = inflater.decompress(chunk, 1 << 20)
            inflated += len(data)
            while inflater.unconsumed_tail:
                inflated += len(inflater.decompress(inflater.unconsumed_tail, 1 << 20))
                _check_inflation(inflated, packed)
            _check_inflation(inflated, packed)
            if inflater.eof:
                break
    except zlib.error:
        pass  # pydicom reports the corrupt stream in its own words
    stream.seek(begin)


def _check_inflation(inflated: int, packed: int) -> None:
    from ich_viewer.dicom.sources import BOMB_MIN_BYTES, BOMB_RATIO

    if inflated > MAX_INFLATED_BYTES or (inflated > BOMB_MIN_BYTES and inflated > BOMB_RATIO * max(1, packed)):
        raise NotAnImage(f"deflated data set expands more than {inflated // max(1, packed)} times "
                         f"(over {inflated >> 20} MB): a decompression bomb, not read")


def _read_header(stream: BinaryIO, size: int, cancel: Callable[[], bool] | None = None) -> tuple[Any, _PixelElement]:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial

    stream.seek(128)
    has_marker = stream.read(4) == b"DICM"
    if not has_marker:
        stream.seek(0)
        start = stream.read(8)
        # Old files without the 128-byte preamble start directly with group 0002 or 0008.
        if start[:4] == b"PK\x03\x04":
            raise NotAnImage("zip archive (open the zip file itself to read the images in it)")
        if len(start) < 8 or start[:2] not in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"):
            raise NotAnImage("not a DICOM file (no DICM marker and no DICOM data set at the start)")
    _precheck_data_set(stream, 132 if has_marker else 0)
    stream.seek(0)
    guard = _HeaderGuard(cancel)
    try:
        ds = read_partial(stream, guard, force=not has_marker)
    except InvalidDicomError as exc:
        raise NotAnImage(f"not a DICOM file ({exc})") from exc
    except (EOFError, struct.error) as exc:
        raise NotAnImage(f"truncated DICOM header ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # a corrupt header never stops the other files
        raise NotAnImage(f"unreadable DICOM header ({type(exc).__name__}: {exc})") from exc
    if guard.reason is not None:
        raise NotAnImage(guard.reason)
    syntax = _transfer_syntax(ds)
    if syntax == DEFLATED_LE:
        return _deflated(stream, ds, syntax)
    return ds, _pixel_element(stream, size, ds, syntax)


def _transfer_syntax(ds: Any) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if uid in (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE) or not uid:
        # trust what the reader found in the bytes over what the meta header claims
        if implicit is True:
            return IMPLICIT_LE
        if little is False:
            return EXPLICIT_BE
        if implicit is False:
            return EXPLICIT_LE
    return uid or IMPLICIT_LE


def _deflated(stream: BinaryIO, ds: Any, syntax: str) -> tuple[Any, _PixelElement]:
    """Deflated files must be inflated as a whole to find the pixel data."""
    import pydicom

    stream.seek(0)
    try:
        full = pydicom.dcmread(stream, force=True)
    except Exception as exc:
        raise NotAnImage(f"corrupt or truncated deflated data set ({type(exc).__name__}: {exc})") from exc
    if "PixelData" not in full:
        raise NotAnImage(_no_pixels(ds))
    length = len(full.PixelData)
    del full.PixelData
    return full, _PixelElement(syntax, None, length, None)


def _check_header_complete(ds: Any, size: int) -> None:
    """A file cut inside its header reads 'successfully' up to the cut; say what happened."""
    if len(ds) == 0:
        raise NotAnImage("truncated: the file ends inside the DICOM header (no data set after the meta header)")
    for element in ds._dict.values():  # still raw: value_tell and length as read from the file
        tell, length = getattr(element, "value_tell", None), getattr(element, "length", None)
        if tell is not None and length is not None and length != 0xFFFFFFFF and tell + length > size:
            raise NotAnImage(f"truncated: the file ends inside the DICOM header (in element {element.tag})")


def _no_pixels(ds: Any) -> str:
    from pydicom.uid import UID

    sop = str(ds.get("SOPClassUID", "") or getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", ""))
    kind = UID(sop).name if sop else str(ds.get("Modality", "") or "unknown kind")
    return f"no pixel data ({kind})"


def _pixel_element(stream: BinaryIO, size: int, ds: Any, syntax: str) -> _PixelElement:
    start = stream.tell()
    head = stream.read(8)
    if len(head) < 8:
        _check_header_complete(ds, size)
        raise NotAnImage(_no_pixels(ds))
    big = syntax == EXPLICIT_BE
    group, element = struct.unpack(">HH" if big else "<HH", head[:4])
    tag = (group << 16) | element
    if tag in _FLOAT_PIXEL_TAGS:
        raise NotAnImage(f"{_FLOAT_PIXEL_TAGS[tag]} (a parametric map, not a stored-value image)")
    if tag != _PIXEL_DATA:
        raise NotAnImage(_no_pixels(ds))
    if syntax == IMPLICIT_LE:
        (length,) = struct.unpack("<I", head[4:8])
        value_start = start + 8
    elif head[4:6] in _LONG_VRS:
        extra = stream.read(4)
        if len(extra) < 4:
            raise NotAnImage("truncated: the file ends at the start of the pixel data")
        (length,) = struct.unpack(">I" if big else "<I", extra)
        value_start = start + 12
    else:
        (length,) = struct.unpack(">H" if big else "<H", head[6:8])
        value_start = start + 8
    if syntax in NATIVE_SYNTAXES:
        if length == 0xFFFFFFFF:
            raise NotAnImage(f"pixel data of undefined length in an uncompressed transfer syntax ({syntax})")
        if value_start + length > size:
            raise NotAnImage(f"truncated: the file ends inside the pixel data ({size - value_start} of {length} bytes)")
        return _PixelElement(syntax, NativeLayout(value_start, big), length, None)
    if length != 0xFFFFFFFF:
        raise NotAnImage(f"compressed transfer syntax {syntax} but the pixel data is not encapsulated")
    fragments = _count_fragments(stream, value_start, size)
    return _PixelElement(syntax, None, None, fragments)


def _count_fragments(stream: BinaryIO, start: int, size: int) -> int:
    """Walk the encapsulated items (seeking, not reading) to prove the data is complete."""
    position, items = start, 0
    stream.seek(position)
    while True:
        head = stream.read(8)
        if len(head) < 8:
            raise NotAnImage("truncated: the compressed pixel data has no end (file cut short)")
        tag_group, tag_element, length = struct.unpack("<HHI", head)
        tag = (tag_group << 16) | tag_element
        if tag == _SEQUENCE_END:
            break
        if tag != _ITEM:
            raise NotAnImage(f"corrupt compressed pixel data (unexpected tag {tag:08X} instead of an item)")
        position += 8 + length
        if position > size:
            raise NotAnImage("truncated: the file ends inside the compressed pixel data")
        items += 1
        stream.seek(position)
    if items < 2:
        raise NotAnImage("compressed pixel data holds no image fragment")
    return items - 1  # the first item is the basic offset table


# ---------------------------------------------------------------------------------------
# From the pydicom header to slice headers and decode jobs


def _image_file(ref: FileRef, ds: Any, pixel: _PixelElement) -> ImageFile:
    rows, columns = _int(_get(ds, "Rows")), _int(_get(ds, "Columns"))
    if not rows or not columns:
        raise NotAnImage("no image size (Rows/Columns missing or zero)")
    if rows > MAX_MATRIX or columns > MAX_MATRIX:
        raise NotAnImage(f"implausible image size {rows}x{columns}")
    samples = _int(_get(ds, "SamplesPerPixel")) or 1
    photometric = str(_get(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise NotAnImage(f"colour image ({photometric}, {samples} samples per pixel), not a greyscale slice")
    bits_allocated = _int(_get(ds, "BitsAllocated")) or 16
    if bits_allocated not in (8, 16, 32):
        raise NotAnImage(f"unsupported BitsAllocated {bits_allocated}")
    bits_stored = _int(_get(ds, "BitsStored")) or bits_allocated
    if not 1 <= bits_stored <= bits_allocated:
        raise NotAnImage(f"BitsStored {bits_stored} does not fit BitsAllocated {bits_allocated}")
    representation = _int(_get(ds, "PixelRepresentation"))
    signed = representation == 1
    n_frames = _int(_get(ds, "NumberOfFrames")) or 1
    if not 1 <= n_frames <= MAX_FRAMES:
        raise NotAnImage(f"implausible NumberOfFrames {n_frames}")
    frame_bytes = rows * columns * bits_allocated // 8
    if pixel.value_length is not None and pixel.value_length < frame_bytes * n_frames:
        raise NotAnImage(
            f"pixel data holds {pixel.value_length} bytes but {n_frames} frame(s) of "
            f"{rows}x{columns}x{bits_allocated} bits need {frame_bytes * n_frames}"
        )
    if pixel.fragments is not None and n_frames > pixel.fragments:
        raise NotAnImage(f"NumberOfFrames {n_frames} but only {pixel.fragments} compressed fragment(s)")
    bits_notes: list[str] = []
    if pixel.value_length is not None and pixel.value_length > frame_bytes * n_frames + 1:
        # (one byte more is the even-length padding of an odd-sized value)
        bits_notes.append(
            f"pixel data holds {pixel.value_length} bytes but {n_frames} frame(s) of {rows}x{columns}x"
            f"{bits_allocated} bits need only {frame_bytes * n_frames}: Rows, Columns, BitsAllocated or "
            "NumberOfFrames may be wrong, and only part of the data is shown"
        )

    modality = str(_get(ds, "Modality") or "").strip().upper()
    hu_checked = modality in ("CT", "")
    if representation is None and hu_checked:
        bits_notes.append("PixelRepresentation missing: stored values read as unsigned")
    image_type = _strings(_get(ds, "ImageType"))
    padding = _padding(ds, bits_stored, signed)
    notes: list[str] = []
    if photometric == "MONOCHROME1":
        notes.append("MONOCHROME1 images: stored values inverted so dense tissue is bright")

    common = dict(
        sop_instance_uid=str(_get(ds, "SOPInstanceUID") or ""),
        instance_number=_int(_get(ds, "InstanceNumber")),
        slice_location=_float(_get(ds, "SliceLocation")),
        transfer_syntax_uid=pixel.transfer_syntax,
        image_type=image_type,
        dataset=ds,
        rows=rows,
        columns=columns,
    )
    headers: list[SliceHeader] = []
    jobs: list[DecodeJob] = []
    for frame in range(n_frames):
        geometry = _frame_geometry(ds, frame if n_frames > 1 else None)
        slope, intercept, rescale_problems, repairs = geometry.pop("rescale")
        if not hu_checked:  # other modalities (MR, PT) have no HU scale to check
            rescale_problems, repairs = [], []
        for note in repairs + bits_notes:
            if note not in notes:
                notes.append(note)
        rsna_wrap = not rescale_problems and _is_rsna_wrap(modality, bits_stored, signed, intercept, ds)
        if rsna_wrap and _RSNA_NOTE not in notes:
            notes.append(_RSNA_NOTE)
        header = SliceHeader(
            path=ref.display,
            frame=frame if n_frames > 1 else None,
            rescale_slope=slope,
            rescale_intercept=intercept,
            rescale_problem="; ".join(rescale_problems) or None,
            **geometry,
            **common,
        )
        spec = PixelSpec(
            rows=rows,
            columns=columns,
            bits_allocated=bits_allocated,
            bits_stored=bits_stored,
            signed=signed,
            slope=slope,
            intercept=intercept,
            monochrome1=photometric == "MONOCHROME1",
            padding=padding,
            rsna_wrap=rsna_wrap,
        )
        headers.append(header)
        jobs.append(DecodeJob(ref, frame, n_frames, pixel.transfer_syntax, spec, pixel.native))
    return ImageFile(
        ref=ref,
        headers=headers,
        jobs=jobs,
        series_uid=str(_get(ds, "SeriesInstanceUID") or ""),
        study_uid=str(_get(ds, "StudyInstanceUID") or ""),
        series_number=_int(_get(ds, "SeriesNumber")),
        description=str(_get(ds, "SeriesDescription") or "").strip(),
        modality=modality,
        notes=notes,
        patient_id=str(_get(ds, "PatientID") or "").strip(),
    )


_RSNA_NOTE = (
    "12-bit unsigned CT with RescaleIntercept above -100 (the RSNA 2019 wrap case): "
    "wrapped values corrected"
)


def _is_rsna_wrap(modality: str, bits_stored: int, signed: bool, intercept: float, ds: Any) -> bool:
    return modality == "CT" and bits_stored == 12 and not signed and "RescaleIntercept" in ds and intercept > -100


def _padding(ds: Any, bits_stored: int, signed: bool) -> tuple[int, int] | None:
    """PixelPaddingValue (and range limit) as values in the stored representation."""
    value = _int(_get(ds, "PixelPaddingValue"))
    if value is None:
        return None
    limit = _int(_get(ds, "PixelPaddingRangeLimit"))

    def normalise(v: int) -> int:
        v %= 1 << bits_stored
        if signed and v >= 1 << (bits_stored - 1):
            v -= 1 << bits_stored
        return v

    low = normalise(value)
    high = low if limit is None else normalise(limit)
    return (min(low, high), max(low, high))


def _frame_geometry(ds: Any, frame: int | None) -> dict[str, Any]:
    """Position, orientation, spacing, rescale and window of one frame (functional groups first)."""

    def value(sequence: str, attribute: str) -> Any:
        return _functional_value(ds, frame, sequence, attribute)[0]

    raw_position, per_frame = _functional_value(ds, frame, "PlanePositionSequence", "ImagePositionPatient")
    position = _floats(raw_position, 3)
    orientation = _floats(value("PlaneOrientationSequence", "ImageOrientationPatient"), 6)
    if frame and not per_frame and position is not None:
        position = _legacy_frame_position(ds, position, orientation, frame)
    spacing = _floats(value("PixelMeasuresSequence", "PixelSpacing"), 2)
    if spacing is None or spacing[0] <= 0 or spacing[1] <= 0:
        spacing = _floats(_get(ds, "ImagerPixelSpacing"), 2)
    slope, intercept, problems, repairs = check_rescale(
        value("PixelValueTransformationSequence", "RescaleSlope"),
        value("PixelValueTransformationSequence", "RescaleIntercept"),
    )
    width = _float(value("FrameVOILUTSequence", "WindowWidth"))
    return dict(
        position=position,
        orientation=orientation,
        pixel_spacing=spacing if spacing and spacing[0] > 0 and spacing[1] > 0 else (1.0, 1.0),
        pixel_spacing_known=bool(spacing and spacing[0] > 0 and spacing[1] > 0),
        slice_thickness=_float(value("PixelMeasuresSequence", "SliceThickness")),
        rescale=(slope, intercept, problems, repairs),
        window_center=_float(value("FrameVOILUTSequence", "WindowCenter")),
        window_width=width if width and width > 0 else None,
    )


def _functional_value(ds: Any, frame: int | None, sequence: str, attribute: str) -> tuple[Any, bool]:
    """Per-frame functional group, then shared group, then the top level; and whether per-frame."""
    if frame is not None:
        for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
            try:
                items = ds.get(groups)
                if not items:
                    continue
                per_frame = groups.startswith("PerFrame")
                inner = (items[frame] if per_frame else items[0]).get(sequence)
                if inner and attribute in inner[0]:
                    return inner[0].get(attribute), per_frame
            except Exception:  # a malformed functional group falls back to the next source
                continue
    return _get(ds, attribute), False


def _legacy_frame_position(ds: Any, first: tuple[float, ...], orientation: Any, frame: int) -> tuple[float, ...] | None:
    """Multi-frame without per-frame positions: step along the normal by the slice spacing."""
    step = _float(_get(ds, "SpacingBetweenSlices")) or _float(_get(ds, "SliceThickness"))
    if not step or orientation is None:
        return None
    r, c = orientation[:3], orientation[3:]
    normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    return tuple(p + n * step * frame for p, n in zip(first, normal))


# ---------------------------------------------------------------------------------------
# Tolerant value parsing: a bad tag value gives None, never an exception


_FAST_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "US or SS": "H", "FL": "f", "FD": "d"}
_TEXT_VRS = {"DS", "IS", "CS", "UI", "AS", "DA", "TM"}
"""VRs whose raw bytes are parsed here directly: pydicom's conversion (validation, value
objects) costs more than reading the file; names and descriptions still go through pydicom
for their character sets."""


def _get(ds: Any, keyword: str) -> Any:
    """A top-level value, parsed straight from the raw bytes when that is safe."""
    tag = _TAGS.get(keyword)
    if tag is None:
        from pydicom.datadict import tag_for_keyword

        tag = _TAGS[keyword] = tag_for_keyword(keyword)
    element = ds._dict.get(tag)
    if element is None:
        return None
    raw = getattr(element, "value", None)
    vr = getattr(element, "VR", None)
    if not isinstance(raw, bytes) or type(element).__name__ != "RawDataElement":
        return ds.get(keyword)
    if vr is None:
        from pydicom.datadict import dictionary_VR

        vr = dictionary_VR(tag)
    if vr in _FAST_VRS:
        code = _FAST_VRS[vr]
        size = struct.calcsize(code)
        count = len(raw) // size
        if count == 0:
            return None
        order = "<" if element.is_little_endian else ">"
        values = struct.unpack_from(f"{order}{count}{code}", raw)
        return values[0] if count == 1 else list(values)
    if vr in _TEXT_VRS:
        text = raw.decode("latin-1").strip(" \x00")
        if vr in ("DS", "IS"):
            parts = [part.strip() for part in text.split("\\")]
            return parts[0] if len(parts) == 1 else parts
        return text
    if vr in ("LO", "SH") and _plain_ascii(ds, raw):
        return raw.decode("ascii").rstrip("\x00 ")
    return ds.get(keyword)


_TAGS: dict[str, int] = {}
_PRINTABLE = re.compile(rb"[\x20-\x5B\x5D-\x7E]*[\x00 ]*")
"""Printable ASCII without a backslash (one value), then padding."""
_ASCII_CHARSETS = {b"", b"ISO_IR 6", b"ISO_IR 100", b"ISO_IR 192", b"ISO 2022 IR 6", b"ISO 2022 IR 100"}
"""Character sets in which such bytes mean what they mean in ASCII."""


def _plain_ascii(ds: Any, raw: bytes) -> bool:
    """Whether pydicom would decode ``raw`` to ``raw.decode("ascii").rstrip("\\0 ")``: one value of
    printable ASCII in a character set that keeps ASCII (names and descriptions, which would
    otherwise go through pydicom's charset machinery at ~50 us each)."""
    if _PRINTABLE.fullmatch(raw) is None:
        return False
    charset = ds._dict.get(0x00080005)
    if charset is None:
        return True
    value = getattr(charset, "value", None)  # raw bytes, or the text pydicom already decoded
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")
    return isinstance(value, bytes) and value.strip(b"\x00 ") in _ASCII_CHARSETS


def _number(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None
    return value


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _float(value: Any) -> float | None:
    try:
        value = _number(value)
        if value is None or value == "":
            return None
        result = float(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return result if result == result and abs(result) != float("inf") else None


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        items = list(value) if not isinstance(value, (str, bytes)) else str(value).split("\\")
        if len(items) != count:
            return None
        result = tuple(float(v) for v in items)
    except (TypeError, ValueError, OverflowError):
        return None
    if any(v != v or abs(v) == float("inf") for v in result):
        return None
    return result


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip().upper() for v in value.split("\\"))
    try:
        return tuple(str(v).strip().upper() for v in value)
    except TypeError:
        return (str(value).strip().upper(),)
