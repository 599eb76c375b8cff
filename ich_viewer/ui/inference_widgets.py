"""Small widgets that show predictions: slice strip, image frame, legend and banner.

Colours come from ``imaging.palette`` (Okabe-Ito, colour-blind safe) so the strip, the
frame, the plot and the exported reports agree.
"""
from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QEvent, QObject, QRect, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QGridLayout, QLabel, QSizePolicy, QSlider, QStyle, QStyleOptionSlider, QWidget,
)

from ich_viewer import LABELS
from ich_viewer.imaging.palette import (
    LABEL_LINES, LABEL_MARKERS, SHORT_NAMES, band_labels, label_colour, label_glyph, label_hex,
)
from ich_viewer.ui.overlays import GAP, MARGIN, OverlayLayer

NOT_FLAGGED = QColor(70, 70, 70)
"""Analysed, nothing over threshold."""

__all__ = ["SHORT_NAMES", "band_labels", "SliceStrip", "SliceFrame", "Legend", "Banner"]


def qcolour(label: str) -> QColor:
    return QColor(*label_colour(label))


class SliceStrip(QWidget):
    """A colour band per slice beside the slice slider (slice 1 at the top, like the slider).

    Flagged subtypes share a slice's band side by side; grey = looked at, nothing flagged;
    empty = not analysed yet. Clicking a band jumps to that slice.
    """

    slice_clicked = Signal(int)

    def __init__(self, slider: QSlider | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inference_strip")
        self.setFixedWidth(16)
        self.setToolTip("Classifier result per slice (colours as in the Classifier legend)")
        self._slider = slider
        self._n = 0
        self._bands: dict[int, list[str]] = {}
        self._current: int | None = None
        if slider is not None:
            slider.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self._slider and event.type() in (QEvent.Type.Resize, QEvent.Type.Move):
            self.update()
        return False

    # -- data ------------------------------------------------------------------------
    def reset(self, n_slices: int) -> None:
        self._n = max(0, int(n_slices))
        self._bands.clear()
        self._current = None
        self.update()

    def set_flags(self, index: int, flagged: Sequence[str]) -> None:
        self._bands[int(index)] = band_labels(flagged)
        self.update()

    def set_current(self, index: int | None) -> None:
        self._current = index
        self.update()

    def labels_at(self, index: int) -> list[str] | None:
        """The labels painted for slice ``index``; None when not analysed yet."""
        return self._bands.get(index)

    def colour_names_at(self, index: int) -> list[str]:
        """Hex colours painted for ``index`` (the grey of "nothing flagged" included)."""
        labels = self._bands.get(index)
        if labels is None:
            return []
        return [label_hex(label) for label in labels] if labels else [NOT_FLAGGED.name()]

    # -- geometry --------------------------------------------------------------------
    def centres(self) -> list[float]:
        """Each slice's y centre in this widget, aligned with the slider's handle."""
        if self._n == 0:
            return []
        slider = self._slider
        if slider is not None and slider.isVisible() and slider.maximum() >= slider.minimum():
            opt = QStyleOptionSlider()
            slider.initStyleOption(opt)
            style = slider.style()
            groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderGroove, slider)
            handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, slider)
            span = groove.height() - handle.height()
            offset = self.mapFromGlobal(slider.mapToGlobal(groove.topLeft())).y() + handle.height() / 2.0
            if span > 0 and slider.maximum() == self._n - 1:
                return [offset + QStyle.sliderPositionFromValue(0, self._n - 1, i, span, opt.upsideDown)
                        for i in range(self._n)]
        step = self.height() / self._n
        return [step * (i + 0.5) for i in range(self._n)]

    def band_rect(self, index: int, centres: list[float] | None = None) -> QRect:
        centres = self.centres() if centres is None else centres
        if not 0 <= index < len(centres):
            return QRect()
        if len(centres) == 1:
            return QRect(0, 0, self.width(), self.height())
        # boundaries half-way to the neighbours, so bands tile without gaps
        here = centres[index]
        before = centres[index - 1] if index > 0 else 2 * here - centres[index + 1]
        after = centres[index + 1] if index + 1 < len(centres) else 2 * here - centres[index - 1]
        edges = sorted((int(round((before + here) / 2.0)), int(round((here + after) / 2.0))))
        return QRect(0, edges[0], self.width(), max(1, edges[1] - edges[0]))

    def index_at(self, y: float) -> int | None:
        centres = self.centres()
        if not centres:
            return None
        return min(range(len(centres)), key=lambda i: abs(centres[i] - y))

    # -- painting and mouse -------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(20, 20, 20))
        centres = self.centres()  # once per paint: it asks the slider's style
        for index, labels in self._bands.items():
            rect = self.band_rect(index, centres)
            if rect.isNull():
                continue
            if not labels:
                painter.fillRect(rect.adjusted(4, 0, -4, 0), NOT_FLAGGED)
                continue
            width = rect.width() / len(labels)
            for k, label in enumerate(labels):
                x0 = int(round(rect.left() + k * width))
                x1 = int(round(rect.left() + (k + 1) * width))
                painter.fillRect(QRect(x0, rect.top(), x1 - x0, rect.height()), qcolour(label))
        if self._current is not None:
            rect = self.band_rect(self._current, centres)
            if not rect.isNull():
                painter.setPen(QPen(QColor("white"), 2))
                painter.drawRect(rect.adjusted(1, 0, -1, 0))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        index = self.index_at(event.position().y())
        if index is not None:
            self.slice_clicked.emit(index)


