"""Stored pixel values of one slice, then Hounsfield units.

A ``DecodeJob`` holds everything needed to decode one slice (or one frame) without the
pydicom header, so it can be sent to a worker process. Uncompressed pixel data is read
straight from its byte offset (found while reading the headers). Compressed data goes
through pydicom's decoders (pylibjpeg, pyjpegls, ...) in the program, and first through
GDCM's region reader in worker processes only (GDCM can abort the process on corrupt
data; a worker may die, the program may not).

HU are returned as int16 when they are whole numbers that fit (half the memory of
float32; ``Series.hu`` hands out float32), else as float32.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ich_viewer.dicom.model import PixelDecodeError, compact_hu
from ich_viewer.dicom.sources import FileRef

AIR_HU = -1000

_UNNAMED_SYNTAXES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
}
NATIVE_SYNTAXES = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
)
"""Uncompressed syntaxes (implicit/explicit little endian, big endian, deflated)."""


def syntax_label(uid: str) -> str:
    """A readable name for a transfer syntax, with its UID."""
    if not uid:
        return "unknown transfer syntax (no TransferSyntaxUID)"
    from pydicom.uid import UID

    name = UID(uid).name
    if name == uid:
        name = _UNNAMED_SYNTAXES.get(uid, "unrecognised transfer syntax")
    return f"'{name}' ({uid})"


@dataclass(frozen=True)
class PixelSpec:
    """How stored values of one frame become HU."""

    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    slope: float = 1.0
    intercept: float = 0.0
    monochrome1: bool = False
    padding: tuple[int, int] | None = None
    """Stored values (inclusive range, already in the stored representation) that are padding."""
    rsna_wrap: bool = False
    """RSNA 2019 case: 12-bit unsigned CT whose values wrapped; corrected before rescale."""


@dataclass(frozen=True)
class NativeLayout:
    """Where uncompressed frames start in the file, so they can be read without parsing it."""

    offset: int
    big_endian: bool


@dataclass(frozen=True)
class DecodeJob:
    ref: FileRef
    frame: int
    n_frames: int
    transfer_syntax: str
    spec: PixelSpec
    native: NativeLayout | None = None


def decode_job(job: DecodeJob) -> np.ndarray:
    """HU of one slice (int16 or float32, rows x columns); PixelDecodeError if it cannot be done.

    Safe to run inside the program: GDCM is never used here, because it aborts the whole
    process on some corrupt files (found by fuzzing); the other decoders report errors.
    """
    return _decode(job, isolated=False)


def decode_job_isolated(job: DecodeJob) -> np.ndarray:
    """``decode_job`` for a worker process, where a crash costs only the worker: GDCM's region
    reader first (about twice as fast for JPEG), then every other decoder."""
    return _decode(job, isolated=True)


def _decode(job: DecodeJob, isolated: bool) -> np.ndarray:
    try:
        if job.native is not None:
            stored = _read_native(job)
        elif isolated:
            stored = _read_with_gdcm(job)
            if stored is None:
                stored = _read_with_pydicom(job, allow_gdcm=True)
        else:
            stored = _read_with_pydicom(job, allow_gdcm=False)
    except PixelDecodeError:
        raise
    except MemoryError as exc:
        raise PixelDecodeError(_message(job, f"not enough memory ({exc})")) from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: B036 - Rust decoders panic with a BaseException
        raise PixelDecodeError(_message(job, f"{type(exc).__name__}: {_first_line(exc)}")) from exc
    spec = job.spec
    if stored.ndim != 2 or stored.shape != (spec.rows, spec.columns):
        raise PixelDecodeError(
            _message(job, f"decoded image is {'x'.join(map(str, stored.shape))}, header says {spec.rows}x{spec.columns}")
        )
    return stored_to_hu(stored, spec)


def _message(job: DecodeJob, reason: str) -> str:
    where = job.ref.display if job.n_frames == 1 else f"{job.ref.display} (frame {job.frame + 1})"
    return f"{where}: cannot decode {syntax_label(job.transfer_syntax)} pixel data: {reason}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else type(exc).__name__


def _native_dtype(spec: PixelSpec, big_endian: bool) -> np.dtype:
    kind = "i" if spec.signed else "u"
    size = spec.bits_allocated // 8
    order = ">" if big_endian and size > 1 else "<"
    return np.dtype(f"{order}{kind}{size}")


def _read_native(job: DecodeJob) -> np.ndarray:
    spec, layout = job.spec, job.native
    assert layout is not None
    dtype = _native_dtype(spec, layout.big_endian)
    count = spec.rows * spec.columns
    start = layout.offset + job.frame * count * dtype.itemsize
    with job.ref.open() as stream:
        stream.seek(start)
        data = stream.read(count * dtype.itemsize)
    if len(data) < count * dtype.itemsize:
        raise PixelDecodeError(_message(job, f"file ends inside the pixel data ({len(data)} of {count * dtype.itemsize} bytes)"))
    return np.frombuffer(data, dtype=dtype).reshape(spec.rows, spec.columns).astype(dtype.newbyteorder("="), copy=False)


GDCM_SYNTAXES = frozenset(
    {
        "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    }
)
"""Compressed syntaxes read with GDCM's region reader straight into a buffer: measured about
twice as fast as pydicom's route (re-parse the file, copy the frame through a string)."""


