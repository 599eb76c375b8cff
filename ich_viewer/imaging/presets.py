"""The ten window presets of DESIGN.md, in keyboard order 1..9, 0.

"Default" has no numbers of its own: it follows the slice's WindowCenter/Width tags
(the first value when the tag is multi-valued) and falls back to Brain when they are
absent or unusable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    key: str
    """Keyboard key that selects it: "1".."9", "0"."""
    name: str
    center: float | None
    width: float | None
    """None for Default (taken from the slice)."""

    @property
    def is_default(self) -> bool:
        return self.center is None


PRESETS: tuple[Preset, ...] = (
    Preset("1", "Default", None, None),
    Preset("2", "Brain", 40.0, 80.0),
    Preset("3", "Subdural min", 50.0, 130.0),
    Preset("4", "Subdural mid", 75.0, 215.0),
    Preset("5", "Subdural max", 100.0, 300.0),
    Preset("6", "Tissue min", 20.0, 350.0),
    Preset("7", "Tissue mid", 40.0, 375.0),
    Preset("8", "Tissue max", 60.0, 400.0),
    Preset("9", "Bone", 600.0, 2800.0),
    Preset("0", "Grey-white", 32.0, 8.0),
)

BRAIN: Preset = PRESETS[1]
DEFAULT: Preset = PRESETS[0]


def preset_for_key(key: str) -> Preset:
    for preset in PRESETS:
        if preset.key == key:
            return preset
    raise KeyError(key)


def default_window(header: Any) -> tuple[float, float]:
    """The slice's own window (WindowCenter/Width), or Brain when it has none.

    ``header`` is a ``SliceHeader`` (anything with window_center/window_width).
    """
    center = getattr(header, "window_center", None) if header is not None else None
    width = getattr(header, "window_width", None) if header is not None else None
    try:
        c, w = float(center), float(width)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return BRAIN.center, BRAIN.width  # type: ignore[return-value]
    if not (w >= 1.0) or c != c:  # NaN or a width DICOM does not allow
        return BRAIN.center, BRAIN.width  # type: ignore[return-value]
    return c, w


def resolve(preset: Preset, header: Any) -> tuple[float, float]:
    """(center, width) the preset means for this slice."""
    if preset.is_default:
        return default_window(header)
    return preset.center, preset.width  # type: ignore[return-value]
