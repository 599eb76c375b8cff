"""Per-slice predictions as plain data: what the worker emits, analyze writes and reports read."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ich_viewer import LABELS


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the weights that produced a prediction (from the model card)."""

    name: str
    version: str
    sha256: str
    device: str
    thresholds: dict[str, float]
    architecture: str = ""


@dataclass(frozen=True)
class SlicePrediction:
    """The six probabilities of one slice, in ``LABELS`` order, and what crossed threshold."""

    index: int
    """Position in the series' display order."""
    sop_instance_uid: str
    file: str
    probabilities: dict[str, float]
    flagged: tuple[str, ...]
    """Labels whose probability is at or above the model's threshold, in ``LABELS`` order."""
    scored: bool = True
    """False for a slice without brain tissue (above the vertex, a head holder, the skull
    cap): the network was not asked, its probabilities are 0 and nothing is flagged; a
    reader is told "no brain on this slice", never that it is negative."""

    @property
    def note(self) -> str:
        return "" if self.scored else NO_BRAIN_NOTE

    def to_dict(self) -> dict:
        data = asdict(self)
        data["flagged"] = list(self.flagged)
        data["note"] = self.note
        return data


NO_BRAIN_NOTE = "no brain on this slice (not scored)"


@dataclass
class SeriesPrediction:
    """All slice predictions of one series plus the model that made them."""

    series_uid: str
    model: ModelInfo
    slices: list[SlicePrediction] = field(default_factory=list)
    started_at: str = ""
    """ISO 8601 time the run started (UTC)."""
    finished_at: str = ""
    errors: dict[int, str] = field(default_factory=dict)
    """Slices (display index) that were not analysed, and why: they reach every export."""
    input_note: str = ""
    """How the slices were fed when not as they are (a thin series averaged into slabs,
    ``preprocess.slab_note``): the reader should know what each probability describes."""

    @property
    def flagged_slices(self) -> list[SlicePrediction]:
        return [s for s in self.slices if s.flagged]

    def suspected_labels(self) -> list[str]:
        """Subtypes (and "any") flagged on at least one slice, in ``LABELS`` order."""
        found = {label for s in self.slices for label in s.flagged}
        return [label for label in LABELS if label in found]


def flagged_labels(probabilities: dict[str, float], thresholds: dict[str, float]) -> tuple[str, ...]:
    """Labels at or above their threshold, in ``LABELS`` order."""
    return tuple(label for label in LABELS if probabilities[label] >= thresholds[label])
