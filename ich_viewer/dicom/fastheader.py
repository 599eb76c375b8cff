"""A fast header pass for the common file: walk the tags by hand instead of through pydicom.

pydicom spends about 1 ms of CPU per CT header (its element generator, datasets built for
every sequence item, value conversion): at 270 slices that alone is more than the 0.2 s
first-slice goal. Most files are plain: a preamble, explicit or implicit little-endian
elements in tag order, one frame. For those this walker collects the top-level elements as
the same raw elements pydicom would keep (sequences are skipped, never parsed) and hands
them to the one interpretation in ``headers._image_file``, so every value comes out exactly
as on the pydicom path.

Anything unusual (no preamble, big endian, deflated, group 0000 or out-of-order tags,
multi-frame, a header that does not end where it should, any error at all) returns
``None`` and the file goes through the full pydicom path with all its guards and its
wording of what is wrong. The walk is bounded: at most ``MAX_HEADER_BYTES`` read and
``MAX_ELEMENTS`` elements visited.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.uid import AllTransferSyntaxes
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

FIRST_READ = 8192
"""Bytes read at once; a CT header is typically 1-4 KB."""
MAX_HEADER_BYTES = 1 << 20
"""A header longer than this goes the pydicom way."""
MAX_ELEMENTS = 20_000
"""Elements visited (nested ones included) before the walk gives up."""
MAX_DEPTH = 8

_IMPLICIT_LE = "1.2.840.10008.1.2"
_FAST_SYNTAXES = frozenset(AllTransferSyntaxes) - {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}
"""Every transfer syntax pydicom knows but deflated and big endian (read by pydicom)."""
_EXPLICIT_VRS = {vr.encode("ascii"): vr for vr in STANDARD_VR}
_LONG_VRS = {vr.encode("ascii") for vr in EXPLICIT_VR_LENGTH_32}
_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_NUMBER_OF_FRAMES = 0x00280008
_TAG_LENGTH = struct.Struct("<HHI")
_TAG_VR_SHORT = struct.Struct("<HH2sH")
_LENGTH = struct.Struct("<I")


_WANTED_KEYWORDS = (
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "Modality", "SeriesDescription",
    "PatientID", "SliceThickness", "SpacingBetweenSlices", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
    "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient", "SliceLocation", "SamplesPerPixel",
    "PhotometricInterpretation", "NumberOfFrames", "Rows", "Columns", "PixelSpacing", "ImagerPixelSpacing",
    "BitsAllocated", "BitsStored", "PixelRepresentation", "PixelPaddingValue", "PixelPaddingRangeLimit",
    "WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope",
)
"""Every top-level tag ``headers._image_file`` reads for a single-frame image (and the
character set its text values are decoded with)."""
_WANTED = frozenset(tag_for_keyword(keyword) for keyword in _WANTED_KEYWORDS)


class _Collected(dict):
    """The kept elements; asking for any other tag is a doubt (``_image_file`` changed and
    reads a tag this walker does not keep), and the file goes the pydicom way."""

    def __contains__(self, tag: object) -> bool:
        if tag not in _WANTED:
            raise Unusual(f"tag {tag} not collected by the fast header pass")
        return dict.__contains__(self, tag)

    def get(self, tag: object, default: object = None) -> object:
        if tag not in _WANTED:
            raise Unusual(f"tag {tag} not collected by the fast header pass")
        return dict.get(self, tag, default)


class Unusual(Exception):
    """Not a plain file: leave it to the pydicom path (the message says what was unusual)."""


@dataclass(frozen=True)
class PlainHeader:
    """What the walk found: enough for ``headers._image_file`` and ``headers._pixel_element``."""

    syntax: str
    dataset: Dataset
    """The kept top-level elements, raw, as pydicom would hold them."""
    pixel_start: int
    """Where the pixel data element starts."""


def walk_plain_header(stream: BinaryIO, size: int) -> PlainHeader:
    """The header of a plain file (``stream`` holds ``size`` bytes); ``Unusual`` for anything else."""
    walker = _Walker(stream, size)
    syntax, elements = walker.walk()
    return PlainHeader(syntax, Dataset(cast(Any, elements)), walker.pixel_start)


class _Walker:
    """The top-level elements of one file, from a growing buffer of its first bytes."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size = stream, size
        self.buffer = stream.read(min(size, FIRST_READ))
        self.visited = 0
        self.pixel_start = -1

    def need(self, end: int) -> bytes:
        """The buffer, holding at least ``end`` bytes (or ``Unusual``)."""
        if end > len(self.buffer):
            if end > self.size or end > MAX_HEADER_BYTES:
                raise Unusual("header beyond the file or too long")
            more = max(end, min(self.size, 2 * len(self.buffer), MAX_HEADER_BYTES)) - len(self.buffer)
            self.stream.seek(len(self.buffer))
            self.buffer += self.stream.read(more)
            if end > len(self.buffer):
                raise Unusual("short read")
        return self.buffer

    def walk(self) -> tuple[str, dict[int, RawDataElement]]:
        buffer = self.need(132 + 8)
        if buffer[128:132] != b"DICM":
            raise Unusual("no preamble")
        syntax, position = self._meta(132)
        implicit = syntax == _IMPLICIT_LE
        buffer = self.need(position + 8)
        looks_explicit = buffer[position + 4:position + 6] in _EXPLICIT_VRS
        if looks_explicit == implicit:
            raise Unusual("the data set is not encoded as the meta header says")
        return syntax, self._data_set(position, implicit)

    def _meta(self, position: int) -> tuple[str, int]:
        syntax = None
        while True:
            buffer = self.need(position + 8)
            group, element, vr, length = _TAG_VR_SHORT.unpack_from(buffer, position)
            if group != 2:
                break
            if vr not in _EXPLICIT_VRS:
                raise Unusual("meta header not explicit VR")
            position += 8
            if vr in _LONG_VRS:
                length = _LENGTH.unpack_from(self.need(position + 4), position)[0]
                position += 4
            if element == 0x0010:  # only NUL padding: no doubt how pydicom reads the UID
                syntax = self.need(position + length)[position:position + length].rstrip(b"\x00").decode("ascii")
            position += length
        if syntax not in _FAST_SYNTAXES:
            raise Unusual("transfer syntax left to pydicom")
        return syntax, position

    def _data_set(self, position: int, implicit: bool) -> dict[int, RawDataElement]:
        """The wanted top-level elements; every element is checked, only the wanted ones kept.

        (One tight loop: this runs for every element of every file of a study.)
        """
        elements = _Collected()
        last = -1
        buffer, filled, size = self.buffer, len(self.buffer), self.size
        unpack_short, unpack_long = (_TAG_LENGTH if implicit else _TAG_VR_SHORT).unpack_from, _LENGTH.unpack_from
        explicit_vrs, long_vrs, wanted = _EXPLICIT_VRS, _LONG_VRS, _WANTED
        for _ in range(MAX_ELEMENTS):
            if position + 12 > filled:
                buffer = self.need(position + 8)
                filled = len(buffer)
            if implicit:
                group, element, length = unpack_short(buffer, position)
                vr, value_start = None, position + 8
            else:
                group, element, raw_vr, length = unpack_short(buffer, position)
                vr = explicit_vrs.get(raw_vr)
                if vr is None:
                    raise Unusual("unknown VR")
                if raw_vr in long_vrs:
                    if position + 12 > filled:
                        buffer = self.need(position + 12)
                        filled = len(buffer)
                    length = unpack_long(buffer, position + 8)[0]
                    value_start = position + 12
                else:
                    value_start = position + 8
            tag = group << 16 | element
            if tag == _PIXEL_DATA:
                self.pixel_start, self.visited = position, self.visited + _
                return elements
            if group == 0 or tag <= last or tag > _PIXEL_DATA or tag in _FLOAT_PIXEL_DATA or tag == _NUMBER_OF_FRAMES:
                raise Unusual("group 0000, out of order, float pixels, multi-frame or no pixel data")
            last = tag
            if length == 0xFFFFFFFF:
                if tag in wanted or not self._is_sequence(tag, vr, value_start):
                    raise Unusual("undefined length outside a sequence")
                position = self._skip_sequence(value_start, implicit, 1)
                buffer, filled = self.buffer, len(self.buffer)
                continue
            position = value_start + length
            if position > size:
                raise Unusual("an element runs past the end of the file")
            if tag in wanted:
                if vr == "SQ":
                    raise Unusual("a wanted tag holds a sequence")
                if position > filled:
                    buffer = self.need(position)
                    filled = len(buffer)
                value = buffer[value_start:position] if length else cast(bytes, empty_value_for_VR(vr, raw=True))
                # (plain int keys: a BaseTag key makes every dict look-up call its Python __eq__)
                elements[tag] = RawDataElement(BaseTag(tag), vr, length, value, value_start, implicit, True)
        raise Unusual("too many elements")

    def _skip_sequence(self, position: int, implicit: bool, depth: int) -> int:
        """Where the undefined-length sequence starting at ``position`` ends.

        pydicom parses such a sequence while reading (its items' elements, not their values),
        so its items are walked element by element too: a file this walk accepts is one
        pydicom reads without complaint.
        """
        if depth > MAX_DEPTH:
            raise Unusual("sequences nested too deep")
        while True:
            group, element, length = _TAG_LENGTH.unpack_from(self.need(position + 8), position)
            tag = group << 16 | element
            position += 8
            self.visited += 1
            if tag == _SEQUENCE_END:
                return position
            if tag != _ITEM:
                raise Unusual("not an item in a sequence")
            position = self._skip_item(position, None if length == 0xFFFFFFFF else position + length,
                                       implicit, depth)

    def _skip_item(self, position: int, end: int | None, implicit: bool, depth: int) -> int:
        """Where the item whose elements start at ``position`` ends (``end``: its defined end)."""
        while end is None or position < end:
            tag, vr, length, value_start = self._element(position, implicit)
            if tag == _ITEM_END and end is None:
                return value_start
            if tag >> 16 == 0xFFFE:
                raise Unusual("a delimiter where an element should be")
            if length != 0xFFFFFFFF:
                position = value_start + length
            elif self._is_sequence(tag, vr, value_start):
                position = self._skip_sequence(value_start, implicit, depth + 1)
            else:
                raise Unusual("undefined length inside an item")
            if position > self.size:
                raise Unusual("an element runs past the end of the file")
        if position != end:
            raise Unusual("an element runs past the end of its item")
        return position

    def _element(self, position: int, implicit: bool) -> tuple[int, str | None, int, int]:
        """(tag, VR or None, length, where the value starts) of the element at ``position``."""
        self.visited += 1
        if self.visited > MAX_ELEMENTS:
            raise Unusual("too many elements")
        buffer = self.need(position + 8)
        if implicit:
            group, element, length = _TAG_LENGTH.unpack_from(buffer, position)
            return group << 16 | element, None, length, position + 8
        group, element, raw_vr, length = _TAG_VR_SHORT.unpack_from(buffer, position)
        tag = group << 16 | element
        if group == 0xFFFE:  # item and delimiter tags have no VR
            return tag, None, _LENGTH.unpack_from(buffer, position + 4)[0], position + 8
        vr = _EXPLICIT_VRS.get(raw_vr)
        if vr is None:
            raise Unusual("unknown VR")
        if raw_vr in _LONG_VRS:
            return tag, vr, _LENGTH.unpack_from(self.need(position + 12), position + 8)[0], position + 12
        return tag, vr, length, position + 8

    def _is_sequence(self, tag: int, vr: str | None, position: int) -> bool:
        """Whether an undefined-length value is a sequence pydicom would read as one: explicit SQ,
        or implicit with an item next and a tag that is a sequence or private."""
        if vr is not None:
            return vr == "SQ"
        group, element, _ = _TAG_LENGTH.unpack_from(self.need(position + 8), position)
        if (group << 16 | element) not in (_ITEM, _SEQUENCE_END):
            return False
        if tag >> 16 & 1:
            return True
        try:
            return bool(dictionary_VR(tag) == "SQ")
        except KeyError:
            return False