class SliceFrame(QWidget):
    """A coloured frame around the image (one ring per flagged label) and a caption.

    Lives on the image viewport, transparent to the mouse, so it never hides pixels
    that matter (it is drawn at the viewport's edge, outside the anatomy).
    """

    RING = 4

    def __init__(self, viewport: QWidget, overlays: OverlayLayer | None = None) -> None:
        super().__init__(viewport)
        self._overlays = overlays
        """The view's text layer: the caption keeps clear of its corners and scale bar."""
        self.setObjectName("inference_frame")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self._viewport = viewport
        self._labels: list[str] = []
        self.caption = QLabel(self)
        self.caption.setObjectName("inference_frame_caption")
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.caption.setStyleSheet("QLabel { background: rgba(0,0,0,160); color: white; padding: 2px 6px; }")
        self.caption.hide()
        viewport.installEventFilter(self)
        self.setGeometry(viewport.rect())
        self.show()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self._viewport and event.type() == QEvent.Type.Resize:
            self.setGeometry(self._viewport.rect())
            self._place_caption()
        return False

    def set_slice(self, labels: Sequence[str], caption_html: str) -> None:
        self._labels = list(labels)
        self.caption.setText(caption_html)
        self.caption.setVisible(bool(caption_html))
        self._place_caption()
        self.lower()  # under the corner texts, so the rings never hide them
        self.update()

    def labels(self) -> list[str]:
        return list(self._labels)

    def caption_text(self) -> str:
        return self.caption.text()

    def _place_caption(self) -> None:
        """Bottom centre, between the corner texts and above the scale bar, at most half the view wide."""
        limit = max(160, self.width() // 2)
        inset = self.RING * len(self._labels) + 6
        if self._overlays is not None:
            blocks = self._overlays.layout()
            side = max((blocks[c][0].width() + MARGIN for c in ("bottom_left", "bottom_right") if c in blocks),
                       default=0)
            limit = max(120, min(limit, self.width() - 2 * side - 2 * GAP))
            inset = max(inset, self._overlays.bottom_reserved())
        self.caption.setWordWrap(False)
        self.caption.setMinimumWidth(0)
        self.caption.setMaximumWidth(16777215)
        self.caption.adjustSize()
        if self.caption.width() > limit:  # wrap only when one line does not fit
            self.caption.setWordWrap(True)
            self.caption.setFixedWidth(limit)
            self.caption.adjustSize()
        self.caption.move(max(0, (self.width() - self.caption.width()) // 2),
                          max(0, self.height() - self.caption.height() - inset))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        if not self._labels:
            return
        painter = QPainter(self)
        for k, label in enumerate(self._labels):
            pen = QPen(qcolour(label), self.RING)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(pen)
            inset = self.RING * k + self.RING // 2
            painter.drawRect(self.rect().adjusted(inset, inset, -inset - 1, -inset - 1))
        painter.end()


LINE_SAMPLES = {"solid": "──", "dash": "╌╌", "dashdot": "┄┄", "dot": "┈┈"}


def label_sample_html(label: str) -> str:
    """The label's line style and marker in its colour, as rich text (legend, review table)."""
    glyph = label_glyph(label) if LABEL_MARKERS[label][0] else ""
    line = LINE_SAMPLES[LABEL_LINES[label]]
    return f"<span style='color:{label_hex(label)}; font-weight:bold;'>{line[0]}{glyph}{line[1]}</span>"


class Legend(QWidget):
    """Colour, line style, marker, abbreviation and threshold per label, two labels a row.

    The full names are in each entry's tooltip; two columns keep the panel short so the
    plot stays tall in a narrow column.
    """

    COLUMNS = 2

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inference_legend")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(1)
        self._thresholds: dict[str, QLabel] = {}
        for k, label in enumerate(LABELS):
            row, column = divmod(k, self.COLUMNS)
            name = "any hemorrhage" if label == "any" else label
            text = QLabel(f"{label_sample_html(label)} {SHORT_NAMES[label]}")
            text.setTextFormat(Qt.TextFormat.RichText)
            text.setToolTip(f"{name} ({SHORT_NAMES[label]})")
            threshold = QLabel("")
            threshold.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            threshold.setStyleSheet("color: #aaa;")
            grid.addWidget(text, row, 2 * column)
            grid.addWidget(threshold, row, 2 * column + 1)
            self._thresholds[label] = threshold
        self.setToolTip("Colour, line and marker of each label in the plot, the strip and the review list; "
                        "the strip's dark grey: analysed, nothing flagged; blank: not analysed yet")
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

    def set_thresholds(self, thresholds: dict[str, float] | None) -> None:
        for label, widget in self._thresholds.items():
            widget.setText(f"≥ {thresholds[label]:.2f}" if thresholds else "")
            widget.setToolTip("A slice is flagged for this label at or above this probability")


BANNER_STYLES = {
    "suspected": "background: #5a3b00; color: #ffe9b3; border: 1px solid #e69f00;",
    "none": "background: #1f3326; color: #d8f0e0; border: 1px solid #009e73;",
    "running": "background: #2a2a2a; color: #e0e0e0; border: 1px solid #666;",
    "off": "background: #3a1f1f; color: #f3d6d6; border: 1px solid #d55e00;",
}


class Banner(QLabel):
    """Study-level summary at the top of the Classifier panel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inference_banner")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # room for two lines of finding plus the notice (it grows for more), so new text never re-lays out
        # the window (that repainted the whole image view mid-run)
        self.setMinimumHeight(self.fontMetrics().lineSpacing() * 3 + 14)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._least = self.minimumHeight()
        self.state = "running"
        self.set_message("running", "Classifier: waiting for a study")

    def _fit_height(self) -> None:
        """Never shorter than its wrapped text at this width (a cut banner hides the research notice)."""
        if not self.isVisible():  # before the first layout its width means nothing
            return
        self.setMinimumHeight(max(self._least, self.heightForWidth(self.width())))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_height()

    def set_message(self, state: str, html: str, notice: str = "") -> None:
        self.state = state
        self.setStyleSheet(f"QLabel {{ {BANNER_STYLES[state]} padding: 6px; border-radius: 3px; }}")
        small = f"<br><span style='font-size:small'>{notice}</span>" if notice else ""
        self.setText(f"{html}{small}")
        self._fit_height()

    def plain_text(self) -> str:
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.text())
        return doc.toPlainText()
