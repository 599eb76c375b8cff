"""The classifier's state for one window, without Qt: what is loaded, what ran, what to show.

``ui/inference_panel`` only renders a ``ClassifierSession`` and forwards events to it
(as napari's Qt view renders its ``ViewerModel``), so Stop / Run, the N / P jumps and
the banner text are decided here and tested without a window. The background work is
two plain task functions (``load_task``, ``predict_task``) for ``ui.tasks.TaskRunner``.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ich_viewer import LABELS
from ich_viewer.imaging.palette import SHORT_NAMES, label_hex
from ich_viewer.inference.results import SeriesPrediction, SlicePrediction

if TYPE_CHECKING:  # pragma: no cover - torch stays off the UI's import path
    from ich_viewer.dicom.model import Series
    from ich_viewer.inference.weights import LoadedModel
    from ich_viewer.tasks import TaskState

SHORT_NOTICE = "Research / decision support – not a diagnosis."
UNTRAINED_NOTICE = "<b>UNTRAINED test weights: these predictions mean nothing.</b> "
OFF_NOTICE = "The viewer works normally without the classifier."
READY_TEXT = "Classifier ready – open a study"


class ModelState(Enum):
    LOADING = "loading"
    READY = "ready"
    OFF = "off"
    """No model: ``ClassifierSession.reason`` says why (switched off, missing, wrong device)."""


class RunState(Enum):
    RUNNING = "running"
    """Started; results stream in."""
    STOPPED = "stopped"
    """The reader pressed Stop: what arrived is kept and called partial."""
    COMPLETE = "complete"
    FAILED = "failed"
    """predict() raised; ``SeriesRun.reason`` holds the message."""
    SKIPPED = "skipped"
    """Not analysable (a scout, another modality); ``SeriesRun.reason`` says which."""


@dataclass
class SeriesRun:
    """One run of the classifier over one series."""

    n_slices: int
    state: RunState = RunState.RUNNING
    predictions: dict[int, SlicePrediction] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    """{slice index: reason} for slices that could not be read."""
    started_at: str = ""
    reason: str = ""


@dataclass(frozen=True)
class BannerView:
    state: str
    """"running", "suspected", "none" or "off" (the banner's colour)."""
    text: str
    """Rich text (escaped)."""
    notice: str


class ClassifierSession:
    """Model state, the run of every series seen since the study opened, the shown series."""

    def __init__(self, enabled: bool = True) -> None:
        self.model_state = ModelState.LOADING if enabled else ModelState.OFF
        self.reason = "" if enabled else "Classifier switched off (--no-model)."
        self.loaded: LoadedModel | None = None
        self.device_text = ""
        self.series: Series | None = None
        self.runs: dict[str, SeriesRun] = {}

    # -- model ---------------------------------------------------------------------------
    def model_loading(self) -> None:
        self.model_state, self.loaded, self.reason = ModelState.LOADING, None, ""

    def model_ready(self, loaded: LoadedModel, device_text: str) -> None:
        """A new model makes every earlier result obsolete."""
        self.model_state, self.loaded, self.device_text, self.reason = ModelState.READY, loaded, device_text, ""
        self.runs.clear()

    def model_failed(self, reason: str) -> None:
        self.model_state, self.loaded, self.reason = ModelState.OFF, None, reason

    @property
    def untrained(self) -> bool:
        return bool(self.loaded is not None and self.loaded.card.get("untrained"))

    # -- study and series ----------------------------------------------------------------
    def clear(self) -> None:
        """A study opened: results of the previous one are gone."""
        self.runs.clear()

    def close(self) -> None:
        """The study closed: nothing is shown."""
        self.runs.clear()
        self.series = None

    def select(self, series: Series) -> bool:
        """Show ``series``; True when a run must start (its run is then RUNNING)."""
        from ich_viewer.inference.predict import not_analysable  # torch: imported on first use

        self.series = series
        if self.model_state is not ModelState.READY:
            return False
        uid = series.series_uid
        reason = not_analysable(series)
        if reason:
            self.runs[uid] = SeriesRun(len(series), RunState.SKIPPED, reason=reason)
            return False
        known = self.runs.get(uid)
        if known is not None and known.state is RunState.COMPLETE:
            return False
        self.runs[uid] = SeriesRun(len(series), started_at=_now())
        return True

    def rerun(self) -> bool:
        """Forget the shown series' run; True when showing it again (``select``) will run it."""
        if self.series is None or self.model_state is not ModelState.READY:
            return False
        self.runs.pop(self.series.series_uid, None)
        return True

    def run(self) -> SeriesRun | None:
        """The run of the shown series (None without one)."""
        return self.runs.get(self.series.series_uid) if self.series is not None else None

    def running(self) -> bool:
        run = self.run()
        return run is not None and run.state is RunState.RUNNING

    def is_complete(self, series: Series) -> bool:
        run = self.runs.get(series.series_uid)
        return run is not None and run.state is RunState.COMPLETE

    def predictions_of(self, series: Series) -> dict[int, SlicePrediction]:
        """{slice index: prediction} known for ``series`` (a copy)."""
        run = self.runs.get(series.series_uid)
        return dict(run.predictions) if run is not None else {}

    # -- results of the current run ---------------------------------------------------------
    def add(self, prediction: SlicePrediction) -> bool:
        """A slice's result; False (ignored) unless the shown series' run is running."""
        run = self.run()
        if run is None or run.state is not RunState.RUNNING:
            return False
        run.predictions[prediction.index] = prediction
        return True

    def finish(self, errors: dict[int, str]) -> bool:
        run = self.run()
        if run is None or run.state is not RunState.RUNNING:
            return False
        run.errors, run.state = dict(errors), RunState.COMPLETE
        return True

    def fail(self, message: str) -> bool:
        """The run ended with an error; True when its predictions were dropped because the
        model itself produced non-finite outputs (flags made before that are not trusted)."""
        run = self.run()
        if run is None or run.state is not RunState.RUNNING:
            return False
        run.state, run.reason = RunState.FAILED, message
        if message.startswith("NonFiniteOutputError"):
            run.predictions.clear()
            return True
        return False

    def stop(self) -> bool:
        """The reader's Stop: keep what arrived; True when something was running."""
        run = self.run()
        if run is None or run.state is not RunState.RUNNING:
            return False
        run.state = RunState.STOPPED
        return True

    def button(self) -> str | None:
        """The run button's label ("Stop" / "Run"), or None when it is hidden."""
        run = self.run()
        if self.model_state is not ModelState.READY or run is None:
            return None
        return {RunState.RUNNING: "Stop", RunState.STOPPED: "Run", RunState.FAILED: "Run"}.get(run.state)

    def press_button(self) -> bool:
        """Stop a run, or forget it after Stop / an error; True when the series must be selected again."""
        if self.button() == "Stop":
            self.stop()
            return False
        return self.button() == "Run" and self.rerun()

    # -- questions the window asks ------------------------------------------------------------
    def prediction_at(self, index: int) -> SlicePrediction | None:
        run = self.run()
        return run.predictions.get(index) if run is not None else None

    def flagged_indices(self) -> list[int]:
        run = self.run()
        return sorted(i for i, p in run.predictions.items() if p.flagged) if run is not None else []

    def flagged_runs(self) -> list[tuple[int, int]]:
        """(first, last) of each run of consecutive flagged slices, top to bottom."""
        runs: list[tuple[int, int]] = []
        for index in self.flagged_indices():
            if runs and index == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], index)
            else:
                runs.append((index, index))
        return runs

    def run_at(self, index: int) -> tuple[int, int] | None:
        """The run of flagged slices that holds ``index`` (None when it is not flagged)."""
        return next((run for run in self.flagged_runs() if run[0] <= index <= run[1]), None)

    def jump_target(self, current: int, step: int, by_run: bool = True) -> int | None:
        """N / P: the first slice of the next run of flagged slices after (step > 0) or before
        ``current`` (P inside a run goes to its first slice); ``by_run=False``: the nearest
        flagged slice."""
        flagged = [first for first, _last in self.flagged_runs()] if by_run else self.flagged_indices()
        candidates = [i for i in flagged if i > current] if step > 0 else [i for i in flagged if i < current][::-1]
        return candidates[0] if candidates else None

    def series_prediction(self, series: Series) -> SeriesPrediction | None:
        """What is known for ``series`` as a SeriesPrediction (None without a model)."""
        if self.loaded is None:
            return None
        from ich_viewer.inference.preprocess import slab_note  # torch is loaded with the model

        run = self.runs.get(series.series_uid)
        slices = sorted(run.predictions.values(), key=lambda p: p.index) if run is not None else []
        return SeriesPrediction(series_uid=series.series_uid, model=self.loaded.info, slices=slices,
                                started_at=run.started_at if run is not None else "", finished_at=_now(),
                                errors=dict(run.errors) if run is not None else {},
                                input_note=slab_note(series, self.loaded.spec))

    def banner(self) -> BannerView:
        """The banner for the model state and the shown series' run."""
        if self.model_state is ModelState.LOADING:
            return BannerView("running", "Loading the classifier…", SHORT_NOTICE)
        if self.model_state is ModelState.OFF:
            notice = "" if "without predictions" in self.reason else OFF_NOTICE
            return BannerView("off", f"<b>No predictions.</b> {html.escape(self.reason)}", notice)
        run, series = self.run(), self.series
        if series is None or run is None:
            return BannerView("running", READY_TEXT, SHORT_NOTICE)
        if run.state is RunState.SKIPPED:
            return BannerView("running", f"Not analysed: this series is {html.escape(run.reason)}.", SHORT_NOTICE)
        if run.state is RunState.FAILED:
            return BannerView("off", f"<b>The classifier stopped with an error.</b> {html.escape(run.reason)}",
                              SHORT_NOTICE)
        name = series.description or (f"Series {series.series_number}" if series.series_number is not None else "")
        state, text = banner_content(sorted(run.predictions.values(), key=lambda p: p.index), run.n_slices,
                                     running=run.state is RunState.RUNNING, stopped=run.state is RunState.STOPPED,
                                     unreadable=len(run.errors), series_name=name)
        return BannerView(state, text, (UNTRAINED_NOTICE if self.untrained else "") + SHORT_NOTICE)


