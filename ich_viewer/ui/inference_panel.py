"""The classifier in the window: runs on every shown series and shows what it found.

``attach_inference(window, options)`` (registered in ``ui.app.EXTENSIONS``) builds an
``InferenceController``: a side panel (banner, progress, legend, probability plot), a
colour strip beside the slice slider, a frame around the image, N / P to jump between
flagged slices, G for the attention overlay, Help > Model information and the device
choice. Without a usable model the viewer keeps working and the banner says why.

The controller is a view: what is loaded, what ran and what the banner says live in the
Qt-free ``inference.session.ClassifierSession``; events go to it, then ``render`` paints.
"""
from __future__ import annotations

import html
import logging
import os
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QLabel, QWidget

from ich_viewer.dicom.model import Series
from ich_viewer.imaging.palette import band_labels
from ich_viewer.inference.results import SeriesPrediction, SlicePrediction
from ich_viewer.inference.session import (
    ClassifierSession, ModelState, RunState, load_task, predict_task, slice_caption,
)
from ich_viewer.options import ViewOptions
from ich_viewer.ui.extension import ViewerWindow
from ich_viewer.ui.inference_attention import AttentionOverlay
from ich_viewer.ui.inference_dialog import ModelInfoDialog
from ich_viewer.ui.inference_sidebar import InferencePanel
from ich_viewer.ui.inference_widgets import SliceFrame, SliceStrip
from ich_viewer.ui.settings import app_settings
from ich_viewer.ui.tasks import TaskRunner

if TYPE_CHECKING:  # pragma: no cover - torch stays off the import path until the model loads
    from ich_viewer.inference.weights import LoadedModel

log = logging.getLogger(__name__)

EXTENSION_NAME = "inference"
DEVICE_KEY = "inference/device"
SHUTDOWN_TIMEOUT_S = 3.0
REFRESH_MS = 120
BATCH_SIZE = 4
DEVICE_CHOICES = (("auto", "Automatic (GPU when available)"), ("cpu", "CPU"), ("cuda", "NVIDIA GPU (CUDA)"),
                  ("mps", "Apple GPU (MPS)"))


