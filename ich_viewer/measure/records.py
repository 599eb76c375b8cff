"""Measurements as plain records: what the window draws, the store keeps and reports print.

A record holds what the reader drew (points in pixel coordinates of one slice, or a seed
and HU range for a volume) and the values computed from it, so a report never needs the
window, and a reopened study redraws the same marks.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np

from ich_viewer.measure import planar
from ich_viewer.measure.edit import Stroke
from ich_viewer.measure.planar import Calibration, Point
from ich_viewer.measure.region import DEFAULT_HU, Region

KINDS: dict[str, int] = {"distance": 2, "angle": 3, "ellipse": 2, "polygon": 3, "midline": 3, "volume": 1}
"""Each tool and the number of points it needs (polygon: at least)."""
SUBTYPE_CHOICES = ("unspecified", "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
ELLIPSOID_SUBTYPES = ("unspecified", "intraparenchymal")
"""Subtypes beside which ABC/2 is shown without its caveat: the reader has not said, or it is the
hematoma the formula was made for."""
ABC2_CAVEAT = "IPH formula"
FACTS_APART = " · "
"""Between the facts of a label (the window puts each on its own line on the image)."""


@dataclass
class Measurement:
    kind: str
    series_uid: str
    slice_index: int
    """Display index (foot to head) where it was drawn; for a volume the seed's slice."""
    slice_uid: str
    """SOP Instance UID of that slice (stable when the sort order changes)."""
    points: list[tuple[float, float]]
    """(row, col) pixels; ellipse: centre and (row radius, col radius); volume: the seed."""
    value: float
    unit: str
    text: str
    """What the reader sees beside the mark and in the reports."""
    details: dict[str, Any] = field(default_factory=dict)
    """ROI statistics, or the volume's HU range, slices, ABC/2, subtype."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["points"] = [list(p) for p in self.points]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Measurement":
        kind = str(data["kind"])
        if kind not in KINDS:
            raise ValueError(f"unknown measurement kind {kind!r}")
        return cls(kind=kind, series_uid=str(data["series_uid"]), slice_index=int(data["slice_index"]),
                   slice_uid=str(data.get("slice_uid", "")),
                   points=[(float(p[0]), float(p[1])) for p in data["points"]], value=float(data["value"]),
                   unit=str(data["unit"]), text=str(data["text"]), details=dict(data.get("details", {})),
                   id=str(data.get("id") or uuid.uuid4().hex[:12]), created_at=str(data.get("created_at", "")))

    @property
    def seed(self) -> tuple[int, int, int]:
        """A volume's seed as (slice, row, col): what it is regrown from."""
        return self.slice_index, int(self.points[0][0]), int(self.points[0][1])

    @property
    def more_seeds(self) -> list[tuple[int, int, int]]:
        """A volume's further clicks (slice, row, col), pieces of the same bleed (``measure.clicks``)."""
        return [(int(s[0]), int(s[1]), int(s[2])) for s in self.details.get("more_seeds") or []]

    @property
    def hu_range(self) -> tuple[float, float]:
        """A volume's blood HU range (the default when a record has none)."""
        low, high = (self.details.get("hu_range") or DEFAULT_HU)[:2]
        return float(low), float(high)

    @property
    def label(self) -> str:
        return {"distance": "Distance", "angle": "Angle", "ellipse": "Ellipse ROI", "polygon": "Polygon ROI",
                "midline": "Midline shift", "volume": "Bleed volume"}[self.kind]