# -- texts ------------------------------------------------------------------------------------
def _names(labels: Sequence[str]) -> str:
    return ", ".join(f"{label} ({SHORT_NAMES[label]})" for label in labels)


def banner_content(slices: Sequence[SlicePrediction], n_total: int, *, running: bool, stopped: bool = False,
                   unreadable: int = 0, series_name: str = "") -> tuple[str, str]:
    """(state, html) of the study banner for the predictions of the shown series."""
    flagged = [s for s in slices if s.flagged]
    subtypes = [label for label in LABELS[:-1] if any(label in s.flagged for s in flagged)]
    done = len(slices) + unreadable
    where = f"{html.escape(series_name)}: " if series_name else ""
    if subtypes:
        finding = f"Suspected {_names(subtypes)}"
    elif flagged:
        finding = "Suspected hemorrhage, subtype unclear"
    else:
        finding = ""
    count = f"{len(flagged)} of {n_total} slices flagged"
    if running:
        state = "suspected" if finding else "running"
        text = f"{where}{finding + ' so far – ' + count if finding else 'Classifier running'} ({done}/{n_total} analysed)…"
    elif finding:
        state, text = "suspected", f"{where}<b>{finding}</b> – {count}"
    else:
        state, text = "none", f"{where}No hemorrhage flagged on {len(slices)} slice{'s' if len(slices) != 1 else ''}"
    if stopped and not running:
        text = f"Stopped after {done}/{n_total} slices (partial). " + text
    if unreadable:
        text += f" ({unreadable} slice{'s' if unreadable != 1 else ''} could not be read)"
    return state, text


