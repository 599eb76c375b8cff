"""List of the study's series with thumbnails; clicking one shows it."""
from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

ICON_SIZE = 96


def series_caption(series: Any) -> str:
    number = f"{series.series_number}: " if series.series_number is not None else ""
    kind = " (localizer)" if series.is_localizer else ""
    warn = "  ⚠" if series.warnings else ""
    return f"{number}{series.description or '(no description)'}{kind}\n{series.n_slices} images{warn}"


def pixmap_from_gray(image: np.ndarray) -> QPixmap:
    data = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = data.shape
    qimage = QImage(data.data, width, height, width, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(qimage)


def _placeholder() -> QIcon:
    pixmap = QPixmap(ICON_SIZE, ICON_SIZE)
    pixmap.fill(QColor("#202020"))
    return QIcon(pixmap)


class SeriesBrowser(QListWidget):
    """One row per series (localizers included, listed last by the study)."""

    series_activated = Signal(int)
    """Index into the list given to ``set_series``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("series_browser")
        self.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys stay with the reader
        self.setWordWrap(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setSpacing(2)
        self._uids: list[str] = []
        self._thumbnailed: set[str] = set()
        self.itemClicked.connect(lambda item: self.series_activated.emit(self.row(item)))

    def set_series(self, series_list: list[Any]) -> None:
        self.clear()
        self._uids = [s.series_uid for s in series_list]
        self._thumbnailed = set()
        for series in series_list:
            item = QListWidgetItem(_placeholder(), series_caption(series))
            item.setToolTip("\n".join([series.series_uid, *series.warnings]))
            self.addItem(item)

    def set_thumbnail(self, series_uid: str, image: np.ndarray | None) -> None:
        if image is None or series_uid not in self._uids:
            return
        pixmap = pixmap_from_gray(image)
        icon = QIcon(pixmap)
        icon.addPixmap(pixmap, QIcon.Mode.Selected)  # no selection tint over the image
        self.item(self._uids.index(series_uid)).setIcon(icon)
        self._thumbnailed.add(series_uid)

    def has_thumbnail(self, row: int) -> bool:
        return self._uids[row] in self._thumbnailed

    def set_current(self, row: int) -> None:
        self.blockSignals(True)
        self.setCurrentRow(row)
        self.blockSignals(False)