def planar_measurement(kind: str, points: Sequence[Point], image: np.ndarray, cal: Calibration, *,
                       series_uid: str = "", slice_index: int = 0, slice_uid: str = "") -> Measurement:
    """Compute a one-slice measurement from the points the reader placed.

    ``ellipse`` takes two corners of its bounding box; ``midline`` the two ends of the
    expected midline then the septum pellucidum.
    """
    pts = [(float(r), float(c)) for r, c in points]
    if kind not in KINDS or kind == "volume":
        raise ValueError(f"{kind!r} is not a one-slice measurement")
    if len(pts) < KINDS[kind]:
        raise ValueError(f"a {kind} needs {KINDS[kind]} points, got {len(pts)}")
    suffix = f" ({cal.note})" if cal.note else ""
    details: dict[str, Any] = {}
    if kind == "distance":
        value, unit = planar.distance(pts[0], pts[1], cal), cal.unit
        text = f"{value:.1f} {unit}"
    elif kind == "angle":
        value, unit = planar.angle_deg(pts[0], pts[1], pts[2], cal), "deg"
        text = f"{value:.1f}°"
    elif kind == "midline":
        shift = planar.midline_shift(pts[0], pts[1], pts[2], cal)
        value, unit = shift.shift, shift.unit
        details = {"side": shift.side}
        text = f"shift {value:.1f} {unit} ({shift.side})"
    else:
        if kind == "ellipse":
            (r0, c0), (r1, c1) = pts[0], pts[1]
            centre, radii = ((r0 + r1) / 2, (c0 + c1) / 2), (abs(r1 - r0) / 2, abs(c1 - c0) / 2)
            stats = planar.ellipse_stats(image, centre, radii, cal)
            pts = [centre, radii]
        else:
            stats = planar.polygon_stats(image, pts, cal)
        value, unit = stats.mean, "HU"
        details = {"pixels": stats.pixels, "mean": stats.mean, "sd": stats.sd, "min": stats.min, "max": stats.max,
                   "area": stats.area, "area_unit": stats.area_unit}
        text = stats.text()
    return Measurement(kind, series_uid, slice_index, slice_uid, pts, float(value), unit, text + suffix, details)


def volume_measurement(region: Region, *, series_uid: str = "", slice_uid: str = "",
                       subtype: str = "unspecified", edits: Sequence[Stroke] = ()) -> Measurement:
    """A grown region as a record; the mask is not stored (regrown from seed and range, then
    the brush ``edits`` the region already carries replayed)."""
    if not region.ok:
        raise ValueError(region.reason or "nothing was grown")
    k, i, j = region.seed
    unit = "mL" if region.calibrated else "mL (uncalibrated)"
    details = region.to_dict()
    details["subtype"] = subtype
    if edits:
        details["edits"] = [stroke.to_list() for stroke in edits]
    abc = f"{FACTS_APART}ABC/2 {region.abc2_ml:.1f} mL" if region.abc2_ml is not None else ""
    edited = f"{FACTS_APART}edited" if edits else ""
    facts = (f"{region.volume_ml:.1f} {unit}{abc}{FACTS_APART}{len(region.slices)} slices"
             f"{FACTS_APART}mean {region.mean_hu:.0f} HU{edited}")
    return Measurement("volume", series_uid, k, slice_uid, [(float(i), float(j))], region.volume_ml, unit,
                       volume_text(facts, subtype), details)


def volume_text(facts: str, subtype: str) -> str:
    """A volume's label: its facts with the subtype the reader gave. ABC/2 is an ellipsoid formula
    for intraparenchymal hematomas: beside a bleed called anything else (a crescent, a lens) it
    over-estimates several-fold, and the label says so, as the PDF does."""
    caveat = f" ({ABC2_CAVEAT})" if subtype not in ELLIPSOID_SUBTYPES else ""
    text = FACTS_APART.join(fact + caveat if fact.startswith("ABC/2 ") else fact for fact in facts.split(FACTS_APART))
    return text if subtype == "unspecified" else f"{subtype}: {text}"


def volume_facts(text: str) -> str:
    """A volume's label without its subtype and ABC/2's caveat (``volume_text`` adds them back)."""
    named, _, rest = text.partition(": ")
    return (rest if rest and named in SUBTYPE_CHOICES else text).replace(f" ({ABC2_CAVEAT})", "")
