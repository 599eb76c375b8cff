"""The reading window: one study, one series on screen, keyboard-first.

Others extend it through ``ui.extension.ViewerWindow``, the signals and methods listed in
notes/apis.md (side panels, views beside the image, a decoration beside the slice slider,
items on the image's ViewBox, menus, actions), and find each other in
``window.extensions``. docs/architecture.md maps the layers and the data flow around it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMenu, QMessageBox, QProgressBar,
    QSlider, QWidget,
)

from ich_viewer.dicom.model import Series, Study
from ich_viewer.imaging.geometry import patient_position
from ich_viewer.imaging.presets import DEFAULT, Preset
from ich_viewer.imaging.windowing import adjust_window
from ich_viewer.ui.actions import WindowActions
from ich_viewer.ui.extension import ExtensionRegistry
from ich_viewer.ui.help_dialog import ControlsDialog
from ich_viewer.ui.image_view import SliceView
from ich_viewer.ui.load_log import LoadLogDialog, load_summary
from ich_viewer.ui.loading import StudyLoader
from ich_viewer.ui.key_guard import install_key_guard
from ich_viewer.ui.overlays import CORNERS, overlay_texts
from ich_viewer.ui.reading_layout import APP_TITLE, ReadingLayout, study_title, warning_line
from ich_viewer.ui.series_browser import SeriesBrowser
from ich_viewer.ui.settings import add_recent_study, app_settings, clear_recent_studies, recent_studies
from ich_viewer.ui.state import ViewerState
from ich_viewer.ui.tag_browser import TagBrowser

log = logging.getLogger(__name__)

MENU_ORDER = ("File", "View", "Tools", "Help")
DRAG_HU_PER_PIXEL = {"fine": 0.2, "normal": 1.0, "coarse": 10.0}
CINE_FPS = 12
SHUTDOWN_TIMEOUT_S = 5.0


class MainWindow(QMainWindow):
    """Implements ``ui.extension.ViewerWindow`` for the extensions in ``ui.app.EXTENSIONS``."""

    study_opened = Signal(object)
    series_shown = Signal(object)
    slice_changed = Signal(int)
    study_closing = Signal()
    window_changed = Signal(float, float)
    overlays_rewritten = Signal()
    """The corner texts were rewritten (also when a slice's pixels arrive late): extensions re-add their lines."""
    """(center, width) whenever the window on screen changes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("main_window")
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.extensions = ExtensionRegistry()
        self.state = ViewerState()
        """What is on screen (Qt-free); the window paints it."""
        self._shown_index: int | None = None
        self._menus: dict[str, QMenu] = {}
        self._last_source: str | None = None
        self.last_error: tuple[str, str] | None = None
        self._load_log_study: Study | None = None
        self._error_box: QMessageBox | None = None
        self._dialogs: dict[str, Any] = {}
        self._cursor_rc: tuple[float, float] | None = None
        """Image (row, col) under the mouse; the readout is recomputed on every slice change."""

        self._loader = StudyLoader(self)
        self._loader.loaded.connect(self._on_loaded)
        self._loader.failed.connect(self._on_load_failed)
        self._loader.progress.connect(self._on_progress)
        self._loader.slice_decoded.connect(self._on_slice_decoded)
        self._loader.thumbnail_ready.connect(self._on_thumbnail)

        self._build_central()
        self._build_status_bar()
        self.reading = ReadingLayout(self, self.action)
        """Screen-filling start, compact panels, F11 image-only view (ui/reading_layout.py)."""
        self.series_browser = SeriesBrowser()
        self.series_browser.series_activated.connect(self.show_series)
        self.series_dock = self.add_side_panel(self.series_browser, "Series", Qt.DockWidgetArea.LeftDockWidgetArea)
        self.series_dock.setMinimumWidth(180)
        self.actions_ = WindowActions(self, host=self)  # mypy checks here that the window is an ActionHost
        self.actions_.presets[DEFAULT.key].setChecked(True)
        self.series_menu_action = self.series_dock.toggleViewAction()
        self.menu("View").addAction(self.series_menu_action)

        self._cine = QTimer(self)
        self._cine.setInterval(int(1000 / CINE_FPS))
        self._cine.timeout.connect(self._cine_step)
        self._restore_geometry()
        self._update_window_label()
        install_key_guard()

    # -- layout --------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.slice_view = SliceView()
        self.slice_view.view_box.window_dragged.connect(self._on_window_drag)
        self.slice_view.view_box.wheel_steps.connect(self.step_slice)
        self.slice_view.cursor_moved.connect(self._on_cursor)
        self.slice_view.cursor_left.connect(self._on_cursor_left)
        self.slider = QSlider(Qt.Orientation.Vertical)
        self.slider.setObjectName("slice_slider")
        self.slider.setInvertedAppearance(True)  # slice 1 at the top, like the list it is
        self.slider.setInvertedControls(True)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self.set_slice)
        central = QWidget()
        self._central_layout = QHBoxLayout(central)
        self._central_layout.setContentsMargins(0, 0, 4, 0)
        self._central_layout.setSpacing(2)
        self._central_layout.addWidget(self.slice_view, 1)
        self._central_layout.addWidget(self.slider)
        self.setCentralWidget(central)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.cursor_label = QLabel()
        self.cursor_label.setObjectName("cursor_label")
        self.cursor_label.setMinimumWidth(380)
        self.window_label = QLabel()
        self.window_label.setObjectName("window_label")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(200)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.cursor_label)
        bar.addPermanentWidget(self.window_label)

    # -- extension surface (notes/apis.md) -------------------------------------------------
    def current_study(self) -> Study | None:
        return self.state.study

    def current_series(self) -> Series | None:
        return self.state.series

    def current_index(self) -> int:
        return self.state.index

    def shown_index(self) -> int | None:
        """The slice whose pixels are on screen (None while it is still decoding)."""
        return self._shown_index

    def image_view(self) -> SliceView:
        return self.slice_view

    def menu(self, name: str) -> QMenu:
        """The top-level menu called ``name`` (File, View, Tools, Help; made on demand)."""
        if name in self._menus:
            return self._menus[name]
        menu = QMenu(f"&{name}", self)
        menu.setObjectName(f"menu_{name.lower()}")
        later = [self._menus[n] for n in MENU_ORDER[MENU_ORDER.index(name) + 1:] if n in self._menus] \
            if name in MENU_ORDER else []
        if later:
            self.menuBar().insertMenu(later[0].menuAction(), menu)
        else:
            self.menuBar().addMenu(menu)
        self._menus[name] = menu
        return menu

    def add_side_panel(self, widget: QWidget, title: str,
                       area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        # Panels on the same side share it as tabs: each keeps its full height, and the
        # first one added (the classifier) stays in front.
        earlier = [d for d in self.findChildren(QDockWidget)
                   if d is not dock and self.dockWidgetArea(d) == area and not d.isFloating()]
        if earlier:
            self.tabifyDockWidget(earlier[0], dock)
            earlier[0].raise_()
        return dock

    def add_slider_decoration(self, widget: QWidget) -> None:
        """Put ``widget`` just left of the slice slider, same height (slice 1 at the top)."""
        self._central_layout.insertWidget(self._central_layout.indexOf(self.slider), widget)

    def add_view(self, widget: QWidget, stretch: int = 1) -> None:
        """Put ``widget`` right of the image and its slider; ``stretch`` is its share against the image's 3."""
        self._central_layout.setStretchFactor(self.slice_view, 3)
        self._central_layout.addWidget(widget, stretch)

    def slice_slider(self) -> QSlider:
        """The slice slider (a decoration lines its marks up with it)."""
        return self.slider

    def add_action(self, name: str, text: str, slot: Callable[[], object], keys: tuple[str, ...] = (),
                   checkable: bool = False) -> QAction:
        """A window-wide action (keys work with menus hidden); Help > Controls lists it."""
        return self.actions_._action(name, text, slot, keys, checkable)  # the window's own helper

    def action(self, name: str) -> QAction | None:
        """The window's action called ``name`` (None when there is none)."""
        return self.actions_.by_name.get(name)

    def show_status(self, text: str, msecs: int = 0) -> None:
        self.statusBar().showMessage(text, msecs)

    def show_error(self, title: str, text: str) -> None:
        """Tell the user, without blocking: a non-modal box that replaces the previous one."""
        log.warning("%s: %s", title, text)
        self.last_error = (title, text)
        self.show_status(f"{title}: {text.splitlines()[0] if text else ''}", 10000)
        if self._error_box is not None:
            self._error_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("error_box")
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.destroyed.connect(lambda *_: self._forget_error_box(box))
        self._error_box = box
        box.show()

    def _forget_error_box(self, box: QMessageBox) -> None:
        if self._error_box is box:
            self._error_box = None

    def error_box(self) -> QMessageBox | None:
        return self._error_box

    # -- opening -------------------------------------------------------------------------
    def open_path(self, path: str | os.PathLike) -> None:
        """Start reading a folder, file, DICOMDIR or zip; the window stays responsive."""
        path = str(path)
        if not path or not os.path.exists(path):
            self.show_error("Cannot open", f"{path or '(empty path)'} does not exist.")
            return
        self.close_study()
        self._last_source = path
        self._loader.start(path)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self.show_status(f"Reading {path} …")

    def open_demo(self, kind: str = "ct-ich") -> None:
        """A built-in study: "ct-ich" (real, bundled) or "phantom" (synthetic, made on first use)."""
        from ich_viewer.demo import demo_study_path

        self.close_study()
        self._last_source = None
        self._loader.start(lambda: demo_study_path(kind))
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self.show_status("Preparing the synthetic demo study (generated once, then re-used) …" if kind == "phantom"
                         else "Opening the demo study (CT-ICH patient 071) …")

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open study folder", self._dialog_start())
        if folder:
            self.open_path(folder)

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open DICOM file, DICOMDIR or zip", self._dialog_start(), "All files (*)")
        if path:
            self.open_path(path)

    def _dialog_start(self) -> str:
        recent = recent_studies()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def rebuild_recent_menu(self) -> None:
        menu = self.actions_.recent_menu
        menu.clear()
        items = recent_studies()
        for path in items:
            menu.addAction(path).triggered.connect(lambda *_, p=path: self.open_path(p))
        if not items:
            menu.addAction("(none)").setEnabled(False)
        menu.addSeparator()
        menu.addAction("Clear recent", clear_recent_studies)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.show_status(f"Reading headers: {done}/{total} files")

    def _on_load_failed(self, message: str) -> None:
        self.progress_bar.hide()
        self.show_error("Could not open the study", f"{self._last_source or 'the demo study'}\n\n{message}")

    def _on_loaded(self, study: Study) -> None:
        self.progress_bar.hide()
        self._load_log_study = study
        if not study.series:
            hint = f" {len(study.skipped)} files were skipped (File > Load log says why)." if study.skipped else ""
            self.show_error("No images found", f"No DICOM images were found in\n{study.source}.{hint}")
            return
        add_recent_study(self._last_source or study.source)
        self.show_study(study)
        self.show_status(load_summary(study), 15000)

    def show_study(self, study: Study) -> None:
        """Show an already loaded Study (open_path ends here; tests and demos may call it)."""
        if self.state.study is not None and self.state.study is not study:
            self.close_study()
        self.state.study = study
        self._load_log_study = study
        self.setWindowTitle(study_title(study))
        self.series_browser.set_series(study.series)
        if not self.reading.image_only():
            self.series_dock.setVisible(len(study.series) > 1)  # one series: the list only takes room
        self._loader.request_thumbnails(study.series)
        self.study_opened.emit(study)
        self._refresh_dialogs()
        self.show_series(self.state.first_series())

    def close_study(self) -> None:
        """Stop work on the current study and clear the screen (nothing is kept running)."""
        if self.state.study is not None:
            self.study_closing.emit()
        self._cine.stop()
        self.actions_.by_name["cine"].setChecked(False)
        self._loader.cancel()
        self.state.clear()
        self._shown_index = None
        self.setWindowTitle(APP_TITLE)
        self.slice_view.clear()
        self.slice_view.overlays.set_texts({c: "" for c in CORNERS})
        self.slice_view.overlays.set_notice("")
        self.slice_view.overlays.set_line("load", "")
        self._show_cursor()
        self.series_browser.set_series([])
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)

    # -- series and slices ---------------------------------------------------------------
    def show_series(self, series_or_row: Series | int) -> None:
        series = self.state.series_at(series_or_row)
        if series is None:
            return
        start = self.state.show(series)
        self._shown_index = None
        self.series_browser.set_current(self.state.row() or 0)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, series.n_slices - 1))
        self.slider.blockSignals(False)
        self._loader.decode_series(series, start)
        self.slice_view.overlays.set_line("load", warning_line(self.state.study, series))
        self.series_shown.emit(series)
        self.set_slice(start, force=True)

    def step_series(self, step: int) -> None:
        row = self.state.neighbour_row(step)
        if row is not None:
            self.show_series(row)

    def set_slice(self, index: int, force: bool = False) -> None:
        target = self.state.slice_target(index, force)
        if target is None:
            return
        self.state.index = index = target
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self._render()
        self.slice_changed.emit(index)
        if "tags" in self._dialogs and self._dialogs["tags"].isVisible():
            self._update_tag_browser()

    def step_slice(self, step: int) -> None:
        self.set_slice(self.state.index + step)

    def last_slice(self) -> None:
        if self.state.series is not None:
            self.set_slice(self.state.series.n_slices - 1)

    def toggle_cine(self) -> None:
        if self._cine.isActive() or self.state.series is None:
            self._cine.stop()
        else:
            self._cine.start()
        self.actions_.by_name["cine"].setChecked(self._cine.isActive())

    def cine_running(self) -> bool:
        return self._cine.isActive()

    def _cine_step(self) -> None:
        if self.state.series is None:
            self._cine.stop()
            return
        self.set_slice(self.state.cine_next())

    def _render(self) -> None:
        series, index = self.state.series, self.state.index
        if series is None:
            return
        own = self.state.slice_window()
        if own is not None:
            self._set_window(own, update_image=False)
        if series.is_decoded(index):
            self.slice_view.set_image(series.hu(index), self.current_levels(), series.pixel_spacing)
            self.slice_view.set_orientation(series.slices[index].orientation)
            self._shown_index = index
            self.slice_view.overlays.set_notice("")
        else:
            error = series.decode_error(index)
            if error:
                self.slice_view.overlays.set_notice(f"Slice {index + 1} cannot be shown:\n{error}")
                self.slice_view.clear()
                self._shown_index = None
            else:
                self.slice_view.overlays.set_notice("" if self._shown_index is not None else "Decoding…")
                self._loader.request_slice(series, index)
        self._update_overlays()
        self._show_cursor()  # the value under a still mouse belongs to the new slice

    def _on_slice_decoded(self, series_uid: str, index: int) -> None:
        series = self.state.series
        if series is not None and series_uid == series.series_uid and index == self.state.index \
                and self._shown_index != index:
            self._render()

    def _on_thumbnail(self, series_uid: str, image: Any) -> None:
        self.series_browser.set_thumbnail(series_uid, image)

    # -- windowing -------------------------------------------------------------------------
    def set_preset(self, preset: Preset | str) -> None:
        """Select a preset (a Preset, e.g. an own one on Shift+1, or a fixed one's key "1".."9", "0")."""
        window = self.state.choose_preset(preset)
        assert self.state.preset is not None
        self.actions_.preset_action(self.state.preset.key).setChecked(True)
        self._set_window(window)

    def set_window(self, center: float, width: float) -> None:
        """A window of the reader's own (leaves every preset)."""
        self.state.preset = None
        checked = self.actions_.preset_group.checkedAction()
        if checked is not None:
            checked.setChecked(False)
        self._set_window((center, width))

    def _set_window(self, window: tuple[float, float], update_image: bool = True) -> None:
        self.state.window = (float(window[0]), float(window[1]))
        if update_image:
            self.slice_view.set_levels(self.current_levels())
            self._update_overlays()
        self._update_window_label()
        self.window_changed.emit(*self.state.window)

    def current_window(self) -> tuple[float, float]:
        return self.state.window

    def current_levels(self) -> tuple[float, float]:
        return self.state.levels()

    def preset_name(self) -> str:
        return self.state.preset_name()

    def _on_window_drag(self, dx: float, dy: float, modifiers: Any) -> None:
        if modifiers & Qt.KeyboardModifier.ShiftModifier:
            step = DRAG_HU_PER_PIXEL["fine"]
        elif modifiers & Qt.KeyboardModifier.ControlModifier:
            step = DRAG_HU_PER_PIXEL["coarse"]
        else:
            step = DRAG_HU_PER_PIXEL["normal"]
        self.set_window(*adjust_window(*self.state.window, dx, dy, step))

    def _update_window_label(self) -> None:
        center, width = self.state.window
        self.window_label.setText(f"{self.preset_name()}   W {width:g}  L {center:g}")

    # -- overlays, cursor, zoom ----------------------------------------------------------------
    def _update_overlays(self) -> None:
        state = self.state
        if state.series is None:
            return
        self.slice_view.overlays.set_texts(
            overlay_texts(state.study, state.series, state.index, state.window, state.preset_name()))
        self.overlays_rewritten.emit()

    def toggle_overlays(self) -> None:
        overlays = self.slice_view.overlays
        overlays.set_visible(not overlays.is_visible())
        self.actions_.by_name["overlays"].setChecked(overlays.is_visible())

    def overlays_visible(self) -> bool:
        return self.slice_view.overlays.is_visible()

    def fit(self) -> None:
        self.slice_view.fit()

    def zoom(self, factor: float) -> None:
        self.slice_view.zoom(factor)

    def zoom_one_to_one(self) -> None:
        self.slice_view.zoom(1.0 / self.slice_view.zoom_factor())

    def _on_cursor(self, row: float, col: float) -> None:
        self._cursor_rc = (row, col)
        self._show_cursor()

    def _on_cursor_left(self) -> None:
        self._cursor_rc = None
        self._show_cursor()

    def _show_cursor(self) -> None:
        """HU and position under the mouse, of the slice on screen, in the status bar and beside the mouse."""
        image, series = self.slice_view.image_item.image, self.state.series
        rc = self._cursor_rc
        if image is None or series is None or self._shown_index is None or rc is None \
                or not (0 <= rc[0] < image.shape[0] and 0 <= rc[1] < image.shape[1]):
            self.cursor_label.setText("")
            self.slice_view.overlays.set_cursor("", None)
            return
        r, c = int(rc[0]), int(rc[1])
        value = float(image[r, c])
        text = f"x {c}  y {r}   {value:.0f} HU"
        near = f"{value:.0f} HU"
        position = patient_position(series.slices[self._shown_index], r, c)
        if position is not None:
            where = "({:.1f}, {:.1f}, {:.1f}) mm".format(*position)
            text += "   " + where
            near += "\n" + where
        self.cursor_label.setText(text)
        self.slice_view.overlays.set_cursor(near, self.slice_view.cursor_pos)

    def cursor_text(self) -> str:
        return self.cursor_label.text()

    # -- dialogs -------------------------------------------------------------------------------
    def _dialog(self, name: str, factory: Any) -> Any:
        if name not in self._dialogs:
            self._dialogs[name] = factory()
        return self._dialogs[name]

    def show_tag_browser(self) -> TagBrowser:
        browser = self._dialog("tags", lambda: TagBrowser(self))
        self._update_tag_browser()
        browser.show()
        browser.raise_()
        return browser

    def _update_tag_browser(self) -> None:
        browser = self._dialogs.get("tags")
        if browser is None:
            return
        series, index = self.state.series, self.state.index
        if series is None:
            browser.set_dataset(None, "No study open")
            return
        header = series.slices[index]
        browser.set_dataset(header.full_dataset(), f"Slice {index + 1}/{series.n_slices}: {header.path}")

    def show_load_log(self) -> LoadLogDialog:
        dialog = self._dialog("load_log", lambda: LoadLogDialog(self))
        study = self._load_log_study
        if study is not None:
            dialog.set_study(study)
        dialog.show()
        dialog.raise_()
        return dialog

    def _refresh_dialogs(self) -> None:
        if "load_log" in self._dialogs and self.state.study is not None:
            self._dialogs["load_log"].set_study(self.state.study)
        self._update_tag_browser()

    def show_controls(self) -> ControlsDialog:
        dialog = self._dialog("controls", lambda: ControlsDialog(self.actions_.shortcut_rows(), self))
        dialog.show()
        dialog.raise_()
        return dialog

    def show_about(self) -> QWidget:
        """Version, research-use statement, model card and the demo's credit (ui/about.py)."""
        from ich_viewer.ui.about import AboutDialog

        dialog = self._dialog("about", lambda: AboutDialog(self))
        dialog.show()
        dialog.raise_()
        return dialog

    # -- drag and drop, closing -------------------------------------------------------------
    def dragEnterEvent(self, event: Any) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: Any) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    def _restore_geometry(self) -> None:
        geometry = app_settings().value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
            self.reading.restored = True

    def shutdown(self) -> bool:
        """Stop timers and background work (bounded wait); True when everything stopped."""
        self._cine.stop()
        if self.state.study is not None:
            self.study_closing.emit()
        stopped = self._loader.shutdown(SHUTDOWN_TIMEOUT_S)
        for dialog in self._dialogs.values():
            dialog.close()
        if self._error_box is not None:
            self._error_box.close()
        return stopped

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        settings = app_settings()
        self.reading.leave_image_only()  # the saved layout is the reading one, not the image-only view
        settings.setValue("window/geometry", self.saveGeometry())
        settings.sync()
        self.shutdown()
        super().closeEvent(event)