def _read_with_gdcm(job: DecodeJob) -> np.ndarray | None:
    """The stored values of one frame via GDCM, or None to let pydicom's decoders try."""
    if job.ref.member is not None or job.transfer_syntax not in GDCM_SYNTAXES:
        return None
    try:
        import gdcm
    except ImportError:
        return None
    spec = job.spec
    _silence_gdcm(gdcm)
    reader = gdcm.ImageRegionReader()
    reader.SetFileName(job.ref.path)
    if not reader.ReadInformation():
        return None
    dims = gdcm.ImageHelper.GetDimensionsValue(reader.GetFile())
    if len(dims) < 2 or dims[0] != spec.columns or dims[1] != spec.rows:
        return None
    region = gdcm.BoxRegion()
    region.SetDomain(0, spec.columns - 1, 0, spec.rows - 1, job.frame, job.frame)
    reader.SetRegion(region)
    dtype = _native_dtype(spec, big_endian=False)
    length = spec.rows * spec.columns * dtype.itemsize
    if reader.ComputeBufferLength() != length:
        return None
    buffer = bytearray(length)
    if not reader.ReadIntoBuffer(buffer):
        return None
    return np.frombuffer(buffer, dtype=dtype).reshape(spec.rows, spec.columns)


def _silence_gdcm(gdcm: object) -> None:
    """GDCM prints its warnings to stderr; the reason of a failure reaches the user anyway."""
    trace = gdcm.Trace  # type: ignore[attr-defined]
    trace.WarningOff()
    trace.ErrorOff()
    trace.DebugOff()


def _read_with_pydicom(job: DecodeJob, allow_gdcm: bool) -> np.ndarray:
    import pydicom
    from pydicom.pixels import get_decoder

    with job.ref.open() as stream, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(stream, force=True)
    if "PixelData" not in ds:
        raise PixelDecodeError(_message(job, "the file has no pixel data"))
    if not ds.file_meta.get("TransferSyntaxUID"):
        ds.file_meta.TransferSyntaxUID = job.transfer_syntax
    try:
        decoder = get_decoder(job.transfer_syntax)
    except NotImplementedError as exc:
        raise PixelDecodeError(_message(job, "no decoder for this transfer syntax is available")) from exc
    if not decoder.is_available:
        raise PixelDecodeError(_message(job, "its decoder plugins are not installed (" + ", ".join(decoder.missing_dependencies) + ")"))
    index = job.frame if job.n_frames > 1 else None
    if decoder.is_native:  # deflated: pydicom reads it itself, no plugin involved
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return decoder.as_array(ds, index=index)[0]
    plugins = [name for name in decoder.available_plugins if allow_gdcm or name != "gdcm"]
    if not plugins:
        raise PixelDecodeError(_message(job, "only GDCM can decode it, and GDCM runs in worker processes only"))
    failures = []
    for plugin in plugins:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                array, _ = decoder.as_array(ds, index=index, decoding_plugin=plugin)
            return array
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: B036 - Rust decoders panic with a BaseException
            failures.append(f"{plugin}: {type(exc).__name__}: {_first_line(exc)}")
    raise PixelDecodeError(_message(job, "; ".join(failures)))


def _correct_unused_bits(stored: np.ndarray, spec: PixelSpec) -> np.ndarray:
    """Drop bits above BitsStored (overlays, garbage) and sign-extend signed values."""
    if spec.bits_stored >= stored.dtype.itemsize * 8:
        return stored
    shift = stored.dtype.itemsize * 8 - spec.bits_stored
    if spec.signed:
        signed = stored.astype(stored.dtype.str.replace("u", "i"), copy=False)
        return (signed << shift) >> shift
    return stored & stored.dtype.type((1 << spec.bits_stored) - 1)


def _plain_rescale(stored: np.ndarray, spec: PixelSpec) -> np.ndarray | None:
    """The common CT case (slope 1, whole intercept, nothing else) in one int16 pass, or None."""
    if spec.slope != 1 or not float(spec.intercept).is_integer() or spec.padding or spec.monochrome1 or spec.rsna_wrap:
        return None
    if stored.dtype.itemsize > 2 or stored.size == 0:
        return None
    intercept = int(spec.intercept)
    low, high = int(stored.min()) + intercept, int(stored.max()) + intercept
    if low < -32768 or high > 32767 or int(stored.max()) > 32767:
        return None
    return np.add(stored.astype(np.int16, copy=False), intercept, dtype=np.int16)


def stored_range(spec: PixelSpec) -> tuple[int, int]:
    """Smallest and largest value BitsStored can hold."""
    if spec.signed:
        return -(1 << (spec.bits_stored - 1)), (1 << (spec.bits_stored - 1)) - 1
    return 0, (1 << spec.bits_stored) - 1


def stored_to_hu(stored: np.ndarray, spec: PixelSpec) -> np.ndarray:
    """Apply padding, MONOCHROME1, the RSNA wrap fix and the rescale to stored values."""
    stored = _correct_unused_bits(np.asarray(stored), spec)
    quick = _plain_rescale(stored, spec)
    if quick is not None:
        return quick
    wide = np.int64 if spec.bits_allocated > 16 else np.int32
    values = stored.astype(wide)
    padding = None
    if spec.padding is not None:
        low, high = spec.padding
        padding = (values >= low) & (values <= high)
    if spec.monochrome1:
        low, high = stored_range(spec)
        values = (low + high) - values
    slope, intercept = spec.slope, spec.intercept
    if spec.rsna_wrap:
        values = values + 1000
        values[values >= 4096] -= 4096
        intercept = float(AIR_HU)
    if float(slope).is_integer() and float(intercept).is_integer() and abs(slope) < 2**15:
        small = wide is np.int32 and abs(slope) <= 1024 and abs(intercept) <= 2**20
        hu = values.astype(np.int32 if small else np.int64, copy=False)
        hu = (hu * int(slope) if slope != 1 else hu) + int(intercept)
    else:
        hu = (values.astype(np.float64) * slope + intercept).astype(np.float32)
    if padding is not None and padding.any():
        rest = hu[~padding]
        hu[padding] = min(AIR_HU, rest.min()) if rest.size else AIR_HU
    return compact_hu(hu)
