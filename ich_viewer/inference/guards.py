"""Checks around the network that turn silent wrong answers into stated refusals.

Kept apart from ``predict`` so the prediction loop stays small: ``checked_input`` refuses
a slice whose HU cannot be real CT, ``check_finite_outputs`` stops a run whose model
produces NaN or infinity (tampered or broken weights would otherwise still "flag"
slices, and NaN is not even valid JSON).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ich_viewer.dicom.model import PixelDecodeError
from ich_viewer.dicom.plausibility import hu_problem
from ich_viewer.inference.preprocess import InputSpec, SlabReader, series_slab_reader, stack_input

if TYPE_CHECKING:  # pragma: no cover
    from ich_viewer.dicom.model import Series


class NonFiniteOutputError(RuntimeError):
    """The model gave NaN or infinite outputs; no result of the run may be used."""


def checked_slices(series: "Series", index: int, spec: InputSpec,
                   slabs: SlabReader | None = None) -> list[np.ndarray | None]:
    """``series_slices`` that refuses (ValueError) a centre slice with implausible HU.

    A slice with implausible HU counts as missing in a neighbour or a slab, as an
    undecodable one does. Pass the same ``slabs`` (``plausible_slabs``) for every slice of
    a run so that thin series average each slab once.
    """
    problem = hu_problem(series.hu(index))  # an undecodable centre raises PixelDecodeError
    if problem:
        raise ValueError(f"not analysed: {problem}")
    slabs = slabs or plausible_slabs(series, spec)
    return slabs.around(index, spec, series.spacing_mm)


def checked_input(series: "Series", index: int, spec: InputSpec, slabs: SlabReader | None = None) -> np.ndarray:
    """The network input of ``checked_slices``."""
    return stack_input(checked_slices(series, index, spec, slabs), spec)


def plausible_slabs(series: "Series", spec: InputSpec) -> SlabReader:
    """Slabs of the slices that decode and hold plausible HU (each slice judged once: a thin
    slice is read by up to nine slabs)."""
    verdicts: dict[int, bool] = {}

    def plausible(j: int) -> np.ndarray | None:
        try:
            image = series.hu(j)
        except PixelDecodeError:
            return None
        if j not in verdicts:
            verdicts[j] = hu_problem(image) is None
        return image if verdicts[j] else None

    return series_slab_reader(series, spec, plausible)


def check_finite_outputs(outputs: np.ndarray, series: "Series", indices: list[int]) -> None:
    """Raise ``NonFiniteOutputError`` naming the slices when any output is not a finite number."""
    values = np.asarray(outputs, dtype=np.float64)
    bad_rows = sorted({int(r) for r in np.argwhere(~np.isfinite(values))[:, 0]}) if values.size else []
    if not bad_rows:
        return
    where = ", ".join(str(indices[r] + 1) for r in bad_rows[:5]) + (" ..." if len(bad_rows) > 5 else "")
    raise NonFiniteOutputError(
        f"the model produced non-finite outputs (NaN or infinity) on slice(s) {where} of series "
        f"{series.series_uid}: the weights are broken or were tampered with; the run was stopped and "
        "no result of it is used"
    )
