"""Run the classifier over a series: batches, progress, cancel, results slice by slice.

A plain function (no Qt) so the window, ``analyze`` and the tests share one code path;
the Qt worker only wraps it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch

from ich_viewer import LABELS
from ich_viewer.dicom.background import outward_order
from ich_viewer.dicom.model import PixelDecodeError
from ich_viewer.inference.head_angle import sample_indices, upright_turn
from ich_viewer.inference.model import to_probabilities
from ich_viewer.inference.guards import check_finite_outputs, checked_input, plausible_slabs
from ich_viewer.inference.preprocess import InputSpec, SlabReader, brain_fraction, centre_hu, slab_note
from ich_viewer.inference.results import SeriesPrediction, SlicePrediction, flagged_labels

if TYPE_CHECKING:  # pragma: no cover
    from ich_viewer.dicom.model import Series
    from ich_viewer.inference.weights import LoadedModel


@dataclass
class PredictState:
    """Inputs and controls of one run; ``errors`` collects slices that could not be read."""

    loaded: "LoadedModel"
    batch_size: int = 8
    first_batch: int = 2
    """A small first batch so the first results show quickly."""
    start_index: int | None = None
    """Work outwards from this slice (the one on screen); None = in order from 0."""
    progress: Callable[[int, int], None] | None = None
    """(done, total) after every batch, skipped slices included."""
    cancel: Callable[[], bool] | threading.Event | None = None
    threads: int | None = None
    """torch CPU threads for this run (process-wide setting); None leaves it alone."""
    errors: dict[int, str] = field(default_factory=dict)

    def cancelled(self) -> bool:
        if self.cancel is None:
            return False
        if isinstance(self.cancel, threading.Event):
            return self.cancel.is_set()
        return bool(self.cancel())


def not_analysable(series: "Series") -> str | None:
    """Why the classifier should not run on ``series`` (None when it should).

    The network knows axial head CT only: a scout or another modality would get
    confident-looking but meaningless numbers.
    """
    if getattr(series, "refusal", None):
        return str(series.refusal)
    if getattr(series, "is_localizer", False):
        return "a localizer (scout) image, not an axial head CT"
    modality = (getattr(series, "modality", "") or "").upper()
    if modality and modality != "CT":
        return f"modality {modality}, not CT"
    return None


def slice_order(n: int, start_index: int | None) -> list[int]:
    """0..n-1, or the slices nearest ``start_index`` first (start, +1, -1, +2, ...)."""
    if start_index is None:
        return list(range(n))
    return outward_order(int(start_index), n)


def _batches(order: list[int], first: int, size: int) -> Iterator[list[int]]:
    position = 0
    width = max(1, min(first, size))
    while position < len(order):
        yield order[position:position + width]
        position += width
        width = max(1, size)


def predict(series: "Series", state: PredictState) -> Iterator[SlicePrediction]:
    """Yield one SlicePrediction per readable slice, batch by batch.

    The cancel flag is checked before each batch; a slice whose pixels cannot be decoded
    is recorded in ``state.errors`` and skipped.

    Parameters
    ----------
    series
        The series to classify (its slices are decoded here if they are not yet).
    state
        The model (``weights.load_model``), batch sizes, the slice to start from, the
        progress callback (``(done, total)`` after each batch), the cancel flag, and
        ``errors`` that this call fills with ``{slice index: reason}``.

    Returns
    -------
    Iterator[SlicePrediction]
        Lazily, in the order computed (outward from ``state.start_index`` when given):
        probabilities in ``LABELS`` order and the labels at or above the model's
        thresholds. Cancelling ends the iteration after the current batch.

    Raises
    ------
    RuntimeError
        From torch (for example out of GPU memory); decode errors never raise.

    Example
    -------
    >>> loaded = load_model(None, device="cpu")                  # doctest: +SKIP
    >>> state = PredictState(loaded, start_index=20)             # doctest: +SKIP
    >>> flagged = [p.index for p in predict(series, state) if p.flagged]  # doctest: +SKIP
    """
    loaded = state.loaded
    spec, model, device = loaded.spec, loaded.model, loaded.device
    if state.threads is not None and device.type == "cpu":
        torch.set_num_threads(max(1, int(state.threads)))
    total = len(series)
    done = 0
    order = slice_order(total, state.start_index)
    slabs = plausible_slabs(series, spec)
    prepared: dict[int, np.ndarray] = {}
    with torch.inference_mode():
        upright = series_upright(series, spec, slabs, prepared) if getattr(model, "any_stage", None) else 0.0
        for batch in _batches(order, state.first_batch, state.batch_size):
            if state.cancelled():
                return
            inputs, kept = [], []
            for index in batch:
                try:
                    inputs.append(prepared.pop(index) if index in prepared else checked_input(series, index, spec, slabs))
                    kept.append(index)
                except (PixelDecodeError, ValueError) as exc:
                    state.errors[index] = str(exc)
            if inputs:
                tensor = torch.from_numpy(np.stack(inputs)).to(device)
                outputs = model(tensor, upright)
                check_finite_outputs(outputs.detach().cpu().numpy(), series, kept)
                probs = to_probabilities(outputs)
                scored = (brain_fraction(tensor, spec) >= spec.min_brain_fraction).cpu().numpy()
            done += len(batch)
            for row, index in enumerate(kept):
                yield make_slice_prediction(series, index, probs[row], loaded.thresholds, scored=bool(scored[row]))
            if state.progress is not None:
                state.progress(done, total)


_TURNS: dict[tuple, float] = {}
"""The last series' turns, so that Grad-CAM on every slice change does not measure them again."""
_MAX_TURNS = 16


