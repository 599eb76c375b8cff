"""The reader's verdict on one flagged slice, as plain data shared by review and exports."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ich_viewer.dicom.model import SliceHeader

ACCEPTED = "accepted"
REJECTED = "rejected"
UNDECIDED = "undecided"
STATES: tuple[str, ...] = (ACCEPTED, REJECTED, UNDECIDED)

NOTE_MAX_CHARS = 500
"""A note is a short remark, not a report; longer text is cut so exports stay tidy."""


@dataclass(frozen=True)
class Decision:
    state: str = UNDECIDED
    note: str = ""
    updated_at: str = ""
    """ISO 8601 UTC time of the last change."""

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown review state {self.state!r}; expected one of {', '.join(STATES)}")


SeriesDecisions = Mapping[str, Decision]
"""Decisions of one series keyed by ``slice_key``."""
StudyDecisions = Mapping[str, SeriesDecisions]
"""Decisions keyed by series UID, then ``slice_key``."""


def slice_key(header: SliceHeader) -> str:
    """Stable identity of a slice: its SOP Instance UID (plus the frame in a multi-frame image).

    Display indices can change when the sort rules change; the UID cannot.
    """
    if header.frame is None:
        return header.sop_instance_uid
    return f"{header.sop_instance_uid}#{header.frame}"
