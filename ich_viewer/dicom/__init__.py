"""Qt-free DICOM loading: find files, group into series, sort, decode to HU."""
from ich_viewer.dicom.model import PixelDecodeError, Series, SkippedFile, SliceHeader, Study

__all__ = ["PixelDecodeError", "Series", "SkippedFile", "SliceHeader", "Study"]
