"""Text over the image: corners, orientation letters, scale bar, notices, cursor readout.

Painted in viewport pixels after the scene, so they keep their size and place whatever
the zoom, and never take mouse events from the image. ``OverlayLayer.layout`` places
every block so that none overlaps another at any viewport size: long lines are elided,
a corner gets at most half the width and height, and what does not fit is dropped.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QWidget

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
MARGIN = 8
PAD = 4
TEXT_COLOUR = QColor("#e6e6e6")
WINDOW_COLOUR = QColor("#f0d890")
PLATE = QColor(0, 0, 0, 120)
"""A faint dark plate behind the text keeps it legible over bone and bright windows."""
LETTER_COLOUR = QColor("#ffe680")
WARNING_COLOUR = QColor("#ffb347")
GAP = 12
"""Least room between two blocks, in viewport pixels."""
CURSOR_OFFSET = 16
SCALE_TARGET = 0.18
"""The scale bar is about this share of the viewport wide."""
EDGES = ("left", "right", "top", "bottom")


def person_name(raw: str) -> str:
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


def thickness_text(header: Any, series: Any) -> str:
    """SliceThickness, or the measured spacing between slices marked as such when the tag is missing."""
    if header.slice_thickness is not None:
        return f"Thk {_fmt_mm(header.slice_thickness)}"
    spacing = getattr(series, "spacing_mm", None)
    if spacing:
        return f"Thk ? (spacing {spacing:.1f} mm, measured)"
    return "Thk ? (not in the file)"


def overlay_texts(study: Any, series: Any, index: int, window: tuple[float, float], preset_name: str) -> dict[str, str]:
    """The text of each corner for one slice (pure function, tested without a window)."""
    header = series.slices[index]
    age_sex = " ".join(v for v in (study.patient_age, study.patient_sex) if v)
    top_left = [
        person_name(study.patient_name) or "(no name)",
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
        thickness_text(header, series),
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
    """Everything painted straight onto the viewport over the image.

    Painted by the view after the scene (``paint``), not as child widgets: styled
    translucent QLabels cost several milliseconds per frame, this costs a fraction of one.
    """

    def __init__(self, viewport: QWidget) -> None:
        self._viewport = viewport
        self._texts: dict[str, str] = {corner: "" for corner in CORNERS}
        self._notice = ""
        self._visible = True
        self._letters: dict[str, str] = {}
        self._zoom: float | None = None
        self._mm_per_px = 0.0
        self._lines: dict[str, tuple[str, QColor]] = {}
        self._cursor: tuple[str, QPoint] | None = None
        self.font = QFont("DejaVu Sans")
        self.font.setPointSizeF(10.0)
        self.notice_font = QFont(self.font)
        self.notice_font.setPointSizeF(12.0)
        self.letter_font = QFont(self.font)
        self.letter_font.setPointSizeF(13.0)
        self.letter_font.setBold(True)
        self._text_size = _Measure(self.font)
        self._notice_size = _Measure(self.notice_font)
        self._letter_size = _Measure(self.letter_font)
        self._layout: tuple[tuple, dict[str, tuple[QRect, str]]] | None = None
        """(what it was computed from, blocks): repaints without a change re-use it."""

    # -- content ---------------------------------------------------------------------
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

    def set_view_info(self, letters: dict[str, str], zoom: float | None, mm_per_px: float) -> None:
        """Orientation letters per edge, zoom factor (None: no image) and mm per screen pixel."""
        if (letters, zoom, mm_per_px) != (self._letters, self._zoom, self._mm_per_px):
            self._letters, self._zoom, self._mm_per_px = dict(letters), zoom, mm_per_px
            self._viewport.update()

    def letters(self) -> dict[str, str]:
        return dict(self._letters)

    def zoom_text(self) -> str:
        return "" if self._zoom is None else f"Zoom {self._zoom:.2f}×"

    def scale_bar(self) -> tuple[float, int]:
        """(length in mm, length in viewport pixels) of the scale bar; (0, 0) when none."""
        if self._zoom is None or not self._mm_per_px > 0:
            return 0.0, 0
        from ich_viewer.imaging.orientation import scale_bar_mm

        mm = scale_bar_mm(self._mm_per_px, SCALE_TARGET * self._viewport.width())
        return mm, int(round(mm / self._mm_per_px)) if mm else 0

    def set_line(self, owner: str, text: str, colour: QColor = WARNING_COLOUR) -> None:
        """A line at the top centre (load warnings, the review decision), one per owner."""
        old = self._lines.get(owner)
        if text:
            self._lines[owner] = (text, QColor(colour))
        else:
            self._lines.pop(owner, None)
        if old != self._lines.get(owner):
            self._viewport.update()

    def line(self, owner: str) -> str:
        return self._lines[owner][0] if owner in self._lines else ""

    def set_cursor(self, text: str, pos: QPoint | None) -> None:
        """The readout next to the mouse (``pos`` in viewport pixels); empty text hides it."""
        self._cursor = (text, QPoint(pos)) if text and pos is not None else None
        self._viewport.update()

    def cursor_text(self) -> str:
        return self._cursor[0] if self._cursor is not None else ""

    def is_visible(self) -> bool:
        return self._visible

    def set_visible(self, visible: bool) -> None:
        self._visible = visible
        self._viewport.update()

    def text(self, corner: str) -> str:
        return self._texts[corner]

    def corner_text(self, corner: str) -> str:
        """What a corner says, the zoom line included."""
        text = self._texts[corner]
        if corner == "bottom_left" and text and self._zoom is not None:
            text += "\n" + self.zoom_text()
        return text

    def visible_texts(self) -> dict[str, str]:
        """What is on screen now (empty when overlays are toggled off)."""
        return {c: t for c, t in self._texts.items() if self._visible and t}

    def bottom_reserved(self) -> int:
        """Viewport pixels at the bottom centre taken by the scale bar and letter (a caption goes above)."""
        blocks = self.layout()
        tops = [blocks[name][0].top() for name in ("scale", "letter_bottom") if name in blocks]
        return self._viewport.height() - min(tops) + GAP // 2 if tops else 0

    # -- layout and painting -------------------------------------------------------------
    def layout(self) -> dict[str, tuple[QRect, str]]:
        """Every block to paint: name -> (rectangle with its plate, text). None overlaps another."""
        key = (self._viewport.width(), self._viewport.height(), tuple(self._texts.items()), self._notice,
               self._visible, tuple(self._letters.items()), self._zoom, self._mm_per_px,
               tuple((o, t, c.rgba()) for o, (t, c) in self._lines.items()),
               (self._cursor[0], self._cursor[1].x(), self._cursor[1].y()) if self._cursor else None)
        if self._layout is None or self._layout[0] != key:
            self._layout = (key, self._compute_layout())
        return self._layout[1]

    def _compute_layout(self) -> dict[str, tuple[QRect, str]]:
        width, height = self._viewport.width(), self._viewport.height()
        out: dict[str, tuple[QRect, str]] = {}
        if width < 4 * MARGIN or height < 4 * MARGIN:
            return out
        taken: list[QRect] = []

        def place(name: str, rect: QRect, text: str) -> bool:
            grown = rect.adjusted(-GAP // 2, -GAP // 2, GAP // 2, GAP // 2)
            if rect.left() < 0 or rect.top() < 0 or rect.right() >= width or rect.bottom() >= height \
                    or any(grown.intersects(r) for r in taken):
                return False
            out[name] = (rect, text)
            taken.append(rect)
            return True

        if self._notice:  # the notice wins: it says why there is no image
            text = self._notice_size.fit(self._notice, width - 2 * MARGIN, height - 2 * MARGIN)
            w, h = self._notice_size.size(text)
            place("notice", QRect((width - w) // 2, (height - h) // 2, w, h), text)
        if not self._visible:
            return out
        measure = self._text_size
        letter_w, letter_h = 0, self._letter_size.metrics.height() + 2 * PAD
        for edge in EDGES:  # the letters first: they say which side is which, and they are small
            letter = self._letters.get(edge, "")
            if not letter:
                continue
            w, h = self._letter_size.size(letter)
            letter_w = max(letter_w, w) if edge in ("top", "bottom") else letter_w
            x = {"left": MARGIN, "right": width - w - MARGIN}.get(edge, (width - w) // 2)
            y = {"top": MARGIN, "bottom": height - h - MARGIN}.get(edge, (height - h) // 2)
            place(f"letter_{edge}", QRect(x, y, w, h), letter)
        # a corner gets at most half the width beside the top/bottom letter and half the
        # height beside the side letters
        max_w = (width - 2 * MARGIN - 2 * GAP - letter_w) // 2
        max_h = (height - 2 * MARGIN - 2 * GAP - letter_h) // 2
        for corner in CORNERS:
            text = measure.fit(self.corner_text(corner), max_w - 2 * PAD - 1, max_h - 2 * PAD)
            if not text:
                continue
            w, h = measure.size(text)
            x = MARGIN if corner.endswith("left") else width - w - MARGIN
            y = MARGIN if corner.startswith("top") else height - h - MARGIN
            place(corner, QRect(x, y, w, h), text)
        mm, px = self.scale_bar()
        if px:
            label = f"{mm:g} mm"
            lw, lh = measure.size(label)
            w = max(px, lw) + 2 * PAD
            y = height - MARGIN - lh - 8
            if "letter_bottom" in out:
                y = out["letter_bottom"][0].top() - GAP - lh - 8
            place("scale", QRect((width - w) // 2, y, w, lh + 8), label)
        y = MARGIN
        if "letter_top" in out:
            y = out["letter_top"][0].bottom() + GAP
        for owner, (line, _colour) in self._lines.items():
            text = measure.fit(line, width - 2 * MARGIN - 2 * PAD, height)
            w, h = measure.size(text)
            rect = QRect((width - w) // 2, y, w, h)
            if not place(f"line_{owner}", rect, text):  # between the top corners, else below them
                below = max([out[c][0].bottom() for c in ("top_left", "top_right") if c in out] + [y])
                rect.moveTop(below + GAP)
                if not place(f"line_{owner}", rect, text):
                    continue
            y = out[f"line_{owner}"][0].bottom() + GAP // 2
        if self._cursor is not None:
            text, pos = self._cursor
            w, h = measure.size(text)
            x = pos.x() + CURSOR_OFFSET if pos.x() + CURSOR_OFFSET + w < width else pos.x() - CURSOR_OFFSET - w
            y = pos.y() + CURSOR_OFFSET if pos.y() + CURSOR_OFFSET + h < height else pos.y() - CURSOR_OFFSET - h
            rect = QRect(max(0, x), max(0, y), w, h)
            out["cursor"] = (rect, text)  # follows the mouse: may pass over a corner for a moment
        return out

    def paint(self, painter: QPainter) -> None:
        """Draw in viewport pixels; the caller has reset the painter's transform."""
        for name, (rect, text) in self.layout().items():
            if name == "notice":
                painter.setFont(self.notice_font)
            elif name.startswith("letter_"):
                painter.setFont(self.letter_font)
            else:
                painter.setFont(self.font)
            painter.fillRect(rect, PLATE)
            inner = rect.adjusted(PAD, PAD, -PAD, -PAD)
            if name == "scale":
                self._paint_scale(painter, rect, text)
                continue
            colour = TEXT_COLOUR
            if name == "bottom_right":
                colour = WINDOW_COLOUR
            elif name.startswith("letter_"):
                colour = LETTER_COLOUR
            elif name.startswith("line_"):
                colour = self._lines[name[5:]][1]
            painter.setPen(colour)
            align = Qt.AlignmentFlag.AlignRight if name.endswith("right") else Qt.AlignmentFlag.AlignLeft
            if name in ("notice", "scale") or name.startswith("line_"):
                align = Qt.AlignmentFlag.AlignHCenter
            painter.drawText(inner, int(align | Qt.AlignmentFlag.AlignTop), text)

    def _paint_scale(self, painter: QPainter, rect: QRect, label: str) -> None:
        _mm, px = self.scale_bar()
        x0 = rect.center().x() - px // 2
        y = rect.bottom() - 4
        painter.setPen(QPen(TEXT_COLOUR, 2))
        painter.drawLine(x0, y, x0 + px, y)
        painter.drawLine(x0, y - 5, x0, y)
        painter.drawLine(x0 + px, y - 5, x0 + px, y)
        painter.drawText(rect.adjusted(0, 0, 0, -8), int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop),
                         label)


