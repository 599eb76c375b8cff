"""The attention overlay (G): Grad-CAM of the slice on screen, blended over the image.

Computed off the UI thread (only the latest request runs); a map is shown only for the
slice it was computed for, and hidden the moment the slice changes.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal

from ich_viewer.imaging.palette import SHORT_NAMES
from ich_viewer.ui.tasks import TaskRunner

MAX_ALPHA = 115
"""At most ~45 % opacity: the image always shows through."""


def attention_lut() -> np.ndarray:
    """Transparent below 25 % attention, then warmer and more opaque (inferno)."""
    lut = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=True).astype(np.ubyte)
    ramp = np.clip((np.arange(256) - 64) / 192.0, 0.0, 1.0)
    lut[:, 3] = (ramp * MAX_ALPHA).astype(np.ubyte)
    return lut


class AttentionOverlay(QObject):
    changed = Signal()
    """A map appeared or went away (the caption over the image follows)."""
    failed = Signal(str)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.on = False
        self.current: Any = None
        """The AttentionMap on screen, or None."""
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setZValue(10)
        self.item.setLookupTable(attention_lut())
        self.item.hide()
        window.image_view().view_box.addItem(self.item)
        self.job = TaskRunner(self)
        self.job.done.connect(self._on_done)
        self.job.failed.connect(self.failed)

    def switch_on(self, loaded: Any, series: Any, index: int) -> None:
        self.on = True
        self.request(loaded, series, index)

    def switch_off(self) -> None:
        self.on = False
        self.hide()

    def visible(self) -> bool:
        return self.item.isVisible()

    def request(self, loaded: Any, series: Any, index: int) -> None:
        """Hide the old map and compute the one for ``index`` (if the overlay is on)."""
        self.hide()
        if not self.on or series is None or loaded is None:
            return
        from ich_viewer.inference.gradcam import attention_map

        self.job.start(lambda _state: attention_map(loaded, series, index))

    def hide(self) -> None:
        """Hide the map and cancel its computation: a map for an older slice never arrives."""
        self.job.cancel()
        self.item.hide()
        self.current = None

    def _on_done(self, amap: Any) -> None:
        if not self.on:
            return
        self.current = amap
        self.item.setImage(amap.heat, autoLevels=False, levels=(0.0, 1.0))
        self.item.setRect(self.window.image_view().image_rect())
        self.item.show()
        self.changed.emit()

    def caption(self) -> str:
        """Italic line under the slice caption while the overlay is on."""
        if not self.on:
            return ""
        if self.current is None:
            return "<i>Attention map: computing…</i>"
        return (f"<i>Attention (G) for {SHORT_NAMES[self.current.label]} p={self.current.probability:.2f}: "
                f"where the network looked – not an outline of blood</i>")

    def shutdown(self, timeout_s: float) -> bool:
        return self.job.shutdown(timeout_s)
