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


USER_KEYS: tuple[str, ...] = tuple(f"Shift+{k}" for k in "1234567890")
"""Keys of the reader's own presets: Shift + the number keys, beside the ten fixed ones."""
SUGGESTED_USER_PRESETS: tuple[Preset, ...] = (Preset(USER_KEYS[0], "Stroke", 40.0, 40.0),)
"""What a reader who never edited own presets finds on Shift+1."""
FIELD_SEPARATOR = "|"


def parse_user_presets(rows: list[str]) -> list[Preset]:
    """Own presets from their stored form "key|name|center|width"; unusable rows are dropped."""
    presets: dict[str, Preset] = {}
    for row in rows:
        parts = str(row).split(FIELD_SEPARATOR)
        if len(parts) != 4 or parts[0] not in USER_KEYS or not parts[1].strip():
            continue
        try:
            center, width = float(parts[2]), float(parts[3])
        except ValueError:
            continue
        if width >= 1.0 and center == center:
            presets[parts[0]] = Preset(parts[0], parts[1].strip(), center, width)
    return [presets[key] for key in USER_KEYS if key in presets]


def format_user_presets(presets: list[Preset]) -> list[str]:
    """The stored form of own presets (the name loses any "|")."""
    return [FIELD_SEPARATOR.join((p.key, p.name.replace(FIELD_SEPARATOR, "/"), f"{p.center:g}", f"{p.width:g}"))
            for p in presets if p.center is not None and p.width is not None]
