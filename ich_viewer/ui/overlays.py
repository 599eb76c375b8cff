"""Corner text over the image (patient, series, slice, window), toggled by a key.

Painted in viewport pixels after the scene, so they keep their size and place whatever
the zoom, and never take mouse events from the image.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QWidget

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
MARGIN = 8
PAD = 4
TEXT_COLOUR = QColor("#e6e6e6")
WINDOW_COLOUR = QColor("#f0d890")
PLATE = QColor(0, 0, 0, 120)
"""A faint dark plate behind the text keeps it legible over bone and bright windows."""


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


class OverlayLayer:
    """Four corner text blocks plus a centred notice, painted straight onto the viewport.

    Painted by the view after the scene (``paint``), not as child widgets: styled
    translucent QLabels cost several milliseconds per frame, this costs a fraction of one.
    """

    def __init__(self, viewport: QWidget) -> None:
        self._viewport = viewport
        self._texts: dict[str, str] = {corner: "" for corner in CORNERS}
        self._notice = ""
        self._visible = True
        self.font = QFont("DejaVu Sans")
        self.font.setPointSizeF(10.0)
        self.notice_font = QFont(self.font)
        self.notice_font.setPointSizeF(12.0)

    def set_texts(self, texts: dict[str, str]) -> None:
        changed = any(self._texts.get(c) != t for c, t in texts.items())
        self._texts.update(texts)
        if changed:
            self._viewport.update()

    def set_notice(self, text: str) -> None:
        if text != self._notice:
            self._notice = text
            self._viewport.update()

    def notice(self) -> str:
        return self._notice

    def is_visible(self) -> bool:
        return self._visible

    def set_visible(self, visible: bool) -> None:
        self._visible = visible
        self._viewport.update()

    def text(self, corner: str) -> str:
        return self._texts[corner]

    def visible_texts(self) -> dict[str, str]:
        """What is on screen now (empty when overlays are toggled off)."""
        return {c: t for c, t in self._texts.items() if self._visible and t}

    def paint(self, painter: QPainter) -> None:
        """Draw in viewport pixels; the caller has reset the painter's transform."""
        width, height = self._viewport.width(), self._viewport.height()
        if self._visible:
            painter.setFont(self.font)
            for corner, text in self._texts.items():
                if text:
                    self._block(painter, text, corner, width, height)
        if self._notice:
            painter.setFont(self.notice_font)
            self._block(painter, self._notice, "centre", width, height)

    def _block(self, painter: QPainter, text: str, corner: str, width: int, height: int) -> None:
        align = Qt.AlignmentFlag.AlignRight if corner.endswith("right") else Qt.AlignmentFlag.AlignLeft
        if corner == "centre":
            align = Qt.AlignmentFlag.AlignHCenter
        flags = int(align | Qt.AlignmentFlag.AlignTop)
        size = QFontMetrics(painter.font()).boundingRect(QRect(0, 0, 4000, 4000), flags, text).size()
        block_w, block_h = size.width() + 2 * PAD, size.height() + 2 * PAD
        if corner == "centre":
            x, y = (width - block_w) // 2, (height - block_h) // 2
        else:
            x = MARGIN if corner.endswith("left") else width - block_w - MARGIN
            y = MARGIN if corner.startswith("top") else height - block_h - MARGIN
        painter.fillRect(QRect(x, y, block_w, block_h), PLATE)
        painter.setPen(WINDOW_COLOUR if corner == "bottom_right" else TEXT_COLOUR)
        painter.drawText(QRect(x + PAD, y + PAD, size.width(), size.height()), flags, text)
