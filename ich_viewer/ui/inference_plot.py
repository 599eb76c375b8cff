"""Probability of each label over the slices (pyqtgraph); clicking a point jumps there.

Each label has its colour, line style and marker (``imaging.palette``), so labels with
close colours (EDH/IPH, IVH/SAH) stay apart. Threshold lines are short dashes in the
label's colour; their names sit at the right end, stacked so none hides another.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QWidget

from ich_viewer import LABELS
from ich_viewer.imaging.palette import LABEL_LINES, LABEL_MARKERS, label_colour
from ich_viewer.ui.inference_widgets import SHORT_NAMES

REDRAW_MS = 100
"""Curves are redrawn at most this often while results stream in."""
MARKERS_ON_SCREEN = 24
"""About this many markers per curve whatever the number of slices (every slice would be a smear)."""
THRESHOLD_DASHES = [2.0, 3.0]
THRESHOLD_FONT_PT = 8.0
PEN_STYLES = {"solid": Qt.PenStyle.SolidLine, "dash": Qt.PenStyle.DashLine, "dot": Qt.PenStyle.DotLine,
              "dashdot": Qt.PenStyle.DashDotLine}


def label_pen(label: str, width: float) -> pg.QtGui.QPen:
    return pg.mkPen(label_colour(label), width=width, style=PEN_STYLES[LABEL_LINES[label]])


def threshold_groups(thresholds: dict[str, float]) -> list[tuple[float, list[str]]]:
    """(value, labels) of thresholds in ascending order, near ones together (one name per group)."""
    groups: list[tuple[float, list[str]]] = []
    for label in sorted(LABELS, key=lambda name: thresholds[name]):
        value = thresholds[label]
        if groups and f"{value:.2f}" == f"{groups[-1][0]:.2f}":  # the same number on screen: one name
            groups[-1][1].append(label)
        else:
            groups.append((value, [label]))
    return groups


class ProbabilityPlot(pg.PlotWidget):
    slice_clicked = Signal(int)
    """0-based slice index."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, background="#101010")
        self.setObjectName("inference_plot")
        self.setMinimumHeight(120)
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setLabel("bottom", "slice")
        item.setLabel("left", "probability")
        item.setYRange(0.0, 1.0, padding=0.02)
        item.setMouseEnabled(x=False, y=False)
        self._values = np.full((0, len(LABELS)), np.nan)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.markers: dict[str, pg.PlotDataItem] = {}
        """Every few slices, the label's marker (the legend above the plot shows the same shapes)."""
        for label in LABELS:
            pen = label_pen(label, 2.5 if label == "any" else 1.8)
            self.curves[label] = item.plot([], [], pen=pen, name=SHORT_NAMES[label], connect="finite")
            symbol = LABEL_MARKERS[label][0]
            if symbol:
                self.markers[label] = item.plot([], [], pen=None, symbol=symbol, symbolSize=7,
                                                symbolPen=pg.mkPen(label_colour(label), width=1.2),
                                                symbolBrush=pg.mkBrush(*label_colour(label), 200))
        self.threshold_lines: list[pg.InfiniteLine] = []
        self.threshold_labels: list[tuple[float, pg.TextItem]] = []
        """(threshold, its name at the right end); thresholds equal to two decimals share one."""
        item.getViewBox().sigResized.connect(lambda *_: self._place_threshold_labels())
        item.getViewBox().sigRangeChanged.connect(lambda *_: self._place_threshold_labels())
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

    def close(self) -> bool:
        """pyqtgraph deletes the curves on close; a redraw already queued must not touch them."""
        self._timer.stop()
        return super().close()

    def reset(self, n_slices: int, thresholds: dict[str, float] | None) -> None:
        self._values = np.full((max(0, n_slices), len(LABELS)), np.nan)
        item = self.getPlotItem()
        for line in self.threshold_lines:
            item.removeItem(line)
        for _value, text_item in self.threshold_labels:
            item.removeItem(text_item)
        self.threshold_lines, self.threshold_labels = [], []
        if thresholds:
            for label in LABELS:
                pen = pg.mkPen(label_colour(label), width=1.4)
                pen.setDashPattern(THRESHOLD_DASHES)  # short dashes: a threshold, never a curve
                line = pg.InfiniteLine(pos=thresholds[label], angle=0, movable=False, pen=pen)
                line.setOpacity(0.85)
                item.addItem(line)
                self.threshold_lines.append(line)
            for value, labels in threshold_groups(thresholds):
                colour = label_colour(labels[0]) if len(labels) == 1 else (220, 220, 220)
                text = "·".join(SHORT_NAMES[name] for name in labels) + f" {value:.2f}"
                if len(labels) == len(LABELS):
                    text = f"flag ≥ {value:.2f}"
                text_item = pg.TextItem(text, color=colour, anchor=(1.0, 0.5), fill=pg.mkBrush(16, 16, 16, 210))
                font = QFont(text_item.textItem.font())
                font.setPointSizeF(THRESHOLD_FONT_PT)
                text_item.setFont(font)
                text_item.textItem.document().setDocumentMargin(1)  # Qt's 4 px would stack them apart
                text_item.updateTextPos()
                text_item.setZValue(20)
                item.addItem(text_item, ignoreBounds=True)
                self.threshold_labels.append((value, text_item))
        item.setXRange(1, max(2, n_slices), padding=0.02)
        self._place_threshold_labels()
        self.redraw()

    def _place_threshold_labels(self) -> None:
        """At the right end, each on its line, pushed up just enough that no two overlap."""
        if not self.threshold_labels:
            return
        box = self.getPlotItem().getViewBox()
        (x0, x1), (y0, y1) = box.viewRange()
        height = box.height()
        if height <= 0 or y1 <= y0:
            return
        per_px = (y1 - y0) / height
        halves = [(item.boundingRect().height() / 2 + 1) * per_px for _v, item in self.threshold_labels]
        places, lowest = [], y0
        for (value, _item), half in zip(self.threshold_labels, halves):  # ascending: push up
            places.append(max(value, lowest + half))
            lowest = places[-1] + half
        highest = y1
        for k in reversed(range(len(places))):  # then down from the top edge, so none is cut off
            places[k] = min(places[k], highest - halves[k])
            highest = places[k] - halves[k]
        for (_value, item), y in zip(self.threshold_labels, places):
            item.setPos(x1, y)

    def set_values(self, index: int, probabilities: dict[str, float]) -> None:
        if 0 <= index < len(self._values):
            self._values[index] = [probabilities[label] for label in LABELS]
            self._dirty = True
            if not self.defer_redraw and not self._timer.isActive():
                self._timer.start()

    def values(self) -> np.ndarray:
        return self._values.copy()

    def redraw(self, force: bool = True) -> None:
        if self.closed or not (force or self._dirty):
            return
        self._dirty = False
        x = np.arange(1, len(self._values) + 1, dtype=float)
        step = max(1, len(x) // MARKERS_ON_SCREEN)
        for k, label in enumerate(LABELS):
            self.curves[label].setData(x, self._values[:, k], connect="finite")
            if label in self.markers:
                y = self._values[::step, k]
                known = np.isfinite(y)
                self.markers[label].setData(x[::step][known], y[known])

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
