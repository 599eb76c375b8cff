"""The Classifier side panel and the texts it shows (banner, caption over the image)."""
from __future__ import annotations

import html
from typing import Sequence

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ich_viewer import LABELS
from ich_viewer.imaging.palette import SHORT_NAMES, label_hex
from ich_viewer.inference.results import SlicePrediction
from ich_viewer.ui.inference_plot import ProbabilityPlot
from ich_viewer.ui.inference_widgets import Banner, Legend

SHORT_NOTICE = "Research / decision support – not a diagnosis."


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
    """Rich text over the image for the slice on screen: only when something is flagged."""
    if prediction is None or not prediction.flagged:
        return ""
    shown = [label for label in LABELS if label in prediction.flagged]
    parts = [f"<span style='color:{label_hex(label)}'>■</span>&nbsp;{SHORT_NAMES[label]}&nbsp;"
             f"{prediction.probabilities[label]:.2f}" for label in shown]
    return f"Slice {prediction.index + 1}: " + " · ".join(parts)


class InferencePanel(QWidget):
    """Side panel: banner, progress with stop/run, legend, plot, model line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inference_panel")
        self.banner = Banner()
        self.progress = QProgressBar()
        self.progress.setObjectName("inference_progress")
        self.progress.setFormat("%v / %m slices")
        self.progress.hide()
        self.run_button = QPushButton("Stop")
        self.run_button.setObjectName("inference_run_button")
        self.run_button.hide()
        for widget in (self.progress, self.run_button):  # showing them must not move the plot
            policy = widget.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            widget.setSizePolicy(policy)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.progress, 1)
        row.addWidget(self.run_button)
        self.legend = Legend()
        self.plot = ProbabilityPlot()
        self.model_line = QLabel("")
        self.model_line.setObjectName("inference_model_line")
        self.model_line.setWordWrap(True)
        self.model_line.setStyleSheet("color: #aaa; font-size: small;")
        hint = QLabel("N / P: next / previous flagged slice · G: attention map · click the plot or strip to jump")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #aaa; font-size: small;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addLayout(row)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)
        layout.addWidget(hint)
        layout.addWidget(self.model_line)
        layout.addStretch(0)  # takes the room when the plot is hidden (no model)
        self._results = (self.legend, self.plot, hint)

    def set_results_visible(self, visible: bool) -> None:
        for widget in self._results:
            widget.setVisible(visible)
