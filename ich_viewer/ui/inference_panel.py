"""The classifier in the window: runs on every shown series and shows what it found.

``attach_inference(window, args)`` (registered in ``ui.app.EXTENSIONS``) builds an
``InferenceController``: a side panel (banner, progress, legend, probability plot), a
colour strip beside the slice slider, a frame around the image, N / P to jump between
flagged slices, G for the attention overlay, Help > Model information and the device
choice. Without a usable model the viewer keeps working and the banner says why.
"""
from __future__ import annotations

import html
import logging
import os
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel

from ich_viewer.imaging.palette import band_labels
from ich_viewer.inference.results import SeriesPrediction, SlicePrediction
from ich_viewer.inference.worker import InferenceRunner, LatestJob
from ich_viewer.ui.inference_attention import AttentionOverlay
from ich_viewer.ui.inference_dialog import ModelInfoDialog
from ich_viewer.ui.inference_sidebar import SHORT_NOTICE, InferencePanel, banner_content, slice_caption
from ich_viewer.ui.inference_widgets import SliceFrame, SliceStrip
from ich_viewer.ui.settings import app_settings

log = logging.getLogger(__name__)

DEVICE_KEY = "inference/device"
SHUTDOWN_TIMEOUT_S = 3.0
REFRESH_MS = 120
DEVICE_CHOICES = (("auto", "Automatic (GPU when available)"), ("cpu", "CPU"), ("cuda", "NVIDIA GPU (CUDA)"),
                  ("mps", "Apple GPU (MPS)"))


