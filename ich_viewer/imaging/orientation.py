"""Which way the patient lies on screen: orientation letters and a scale bar length.

DICOM patient axes (LPS): +x is the patient's Left, +y Posterior, +z Head. The image's
row direction (ImageOrientationPatient[:3]) points to the screen's right and its column
direction ([3:]) down, before the reader flips or turns the view. Letters follow the
habit of Horos and Weasis: the dominant axis first, then any other axis that takes a
real share of an oblique direction.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

AXIS_LETTERS = (("R", "L"), ("A", "P"), ("F", "H"))
"""(negative, positive) letter of each LPS axis."""
OBLIQUE_SHARE = 0.25
"""A second or third letter is shown when that axis makes up at least this much of the direction."""
EDGES = ("left", "right", "top", "bottom")
NICE_STEPS = (1.0, 2.0, 5.0)


def direction_letters(vector: Sequence[float] | np.ndarray, max_letters: int = 3) -> str:
    """Letters of a patient-space direction, strongest axis first ("L", "AR", "HPL")."""
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        return ""
    v = v / norm
    order = np.argsort(-np.abs(v), kind="stable")
    letters: list[str] = []
    for axis in order[:max_letters]:
        if abs(v[axis]) < OBLIQUE_SHARE and letters:
            break
        letters.append(AXIS_LETTERS[axis][1 if v[axis] > 0 else 0])
    return "".join(letters)


def screen_axes(orientation: Sequence[float], quarter_turns: int = 0, flip_h: bool = False,
                flip_v: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Patient directions of the screen's right and down after the reader's flips and turns.

    Flips apply to the image first, then ``quarter_turns`` clockwise turns of the view.
    """
    right = np.asarray(orientation[:3], dtype=np.float64)
    down = np.asarray(orientation[3:6], dtype=np.float64)
    if flip_h:
        right = -right
    if flip_v:
        down = -down
    for _ in range(quarter_turns % 4):
        right, down = -down, right  # what pointed up now points right
    return right, down


def edge_letters(orientation: Sequence[float] | None, quarter_turns: int = 0, flip_h: bool = False,
                 flip_v: bool = False) -> dict[str, str]:
    """The letter at the middle of each screen edge; empty without a usable orientation."""
    if orientation is None or len(orientation) != 6:
        return {}
    right, down = screen_axes(orientation, quarter_turns, flip_h, flip_v)
    if not np.linalg.norm(right) or not np.linalg.norm(down):
        return {}
    return {"left": direction_letters(-right), "right": direction_letters(right),
            "top": direction_letters(-down), "bottom": direction_letters(down)}


def scale_bar_mm(mm_per_pixel: float, target_px: float) -> float:
    """A round length (1, 2, 5 x 10^n mm) close to, and not longer than, ``target_px`` on screen."""
    if not mm_per_pixel > 0 or not target_px > 0:
        return 0.0
    limit = mm_per_pixel * target_px
    exponent = int(np.floor(np.log10(limit)))
    best = 0.0
    for power in (exponent - 1, exponent):
        for step in NICE_STEPS:
            value = step * 10.0 ** power
            if value <= limit * (1 + 1e-9):
                best = max(best, value)
    return best
