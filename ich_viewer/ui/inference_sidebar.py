"""The Classifier side panel (its texts come from ``inference.session``)."""
from __future__ import annotations

from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget,
)

from ich_viewer.ui.inference_plot import ProbabilityPlot
from ich_viewer.ui.inference_widgets import Banner, Legend


class InferencePanel(QWidget):
    """Side panel: banner, progress (or model line) with stop/run, legend, plot."""

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
        policy = self.run_button.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # showing it must not move the plot
        self.run_button.setSizePolicy(policy)
        self.model_line = QLabel("")
        self.model_line.setObjectName("inference_model_line")
        self.model_line.setStyleSheet("color: #aaa; font-size: small;")
        # the progress bar while a run goes, else the model line: one row for both saves a
        # line in a narrow column on a 768-pixel screen
        self.status_row = QStackedWidget()
        self.status_row.addWidget(self.model_line)
        self.status_row.addWidget(self.progress)
        self.status_row.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.status_row, 1)
        row.addWidget(self.run_button)
        self.legend = Legend()
        self.plot = ProbabilityPlot()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addLayout(row)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)
        layout.addStretch(0)  # takes the room when the plot is hidden (no model)
        # the keys are in the plot's tooltip (and Help > Controls): a narrow column has no line to spare
        self.plot.setToolTip("N / P: next / previous run of flagged slices · Shift+N / Shift+P: one flagged "
                             "slice at a time · G: attention map · click the plot or the strip to jump")
        self._results = (self.legend, self.plot)

    def show_progress(self, running: bool) -> None:
        """The progress bar in the status row while a run goes, else the model line."""
        self.status_row.setCurrentWidget(self.progress if running else self.model_line)
        self.progress.setVisible(running)

    def set_results_visible(self, visible: bool) -> None:
        for widget in self._results:
            widget.setVisible(visible)