class InferenceController(QObject):
    """Glue between the window, the worker and the widgets; one per window."""

    slice_predicted = Signal(str, object)
    """series UID, SlicePrediction (current run only)."""
    series_finished = Signal(object, object)
    """Series, SeriesPrediction once every slice of it has a result (or could not be read)."""
    model_ready = Signal()
    """A model finished loading (or failed: then ``problem`` says why)."""

    def __init__(self, window: Any, args: Any = None) -> None:
        super().__init__(window)
        self.window = window
        self.enabled = not bool(getattr(args, "no_model", False))
        self.device_override: str | None = getattr(args, "device", None) or None
        self.loaded: Any = None
        self.problem = ""
        self.device_text = ""
        self.loading = False
        self.predictions: dict[str, dict[int, SlicePrediction]] = {}
        self.errors: dict[str, dict[int, str]] = {}
        self.complete: set[str] = set()
        self.started_at: dict[str, str] = {}
        self._series: Any = None
        self._skip_reason: str | None = None
        self._stopped = False

        self.runner = InferenceRunner(self, batch_size=4, threads=max(1, (os.cpu_count() or 1) - 1))
        self.runner.result.connect(self._on_result)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.model_job = LatestJob(self)
        self.model_job.done.connect(self._on_model_loaded)
        self.model_job.failed.connect(lambda g, text: self._set_problem(f"The classifier could not be loaded: {text}"))

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

        window.study_opened.connect(self._on_study_opened)
        window.series_shown.connect(self._on_series_shown)
        window.slice_changed.connect(self._on_slice_changed)
        window.study_closing.connect(self._on_study_closing)
        window.installEventFilter(self)
        if self.enabled:
            self.reload_model()
        else:
            self._set_problem("Classifier switched off (--no-model).")

    # -- construction ----------------------------------------------------------------
    def _build_widgets(self) -> None:
        w = self.window
        self.panel = InferencePanel()
        self.banner, self.plot = self.panel.banner, self.panel.plot
        self.panel.run_button.clicked.connect(self._on_run_button)
        self.plot.slice_clicked.connect(w.set_slice)
        self.dock = w.add_side_panel(self.panel, "Classifier")
        self.dock.setMinimumWidth(300)
        self.strip = SliceStrip(getattr(w, "slider", None))
        self.strip.slice_clicked.connect(w.set_slice)
        w.add_slider_decoration(self.strip)
        view = w.image_view()
        self.frame = SliceFrame(view.graphics.viewport())
        self.attention = AttentionOverlay(w)
        self.attention.changed.connect(self._update_frame)
        self.attention.failed.connect(lambda text: w.show_status(f"Attention map failed: {text}", 8000))
        self.device_label = QLabel("Classifier: loading…")
        self.device_label.setObjectName("inference_device_label")
        w.statusBar().addPermanentWidget(self.device_label)
        self.info_dialog: ModelInfoDialog | None = None

    def _action(self, name: str, text: str, slot: Any, key: str = "", checkable: bool = False) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(f"action_{name}")
        if key:
            action.setShortcut(QKeySequence(key))
        action.setCheckable(checkable)
        action.triggered.connect(lambda *_: slot())
        self.window.addAction(action)
        registry = getattr(getattr(self.window, "actions_", None), "by_name", None)
        if isinstance(registry, dict):  # so Help > Controls lists the keys too
            registry[name] = action
        return action

    def _build_actions(self) -> None:
        w = self.window
        self.actions: dict[str, QAction] = {
            "next_flagged": self._action("next_flagged", "Next flagged slice", lambda: self.jump_flagged(1), "N"),
            "previous_flagged": self._action("previous_flagged", "Previous flagged slice",
                                             lambda: self.jump_flagged(-1), "P"),
            "attention": self._action("attention", "Attention map (Grad-CAM)", self.toggle_attention, "G", True),
            "model_info": self._action("model_info", "Classifier model information…", self.show_model_info),
            "rerun": self._action("rerun", "Run classifier on this series again", self.rerun),
        }
        menu = w.menu("View").addMenu("&Classifier")
        for name in ("next_flagged", "previous_flagged", "attention"):
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
        self.loading = True
        self.loaded = None
        self.problem = ""
        self.device_label.setText("Classifier: loading…")
        self.banner.set_message("running", "Loading the classifier…", SHORT_NOTICE)
        preference = self.device_preference()
        threads = self.runner.threads
        saved = self.device_override is None  # a saved preference may name a GPU this machine lacks
        self.model_job.request(lambda: _load(preference, threads, fall_back=saved))

    def _on_model_loaded(self, generation: int, outcome: Any) -> None:
        if generation != self.model_job.generation:
            return
        self.loading = False
        if isinstance(outcome, str):
            self._set_problem(outcome)
        else:
            self.loaded, self.device_text, note = outcome
            if note:
                self.window.show_status(note, 15000)
            self.problem = ""
            untrained = " – UNTRAINED test weights" if self.loaded.card.get("untrained") else ""
            self.device_label.setText(f"Classifier: {self.device_text}")
            self.device_label.setToolTip(f"{self.loaded.info.name} {self.loaded.info.version}{untrained}")
            self.panel.model_line.setText(
                f"Model {html.escape(self.loaded.info.name)} {html.escape(self.loaded.info.version)}{untrained} · "
                f"{html.escape(self.device_text)}")
            self.panel.legend.set_thresholds(self.loaded.thresholds)
            self.panel.set_results_visible(True)
            self.strip.show()
            self.predictions.clear()
            self.errors.clear()
            self.complete.clear()
            if self._series is not None:
                self._show_series(self._series)
            else:
                self.banner.set_message("running", "Classifier ready – open a study", SHORT_NOTICE)
        self.model_ready.emit()
        if self.info_dialog is not None and self.info_dialog.isVisible():
            self.show_model_info()

    def _set_problem(self, text: str) -> None:
        self.loading = False
        self.loaded = None
        self.problem = text
        self.device_label.setText("Classifier: off")
        self.device_label.setToolTip(text)
        notice = "" if "without predictions" in text else "The viewer works normally without the classifier."
        self.banner.set_message("off", f"<b>No predictions.</b> {html.escape(text)}", notice)
        self.panel.set_results_visible(False)  # an empty plot and legend only puzzle the reader
        self.strip.hide()
        self.panel.model_line.setText("")
        self.panel.legend.set_thresholds(None)
        self.panel.progress.hide()
        self.panel.run_button.hide()

    # -- study and series ------------------------------------------------------------
    def _on_study_opened(self, study: Any) -> None:
        self.predictions.clear()
        self.errors.clear()
        self.complete.clear()

    def _on_study_closing(self) -> None:
        self.runner.cancel()
        self.attention.hide()
        if not self.runner.wait(SHUTDOWN_TIMEOUT_S):
            log.warning("classifier still running %.1f s after the study closed", SHUTDOWN_TIMEOUT_S)
        self._series = None
        self.strip.reset(0)
        self.plot.reset(0, None)
        self.frame.set_slice([], "")
        self.attention.hide()
        self.panel.progress.hide()
        self.panel.run_button.hide()
        if self.loaded is not None:
            self.banner.set_message("running", "Classifier ready – open a study", SHORT_NOTICE)

    def _on_series_shown(self, series: Any) -> None:
        self.runner.cancel()
        self._show_series(series)

    def _show_series(self, series: Any) -> None:
        self._refresh_timer.stop()
        self._progress_value = None
        self._skip_reason = None
        self._series = series
        self._stopped = False
        self.attention.hide()
        uid = series.series_uid
        thresholds = self.loaded.thresholds if self.loaded is not None else None
        self.strip.reset(len(series))
        self.plot.reset(len(series), thresholds)
        known = self.predictions.get(uid, {})
        for prediction in known.values():
            self.strip.set_flags(prediction.index, prediction.flagged)
            self.plot.set_values(prediction.index, prediction.probabilities)
        self.plot.redraw()
        self._on_slice_changed(self.window.current_index())
        if self.loaded is None:
            if self.problem:
                self._set_problem(self.problem)
            return
        from ich_viewer.inference.predict import not_analysable

        reason = self._skip_reason = not_analysable(series)
        if reason:
            self.panel.progress.hide()
            self.panel.run_button.hide()
            self.banner.set_message("running", f"Not analysed: this series is {html.escape(reason)}.", SHORT_NOTICE)
            return
        if uid in self.complete:
            self.panel.progress.hide()
            self.panel.run_button.hide()
            self._update_banner()
            return
        self.panel.progress.setRange(0, len(series))
        self.panel.progress.setValue(0)
        self.panel.progress.show()
        self.panel.run_button.setText("Stop")
        self.panel.run_button.show()
        self._update_banner(running=True)
        QTimer.singleShot(0, lambda s=series: self._start(s))  # after the window has set the slice

    def _start(self, series: Any) -> None:
        if series is not self._series or self.loaded is None:
            return
        from datetime import datetime, timezone

        self.predictions[series.series_uid] = {}
        self.errors[series.series_uid] = {}
        self.started_at[series.series_uid] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.runner.start(series, self.loaded, start_index=self.window.current_index())

    def rerun(self) -> None:
        if self._series is None or self.loaded is None:
            return
        self.complete.discard(self._series.series_uid)
        self.predictions.pop(self._series.series_uid, None)
        self.runner.cancel()
        self._show_series(self._series)

    def stop(self) -> None:
        """The reader's Stop: keep what arrived, say that it is partial."""
        if self.runner.is_idle() and self._series is not None and self._series.series_uid in self.complete:
            return
        self.runner.cancel()
        self._stopped = True
        self.panel.progress.hide()
        self.panel.run_button.setText("Run")
        self._update_banner()

    def _on_run_button(self) -> None:
        if self.panel.run_button.text() == "Stop":
            self.stop()
        else:
            self.rerun()

    def is_running(self) -> bool:
        return not self.runner.is_idle()

    # -- worker signals -----------------------------------------------------------------
    def _current(self, generation: int, uid: str) -> bool:
        return (generation == self.runner.generation and self._series is not None
                and uid == self._series.series_uid)

    def _on_result(self, generation: int, uid: str, prediction: SlicePrediction) -> None:
        if not self._current(generation, uid):
            return  # a late signal from a cancelled run
        self.predictions.setdefault(uid, {})[prediction.index] = prediction
        self.strip.set_flags(prediction.index, prediction.flagged)
        self.plot.set_values(prediction.index, prediction.probabilities)
        if prediction.index == self.window.current_index():
            self._update_frame()
        self._schedule_refresh()
        self.slice_predicted.emit(uid, prediction)

    def _on_progress(self, generation: int, done: int, total: int) -> None:
        if generation == self.runner.generation:
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
        self._update_banner()

    def _on_finished(self, generation: int, uid: str, cancelled: bool, errors: dict) -> None:
        if not self._current(generation, uid) or cancelled:
            return
        self.errors[uid] = dict(errors)
        self.complete.add(uid)
        self.panel.progress.hide()
        self.panel.run_button.hide()
        self.plot.redraw()
        self._update_banner()
        if errors:
            self.window.show_status(f"Classifier: {len(errors)} slice(s) could not be read", 8000)
        self.series_finished.emit(self._series, self.series_prediction(self._series))

    def _on_failed(self, generation: int, uid: str, message: str) -> None:
        if not self._current(generation, uid):
            return
        self.panel.progress.hide()
        self.panel.run_button.setText("Run")
        if message.startswith("NonFiniteOutputError"):
            # the model itself is broken: flags it made before the NaN are not to be trusted either
            self.predictions.pop(uid, None)
            self.strip.reset(len(self._series) if self._series is not None else 0)
            self.plot.reset(len(self._series) if self._series is not None else 0,
                            self.loaded.thresholds if self.loaded is not None else None)
            self.plot.redraw()
        self.banner.set_message("off", f"<b>The classifier stopped with an error.</b> {html.escape(message)}",
                                SHORT_NOTICE)

    # -- what the reader sees -----------------------------------------------------------
    def _update_banner(self, running: bool | None = None) -> None:
        series = self._series
        if series is None or self.loaded is None or self._skip_reason:
            return
        uid = series.series_uid
        if running is None:
            running = not self._stopped and uid not in self.complete and not self.runner.is_idle()
        slices = sorted(self.predictions.get(uid, {}).values(), key=lambda p: p.index)
        name = series.description or (f"Series {series.series_number}" if series.series_number is not None else "")
        state, text = banner_content(slices, len(series), running=running, stopped=self._stopped,
                                     unreadable=len(self.errors.get(uid, {})), series_name=name)
        self.banner.set_message(state, text, self._notice())

    def _notice(self) -> str:
        if self.loaded is not None and self.loaded.card.get("untrained"):
            return "<b>UNTRAINED test weights: these predictions mean nothing.</b> " + SHORT_NOTICE
        return SHORT_NOTICE

    def _update_frame(self) -> None:
        prediction = self.prediction_at(self.window.current_index())
        labels = band_labels(prediction.flagged) if prediction is not None else []
        caption = slice_caption(prediction)
        extra = self.attention.caption()
        if extra:
            caption = (caption + "<br>" if caption else "") + extra
        self.frame.set_slice(labels, caption)

    def _on_slice_changed(self, index: int) -> None:
        self.strip.set_current(index if self._series is not None else None)
        self.plot.set_current(index if self._series is not None else None)
        self.attention.request(self.loaded, self._series, index)  # the old map goes at once
        self._update_frame()

    def prediction_at(self, index: int) -> SlicePrediction | None:
        if self._series is None:
            return None
        return self.predictions.get(self._series.series_uid, {}).get(index)

    def flagged_indices(self) -> list[int]:
        if self._series is None:
            return []
        return sorted(i for i, p in self.predictions.get(self._series.series_uid, {}).items() if p.flagged)

    def jump_flagged(self, step: int) -> None:
        """N / P: the nearest flagged slice after (step > 0) or before the current one."""
        if self._series is None:
            return
        current = self.window.current_index()
        flagged = self.flagged_indices()
        candidates = [i for i in flagged if i > current] if step > 0 else [i for i in flagged if i < current][::-1]
        if candidates:
            self.window.set_slice(candidates[0])
            return
        where = "after" if step > 0 else "before"
        still = " yet (the classifier is still running)" if self.is_running() else ""
        self.window.show_status(f"No flagged slice {where} slice {current + 1}{still}", 4000)

    def series_prediction(self, series: Any) -> SeriesPrediction | None:
        """What is known for ``series`` as a SeriesPrediction (None without a model)."""
        if self.loaded is None:
            return None
        from datetime import datetime, timezone

        slices = sorted(self.predictions.get(series.series_uid, {}).values(), key=lambda p: p.index)
        return SeriesPrediction(series_uid=series.series_uid, model=self.loaded.info, slices=slices,
                                started_at=self.started_at.get(series.series_uid, ""),
                                finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                errors=dict(self.errors.get(series.series_uid, {})))

    def results_for_study(self) -> list[tuple[Any, SeriesPrediction]]:
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
            self.window.show_status("No attention map: " + (self.problem or "the classifier is not loaded"), 6000)
        else:
            self.attention.switch_on(self.loaded, self._series, self.window.current_index())
        self.actions["attention"].setChecked(self.attention.on)
        self._update_frame()

    def attention_visible(self) -> bool:
        return self.attention.visible()

    # -- dialogs and menus ---------------------------------------------------------------
    def show_model_info(self) -> ModelInfoDialog:
        if self.info_dialog is None:
            self.info_dialog = ModelInfoDialog(self.window)
        card = self.loaded.card if self.loaded is not None else None
        self.info_dialog.set_content(card, self.device_text, self.problem or ("Loading…" if self.loading else ""))
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


def _load(preference: str | None, threads: int | None, fall_back: bool = False) -> Any:
    """In a pool thread: (LoadedModel, device text, note), or the reason as a string.

    ``fall_back``: an unavailable saved device falls back to automatic, with a note;
    an explicit ``--device`` is an error instead, so the reader knows what ran.
    """
    import torch

    from ich_viewer.inference.device import DeviceError, describe_device
    from ich_viewer.inference.weights import ModelLoadError, load_model

    if threads:
        torch.set_num_threads(threads)  # leave a core to the event loop
    note = ""
    try:
        try:
            loaded = load_model(None, device=preference)
        except DeviceError as exc:
            if not fall_back:
                raise
            note = f"Classifier device preference not usable ({exc}); using the automatic choice"
            loaded = load_model(None, device=None)
    except (ModelLoadError, DeviceError) as exc:
        return str(exc)
    return loaded, describe_device(loaded.device), note


def attach_inference(window: Any, args: Any = None) -> InferenceController:
    """Extension entry point (``ui.app.EXTENSIONS``): the classifier for this window."""
    controller = InferenceController(window, args)
    window.inference = controller
    return controller