class _Measure:
    """Text sizes in one font, remembered: the same lines come back on every frame."""

    LIMIT = 1024

    def __init__(self, font: QFont) -> None:
        self.metrics = QFontMetrics(font)
        self._widths: dict[str, int] = {}
        self._heights: dict[int, int] = {}

    def width(self, line: str) -> int:
        width = self._widths.get(line)
        if width is None:
            if len(self._widths) > self.LIMIT:
                self._widths.clear()
            width = self._widths[line] = self.metrics.horizontalAdvance(line)
        return width

    def lines_height(self, count: int) -> int:
        """Height of ``count`` lines as the painter lays them out.

        Not ``count * lineSpacing()``: the layout rounds each line's fractional spacing up
        (DejaVu Sans 10 pt: 15.125 px, laid out as 16), so that product cut the last line
        of a four- or five-line corner in half.
        """
        height = self._heights.get(count)
        if height is None:
            flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            block = "\n".join(["Xg"] * max(1, count))
            height = self._heights[count] = self.metrics.boundingRect(QRect(0, 0, 1 << 16, 1 << 16), flags,
                                                                      block).height() if count else 0
        return height

    def size(self, text: str) -> tuple[int, int]:
        """Plate size (text plus padding) of a block of lines."""
        lines = text.split("\n")
        return max(self.width(line) for line in lines) + 2 * PAD + 1, self.lines_height(len(lines)) + 2 * PAD

    def fit(self, text: str, max_width: int, max_height: int) -> str:
        """``text`` elided line by line to ``max_width`` and cut to the lines that fit ``max_height``."""
        if not text or max_width <= 0:
            return ""
        lines = text.split("\n")
        while lines and self.lines_height(len(lines)) > max_height:
            lines.pop()
        lines = [line if self.width(line) <= max_width
                 else self.metrics.elidedText(line, Qt.TextElideMode.ElideRight, max_width) for line in lines]
        return "\n".join(line for line in lines if line)
