"""Measuring in the window: ruler, angle, ellipse and polygon ROIs, midline shift, bleed volume.

An extension (``ui.app.EXTENSIONS``). Keys, as in Weasis where they exist: D distance,
K angle, E ellipse ROI, L polygon ROI (double-click closes it), M midline shift (drag
the expected midline, then click the septum pellucidum), V bleed volume (click inside the
bleed; Shift+click adds a separate piece of it, e.g. a subdural's sheet along the falx), S
bleed volume from the seed the classifier's attention map proposes on a flagged slice,
B / Shift+B add / erase brush on the selected volume's outline (the volume follows each
dab; strokes are kept with the record and replayed after every regrow), and the "Blood
from" slider regrows the selected volume when released (the threshold edit). Delete
removes the selected measurement, Esc cancels the one being drawn. While a tool is on,
the left button draws instead of windowing.

Values come from ``ich_viewer.measure`` (Qt-free, tested alone); the volume grows on a
``TaskRunner``. Records are kept per study and series by ``report.measurements`` in
the program's data folder and come back when the study is reopened.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QMouseEvent
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QGraphicsEllipseItem, QHBoxLayout, QLabel,
                               QGridLayout, QListWidget, QListWidgetItem, QPushButton, QSlider, QToolButton,
                               QVBoxLayout, QWidget)

import pyqtgraph as pg

from ich_viewer.inference.preprocess import erode4
from ich_viewer.dicom.model import PixelDecodeError, Series
from ich_viewer.measure.head import Head, find_head
from ich_viewer.measure.edit import BRUSH_MM, MAX_BRUSH_MM, Stroke, apply_stroke, strokes_of
from ich_viewer.measure.records import (FACTS_APART, KINDS, SUBTYPE_CHOICES, Measurement, planar_measurement,
                                       volume_facts, volume_measurement, volume_text)
from ich_viewer.measure.region import DEFAULT_HU, Region, describe, propose_seed
from ich_viewer.measure.series import calibration, grow_in_series, grow_record, voxel_spacing
from ich_viewer.measure.thickness import Thinner, note_thickness
from ich_viewer.options import ViewOptions
from ich_viewer.report.atomic import ExportError
from ich_viewer.report.decisions import slice_key
from ich_viewer.report.measurements import MeasurementStore
from ich_viewer.report.review import study_key
from ich_viewer.tasks import TaskState
from ich_viewer.ui.extension import ViewerWindow
from ich_viewer.ui.tasks import TaskRunner

log = logging.getLogger(__name__)

EXTENSION_NAME = "measure"
TOOLS: tuple[tuple[str, str, str], ...] = (
    ("distance", "Ruler (distance)", "D"),
    ("angle", "Angle", "K"),
    ("ellipse", "Ellipse ROI (HU statistics)", "E"),
    ("polygon", "Polygon ROI (double-click closes)", "L"),
    ("midline", "Midline shift", "M"),
    ("volume", "Bleed volume (click inside the bleed; Shift+click adds a separate piece)", "V"),
    ("brush_add", "Add brush (paint onto the selected volume)", "B"),
    ("brush_erase", "Erase brush (remove from the selected volume)", "Shift+B"),
)
BRUSHES = {"brush_add": True, "brush_erase": False}
TOOL_BUTTONS = {"distance": "Ruler", "angle": "Angle", "ellipse": "Ellipse", "polygon": "Polygon",
                "midline": "Midline", "volume": "Volume", "brush_add": "Add", "brush_erase": "Erase"}
"""Short names for the panel's tool row (the key before each)."""
HINT = "Choose a tool: D ruler · K angle · E ellipse · L polygon · M midline · V volume · B / Shift+B add / erase brush"
Job = tuple[str | None, list[tuple[int, int, int]], tuple[float, float], list[Stroke]]
"""A volume to (re)grow: record id (None: new), its clicks (seed first), HU range, brush strokes to replay."""
Grown = tuple[Series, Head | None, list[tuple[str | None, Region]], str, np.ndarray | None]
"""What a growing task hands back: series, its head (``measure.head``), regions by record id, subtype, HU volume."""
COLOUR = (255, 200, 40)
SELECTED = (80, 220, 255)
OUTLINE = (255, 60, 60, 230)