def series_upright(series: "Series", spec: InputSpec, slabs: SlabReader, prepared: dict[int, np.ndarray]) -> float:
    """The series' turn for the HU stage (``head_angle``); the inputs read for it are left in
    ``prepared`` for the run to use (slices that cannot be read are retried there and reported)."""
    for index in sample_indices(len(series)):
        try:
            prepared[index] = checked_input(series, index, spec, slabs)
        except (PixelDecodeError, ValueError):
            continue
    turn = upright_turn(centre_hu(torch.from_numpy(np.stack(list(prepared.values()))), spec)) if prepared else 0.0
    if len(_TURNS) >= _MAX_TURNS:
        _TURNS.pop(next(iter(_TURNS)))
    _TURNS[_turn_key(series, spec)] = turn
    return turn


def known_upright(series: "Series", spec: InputSpec, slabs: SlabReader) -> float:
    """``series_upright`` of a series already measured (by its run), else measured now."""
    known = _TURNS.get(_turn_key(series, spec))
    return known if known is not None else series_upright(series, spec, slabs, {})


def _turn_key(series: "Series", spec: InputSpec) -> tuple:
    """Same series (UID, slices and their files) read through the same crop and windows."""
    return (series.series_uid, len(series), series.slices[0].path if len(series) else None,
            series.slices[-1].path if len(series) else None, repr(spec))


def make_slice_prediction(series: "Series", index: int, probs: Sequence[float],
                          thresholds: dict[str, float], scored: bool = True) -> SlicePrediction:
    """One slice's result; an unscored slice (no brain) has zero probabilities and no flag."""
    header = series.slices[index]
    probabilities = {label: float(p) if scored else 0.0 for label, p in zip(LABELS, probs)}
    return SlicePrediction(
        index=index,
        sop_instance_uid=header.sop_instance_uid,
        file=header.path,
        probabilities=probabilities,
        flagged=flagged_labels(probabilities, thresholds) if scored else (),
        scored=scored,
    )


def predict_series(series: "Series", state: PredictState) -> SeriesPrediction:
    """All predictions of a series, sorted by slice index, with start and end times."""
    started = _now()
    slices = sorted(predict(series, state), key=lambda s: s.index)
    return SeriesPrediction(series_uid=series.series_uid, model=state.loaded.info, slices=slices,
                            started_at=started, finished_at=_now(), errors=dict(state.errors),
                            input_note=slab_note(series, state.loaded.spec))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
