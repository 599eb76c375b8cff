"""Transfer syntaxes the phantom writer can produce, and how each one is encoded.

Uncompressed and deflated syntaxes are plain pydicom writes; RLE, JPEG-LS and JPEG 2000
use pydicom's own encoders (pylibjpeg / pyjpegls plugins); JPEG lossless (process 14)
has no pydicom encoder, so python-gdcm transcodes the written file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom import uid as dcm_uid


@dataclass(frozen=True)
class Syntax:
    name: str
    uid: str
    lossless: bool
    encoder: str
    """"none" (written as is), "pydicom" (Dataset.compress) or "gdcm" (transcoded file)."""


SYNTAXES: dict[str, Syntax] = {
    s.name: s
    for s in (
        Syntax("implicit", dcm_uid.ImplicitVRLittleEndian, True, "none"),
        Syntax("explicit", dcm_uid.ExplicitVRLittleEndian, True, "none"),
        Syntax("big", dcm_uid.ExplicitVRBigEndian, True, "none"),
        Syntax("deflated", dcm_uid.DeflatedExplicitVRLittleEndian, True, "none"),
        Syntax("rle", dcm_uid.RLELossless, True, "pydicom"),
        Syntax("jpeg-ls", dcm_uid.JPEGLSLossless, True, "pydicom"),
        Syntax("jpeg2000", dcm_uid.JPEG2000Lossless, True, "pydicom"),
        Syntax("jpeg-lossless", dcm_uid.JPEGLosslessSV1, True, "gdcm"),
        Syntax("jpeg-lossless-p14", dcm_uid.JPEGLossless, True, "gdcm"),
        Syntax("jpeg-ls-near", dcm_uid.JPEGLSNearLossless, False, "pydicom"),
        Syntax("jpeg2000-lossy", dcm_uid.JPEG2000, False, "pydicom"),
    )
}
"""Every name accepted by ``write_series(syntax=...)`` and ``ich-viewer phantom --syntax``."""

_GDCM_NAMES = {
    dcm_uid.JPEGLosslessSV1: "JPEGLosslessProcess14_1",
    dcm_uid.JPEGLossless: "JPEGLosslessProcess14",
}


class SyntaxUnavailable(RuntimeError):
    """The requested syntax has no working encoder in this installation."""


def get_syntax(name: str) -> Syntax:
    try:
        return SYNTAXES[name]
    except KeyError:
        raise ValueError(f"unknown transfer syntax {name!r}; choose one of {', '.join(SYNTAXES)}") from None


def encoder_available(name: str) -> bool:
    """Whether this installation can write ``name`` (checked, not assumed)."""
    syntax = get_syntax(name)
    if syntax.encoder == "none":
        return True
    if syntax.encoder == "gdcm":
        try:
            import gdcm  # noqa: F401
        except ImportError:
            return False
        return True
    from pydicom.pixels import get_encoder

    try:
        return bool(get_encoder(syntax.uid).is_available)
    except NotImplementedError:
        return False


def available_syntaxes(lossless_only: bool = False) -> list[str]:
    return [n for n, s in SYNTAXES.items() if encoder_available(n) and (s.lossless or not lossless_only)]


def compress_in_memory(ds: Dataset, syntax: Syntax) -> None:
    """Encode the dataset's native pixel data with pydicom's encoder for ``syntax``."""
    kwargs: dict = {}
    if syntax.uid == dcm_uid.JPEGLSNearLossless:
        kwargs["jls_error"] = 2
    elif syntax.uid == dcm_uid.JPEG2000:
        kwargs["j2k_cr"] = [20]
    ds.compress(syntax.uid, generate_instance_uid=False, **kwargs)


def transcode_file_with_gdcm(path: Path, syntax: Syntax) -> None:
    """Rewrite a written file in ``syntax`` with gdcm (atomically replaces it)."""
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise SyntaxUnavailable(f"gdcm could not read {path}")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, _GDCM_NAMES[syntax.uid])))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise SyntaxUnavailable(f"gdcm could not encode {syntax.name}")
    writer = gdcm.ImageWriter()
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    tmp = path.with_name(path.name + ".tmp")
    writer.SetFileName(str(tmp))
    if not writer.Write():
        raise SyntaxUnavailable(f"gdcm could not write {syntax.name}")
    os.replace(tmp, path)

