"""Key images of flagged slices as RGB pictures: windowed greyscale, subtype frame, attention.

Used by the PDF and the DICOM Secondary Capture writer, so both show the same picture.
Colours come from the shared palette, so the frame matches the strip in the window.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ich_viewer.dicom.model import PixelDecodeError, Series
from ich_viewer.imaging.palette import LABEL_COLOURS, band_labels
from ich_viewer.imaging.windowing import window_to_uint8


OverlayFn = Callable[[Series, int], Optional[np.ndarray]]
"""Attention map of one slice (float, any size, 0..1 or unnormalised), or None when not available."""


@dataclass(frozen=True)
class KeyWindow:
    name: str
    center: float
    width: float


KEY_WINDOWS: tuple[KeyWindow, ...] = (KeyWindow("Brain", 40.0, 80.0), KeyWindow("Subdural", 75.0, 215.0))
"""Brain shows parenchymal and ventricular blood; the wider subdural window separates a thin
extra-axial collection from the skull. The numbers are the Brain and Subdural mid presets."""

ATTENTION_COLOUR = np.array((255, 200, 0), dtype=np.float32)
ATTENTION_MAX_ALPHA = 0.55
ATTENTION_FLOOR = 0.2
"""Attention below this share of the slice's maximum is not drawn (keeps the image readable)."""


def render_key_image(
    series: Series,
    index: int,
    window: KeyWindow,
    flagged: Sequence[str] = (),
    *,
    overlay: OverlayFn | None = None,
    max_side: int = 384,
    markers: bool = True,
) -> np.ndarray:
    """An (H, W, 3) uint8 picture of one slice; a slice that cannot be decoded says so in the picture."""
    try:
        grey = window_to_uint8(series.hu(index), window.center, window.width)
    except PixelDecodeError as exc:
        return _message_image(f"image not available: {exc}"[:120], max_side)
    rgb = np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)
    if overlay is not None:
        heat = overlay(series, index)
        if heat is not None:
            rgb = _blend_attention(rgb, np.asarray(heat, dtype=np.float32))
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    image = image.resize(_display_size(series, index, max_side), Image.Resampling.LANCZOS)
    image = _add_frame(image, band_labels(flagged))
    if markers:
        _draw_orientation(image, series.slices[index].orientation)
    return np.asarray(image)


def _display_size(series: Series, index: int, max_side: int) -> tuple[int, int]:
    """Square pixels on paper: rows and columns scaled by their spacing."""
    header = series.slices[index]
    rows, cols = header.rows or 1, header.columns or 1
    row_mm, col_mm = header.pixel_spacing or (1.0, 1.0)
    height, width = rows * float(row_mm or 1.0), cols * float(col_mm or 1.0)
    scale = max_side / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _blend_attention(rgb: np.ndarray, heat: np.ndarray) -> np.ndarray:
    if heat.ndim != 2 or not np.isfinite(heat).any():
        return rgb
    heat = np.nan_to_num(heat - np.nanmin(heat))
    peak = float(heat.max())
    if peak <= 0:
        return rgb
    heat = heat / peak
    if heat.shape != rgb.shape[:2]:
        resized = Image.fromarray(heat.astype(np.float32), "F").resize(
            (rgb.shape[1], rgb.shape[0]), Image.Resampling.BILINEAR
        )
        heat = np.asarray(resized, dtype=np.float32)
    alpha = np.where(heat >= ATTENTION_FLOOR, heat * ATTENTION_MAX_ALPHA, 0.0)[:, :, None]
    return rgb * (1.0 - alpha) + ATTENTION_COLOUR * alpha


def _add_frame(image: Image.Image, labels: Sequence[str]) -> Image.Image:
    """One coloured ring per flagged subtype, outermost first (as stacked bands on the strip)."""
    if not labels:
        return image
    ring = max(3, round(max(image.size) / 80))
    pad = ring * len(labels)
    framed = Image.new("RGB", (image.width + 2 * pad, image.height + 2 * pad))
    draw = ImageDraw.Draw(framed)
    for k, label in enumerate(labels):
        inset = k * ring
        draw.rectangle(
            (inset, inset, framed.width - 1 - inset, framed.height - 1 - inset), fill=LABEL_COLOURS[label]
        )
    framed.paste(image, (pad, pad))
    return framed


def direction_letter(vector: Sequence[float]) -> str:
    """Patient direction (LPS) a vector points to: L/R, P/A, H/F by its largest component."""
    axis = int(np.argmax(np.abs(vector)))
    positive = vector[axis] > 0
    return (("L", "R"), ("P", "A"), ("H", "F"))[axis][0 if positive else 1]


def _draw_orientation(image: Image.Image, orientation: Sequence[float] | None) -> None:
    if not orientation or len(orientation) != 6:
        return
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    draw = ImageDraw.Draw(image)
    size = max(10, image.width // 24)
    font = ImageFont.load_default(size=size)
    margin = max(6, image.width // 40) + 2
    places = {
        "left": (direction_letter(-row), (margin, image.height / 2), "lm"),
        "right": (direction_letter(row), (image.width - margin, image.height / 2), "rm"),
        "top": (direction_letter(-col), (image.width / 2, margin), "mt"),
    }
    for letter, xy, anchor in places.values():
        draw.text(xy, letter, fill=(255, 255, 255), font=font, anchor=anchor, stroke_width=2, stroke_fill=(0, 0, 0))


def _message_image(text: str, side: int) -> np.ndarray:
    image = Image.new("RGB", (side, side), (40, 40, 40))
    ImageDraw.Draw(image).multiline_text((8, side // 2), _wrap(text, 40), fill=(230, 230, 230))
    return np.asarray(image)


def _wrap(text: str, width: int) -> str:
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))