def slice_caption(prediction: SlicePrediction | None) -> str:
    """Rich text over the image for the slice on screen: only when something is flagged or
    the slice was not scored (a reader must not take "no colour" there for "negative")."""
    if prediction is not None and not prediction.scored:
        return f"Slice {prediction.index + 1}: {prediction.note}"
    if prediction is None or not prediction.flagged:
        return ""
    shown = [label for label in LABELS if label in prediction.flagged]
    parts = [f"<span style='color:{label_hex(label)}'>■</span>&nbsp;{SHORT_NAMES[label]}&nbsp;"
             f"{prediction.probabilities[label]:.2f}" for label in shown]
    return f"Slice {prediction.index + 1}: " + " · ".join(parts)


# -- the background work ------------------------------------------------------------------
def predict_task(series: Series, loaded: LoadedModel, *, start_index: int | None, batch_size: int = 4,
                 threads: int | None = None) -> Callable[[TaskState], dict[int, str]]:
    """``predict()`` as a task: each slice is a partial result; returns the unreadable slices."""

    def work(task: TaskState) -> dict[int, str]:
        from ich_viewer.inference.predict import PredictState, predict

        state = PredictState(loaded, batch_size=batch_size, first_batch=1, start_index=start_index,
                             cancel=task.cancelled, threads=threads, progress=task.set_progress)
        for prediction in predict(series, state):
            if task.cancelled():
                break
            task.set_partial_result(prediction)
        return dict(state.errors)

    return work


def load_task(preference: str | None, threads: int | None, fall_back: bool = False) -> Callable[[Any], Any]:
    """Loading the model as a task: (LoadedModel, device text, note), or the reason as a string.

    ``fall_back``: an unavailable saved device falls back to automatic, with a note;
    an explicit ``--device`` is an error instead, so the reader knows what ran.
    """

    def work(_task: Any) -> Any:
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

    return work


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
