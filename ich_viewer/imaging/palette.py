"""Subtype colours shared by the slice strip, the overlays and the exported reports.

Okabe-Ito colours, chosen to stay distinguishable with the common colour-vision
deficiencies. Qt-free (plain RGB tuples and hex strings) so reports use the same values.
"""
from __future__ import annotations

from ich_viewer import LABELS

OKABE_ITO: dict[str, tuple[int, int, int]] = {
    "orange": (230, 159, 0),
    "sky_blue": (86, 180, 233),
    "bluish_green": (0, 158, 115),
    "yellow": (240, 228, 66),
    "blue": (0, 114, 178),
    "vermillion": (213, 94, 0),
    "reddish_purple": (204, 121, 167),
    "black": (0, 0, 0),
}

LABEL_COLOURS: dict[str, tuple[int, int, int]] = {
    "epidural": OKABE_ITO["orange"],
    "intraparenchymal": OKABE_ITO["vermillion"],
    "intraventricular": OKABE_ITO["blue"],
    "subarachnoid": OKABE_ITO["sky_blue"],
    "subdural": OKABE_ITO["bluish_green"],
    "any": OKABE_ITO["reddish_purple"],
}
"""RGB 0..255 per label, keys in ``LABELS`` order."""

assert tuple(LABEL_COLOURS) == LABELS


LABEL_LINES: dict[str, str] = {
    "epidural": "solid",
    "intraparenchymal": "dash",
    "intraventricular": "solid",
    "subarachnoid": "dash",
    "subdural": "solid",
    "any": "dashdot",
}
"""Line style per label: the pairs whose colours are close (EDH/IPH, IVH/SAH) differ here too."""

LABEL_MARKERS: dict[str, tuple[str, str]] = {
    "epidural": ("o", "●"),
    "intraparenchymal": ("s", "■"),
    "intraventricular": ("t", "▼"),
    "subarachnoid": ("d", "◆"),
    "subdural": ("x", "✕"),
    "any": ("", "┄"),
}
"""(pyqtgraph symbol, text glyph) per label: plot markers and the same shape in tables and legends."""


def label_glyph(label: str) -> str:
    return LABEL_MARKERS[label][1]


def label_colour(label: str) -> tuple[int, int, int]:
    return LABEL_COLOURS[label]


def label_hex(label: str) -> str:
    r, g, b = LABEL_COLOURS[label]
    return f"#{r:02x}{g:02x}{b:02x}"

SHORT_NAMES: dict[str, str] = {
    "epidural": "EDH", "intraparenchymal": "IPH", "intraventricular": "IVH",
    "subarachnoid": "SAH", "subdural": "SDH", "any": "ICH",
}
"""Abbreviations radiologists use; "any" is ICH (hemorrhage, subtype unclear)."""


def band_labels(flagged) -> list[str]:
    """The colours a flagged slice shows: its subtypes, else "any" when only that is flagged."""
    subtypes = [label for label in LABELS[:-1] if label in flagged]
    return subtypes or (["any"] if "any" in flagged else [])
