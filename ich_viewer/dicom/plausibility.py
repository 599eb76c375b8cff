"""Is a slice's Hounsfield scale trustworthy? A wrong HU scale gives a confident wrong answer.

The classifier reads fixed HU windows: a series read 1,024 HU too bright (a NaN
intercept taken as 0) or scaled by 1e300 is analysed as "normal" or "all subdural"
without any visible error. So the rescale is checked twice:

- from the header (``check_rescale``): a missing, unreadable, non-finite, non-positive
  or absurd RescaleSlope/RescaleIntercept makes the slice unusable for analysis (the
  reason travels with the slice header); a missing slope, which the standard lets
  default to 1, is repaired and said;
- from the decoded pixels (``hu_problem``): a slice whose values are not finite or lie
  mostly far outside the range CT can produce (-1,100 ... +4,000 HU) is not analysed.

Both only read; nothing here imports Qt or torch.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

HU_LOW, HU_HIGH = -1100.0, 4000.0
"""What a head CT holds: air (-1,000) up to dense bone and small metal; see DESIGN.md."""
MAX_SLOPE = 100.0
"""No CT scanner stores HU coarser than this; a larger slope is a broken header."""
MAX_ABS_INTERCEPT = 32768.0
"""Beyond any 16-bit offset a scanner uses (-1,024, -8,192, -32,768 are seen)."""
MAX_ABS_HU = 100_000.0
"""Even extended-range metal stays far below this; larger means a broken scale."""
MIN_INSIDE_SHARE = 0.5
"""At least this share of a slice must lie within HU_LOW..HU_HIGH (padding outside the
field of view, often -2,000 or -3,024, is up to a quarter of a square image)."""


def _parse(raw: Any) -> tuple[float | None, str | None]:
    """(value, None), (None, "missing") or (None, why the value is unusable)."""
    if raw is not None and not isinstance(raw, (str, bytes)) and hasattr(raw, "__len__"):
        raw = raw[0] if len(raw) else None  # a multi-valued DS: the first value counts
    if raw is None or (isinstance(raw, (str, bytes)) and not raw.strip()):
        return None, "missing"
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        return None, f"unreadable value {str(raw)[:20]!r}"
    if not math.isfinite(value):
        return None, f"{value!r} is not a finite number"
    return value, None


def check_rescale(raw_slope: Any, raw_intercept: Any) -> tuple[float, float, list[str], list[str]]:
    """(slope, intercept, problems, repairs) for one slice of a CT.

    ``problems`` non-empty: the slice must not be analysed (slope 1 / intercept 0 are
    returned only so the image can still be looked at). ``repairs``: values this
    function filled in, to be shown to the reader.
    """
    problems: list[str] = []
    repairs: list[str] = []
    slope, why = _parse(raw_slope)
    if why == "missing":
        slope = 1.0
        repairs.append("RescaleSlope missing: taken as 1")
    elif why is not None:
        problems.append(f"RescaleSlope {why}")
    elif slope is not None and slope <= 0:
        problems.append(f"RescaleSlope {slope:g} is not positive")
    elif slope is not None and slope > MAX_SLOPE:
        problems.append(f"RescaleSlope {slope:g} is implausible (above {MAX_SLOPE:g})")
    intercept, why = _parse(raw_intercept)
    if why == "missing":
        problems.append("RescaleIntercept missing (the HU offset is unknown)")
    elif why is not None:
        problems.append(f"RescaleIntercept {why}")
    elif intercept is not None and abs(intercept) > MAX_ABS_INTERCEPT:
        problems.append(f"RescaleIntercept {intercept:g} is implausible")
    if problems:
        return 1.0, 0.0, problems, repairs
    assert slope is not None and intercept is not None
    return slope, intercept, problems, repairs


def hu_problem(hu: np.ndarray) -> str | None:
    """Why a decoded slice cannot be HU of a head CT, or None when it can."""
    values = np.asarray(hu)
    if values.size == 0:
        return "empty image"
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        return "the slice holds non-finite values (NaN or infinity) after rescaling"
    low, high = float(values.min()), float(values.max())
    if max(abs(low), abs(high)) > MAX_ABS_HU:
        return f"values from {low:.4g} to {high:.4g} HU are far outside what CT can produce"
    inside = np.count_nonzero((values >= HU_LOW) & (values <= HU_HIGH)) / values.size
    if inside < MIN_INSIDE_SHARE:
        return (f"only {inside:.0%} of the slice lies within {HU_LOW:g}..{HU_HIGH:g} HU "
                f"(values {low:.4g} to {high:.4g}): the HU scale is wrong")
    return None


def series_refusal(problems: list[str | None], n_slices: int) -> str | None:
    """One sentence for a series whose slices carry header problems, else None."""
    bad = [p for p in problems if p]
    if not bad:
        return None
    distinct = list(dict.fromkeys(bad))
    more = f" (and {len(distinct) - 1} other problem(s))" if len(distinct) > 1 else ""
    return (f"unsafe to analyse: its HU scale cannot be trusted ({distinct[0]}{more}, "
            f"on {len(bad)} of {n_slices} slice(s))")
