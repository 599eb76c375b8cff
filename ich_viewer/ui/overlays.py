"""Corner text over the image (patient, series, slice, window), toggled by a key.

Labels are plain widgets on the view's viewport, so they stay the same size and place
whatever the zoom, and never take mouse events from the image.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QLabel, QWidget

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
MARGIN = 8


def _fmt_name(raw: str) -> str:
    """DICOM PN 'Family^Given' -> 'FAMILY, Given' (the reading-room habit)."""
    parts = [p for p in str(raw).split("^") if p]
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0].upper()}, {' '.join(parts[1:])}"


def _fmt_date(raw: str) -> str:
    raw = str(raw or "")
    if len(raw) == 8 and raw.isdigit():
        return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
    return raw


def _fmt_mm(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} mm"


def overlay_texts(study: Any, series: Any, index: int, window: tuple[float, float], preset_name: str) -> dict[str, str]:
    """The text of each corner for one slice (pure function, tested without a window)."""
    header = series.slices[index]
    age_sex = " ".join(v for v in (study.patient_age, study.patient_sex) if v)
    top_left = [
        _fmt_name(study.patient_name) or "(no name)",
        f"ID {study.patient_id}" if study.patient_id else "",
        age_sex,
        _fmt_date(study.study_date),
        study.institution,
    ]
    number = f"Se {series.series_number}: " if series.series_number is not None else ""
    top_right = [
        f"{number}{series.description or '(no description)'}",
        f"Im {index + 1}/{series.n_slices}",
        study.study_description,
    ]
    if index < len(series.positions_mm):
        location = series.positions_mm[index]
    else:
        location = header.slice_location
    bottom_left = [
        f"Loc {_fmt_mm(location)}",
        f"Thk {_fmt_mm(header.slice_thickness)}",
        f"{header.rows}x{header.columns}",
    ]
    if series.gantry_tilt_deg:
        bottom_left.append(f"Tilt {series.gantry_tilt_deg:.1f}°")
    center, width = window
    bottom_right = [f"W {width:g}  L {center:g}", preset_name]
    return {
        "top_left": "\n".join(t for t in top_left if t),
        "top_right": "\n".join(t for t in top_right if t),
        "bottom_left": "\n".join(t for t in bottom_left if t),
        "bottom_right": "\n".join(t for t in bottom_right if t),
    }


class OverlayLayer(QObject):
    """Four corner labels plus a centred notice (e.g. a slice still decoding)."""

    def __init__(self, viewport: QWidget) -> None:
        super().__init__(viewport)
        self._viewport = viewport
        self.labels: dict[str, QLabel] = {}
        for corner in CORNERS:
            label = self._make_label(corner)
            align = Qt.AlignmentFlag.AlignRight if corner.endswith("right") else Qt.AlignmentFlag.AlignLeft
            label.setAlignment(align | Qt.AlignmentFlag.AlignTop)
            self.labels[corner] = label
        self.notice = self._make_label("notice")
        self.notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notice.hide()
        self._visible = True

    def _make_label(self, name: str) -> QLabel:
        label = QLabel(self._viewport)
        label.setObjectName(f"overlay_{name}")
        label.setProperty("overlay", True)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        label.setTextFormat(Qt.TextFormat.PlainText)
        return label

    def set_texts(self, texts: dict[str, str]) -> None:
        for corner, text in texts.items():
            self.labels[corner].setText(text)
        self._place()

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        self._place()

    def is_visible(self) -> bool:
        return self._visible

    def set_visible(self, visible: bool) -> None:
        self._visible = visible
        for label in self.labels.values():
            label.setVisible(visible and bool(label.text()))

    def text(self, corner: str) -> str:
        return self.labels[corner].text()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self._viewport and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        width, height = self._viewport.width(), self._viewport.height()
        for corner, label in self.labels.items():
            label.adjustSize()
            x = MARGIN if corner.endswith("left") else width - label.width() - MARGIN
            y = MARGIN if corner.startswith("top") else height - label.height() - MARGIN
            label.move(max(0, x), max(0, y))
            label.setVisible(self._visible and bool(label.text()))
        self.notice.adjustSize()
        self.notice.move(max(0, (width - self.notice.width()) // 2), max(0, (height - self.notice.height()) // 2))