class InferenceController(QObject):
    """Glue between the window, the session, the background tasks and the widgets."""

    slice_predicted = Signal(str, object)
    """series UID, SlicePrediction (current run only)."""
    series_finished = Signal(object, object)
    """Series, SeriesPrediction once every slice of it has a result (or could not be read)."""
    series_failed = Signal(object, str)
    """Series, reason: its run ended without a result (an error, or the series cannot be analysed)."""
    model_ready = Signal()
    """A model finished loading (or failed: then ``session.reason`` says why)."""

    def __init__(self, window: ViewerWindow, options: ViewOptions | None = None) -> None:
        super().__init__(window)  # type: ignore[arg-type]  # a QMainWindow in practice
        options = options or ViewOptions()
        self.window = window
        self.session = ClassifierSession(enabled=not options.no_model)
        self.device_override: str | None = options.device or None
        self.threads = max(1, (os.cpu_count() or 1) - 1)
        self.runner = TaskRunner(self)
        self.runner.partial.connect(self._on_result)
        self.runner.progress.connect(self._on_progress)
        self.runner.done.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.model_job = TaskRunner(self)
        self.model_job.done.connect(self._on_model_loaded)
        self.model_job.failed.connect(lambda text: self._on_model_loaded(f"The classifier could not be loaded: {text}"))

        self._build_widgets()
        self._build_actions()
        # While results stream in, plot, banner and progress repaint together at most
        # every REFRESH_MS: one paint instead of several per batch keeps the UI fluid.
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        self._progress_value: tuple[int, int] | None = None
        self.plot.defer_redraw = True

        window.study_opened.connect(lambda *_: self.session.clear())
        window.series_shown.connect(self._on_series_shown)
        window.slice_changed.connect(self._on_slice_changed)
        window.study_closing.connect(self._on_study_closing)
        window.installEventFilter(self)
        if self.session.model_state is ModelState.LOADING:
            self.reload_model()
        else:
            self.render()

    @property
    def loaded(self) -> LoadedModel | None:
        """The model in use (None while loading or without one): ``session.loaded``."""
        return self.session.loaded

    # -- construction ----------------------------------------------------------------
    def _build_widgets(self) -> None:
        w = self.window
        self.panel = InferencePanel()
        self.banner, self.plot = self.panel.banner, self.panel.plot
        self.panel.run_button.clicked.connect(self._on_run_button)
        self.plot.slice_clicked.connect(w.set_slice)
        self.dock = w.add_side_panel(self.panel, "Classifier")
        self.dock.setMinimumWidth(260)
        self.strip = SliceStrip(w.slice_slider())
        self.strip.slice_clicked.connect(w.set_slice)
        w.add_slider_decoration(self.strip)
        view = w.image_view()
        self.frame = SliceFrame(view.graphics.viewport(), view.overlays)
        self.attention = AttentionOverlay(w)
        self.attention.changed.connect(self._update_frame)
        self.attention.failed.connect(lambda text: w.show_status(f"Attention map failed: {text}", 8000))
        self.device_label = QLabel("Classifier: loading…")
        self.device_label.setObjectName("inference_device_label")
        w.statusBar().addPermanentWidget(self.device_label)
        self.info_dialog: ModelInfoDialog | None = None

    def _build_actions(self) -> None:
        w = self.window
        add = w.add_action
        self.actions: dict[str, QAction] = {
            "next_flagged": add("next_flagged", "Next run of flagged slices", lambda: self.jump_flagged(1), ("N",)),
            "previous_flagged": add("previous_flagged", "Previous run of flagged slices (its first slice)",
                                    lambda: self.jump_flagged(-1), ("P",)),
            "next_flagged_slice": add("next_flagged_slice", "Next flagged slice, one by one",
                                      lambda: self.jump_flagged(1, by_run=False), ("Shift+N",)),
            "previous_flagged_slice": add("previous_flagged_slice", "Previous flagged slice, one by one",
                                          lambda: self.jump_flagged(-1, by_run=False), ("Shift+P",)),
            "attention": add("attention", "Attention map (Grad-CAM)", self.toggle_attention, ("G",), True),
            "model_info": add("model_info", "Classifier model information…", self.show_model_info),
            "rerun": add("rerun", "Run classifier on this series again", self.rerun),
        }
        menu = w.menu("View").addMenu("&Classifier")
        for name in ("next_flagged", "previous_flagged", "next_flagged_slice", "previous_flagged_slice", "attention"):
            menu.addAction(self.actions[name])
        tools = w.menu("Tools")
        tools.addAction(self.actions["rerun"])
        self.device_menu = tools.addMenu("Classifier &device")
        self.device_menu.aboutToShow.connect(self._fill_device_menu)
        self.device_group = QActionGroup(self)
        tools.addAction(self.actions["model_info"])
        w.menu("Help").addAction(self.actions["model_info"])

    # -- model -----------------------------------------------------------------------
    def device_preference(self) -> str | None:
        """--device wins for this session; else the saved preference; else automatic."""
        if self.device_override:
            return self.device_override
        value = app_settings().value(DEVICE_KEY, "auto")
        return str(value) if value else None

    def set_device_preference(self, choice: str) -> None:
        settings = app_settings()
        settings.setValue(DEVICE_KEY, choice)
        settings.sync()
        self.device_override = None
        self.reload_model()

    def reload_model(self) -> None:
        """Load (again) in the background; the current series is re-run when it is ready."""
        self.runner.cancel()
        self.session.model_loading()
        self.render()
        saved = self.device_override is None  # a saved preference may name a GPU this machine lacks
        self.model_job.start(load_task(self.device_preference(), self.threads, fall_back=saved))

    def _on_model_loaded(self, outcome: Any) -> None:
        if isinstance(outcome, str):
            self.session.model_failed(outcome)
            self.render()
        else:
            loaded, device_text, note = outcome
            if note:
                self.window.show_status(note, 15000)
            self.session.model_ready(loaded, device_text)
            if self.session.series is not None:
                self._show_series(self.session.series)
            else:
                self.render()
        self.model_ready.emit()
        if self.info_dialog is not None and self.info_dialog.isVisible():
            self.show_model_info()

    # -- study and series ------------------------------------------------------------
    def _on_study_closing(self) -> None:
        self.runner.cancel()
        self.attention.hide()
        if not self.runner.wait(SHUTDOWN_TIMEOUT_S):
            log.warning("classifier still running %.1f s after the study closed", SHUTDOWN_TIMEOUT_S)
        self.session.close()
        self.strip.reset(0)
        self.plot.reset(0, None)
        self.frame.set_slice([], "")
        self.render()

    def _on_series_shown(self, series: Series) -> None:
        self.runner.cancel()
        self._show_series(series)

    def _paint(self, prediction: SlicePrediction) -> None:
        """A slice on the strip and the plot; one without brain stays unpainted (not "negative")."""
        if prediction.scored:
            self.strip.set_flags(prediction.index, prediction.flagged)
            self.plot.set_values(prediction.index, prediction.probabilities)

    def _show_series(self, series: Series) -> None:
        """Paint what is known of ``series`` and start a run when the session wants one."""
        self._refresh_timer.stop()
        self._progress_value = None
        self.attention.hide()
        start = self.session.select(series)
        thresholds = self.loaded.thresholds if self.loaded is not None else None
        self.strip.reset(len(series))
        self.plot.reset(len(series), thresholds)
        run = self.session.run()
        for prediction in (run.predictions.values() if run is not None else ()):
            self._paint(prediction)
        if run is not None and run.state is RunState.SKIPPED:
            self.series_failed.emit(series, f"not analysed: this series is {run.reason}")
        self.plot.redraw()
        self._on_slice_changed(self.window.current_index())
        if start:
            self.panel.progress.setRange(0, len(series))
            self.panel.progress.setValue(0)
            QTimer.singleShot(0, lambda s=series: self._start(s))  # after the window has set the slice
        self.render()

    def _start(self, series: Series) -> None:
        if series is not self.session.series or not self.session.running() or self.loaded is None:
            return
        self.runner.start(predict_task(series, self.loaded, start_index=self.window.current_index(),
                                       batch_size=BATCH_SIZE, threads=self.threads))

    def rerun(self) -> None:
        self.runner.cancel()
        if self.session.series is not None and self.session.rerun():
            self._show_series(self.session.series)

    def _on_run_button(self) -> None:
        """Stop keeps what arrived and says it is partial; Run starts the series afresh."""
        self.runner.cancel()
        if self.session.press_button() and self.session.series is not None:
            self._show_series(self.session.series)
        else:
            self.render()

    def is_running(self) -> bool:
        return not self.runner.is_idle()

    # -- worker signals (the runner delivers the current run's only) -----------------------
    def _on_result(self, prediction: SlicePrediction) -> None:
        if self.session.series is None or not self.session.add(prediction):
            return
        self._paint(prediction)
        if prediction.index == self.window.current_index():
            self._update_frame()
        self._schedule_refresh()
        self.slice_predicted.emit(self.session.series.series_uid, prediction)

    def _on_progress(self, done: int, total: int) -> None:
        self._progress_value = (done, total)
        self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _refresh(self) -> None:
        if self._progress_value is not None:
            done, total = self._progress_value
            self._progress_value = None
            self.panel.progress.setRange(0, max(total, 1))
            self.panel.progress.setValue(done)
        self.plot.redraw(force=False)
        self.render()

    def _on_finished(self, errors: dict[int, str]) -> None:
        series = self.session.series
        if series is None or not self.session.finish(errors):
            return
        self.plot.redraw()
        self.render()
        if errors:
            self.window.show_status(f"Classifier: {len(errors)} slice(s) could not be read", 8000)
        self.series_finished.emit(series, self.series_prediction(series))

    def _on_failed(self, message: str) -> None:
        if self.session.fail(message):  # a broken model: the flags it already made go too
            n_slices = len(self.session.series) if self.session.series is not None else 0
            self.strip.reset(n_slices)
            self.plot.reset(n_slices, self.loaded.thresholds if self.loaded is not None else None)
            self.plot.redraw()
        self.render()
        run, series = self.session.run(), self.session.series
        if run is not None and series is not None and run.state is RunState.FAILED:
            self.series_failed.emit(series, run.reason)

    # -- what the reader sees -----------------------------------------------------------
    def render(self) -> None:
        """The one paint step: device line, banner, progress and button from the session."""
        session = self.session
        loaded = session.loaded
        if session.model_state is ModelState.READY and loaded is not None:
            untrained = " – UNTRAINED test weights" if session.untrained else ""
            self.device_label.setText(f"Classifier: {session.device_text}")
            self.device_label.setToolTip(f"{loaded.info.name} {loaded.info.version}{untrained}")
            from ich_viewer.inference.preprocess import slab_note  # torch is loaded with the model

            note = slab_note(session.series, loaded.spec) if session.series is not None else ""
            name = f"{html.escape(loaded.info.name)} {html.escape(loaded.info.version)}{untrained}"
            # one short line in a narrow column: the slab note replaces the word "Model"
            self.panel.model_line.setText(f"{name} · {loaded.spec.slab_mm:g} mm slabs" if note else f"Model {name}")
            self.panel.model_line.setToolTip(f"Runs on {session.device_text} (Tools > Classifier device)"
                                             + (f"; {note}" if note else ""))
            self.panel.legend.set_thresholds(loaded.thresholds)
        elif session.model_state is ModelState.LOADING:
            self.device_label.setText("Classifier: loading…")
        else:
            self.device_label.setText("Classifier: off")
            self.device_label.setToolTip(session.reason)
            self.panel.model_line.setText("")
            self.panel.legend.set_thresholds(None)
        off = session.model_state is ModelState.OFF
        self.panel.set_results_visible(not off)  # an empty plot and legend only puzzle the reader
        self.strip.setVisible(not off)
        banner = session.banner()
        self.banner.set_message(banner.state, banner.text, banner.notice)
        button = session.button()
        self.panel.show_progress(session.running())
        self.panel.run_button.setVisible(button is not None)
        self.panel.run_button.setText(button or "Run")

    def _update_frame(self) -> None:
        prediction = self.prediction_at(self.window.current_index())
        labels = band_labels(prediction.flagged) if prediction is not None else []
        caption = slice_caption(prediction)
        extra = self.attention.caption()
        if extra:
            caption = (caption + "<br>" if caption else "") + extra
        self.frame.set_slice(labels, caption)

    def _on_slice_changed(self, index: int) -> None:
        shown = index if self.session.series is not None else None
        self.strip.set_current(shown)
        self.plot.set_current(shown)
        self.attention.request(self.loaded, self.session.series, index)  # the old map goes at once
        self._update_frame()

    def prediction_at(self, index: int) -> SlicePrediction | None:
        return self.session.prediction_at(index)

    def flagged_indices(self) -> list[int]:
        return self.session.flagged_indices()

    def jump_flagged(self, step: int, by_run: bool = True) -> None:
        """N / P: the next run of flagged slices after (step > 0) or before the current slice;
        Shift+N / Shift+P: the nearest flagged slice."""
        if self.session.series is None:
            return
        current = self.window.current_index()
        target = self.session.jump_target(current, step, by_run)
        if target is not None:
            self.window.set_slice(target)
            return
        where = "after" if step > 0 else "before"
        still = " yet (the classifier is still running)" if self.session.running() else ""
        self.window.show_status(f"No flagged slice {where} slice {current + 1}{still}", 4000)

    def series_prediction(self, series: Series) -> SeriesPrediction | None:
        """What is known for ``series`` as a SeriesPrediction (None without a model)."""
        return self.session.series_prediction(series)

    def results_for_study(self) -> list[tuple[Series, SeriesPrediction]]:
        """(Series, SeriesPrediction) for every series of the open study with results."""
        study = self.window.current_study()
        if study is None or self.loaded is None:
            return []
        out = []
        for series in study.series:
            prediction = self.series_prediction(series)
            if prediction is not None and prediction.slices:
                out.append((series, prediction))
        return out

    # -- attention overlay -------------------------------------------------------------
    def toggle_attention(self) -> None:
        """G: show / hide where the network looked on the slice on screen."""
        if self.attention.on:
            self.attention.switch_off()
        elif self.loaded is None:
            self.window.show_status("No attention map: " + (self.session.reason or "the classifier is not loaded"),
                                    6000)
        else:
            self.attention.switch_on(self.loaded, self.session.series, self.window.current_index())
        self.actions["attention"].setChecked(self.attention.on)
        self._update_frame()

    def attention_visible(self) -> bool:
        return self.attention.visible()

    # -- dialogs and menus ---------------------------------------------------------------
    def show_model_info(self) -> ModelInfoDialog:
        if self.info_dialog is None:
            self.info_dialog = ModelInfoDialog(cast(QWidget, self.window))
        card = self.loaded.card if self.loaded is not None else None
        loading = self.session.model_state is ModelState.LOADING
        self.info_dialog.set_content(card, self.session.device_text, self.session.reason or ("Loading…" if loading else ""))
        self.info_dialog.show()
        self.info_dialog.raise_()
        return self.info_dialog

    def _fill_device_menu(self) -> None:
        from ich_viewer.inference.device import available_devices

        menu = self.device_menu
        menu.clear()
        for action in self.device_group.actions():
            self.device_group.removeAction(action)
        available = available_devices()
        current = (self.device_preference() or "auto").split(":")[0]
        for name, text in DEVICE_CHOICES:
            action = menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(name == current)
            usable = name in ("auto", "cpu") or any(d.split(":")[0] == name for d in available)
            action.setEnabled(usable)
            if not usable:
                action.setText(f"{text} – not available here")
            action.triggered.connect(lambda *_, n=name: self.set_device_preference(n))
            self.device_group.addAction(action)
        if self.device_override:
            menu.addSeparator()
            menu.addAction(f"(--device {self.device_override} is in effect for this session)").setEnabled(False)

    # -- shutdown ------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> bool:
        """Cancel everything and wait (bounded); True when all threads stopped."""
        stopped = self.runner.shutdown(timeout_s)
        stopped &= self.attention.shutdown(timeout_s)
        stopped &= self.model_job.shutdown(timeout_s)
        if self.info_dialog is not None:
            self.info_dialog.close()
        return stopped


def attach_inference(window: ViewerWindow, options: ViewOptions | None = None) -> InferenceController:
    """Extension entry point (``ui.app.EXTENSIONS``): the classifier for this window."""
    controller = InferenceController(window, options)
    window.extensions.add(EXTENSION_NAME, controller)
    return controller