class MeasurePanel(QWidget):
    """The side panel: measurements of the shown series, the volume tool's settings."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.tools = QGridLayout()
        """One button per tool, four to a row (the panel stays narrow), as the keys and the Tools menu."""
        self.tools.setSpacing(2)
        layout.addLayout(self.tools)
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self.list = QListWidget()
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the image
        self.list.setWordWrap(True)
        layout.addWidget(self.list, 1)
        form = QFormLayout()
        self.low = QDoubleSpinBox()
        self.high = QDoubleSpinBox()
        for box, value in ((self.low, DEFAULT_HU[0]), (self.high, DEFAULT_HU[1])):
            box.setRange(-100.0, 300.0)
            box.setDecimals(0)
            box.setSuffix(" HU")
            box.setValue(value)
            box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.low_slider = QSlider(Qt.Orientation.Horizontal)
        self.low_slider.setRange(0, 120)
        self.low_slider.setValue(int(DEFAULT_HU[0]))
        self.low_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.low_slider.setToolTip("Drag to move the low bound; the selected volume regrows when released")
        self.low_slider.valueChanged.connect(lambda value: self.low.setValue(float(value)))
        self.low.valueChanged.connect(self._follow_low)
        self.brush = QDoubleSpinBox()
        self.brush.setRange(0.5, MAX_BRUSH_MM)
        self.brush.setDecimals(1)
        self.brush.setSuffix(" mm")
        self.brush.setValue(BRUSH_MM)
        self.brush.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        form.addRow("Blood from", self.low)
        form.addRow("", self.low_slider)
        form.addRow("to", self.high)
        form.addRow("Brush radius", self.brush)
        self.subtype = QComboBox()
        self.subtype.addItems(list(SUBTYPE_CHOICES))
        self.subtype.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        form.addRow("Subtype", self.subtype)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.regrow = QPushButton("Regrow with this range")
        self.delete = QPushButton("Delete")
        for button in (self.regrow, self.delete):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.thinner = QPushButton("")
        """Shown after a volume grown on thick slices when a thinner series of the study holds the click."""
        self.thinner.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.thinner.setVisible(False)
        layout.addWidget(self.thinner)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

    def _follow_low(self, value: float) -> None:
        self.low_slider.blockSignals(True)
        self.low_slider.setValue(int(round(value)))
        self.low_slider.blockSignals(False)


class MeasureController(QObject):
    """One per window: the active tool, the marks on the image, the records and the store."""

    def __init__(self, window: ViewerWindow) -> None:
        super().__init__(window)  # type: ignore[arg-type]
        self.window = window
        self.view = window.image_view()
        self.store = MeasurementStore()
        self.tool: str | None = None
        self.points: list[tuple[float, float]] = []
        self._dragging = False
        self.masks: dict[str, np.ndarray] = {}
        """Grown masks by measurement id (regrown from seed and range after a reopen)."""
        self._heads: dict[str, Head] = {}
        """The shown series' cranial cavity and what the growing reads of it whatever the click (one series kept)."""
        self._volumes: dict[str, np.ndarray] = {}
        """The shown series' HU (one series kept): the brush reads bone and air from it."""
        self._edit: dict[str, Any] | None = None
        """The brush drag in progress: record id, its new strokes, last point, voxel count."""
        self._items: list[Any] = []
        self._free: dict[type, list[Any]] = {}
        """Labels, curves and outline images drawn before and hidden, by type, to be drawn again
        (``_reuse``)."""
        self._preview: list[Any] = []
        self.selected_id: str | None = None
        self.thinner: Thinner | None = None
        """The thinner series that holds the last volume's clicks, offered by ``panel.thinner``."""
        self._thinner_hu: tuple[float, float] = DEFAULT_HU
        """The HU range that volume was grown with: the thinner series is grown with the same."""
        self.panel = MeasurePanel()
        self.runner = TaskRunner(self)
        self.runner.done.connect(self._on_grown)
        self.runner.failed.connect(self._on_failed)
        self.runner.status.connect(self.panel.status.setText)
        self.prep = TaskRunner(self)
        """Reads the series and finds its cranial cavity and the rest of ``measure.head`` when the
        volume tool is chosen, so the click that follows only grows (they are most of a first volume's time)."""
        self.prep.done.connect(self._on_prepared)
        window.add_side_panel(self.panel, "Measure")
        self.panel.list.currentItemChanged.connect(self._on_select)
        self.panel.delete.clicked.connect(self.delete_selected)
        self.panel.regrow.clicked.connect(self.regrow_selected)
        self.panel.thinner.clicked.connect(self.measure_on_thinner)
        self.panel.low_slider.sliderReleased.connect(self._on_slider_released)
        self.panel.subtype.currentTextChanged.connect(self._on_subtype)
        menu = window.menu("Tools")
        self.actions: dict[str, QAction] = {}
        self.buttons: dict[str, QToolButton] = {}
        for kind, text, key in TOOLS:
            action = window.add_action(f"measure_{kind}", text, self._tool_slot(kind), (key,), True)
            menu.addAction(action)
            self.actions[kind] = action
            button = QToolButton()
            button.setText(f"{key} {TOOL_BUTTONS[kind]}")
            button.setToolTip(f"{text} ({key})")
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(self._tool_slot(kind))
            self.panel.tools.addWidget(button, len(self.buttons) // 4, len(self.buttons) % 4)
            self.buttons[kind] = button
        menu.addAction(window.add_action("measure_propose", "Bleed volume from the attention map (flagged slice)",
                                         self.propose_from_attention, ("S",)))
        menu.addAction(window.add_action("measure_delete", "Delete selected measurement", self.delete_selected,
                                         ("Delete",)))
        menu.addAction(window.add_action("measure_cancel", "Cancel measurement / tool", self.cancel, ("Esc",)))
        self.view.graphics.viewport().installEventFilter(self)
        window.installEventFilter(self)
        window.study_opened.connect(self._on_study)
        window.series_shown.connect(lambda _series: self._on_series())
        window.slice_changed.connect(lambda _index: self.redraw())
        window.study_closing.connect(self._on_closing)

    # -- tools -------------------------------------------------------------------------
    def _tool_slot(self, kind: str) -> Callable[[], None]:
        return lambda: self.set_tool(kind)

    def set_tool(self, kind: str | None) -> None:
        """Turn a tool on (its key again, or Esc, turns it off)."""
        if self._edit is not None:  # a brush drag interrupted by a key keeps what it painted
            self.brush_end()
        if kind is not None and self.tool == kind:
            kind = None
        self.tool = kind
        self.points = []
        self._dragging = False
        self._clear(self._preview)
        for name, action in self.actions.items():
            action.setChecked(name == kind)
            self.buttons[name].setChecked(name == kind)
        text = dict((k, t) for k, t, _ in TOOLS).get(kind or "", "")
        self.panel.hint.setText(f"{text}: draw on the image (Esc cancels)" if kind else HINT)
        if kind == "volume":
            self._prepare()
        if kind is not None and self.window.current_series() is not None:
            note = calibration(self._series()).note
            if note:
                self._say(note)

    def cancel(self) -> None:
        if self.points:
            self.points = []
            self._dragging = False
            self._clear(self._preview)
        else:
            self.set_tool(None)

    # -- mouse -------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Close and watched is self.window:
            self.runner.shutdown(3.0)
            self.prep.shutdown(3.0)
            return False
        if self.tool is None or self.window.current_series() is None:
            return False
        kind = event.type()
        if kind not in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease,
                        QEvent.Type.MouseButtonDblClick):
            return False
        assert isinstance(event, QMouseEvent)
        if kind != QEvent.Type.MouseMove and event.button() != Qt.MouseButton.LeftButton:
            return False
        point = self.pixel_at(event.position())
        if kind == QEvent.Type.MouseButtonPress:
            self.press(point, add=bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
        elif kind == QEvent.Type.MouseMove:
            self.move(point)
        elif kind == QEvent.Type.MouseButtonRelease:
            self.release(point)
        else:
            self.double_click(point)
        return True

    def pixel_at(self, position: QPointF) -> tuple[float, float]:
        """(row, col) in pixels, centres at integers, of a viewport position."""
        scene = self.view.graphics.mapToScene(position.toPoint())
        local = self.view.image_item.mapFromScene(scene)
        return float(local.y()) - 0.5, float(local.x()) - 0.5

    def press(self, point: tuple[float, float], add: bool = False) -> None:
        """A left press; ``add`` (Shift held) with the volume tool adds a piece to the selected volume."""
        tool = self.tool
        if tool == "volume":
            self.grow_at(point, add)
        elif tool in BRUSHES:
            self.brush_start(point)
            return
        elif tool in ("distance", "ellipse") or (tool == "midline" and not self.points):
            self.points = [point, point]
            self._dragging = True
        elif tool in ("angle", "polygon", "midline"):
            if not self.points:
                self.points = [point, point]  # the last point follows the mouse until the next click
            else:
                self.points[-1] = point
                if tool != "polygon" and len(self.points) >= KINDS[tool]:
                    self.finish()
                    return
                self.points.append(point)
        self._draw_preview()

    def move(self, point: tuple[float, float]) -> None:
        if self._edit is not None:
            self.brush_to(point)
            return
        if self.points and (self._dragging or self.tool in ("angle", "polygon", "midline")):
            self.points[-1] = point
            self._draw_preview()

    def release(self, point: tuple[float, float]) -> None:
        if self._edit is not None:
            self.brush_to(point)
            self.brush_end()
            return
        if not self._dragging:
            return
        self._dragging = False
        self.points[-1] = point
        if self.points[0] == self.points[1]:
            self.points = []  # a click without a drag draws nothing
            self._clear(self._preview)
            return
        if self.tool == "midline":
            self.points.append(point)  # now the septum point follows the mouse
            self._draw_preview()
            return
        self.finish()

    def double_click(self, point: tuple[float, float]) -> None:
        if self.tool == "polygon" and self.points:
            self.points[-1] = point  # the double-click's place is the last vertex
            pts: list[tuple[float, float]] = []
            for p in self.points:  # the double-click's first press added it once already
                if not pts or np.hypot(p[0] - pts[-1][0], p[1] - pts[-1][1]) >= 0.5:
                    pts.append(p)
            self.points = pts
            if len(pts) >= 3:
                self.finish()

    def finish(self) -> Measurement | None:
        """Compute and keep the measurement drawn with the current points."""
        series, tool = self.window.current_series(), self.tool
        if series is None or tool is None or tool == "volume" or tool in BRUSHES:
            return None
        index = self.window.current_index()
        try:
            image = series.hu(index)
            record = planar_measurement(tool, self.points, image, calibration(series), series_uid=series.series_uid,
                                        slice_index=index, slice_uid=slice_key(series.slices[index]))
        except (ValueError, PixelDecodeError) as exc:
            self._say(str(exc))
            record = None
        self.points = []
        self._clear(self._preview)
        if record is not None:
            self._keep(record)
        return record

    # -- volume ------------------------------------------------------------------------
    def grow_at(self, point: tuple[float, float], add: bool = False) -> None:
        """Grow a new volume from a click, or with ``add`` (Shift+click) add the piece under the
        click to the selected volume (else the newest): a bleed in separate pieces is one volume."""
        series = self.window.current_series()
        if series is None:
            return
        seed = (self.window.current_index(), int(round(point[0])), int(round(point[1])))
        target = self._brush_target() if add else None
        if add and target is None:
            self._say("Shift+click adds to a volume: click a bleed first")
            return
        if target is not None:
            self._start_grow(series, [(target.id, _seeds(target) + [seed], target.hu_range, strokes_of(target.details))])
            return
        self._start_grow(series, [(None, [seed], (self.panel.low.value(), self.panel.high.value()), [])])

    def propose_from_attention(self) -> None:
        """Grow from the seed the classifier's attention map proposes on the shown slice."""
        from ich_viewer.ui.inference_panel import EXTENSION_NAME as INFERENCE, InferenceController

        series, inference = self.window.current_series(), self.window.extensions.get(INFERENCE, InferenceController)
        loaded = inference.loaded if inference is not None else None
        if series is None or loaded is None:
            self._say("no attention map: the classifier is not loaded")
            return
        index = self.window.current_index()
        low, high = self.panel.low.value(), self.panel.high.value()
        known = self._heads.get(series.series_uid)
        subtype = self.panel.subtype.currentText()

        def task(state: TaskState) -> Grown:
            from ich_viewer.inference.gradcam import attention_map

            state.set_status("computing the attention map")
            volume = series.volume_hu()
            head = known if known is not None else find_head(volume, voxel_spacing(series), state, every_band=False)
            amap = attention_map(loaded, series, index)
            point = propose_seed(amap.heat, volume[index], (low, high), head.cavity[index],
                                 min(voxel_spacing(series)[1:]))
            if point is None:
                region = Region(seed=(index, 0, 0), hu_range=(low, high), spacing_mm=voxel_spacing(series),
                                reason="the attention map points at nothing in the blood range on this slice")
                return series, head, [(None, region)], subtype, volume
            return series, head, [(None, grow_in_series(series, (index, *point), (low, high), state, cavity=head,
                                                        volume=volume))], subtype, volume

        self.panel.status.setText("proposing a seed…")
        self.runner.start(task)

    def _start_grow(self, series: Series, jobs: Sequence[Job]) -> None:
        known_head = self._heads.get(series.series_uid)
        known = self._volumes.get(series.series_uid)
        subtype = self.panel.subtype.currentText()

        def task(state: TaskState) -> Grown:
            volume = known if known is not None else series.volume_hu()
            head = known_head if known_head is not None else find_head(volume, voxel_spacing(series), state,
                                                                       every_band=False)
            out = []
            for record_id, seeds, hu, edits in jobs:
                if state.cancelled():
                    break
                out.append((record_id, grow_record(series, seeds[0], hu, edits, state, cavity=head, volume=volume,
                                                   more_seeds=seeds[1:])))
            return series, head, out, subtype, volume

        self.panel.status.setText("growing…")
        self.runner.start(task)

    def _prepare(self) -> None:
        series = self.window.current_series()
        if series is None or series.series_uid in self._heads:
            return

        def task(state: TaskState) -> tuple[Series, np.ndarray, Head]:
            volume = series.volume_hu()
            return series, volume, find_head(volume, voxel_spacing(series), state)

        self.prep.start(task)

    def _on_prepared(self, result: tuple[Series, np.ndarray, Head]) -> None:
        series, volume, head = result
        current = self.window.current_series()
        if current is not None and current.series_uid == series.series_uid:
            self._volumes = {series.series_uid: volume}
            self._heads = {series.series_uid: head}

    def _on_grown(self, result: Grown) -> None:
        series, head, grown, subtype, volume = result
        self.panel.status.setText("")
        if head is not None:
            self._heads = {series.series_uid: head}  # one series' head is kept
        if volume is not None:
            self._volumes = {series.series_uid: volume}
        study = self.window.current_study()
        self._offer_thinner(None)
        for record_id, region in grown:
            if not region.ok:
                self._say(f"No volume: {region.reason}")
                continue
            assert region.mask is not None
            if study is not None:
                self._offer_thinner(note_thickness(region, series, study.image_series), region.hu_range)
            if record_id is not None:  # a stored or regrown record
                old = self._record(record_id)
                if old is None:
                    continue
                record = volume_measurement(region, series_uid=series.series_uid, slice_uid=old.slice_uid,
                                            subtype=str(old.details.get("subtype", "unspecified")),
                                            edits=strokes_of(old.details))
                record.id, record.created_at = old.id, old.created_at
                self.masks[record.id] = region.mask
                if record.to_dict() != old.to_dict():
                    self._replace(record)
            else:
                record = volume_measurement(region, series_uid=series.series_uid,
                                            slice_uid=slice_key(series.slices[region.seed[0]]), subtype=subtype)
                self.masks[record.id] = region.mask
                self._keep(record)
            notes = "; ".join(region.notes)  # what a leak guard cut, an uncalibrated series
            self._say(f"{record.label}: {record.text}" + (f" ({notes})" if notes else ""))
        self.redraw()

    def _offer_thinner(self, thinner: Thinner | None, hu: tuple[float, float] = DEFAULT_HU) -> None:
        self.thinner, self._thinner_hu = thinner, hu
        self.panel.thinner.setVisible(thinner is not None)
        if thinner is not None:  # a long series description would widen the panel: it goes in the tooltip
            self.panel.thinner.setText(f"Measure on {thinner.short_name}")
            self.panel.thinner.setToolTip(f"Measure on {thinner.name} at the same point")

    def measure_on_thinner(self) -> None:
        """Show the thinner series at the last volume's click and grow there from the same points
        with the same HU range (the volume on the thick slices stays in its series' list)."""
        thinner = self.thinner
        if thinner is None:
            return
        hu = self._thinner_hu
        self._offer_thinner(None)
        self.window.show_series(thinner.series)
        self.window.set_slice(thinner.seeds[0][0])
        self._start_grow(thinner.series, [(None, list(thinner.seeds), hu, [])])

    def _on_failed(self, text: str) -> None:
        self._say(f"volume failed: {text}")

    def regrow_selected(self) -> None:
        """Regrow the selected volume with the range in the panel (the threshold edit)."""
        record = self._record(self.selected_id) if self.selected_id else None
        series = self.window.current_series()
        if record is None or record.kind != "volume" or series is None:
            self._say("select a bleed volume in the list first")
            return
        record.details["hu_range"] = [self.panel.low.value(), self.panel.high.value()]
        self._start_grow(series, [(record.id, _seeds(record), record.hu_range, strokes_of(record.details))])

    def _on_slider_released(self) -> None:
        record = self._record(self.selected_id) if self.selected_id else None
        if record is not None and record.kind == "volume":
            self.regrow_selected()

    # -- brush -------------------------------------------------------------------------
    def _brush_target(self) -> Measurement | None:
        """The selected volume, else the newest volume of the series with an outline."""
        volumes = [m for m in self.measurements() if m.kind == "volume" and m.id in self.masks]
        chosen = next((m for m in volumes if m.id == self.selected_id), None)
        return chosen or (volumes[-1] if volumes else None)

    def brush_start(self, point: tuple[float, float]) -> None:
        """Start a brush drag on the target volume's outline (one dab at the press)."""
        record, series = self._brush_target(), self.window.current_series()
        if record is None or series is None:
            self._say("grow a bleed volume first (V, click inside the bleed), then paint on its outline")
            return
        if series.series_uid not in self._volumes:
            self._volumes = {series.series_uid: series.volume_hu()}
        self.selected_id = record.id
        self._edit = {"id": record.id, "strokes": [], "last": point, "voxels": int(self.masks[record.id].sum())}
        self._dab(point)

    def brush_to(self, point: tuple[float, float]) -> None:
        """Dabs from the last one to ``point``, half a radius apart, so a fast drag leaves no gaps."""
        edit = self._edit
        if edit is None:
            return
        spacing = voxel_spacing(self._series())
        step = max(0.5, 0.5 * self.panel.brush.value() / min(spacing[1], spacing[2]))
        (r0, c0), (r1, c1) = edit["last"], point
        n = int(np.hypot(r1 - r0, c1 - c0) // step)
        for t in range(1, n + 1):
            self._dab((r0 + (r1 - r0) * t / (n + 1), c0 + (c1 - c0) * t / (n + 1)))
        self._dab(point)

    def _dab(self, point: tuple[float, float]) -> None:
        edit = self._edit
        assert edit is not None and self.tool in BRUSHES
        series = self._series()
        spacing = voxel_spacing(series)
        stroke = Stroke(self.window.current_index(), point[0], point[1], self.panel.brush.value(), BRUSHES[self.tool])
        edit["voxels"] += apply_stroke(self.masks[edit["id"]], stroke, spacing, self._volumes.get(series.series_uid))
        edit["strokes"].append(stroke)
        edit["last"] = point
        unit = "mL" if calibration(series).known else "mL (uncalibrated)"
        edit["text"] = f"{edit['voxels'] * float(np.prod(spacing)) / 1000.0:.1f} {unit} (editing)"
        self.panel.status.setText(f"Bleed volume: {edit['text']}")
        self.redraw()

    def brush_end(self) -> Measurement | None:
        """Keep the drag's strokes with the record and recompute its values from the edited mask."""
        edit, self._edit = self._edit, None
        old = self._record(edit["id"]) if edit is not None else None
        series = self.window.current_series()
        if edit is None or old is None or series is None or not edit["strokes"]:
            return None
        mask = self.masks[old.id]
        edits = strokes_of(old.details) + edit["strokes"]
        if not mask.any():
            self._say("the brush erased the whole outline: Delete removes the measurement; the outline is restored")
            self._start_grow(series, [(old.id, _seeds(old), old.hu_range, strokes_of(old.details))])
            return None
        seed_hu = old.details.get("seed_hu")
        region = Region(seed=old.seed, hu_range=old.hu_range, spacing_mm=voxel_spacing(series),
                        calibrated=calibration(series).known, notes=list(old.details.get("notes", [])),
                        seed_hu=float("nan") if seed_hu is None else float(seed_hu), more_seeds=old.more_seeds)
        describe(region, self._volumes[series.series_uid], mask)
        record = volume_measurement(region, series_uid=series.series_uid, slice_uid=old.slice_uid,
                                    subtype=str(old.details.get("subtype", "unspecified")), edits=edits)
        record.id, record.created_at = old.id, old.created_at
        self._replace(record)
        self._say(f"{record.label}: {record.text}")
        return record

    def _on_subtype(self, subtype: str) -> None:
        record = self._record(self.selected_id) if self.selected_id else None
        if record is None or record.kind != "volume" or record.details.get("subtype") == subtype:
            return
        record.details["subtype"] = subtype
        record.text = volume_text(volume_facts(record.text), subtype)
        self._replace(record)

    # -- records -----------------------------------------------------------------------
    def _study(self) -> str:
        study = self.window.current_study()
        return study_key(study.study_uid, study.source) if study is not None else ""

    def _series(self) -> Series:
        series = self.window.current_series()
        assert series is not None
        return series

    def measurements(self) -> list[Measurement]:
        """The shown series' measurements, oldest first."""
        series, study = self.window.current_series(), self._study()
        if series is None or not study:
            return []
        return self.store.series_measurements(study, series.series_uid)

    def _record(self, record_id: str | None) -> Measurement | None:
        return next((m for m in self.measurements() if m.id == record_id), None)

    def _keep(self, record: Measurement) -> None:
        try:
            self.store.add(self._study(), record)
        except ExportError as exc:
            self._say(str(exc))
        self.selected_id = record.id
        self._refresh_list()
        self.redraw()

    def _replace(self, record: Measurement) -> None:
        try:
            self.store.replace(self._study(), record)
        except ExportError as exc:
            self._say(str(exc))
        self._refresh_list()
        self.redraw()

    def delete_selected(self) -> None:
        if self.points:
            self.cancel()
            return
        series = self.window.current_series()
        if self.selected_id is None or series is None:
            self._say("select a measurement to delete")
            return
        try:
            self.store.remove(self._study(), series.series_uid, self.selected_id)
        except ExportError as exc:
            self._say(str(exc))
        self.masks.pop(self.selected_id, None)
        self.selected_id = None
        self._refresh_list()
        self.redraw()

    def _on_select(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        self.selected_id = None if current is None else current.data(Qt.ItemDataRole.UserRole)
        record = self._record(self.selected_id)
        if record is not None:
            if record.kind == "volume":
                self.panel.subtype.blockSignals(True)
                self.panel.subtype.setCurrentText(str(record.details.get("subtype", "unspecified")))
                self.panel.subtype.blockSignals(False)
            if record.slice_index != self.window.current_index():
                self.window.set_slice(record.slice_index)
        self.redraw()

    def _refresh_list(self) -> None:
        widget = self.panel.list
        widget.blockSignals(True)
        widget.clear()
        for record in self.measurements():
            item = QListWidgetItem(f"{record.label} · slice {record.slice_index + 1}: {record.text}")
            item.setData(Qt.ItemDataRole.UserRole, record.id)
            widget.addItem(item)
            if record.id == self.selected_id:
                widget.setCurrentItem(item)
        widget.blockSignals(False)

    # -- study life --------------------------------------------------------------------
    def _on_study(self, _study: object) -> None:
        self.store.forget_cache()
        self.masks.clear()
        self._heads.clear()
        self._volumes.clear()
        self._edit = None
        self.selected_id = None

    def _on_series(self) -> None:
        self._offer_thinner(None)
        self.points = []
        self._clear(self._preview)
        self._refresh_list()
        series = self.window.current_series()
        pending = [m for m in self.measurements() if m.kind == "volume" and m.id not in self.masks]
        if series is not None and pending:  # reopened: regrow the stored volumes to draw their outline
            jobs: list[Job] = [(m.id, _seeds(m), m.hu_range, strokes_of(m.details)) for m in pending]
            self._start_grow(series, jobs)
        self.redraw()

    def _on_closing(self) -> None:
        self.runner.cancel()
        self.prep.cancel()
        self.points = []
        self._clear(self._preview)
        self._clear(self._items)
        self.masks.clear()
        self._heads.clear()
        self._volumes.clear()
        self._edit = None
        self.panel.list.clear()

    # -- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        """Marks of the shown slice (and every volume outline that touches it)."""
        self._clear(self._items)
        series = self.window.current_series()
        if series is None:
            return
        index = self.window.current_index()
        for record in self.measurements():
            colour = SELECTED if record.id == self.selected_id else COLOUR
            if record.kind == "volume":
                mask = self.masks.get(record.id)
                if mask is not None and index < mask.shape[0] and mask[index].any():
                    self._items += self._outline(mask[index], record, colour, index)
            elif record.slice_index == index:
                self._items += self._shape_items(record.kind, record.points, colour, record.text)

    def _draw_preview(self) -> None:
        self._clear(self._preview)
        if self.tool is None or len(self.points) < 2:
            return
        self._preview = self._shape_items(self.tool, self.points, SELECTED, "", preview=True)

    def _shape_items(self, kind: str, points: list[tuple[float, float]], colour: tuple[int, int, int], text: str,
                     preview: bool = False) -> list[Any]:
        parent = self.view.image_item
        pen = pg.mkPen(colour, width=2)
        items: list[Any] = []
        if kind == "ellipse":
            if preview:
                (r0, c0), (r1, c1) = points[0], points[1]
                centre, radii = ((r0 + r1) / 2, (c0 + c1) / 2), (abs(r1 - r0) / 2, abs(c1 - c0) / 2)
            else:
                centre, radii = points[0], points[1]
            ellipse = QGraphicsEllipseItem(centre[1] + 0.5 - radii[1], centre[0] + 0.5 - radii[0], 2 * radii[1],
                                           2 * radii[0])
            ellipse.setPen(pen)
            ellipse.setParentItem(parent)
            items.append(ellipse)
            anchor = (centre[0] - radii[0], centre[1] + radii[1])
        else:
            line = list(points)
            if kind == "polygon" and not preview:
                line = line + [line[0]]
            if kind == "midline" and len(line) >= 3:
                items.append(self._curve(line[:2], pen))
                foot = _foot(line[0], line[1], line[2])
                dashed = pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine)
                line = [line[2], foot]
                pen = dashed
            items.append(self._curve(line, pen))
            anchor = points[-1] if kind != "angle" else points[1]
        if text:
            label = self._label(text, colour, (0, 1))
            label.setPos(anchor[1] + 2.0, anchor[0] - 1.0)
            items.append(label)
        return items

    def _curve(self, line: list[tuple[float, float]], pen: Any) -> Any:
        """A polyline through (row, col) points."""
        curve = self._reuse(pg.PlotCurveItem)
        curve.setData([p[1] + 0.5 for p in line], [p[0] + 0.5 for p in line], pen=pen)
        return curve

    def _outline(self, mask: np.ndarray, record: Measurement, colour: tuple[int, int, int], index: int) -> list[Any]:
        """The region's edge on this slice as a small RGBA image over its bounding box."""
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))  # 30x cheaper than nonzero
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        box = mask[r0:r1, c0:c1]
        edge = box & ~erode4(np.pad(box, 1))[1:-1, 1:-1]  # padded: the border rule never applies
        rgba = np.zeros(box.shape + (4,), np.uint8)
        rgba[edge] = OUTLINE if colour == COLOUR else (*SELECTED, 255)
        image = self._reuse(pg.ImageItem, axisOrder="row-major")
        image.setImage(rgba)
        image.setRect(QRectF(c0, r0, c1 - c0, r1 - r0))
        right = c1 < mask.shape[1] * 0.6  # the label goes on the side with room
        edit = self._edit
        text = edit["text"] if edit is not None and edit["id"] == record.id and "text" in edit else record.text
        label = self._label(text, colour, (0, 1) if right else (1, 1))
        label.setPos(float(c1) + 3.0 if right else float(c0) - 3.0, float(r0))
        return [image, label]

    def _reuse(self, kind: type, **made_with: Any) -> Any:
        """A hidden item of ``kind`` (a pyqtgraph label, line or image) drawn again, else a new one:
        making them and taking them out of the scene again cost more than half of a frame's 9-10 ms
        (docs/benchmarks.md, tenth session); ``_clear`` hides them for the next frame."""
        free = self._free.setdefault(kind, [])
        if free:
            item = free.pop()
            item.show()
            return item
        item = kind(**made_with)
        item.setParentItem(self.view.image_item)
        return item

    def _label(self, text: str, colour: tuple[int, int, int], anchor: tuple[float, float]) -> Any:
        label = self._reuse(pg.TextItem, fill=pg.mkBrush(0, 0, 0, 150))
        label.setZValue(1)  # over every line, whichever was made first
        if label.textItem.defaultTextColor().getRgb()[:3] != colour:  # setting it lays the text out again
            label.setColor(colour)
        label.setText(text.replace(FACTS_APART, "\n"))  # on one line a volume's facts ran out of a narrow view
        label.setAnchor(anchor)
        return label

    def _clear(self, items: list[Any]) -> None:
        scene = self.view.graphics.scene()
        for item in items:
            if type(item) in self._free:  # hidden, drawn again by ``_reuse``
                item.hide()
                self._free[type(item)].append(item)
                continue
            item.setParentItem(None)
            if item.scene() is not None:
                scene.removeItem(item)
        items.clear()

    def _say(self, text: str) -> None:
        self.panel.status.setText(text)
        self.window.show_status(text, 8000)


def _seeds(record: Measurement) -> list[tuple[int, int, int]]:
    """A volume's clicks, its seed first (what it is regrown from)."""
    return [record.seed, *record.more_seeds]


def _foot(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> tuple[float, float]:
    """The point of line a-b nearest to p (where the shift is measured to)."""
    d = np.subtract(b, a)
    t = float(np.dot(np.subtract(p, a), d) / max(float(np.dot(d, d)), 1e-12))
    return float(a[0] + t * d[0]), float(a[1] + t * d[1])


def attach_measure(window: ViewerWindow, options: ViewOptions | None = None) -> MeasureController:
    """Extension entry point (``ui.app.EXTENSIONS``)."""
    controller = MeasureController(window)
    window.extensions.add(EXTENSION_NAME, controller)
    return controller


__all__ = ["attach_measure", "MeasureController", "MeasurePanel", "EXTENSION_NAME", "TOOLS"]
