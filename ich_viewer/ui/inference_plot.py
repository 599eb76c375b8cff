"""Probability of each label over the slices (pyqtgraph); clicking a point jumps there."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QWidget

from ich_viewer import LABELS
from ich_viewer.imaging.palette import label_colour
from ich_viewer.ui.inference_widgets import SHORT_NAMES

REDRAW_MS = 100
"""Curves are redrawn at most this often while results stream in."""


class ProbabilityPlot(pg.PlotWidget):
    slice_clicked = Signal(int)
    """0-based slice index."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, background="#101010")
        self.setObjectName("inference_plot")
        self.setMinimumHeight(180)
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setLabel("bottom", "slice")
        item.setLabel("left", "probability")
        item.setYRange(0.0, 1.0, padding=0.02)
        item.setMouseEnabled(x=False, y=False)
        self._legend = item.addLegend(offset=(-4, 4), labelTextSize="8pt", colCount=3)
        self._values = np.full((0, len(LABELS)), np.nan)
        self.curves: dict[str, pg.PlotDataItem] = {}
        for label in LABELS:
            pen = pg.mkPen(label_colour(label), width=2.5 if label == "any" else 1.8,
                           style=Qt.PenStyle.DashLine if label == "any" else Qt.PenStyle.SolidLine)
            self.curves[label] = item.plot([], [], pen=pen, name=SHORT_NAMES[label], connect="finite")
        self.threshold_lines: list[pg.InfiniteLine] = []
        self.current_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((255, 255, 255, 140), width=1))
        item.addItem(self.current_line)
        self._dirty = False
        self.defer_redraw = False
        """True: ``set_values`` only stores; the owner calls ``redraw`` (batching paints)."""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self.scene().sigMouseClicked.connect(self._on_click)

    def reset(self, n_slices: int, thresholds: dict[str, float] | None) -> None:
        self._values = np.full((max(0, n_slices), len(LABELS)), np.nan)
        item = self.getPlotItem()
        for line in self.threshold_lines:
            item.removeItem(line)
        self.threshold_lines = []
        if thresholds:
            distinct = sorted(set(round(v, 4) for v in thresholds.values()))
            if len(distinct) == 1:  # one shared threshold: one grey line
                lines = [(distinct[0], (200, 200, 200), "flag ≥ {:.2f}".format(distinct[0]))]
            else:
                lines = [(thresholds[label], label_colour(label), "") for label in LABELS]
            for value, colour, text in lines:
                line = pg.InfiniteLine(pos=value, angle=0, movable=False,
                                       pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DotLine),
                                       label=text or None, labelOpts={"position": 0.12, "color": colour})
                item.addItem(line)
                self.threshold_lines.append(line)
        item.setXRange(1, max(2, n_slices), padding=0.02)
        self.redraw()

    def set_values(self, index: int, probabilities: dict[str, float]) -> None:
        if 0 <= index < len(self._values):
            self._values[index] = [probabilities[label] for label in LABELS]
            self._dirty = True
            if not self.defer_redraw and not self._timer.isActive():
                self._timer.start()

    def values(self) -> np.ndarray:
        return self._values.copy()

    def redraw(self, force: bool = True) -> None:
        if not (force or self._dirty):
            return
        self._dirty = False
        x = np.arange(1, len(self._values) + 1, dtype=float)
        for k, label in enumerate(LABELS):
            self.curves[label].setData(x, self._values[:, k], connect="finite")

    def set_current(self, index: int | None) -> None:
        self.current_line.setVisible(index is not None)
        if index is not None:
            self.current_line.setValue(index + 1)

    def _on_click(self, event) -> None:
        vb = self.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(event.scenePos()) or len(self._values) == 0:
            return
        x = vb.mapSceneToView(event.scenePos()).x()
        index = int(round(x)) - 1
        self.slice_clicked.emit(min(max(index, 0), len(self._values) - 1))
