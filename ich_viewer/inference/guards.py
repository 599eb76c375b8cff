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
from ich_viewer.inference.preprocess import InputSpec, neighbour_indices, stack_input

if TYPE_CHECKING:  # pragma: no cover
    from ich_viewer.dicom.model import Series


class NonFiniteOutputError(RuntimeError):
    """The model gave NaN or infinite outputs; no result of the run may be used."""


def checked_input(series: "Series", index: int, spec: InputSpec) -> np.ndarray:
    """``series_input`` that refuses (ValueError) a centre slice with implausible HU.

    A neighbour with implausible HU counts as missing, as an undecodable one does.
    """
    images: list[np.ndarray | None] = []
    for offset, j in zip(range(-spec.context, spec.context + 1),
                         neighbour_indices(index, len(series), spec, series.spacing_mm)):
        if j is None:
            images.append(None)
            continue
        try:
            image = series.hu(j)
        except PixelDecodeError:
            if offset == 0:
                raise
            images.append(None)
            continue
        problem = hu_problem(image)
        if problem and offset == 0:
            raise ValueError(f"not analysed: {problem}")
        images.append(None if problem else image)
    return stack_input(images, spec)


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
