"""The reading window's state without a window: series, slices, presets, levels."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from ich_viewer.dicom.model import Series, Study
from ich_viewer.imaging.presets import BRAIN, PRESETS
from ich_viewer.imaging.windowing import window_bounds
from ich_viewer.ui.state import CUSTOM, ViewerState


def _series(n: int, uid: str, window: tuple[float, float] | None = (35.0, 90.0)) -> Series:
    return Series.from_array(np.zeros((n, 4, 4), np.float32), series_uid=uid, window=window)


def _state() -> ViewerState:
    study = Study(source="mem", series=[_series(4, "1.1"), _series(9, "1.2", window=None), _series(2, "1.3")])
    return ViewerState(study=study)


def test_importing_the_state_loads_no_qt():
    code = "import sys, ich_viewer.ui.state; print(any(m.startswith(('PySide6', 'pyqtgraph')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_study_opens_on_its_longest_series_at_the_middle_slice():
    state = _state()
    first = state.first_series()
    assert first.series_uid == "1.2"
    assert state.show(first) == 4 and state.row() == 1


def test_series_by_row_and_neighbours_stop_at_the_ends():
    state = _state()
    assert state.series_at(7) is None and state.series_at(-1) is None
    state.show(state.series_at(0))
    assert state.neighbour_row(-1) is None and state.neighbour_row(1) == 1
    state.show(state.series_at(2))
    assert state.neighbour_row(1) is None
    assert ViewerState().series_at(0) is None, "no study, no series"


def test_slices_are_clamped_and_an_unchanged_slice_is_no_change():
    state = _state()
    assert state.slice_target(3) is None, "no series yet"
    state.show(state.series_at(0))
    state.index = 2
    assert state.slice_target(99) == 3 and state.slice_target(-5) == 0
    assert state.slice_target(2) is None and state.slice_target(2, force=True) == 2
    state.index = 3
    assert state.cine_next() == 0, "cine wraps to the first slice"


def test_default_preset_follows_each_slice_and_others_are_fixed():
    state = _state()
    state.show(state.series_at(0))
    assert state.slice_window() == (35.0, 90.0), "the slice's own window"
    state.show(state.series_at(1))
    assert state.slice_window() == (BRAIN.center, BRAIN.width), "no window in the tags: Brain"
    assert state.choose_preset("9") == (PRESETS[8].center, PRESETS[8].width)
    assert state.slice_window() is None and state.preset_name() == PRESETS[8].name
    state.preset, state.window = None, (50.0, 100.0)
    assert state.preset_name() == CUSTOM and state.levels() == window_bounds(50.0, 100.0)
    state.clear()
    assert (state.study, state.series, state.index, state.header()) == (None, None, 0, None)
