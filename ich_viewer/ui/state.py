"""What the reading window shows, without Qt: study, series, slice and grey-level window.

``MainWindow`` keeps one ``ViewerState`` and paints it, as napari's Qt window paints its
``ViewerModel``; the rules (which slice a series opens on, clamping, the cine wrap, what
a preset means for the slice on screen) are decided here and tested without a window.
Qt-free by contract (pyproject.toml), although it lives beside the widgets it serves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ich_viewer.dicom.model import Series, Study
from ich_viewer.imaging.presets import DEFAULT, PRESETS, Preset, resolve
from ich_viewer.imaging.windowing import window_bounds

CUSTOM = "Custom"
"""The preset name shown for a window of the reader's own."""


@dataclass
class ViewerState:
    study: Study | None = None
    series: Series | None = None
    index: int = 0
    preset: Preset | None = DEFAULT
    """None: a window of the reader's own (dragged or typed)."""
    window: tuple[float, float] = (40.0, 80.0)
    """(center, width) on screen."""

    # -- study and series --------------------------------------------------------------
    def clear(self) -> None:
        self.study, self.series, self.index = None, None, 0

    def series_at(self, series_or_row: Series | int) -> Series | None:
        """The series of the open study given itself or its row (None: no study, bad row)."""
        if self.study is None:
            return None
        if isinstance(series_or_row, int):
            rows = self.study.series
            return rows[series_or_row] if 0 <= series_or_row < len(rows) else None
        return series_or_row

    def first_series(self) -> Series:
        """The series a study opens on: the image series with the most slices."""
        assert self.study is not None
        return max(self.study.image_series or self.study.series, key=lambda s: s.n_slices)

    def show(self, series: Series) -> int:
        """Put ``series`` on screen; returns the slice it opens on (the middle one)."""
        self.series = series
        return series.n_slices // 2

    def row(self) -> int | None:
        if self.study is None or self.series is None:
            return None
        return self.study.series.index(self.series)

    def neighbour_row(self, step: int) -> int | None:
        """The row ``step`` series away, or None at either end."""
        row = self.row()
        if row is None or self.study is None:
            return None
        row += step
        return row if 0 <= row < len(self.study.series) else None

    # -- slices --------------------------------------------------------------------------
    def slice_target(self, index: int, force: bool = False) -> int | None:
        """``index`` clamped to the series; None when there is nothing to change."""
        if self.series is None:
            return None
        index = int(min(max(index, 0), self.series.n_slices - 1))
        return None if index == self.index and not force else index

    def cine_next(self) -> int:
        """The next slice for cine, wrapping from the last to the first."""
        assert self.series is not None
        return (self.index + 1) % self.series.n_slices

    def header(self) -> Any:
        """The SliceHeader on screen (None without a series)."""
        return self.series.slices[self.index] if self.series is not None else None

    # -- grey-level window -------------------------------------------------------------------
    def choose_preset(self, preset: Preset | str) -> tuple[float, float]:
        """Select a preset (or its key "1".."9", "0"); returns the window it means here."""
        if isinstance(preset, str):
            preset = next(p for p in PRESETS if p.key == preset)
        self.preset = preset
        return resolve(preset, self.header())

    def slice_window(self) -> tuple[float, float] | None:
        """With the Default preset, each slice brings its own window; otherwise None."""
        if self.preset is not None and self.preset.is_default:
            return resolve(self.preset, self.header())
        return None

    def preset_name(self) -> str:
        return self.preset.name if self.preset is not None else CUSTOM

    def levels(self) -> tuple[float, float]:
        """(black, white) HU of the window on screen (DICOM VOI LINEAR)."""
        return window_bounds(*self.window)
