"""Thin series as thick slabs and in three planes: the window's view over ``imaging.reformat``.

T shows the image as a thick slab (average or MIP, 5 mm unless changed; ``[`` / ``]``
thinner / thicker, Shift+T switches average and MIP). Average is the default: on a
non-contrast head CT it reads like the usual 5 mm axial series, with less noise than the
thin slices; MIP brightens bone and calcification and is there for dense structures. X adds a coronal and a sagittal
reformat beside the image (three views) with cross-reference lines: a click in any view
moves the other two there, the wheel over a reformat moves its plane. The classifier keeps
scoring the acquired slices; their flags are ticks at the edges of both reformats, and a
click on a reformat opens the acquired slice at that height. The grid is built off the UI
thread once per series (tilt corrected by ``imaging.reformat``); each frame is a cut of it.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

import pyqtgraph as pg

from ich_viewer.dicom.model import Series
from ich_viewer.imaging.palette import label_colour
from ich_viewer.imaging.reformat import DEFAULT_SLAB_MM, Reformat, reformat_series
from ich_viewer.options import ViewOptions
from ich_viewer.tasks import TaskState
from ich_viewer.ui.extension import ViewerWindow
from ich_viewer.ui.image_view import SliceView
from ich_viewer.ui.inference_panel import EXTENSION_NAME as INFERENCE, InferenceController
from ich_viewer.ui.tasks import TaskRunner

log = logging.getLogger(__name__)

EXTENSION_NAME = "reformat"
THICKNESSES_MM = (1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0)
CROSS_PEN = pg.mkPen(QColor(255, 210, 60, 170), width=1)
TICK_FRACTION = 0.04
"""Flag ticks reach this far into a reformat from each side."""
MODE_NAMES = {"mip": "MIP", "average": "avg"}
SLAB_LINES = ("Slab", "No slab")
"""How the slab's line in the image's corner text starts (it sits under the slice's own Thk)."""


class ReformatPanel(QWidget):
    """The coronal reformat above the sagittal one (hidden until three views are asked for)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reformat_panel")
        self.coronal = SliceView()
        self.sagittal = SliceView()
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.coronal)
        splitter.addWidget(self.sagittal)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.cross: dict[str, tuple[pg.InfiniteLine, pg.InfiniteLine]] = {}
        self.ticks: dict[str, pg.PlotCurveItem] = {}
        for name, view in (("coronal", self.coronal), ("sagittal", self.sagittal)):
            self.cross[name] = _cross_lines(view)
            ticks = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(QColor(*label_colour("any")), width=3))
            view.view_box.addItem(ticks)
            self.ticks[name] = ticks
        self.hide()


def _cross_lines(view: SliceView) -> tuple[pg.InfiniteLine, pg.InfiniteLine]:
    """A horizontal and a vertical line on ``view`` that never take the mouse."""
    lines = (pg.InfiniteLine(angle=0, pen=CROSS_PEN, movable=False),
             pg.InfiniteLine(angle=90, pen=CROSS_PEN, movable=False))
    for line in lines:
        line.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        line.setZValue(20)
        line.hide()
        view.view_box.addItem(line, ignoreBounds=True)
    return lines


class ReformatController(QObject):
    """Slab display and the three-view layout for the series on screen."""

    ready = Signal(object)
    """Reformat: the grid of the series on screen is built (its views are drawn)."""

    def __init__(self, window: ViewerWindow) -> None:
        super().__init__(window)  # type: ignore[arg-type]
        self.window = window
        self.view = window.image_view()
        self.slab_on = False
        self.three_views = False
        self.mode = "average"
        self.thickness_mm = DEFAULT_SLAB_MM
        self.reformat: Reformat | None = None
        self.cross_row = 0
        """Grid row of the coronal plane."""
        self.cross_col = 0
        """Grid column of the sagittal plane."""
        self._series: Series | None = None
        """The series the grid (built or being built) belongs to."""
        self._inference_connected = False
        self._drawn: dict[str, tuple] = {}
        """What each reformat view shows (grid, plane, slab): a slice change only moves the lines."""
        self.failure: str | None = None
        """Why the series on screen has no grid (one image, no positions), else None."""
        self.runner = TaskRunner(self)
        self.runner.done.connect(self._on_built)
        self.runner.failed.connect(self._on_failed)
        self.panel = ReformatPanel()
        window.add_view(self.panel, stretch=2)  # the axial image keeps the larger share
        self.axial_cross = _cross_lines(self.view)
        self._build_actions()
        for name, view in (("coronal", self.panel.coronal), ("sagittal", self.panel.sagittal)):
            view.graphics.scene().sigMouseClicked.connect(lambda event, name=name: self._on_reformat_click(name, event))
            view.view_box.wheel_steps.connect(lambda steps, name=name: self.move_plane(name, steps))
        self.view.graphics.scene().sigMouseClicked.connect(self._on_axial_click)
        window.series_shown.connect(self._on_series)
        window.slice_changed.connect(lambda _index: self.render())
        window.window_changed.connect(self._on_window)
        window.overlays_rewritten.connect(self._mark_overlay)
        window.study_closing.connect(self._on_closing)
        window.installEventFilter(self)

    # -- actions ---------------------------------------------------------------------------
    def _build_actions(self) -> None:
        add = self.window.add_action
        menu = self.window.menu("View").addMenu("Slab and &reformats")
        self.slab_action = add("slab", "Thick &slab (average / MIP)", self.toggle_slab, ("T",), True)
        self.views_action = add("three_views", "&Three views: axial, coronal, sagittal", self.toggle_three_views,
                                ("X",), True)
        for action in (
            self.slab_action,
            self.views_action,
            add("slab_mode", "Slab: switch average / MIP", self.toggle_mode, ("Shift+T",)),
            add("slab_thicker", "Slab thicker", lambda: self.step_thickness(1), ("]",)),
            add("slab_thinner", "Slab thinner", lambda: self.step_thickness(-1), ("[",)),
        ):
            menu.addAction(action)

    def toggle_slab(self) -> None:
        self.set_slab(not self.slab_on)

    def set_slab(self, on: bool) -> None:
        self.slab_on = on
        self.slab_action.setChecked(on)
        self._refresh(restore=not on)

    def toggle_three_views(self) -> None:
        self.set_three_views(not self.three_views)

    def set_three_views(self, on: bool) -> None:
        self.three_views = on
        self.views_action.setChecked(on)
        self.panel.setVisible(on)
        self._refresh()

    def toggle_mode(self) -> None:
        self.mode = "average" if self.mode == "mip" else "mip"
        self.render()

    def step_thickness(self, step: int) -> None:
        """The next thickness in ``THICKNESSES_MM`` (turns the slab on)."""
        nearest = int(np.argmin([abs(t - self.thickness_mm) for t in THICKNESSES_MM]))
        self.thickness_mm = THICKNESSES_MM[min(max(nearest + step, 0), len(THICKNESSES_MM) - 1)]
        if not self.slab_on:
            self.set_slab(True)
        else:
            self.render()

    # -- the grid --------------------------------------------------------------------------
    def active(self) -> bool:
        return self.slab_on or self.three_views

    def _refresh(self, restore: bool = False) -> None:
        """Build the grid when a mode needs it, then draw (``restore``: the acquired slice again)."""
        series = self.window.current_series()
        if self.active() and series is not None and self._series is not series:
            self._start(series)
        self.render(restore)

    def _start(self, series: Series) -> None:
        self._series, self.reformat, self.failure = series, None, None
        self.runner.start(lambda state: _build(series, state))
        self.window.show_status("Building slab and reformats…", 5000)

    def _on_built(self, reformat: Reformat | None) -> None:
        if reformat is None or self._series is not self.window.current_series():
            return
        self.reformat = reformat
        self._drawn.clear()  # a new grid: every view is drawn afresh
        rows, cols = reformat.slice_shape
        self.cross_row, self.cross_col = (int(v) for v in np.rint(
            reformat.grid_index(self.window.current_index(), rows / 2, cols / 2)[1:]))
        self.window.show_status("Reformats: gantry tilt corrected (resampled onto a regular grid)"
                                if reformat.tilt_corrected else "Slab and reformats ready", 5000)
        self.render()
        self.ready.emit(reformat)

    def _on_failed(self, message: str) -> None:
        self.failure = message
        self.window.show_status(f"No slab or reformats for this series: {message}", 10000)
        self.render()

    def _on_series(self, series: Series) -> None:
        self._forget()
        self._connect_inference()
        if self.active():
            self._start(series)
        self.render()

    def _on_closing(self) -> None:
        self._forget()
        self.render()

    def _forget(self) -> None:
        """Drop the grid and empty the reformat views: another series' planes must never stay on screen."""
        self.runner.cancel()
        self._series, self.reformat, self.failure = None, None, None
        self._drawn.clear()
        for view in (self.panel.coronal, self.panel.sagittal):
            view.clear()
            view.overlays.set_texts({corner: "" for corner in ("top_left", "bottom_left", "bottom_right")})
        for ticks in self.panel.ticks.values():
            ticks.setData([], [])

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Close and watched is self.window:
            self.runner.shutdown(3.0)
        return False

    # -- drawing ---------------------------------------------------------------------------
    def slab_text(self) -> str:
        """The slab's line in the image's corner text."""
        if self.failure is not None:
            return f"No slab: {self.failure[:60]}"
        if self.reformat is None:
            return "Slab: preparing…"
        planes = self.reformat.planes_for(self.thickness_mm)
        if planes == 1:
            return f"Slab {self.thickness_mm:g} mm ≤ 1 slice: as acquired"
        return f"Slab {self.thickness_mm:g} mm {MODE_NAMES[self.mode]}"  # short: the corner is narrow

    def _mark_overlay(self) -> None:
        """Put the slab's line under the slice's own thickness (again each time the window
        rewrites its corner texts, e.g. when a slice's pixels arrive after the slice change)."""
        overlays = self.view.overlays
        lines = [line for line in overlays.text("bottom_left").splitlines() if not line.startswith(SLAB_LINES)]
        if self.slab_on and self.window.current_series() is not None:
            lines.append(self.slab_text())
        overlays.set_texts({"bottom_left": "\n".join(lines)})

    def render(self, restore: bool = False) -> None:
        """Draw the slab on the image and the reformats for the slice on screen."""
        reformat, index = self.reformat, self.window.current_index()
        ready = reformat is not None and self.window.current_series() is self._series
        if self.slab_on and self.window.current_series() is not None:
            if ready and reformat is not None and reformat.planes_for(self.thickness_mm) > 1:
                slab = reformat.axial(index, self.thickness_mm, self.mode)
                self.view.set_image(slab, tuple(self.view.image_item.getLevels()), reformat.grid.spacing[1:])
        elif restore and self.window.current_series() is not None:
            self.window.set_slice(index, force=True)  # the acquired slice again
        self._mark_overlay()
        show_cross = self.three_views and ready
        for line in (*self.axial_cross, *self.panel.cross["coronal"], *self.panel.cross["sagittal"]):
            line.setVisible(show_cross)
        if show_cross and reformat is not None:
            self._draw_reformats(reformat, index)

    def _draw_reformats(self, reformat: Reformat, index: int) -> None:
        plane_mm, row_mm, col_mm = reformat.grid.spacing
        levels = tuple(self.view.image_item.getLevels())
        thickness = self.thickness_mm if self.slab_on else 0.0
        self.cross_row = int(np.clip(self.cross_row, 0, reformat.grid.shape[1] - 1))
        self.cross_col = int(np.clip(self.cross_col, 0, reformat.grid.shape[2] - 1))
        for name, view, cut, position, spacing in (
            ("coronal", self.panel.coronal, reformat.coronal, self.cross_row, (plane_mm, col_mm)),
            ("sagittal", self.panel.sagittal, reformat.sagittal, self.cross_col, (plane_mm, row_mm)),
        ):
            key = (position, thickness, self.mode)
            if self._drawn.get(name) != key:
                view.set_image(cut(position, thickness, self.mode), levels, spacing)
                self._drawn[name] = key
        height = (reformat.display_row(float(reformat.slice_plane[index])) + 0.5) * plane_mm
        top, left = reformat.slice_offset[index]
        horizontal, vertical = self.axial_cross
        horizontal.setValue((self.cross_row - top + 0.5) * row_mm)
        vertical.setValue((self.cross_col - left + 0.5) * col_mm)
        for name, across in (("coronal", (self.cross_col + 0.5) * col_mm), ("sagittal", (self.cross_row + 0.5) * row_mm)):
            horizontal, vertical = self.panel.cross[name]
            horizontal.setValue(height)
            vertical.setValue(across)
        self._draw_ticks(reformat)
        self.panel.coronal.overlays.set_texts({"top_left": self._title("Coronal"), "bottom_left": "R",
                                               "bottom_right": "L"})
        self.panel.sagittal.overlays.set_texts({"top_left": self._title("Sagittal"), "bottom_left": "A",
                                                "bottom_right": "P"})

    def _title(self, plane: str) -> str:
        assert self.reformat is not None
        slab = f"{MODE_NAMES[self.mode]} {self.thickness_mm:g} mm" if self.slab_on else "thin slice"
        tilt = "\ntilt corrected" if self.reformat.tilt_corrected else ""
        return f"{plane} ({slab}){tilt}\nclick: go to that slice"

    def _draw_ticks(self, reformat: Reformat) -> None:
        """A tick at both edges of each reformat for every flagged acquired slice."""
        flagged = self.flagged_slices()
        key = tuple(flagged)
        if self._drawn.get("ticks") == key:
            return
        self._drawn["ticks"] = key
        plane_mm = reformat.grid.spacing[0]
        for name, width_mm in (("coronal", reformat.grid.shape[2] * reformat.grid.spacing[2]),
                               ("sagittal", reformat.grid.shape[1] * reformat.grid.spacing[1])):
            xs, ys = [], []
            reach = TICK_FRACTION * width_mm
            for k in flagged:
                y = (reformat.display_row(float(reformat.slice_plane[k])) + 0.5) * plane_mm
                xs += [0.0, reach, width_mm - reach, width_mm]
                ys += [y, y, y, y]
            self.panel.ticks[name].setData(np.asarray(xs, float), np.asarray(ys, float))

    def flagged_slices(self) -> list[int]:
        """Acquired slices the classifier flagged on the series on screen (none without it)."""
        inference = self.window.extensions.get(INFERENCE, InferenceController)
        if inference is None or self.reformat is None:
            return []
        return [k for k in inference.flagged_indices() if 0 <= k < self.reformat.n_slices]

    def _connect_inference(self) -> None:
        inference = self.window.extensions.get(INFERENCE, InferenceController)
        if inference is None or self._inference_connected:
            return
        inference.slice_predicted.connect(lambda *_: self._redraw_ticks())
        inference.series_finished.connect(lambda *_: self._redraw_ticks())
        self._inference_connected = True

    def _redraw_ticks(self) -> None:
        if self.three_views and self.reformat is not None:
            self._draw_ticks(self.reformat)

    def _on_window(self, center: float, width: float) -> None:
        levels = (center - width / 2, center + width / 2)
        self.panel.coronal.set_levels(levels)
        self.panel.sagittal.set_levels(levels)
        self._mark_overlay()

    # -- navigation ------------------------------------------------------------------------
    def move_plane(self, name: str, steps: int) -> None:
        """The wheel over a reformat moves its plane (coronal: front to back; sagittal: side to side)."""
        if name == "coronal":
            self.cross_row += steps
        else:
            self.cross_col += steps
        self.render()

    def go_to(self, name: str, row: int, col: int) -> None:
        """Act on a click on image pixel (row, col) of the ``name`` view ("axial", "coronal", "sagittal")."""
        reformat = self.reformat
        if reformat is None:
            return
        if name == "axial":
            _, self.cross_row, self.cross_col = (int(v) for v in np.rint(
                reformat.grid_index(self.window.current_index(), row, col)))
            self.render()
            return
        if name == "coronal":
            self.cross_col = col
        else:
            self.cross_row = col
        target = reformat.nearest_slice(reformat.plane_of_row(row))
        if target == self.window.current_index():
            self.render()
        else:
            self.window.set_slice(target)  # renders through slice_changed

    def _on_reformat_click(self, name: str, event: Any) -> None:
        view = self.panel.coronal if name == "coronal" else self.panel.sagittal
        self._click(name, view, event)

    def _on_axial_click(self, event: Any) -> None:
        if self.three_views:
            self._click("axial", self.view, event)

    def _click(self, name: str, view: SliceView, event: Any) -> None:
        image = view.image_item.image
        if event.button() != Qt.MouseButton.LeftButton or image is None:
            return
        local = view.image_item.mapFromScene(event.scenePos())
        row, col = local.y(), local.x()
        if 0 <= row < image.shape[0] and 0 <= col < image.shape[1]:
            self.go_to(name, int(row), int(col))  # the pixel clicked, not a point on its edge


def _build(series: Series, state: TaskState) -> Reformat | None:
    """The grid of ``series`` (a background task: every slice is decoded first)."""
    state.set_status("Building reformats")
    return reformat_series(series, state.cancelled)


def attach_reformat(window: ViewerWindow, options: ViewOptions | None = None) -> ReformatController:
    """Extension entry point (``ui.app.EXTENSIONS``)."""
    controller = ReformatController(window)
    window.extensions.add(EXTENSION_NAME, controller)
    return controller


__all__ = ["attach_reformat", "ReformatController", "ReformatPanel", "EXTENSION_NAME", "THICKNESSES_MM"]
