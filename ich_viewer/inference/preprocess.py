"""What a slice looks like to the network: one function for the app and the trainer.

A network input is the slice and its neighbours (2.5D), each shown in several CT
windows, cropped to the head and resized to a square of ``size`` pixels. The crop makes
scale comparable between sources whose pixel spacing is unknown (CT-ICH JPEGs) and
DICOM series with any field of view. A missing neighbour (first or last slice, a
single-slice input, an undecodable or differently shaped neighbour) is the centre slice
repeated, in training and in the app alike.

Channel order: for each neighbour offset ``-k..+k`` (foot to head), every window in
``spec.windows`` order; values in [0, 1].
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # pragma: no cover
    from ich_viewer.dicom.model import Series

AIR_HU = -1000.0


@dataclass(frozen=True)
class InputSpec:
    """Everything that defines the network input; saved in the model card."""

    size: int = 160
    """Side of the square input in pixels."""
    context: int = 1
    """Neighbours on each side of the centre slice (k); 2k+1 slices in all."""
    windows: tuple[tuple[float, float], ...] = ((40.0, 80.0), (80.0, 200.0), (600.0, 2800.0))
    """(centre, width) in HU: brain, subdural, bone."""
    window_names: tuple[str, ...] = ("brain", "subdural", "bone")
    neighbour_mm: float | None = 5.0
    """Wanted distance to a neighbour; the index step is round(neighbour_mm / spacing),
    at least 1. None means the adjacent slice whatever the spacing."""
    slab_mm: float | None = None
    """Slices thinner than this are averaged with their neighbours into a slab this thick
    before they are stacked (``slab_weights``): the network learned from 5 mm slices, and a
    single thin slice is noisier and shows less partial volume than anything it was trained
    on. None uses every slice as it is."""
    body_threshold_hu: float = -300.0
    """Pixels above this on the centre slice are the head (and anything touching air)."""
    crop_margin: float = 0.04
    """Extra border around the head box, as a fraction of its side."""
    min_brain_fraction: float = 0.0
    """A centre slice whose share of brain-tissue pixels (see ``brain_fraction``) is below
    this is not scored: "no brain on this slice" (vertex above the head, head holder,
    skull cap). 0 scores every slice."""
    version: int = 1
    extra: dict = field(default_factory=dict, compare=False)
    """Free-form notes (kept in the card, ignored here)."""

    @property
    def n_slices(self) -> int:
        return 2 * self.context + 1

    @property
    def n_channels(self) -> int:
        return self.n_slices * len(self.windows)

    def to_dict(self) -> dict:
        data = asdict(self)
        if not data["min_brain_fraction"]:
            del data["min_brain_fraction"]  # off: keeps cache keys of specs made before the option
        if data["slab_mm"] is None:
            del data["slab_mm"]  # the same
        data["windows"] = [list(w) for w in self.windows]
        data["window_names"] = list(self.window_names)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "InputSpec":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown input-spec fields: {sorted(unknown)}")
        values = dict(data)
        if "windows" in values:
            values["windows"] = tuple((float(c), float(w)) for c, w in values["windows"])
        if "window_names" in values:
            values["window_names"] = tuple(values["window_names"])
        spec = cls(**values)
        if spec.size < 8 or spec.context < 0 or not spec.windows:
            raise ValueError(f"input spec out of range: {data}")
        if any(w <= 1 for _, w in spec.windows):
            raise ValueError("every window width must be above 1 HU")
        if spec.slab_mm is not None and not spec.slab_mm > 0:
            raise ValueError(f"slab_mm must be above 0 mm: {spec.slab_mm}")
        return spec


Box = tuple[int, int, int]
"""(top row, left column, side) of the square crop in the slice's pixel grid; may
extend beyond the image (padded with air)."""


def head_box(centre_hu: np.ndarray, spec: InputSpec) -> Box:
    """Square box around the head on the centre slice.

    The mask is thresholded on a coarse grid and eroded twice so a thin head-rest or
    table edge does not widen the box; an empty mask (all air) keeps the whole image.
    """
    rows, cols = centre_hu.shape
    step = max(1, min(rows, cols) // 128)
    coarse = centre_hu[::step, ::step] > spec.body_threshold_hu
    core = coarse
    for _ in range(2):
        core = erode4(core)
    mask = core if core.any() else coarse
    if not mask.any():
        side = max(rows, cols)
        return ((rows - side) // 2, (cols - side) // 2, side)
    rr = np.flatnonzero(mask.any(axis=1))
    cc = np.flatnonzero(mask.any(axis=0))
    grow = 2 if mask is core else 0  # undo the erosion
    r0 = max(0, (rr[0] - grow)) * step
    r1 = min(rows, (rr[-1] + 1 + grow) * step)
    c0 = max(0, (cc[0] - grow)) * step
    c1 = min(cols, (cc[-1] + 1 + grow) * step)
    side = max(r1 - r0, c1 - c0)
    side = int(round(side * (1.0 + 2.0 * spec.crop_margin)))
    side = block_friendly_side(max(side, 8), spec.size)
    top = (r0 + r1) // 2 - side // 2
    left = (c0 + c1) // 2 - side // 2
    return (int(top), int(left), int(side))


def block_factor(side: int, size: int) -> int:
    """Integer factor a crop of ``side`` is block-averaged by before the final resize."""
    return max(1, side // size)


def block_friendly_side(side: int, size: int) -> int:
    """The smallest side >= ``side`` that its own block factor divides."""
    while side % block_factor(side, size):
        side += 1
    return side


def erode4(mask: np.ndarray) -> np.ndarray:
    """4-neighbour binary erosion with numpy shifts (no scipy at run time)."""
    out = mask.copy()
    out[1:, :] &= mask[:-1, :]
    out[:-1, :] &= mask[1:, :]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    out[0, :] = out[-1, :] = False
    out[:, 0] = out[:, -1] = False
    return out


def crop_square(image: np.ndarray, box: Box, fill: float = AIR_HU) -> np.ndarray:
    """The box cut out of the image, padded with ``fill`` where it leaves the image."""
    top, left, side = box
    rows, cols = image.shape
    if top >= 0 and left >= 0 and top + side <= rows and left + side <= cols:
        return image[top:top + side, left:left + side]  # inside the image: a view, no copy
    out = np.full((side, side), fill, dtype=np.float32)
    r0, r1 = max(0, top), min(rows, top + side)
    c0, c1 = max(0, left), min(cols, left + side)
    if r1 > r0 and c1 > c0:
        out[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
    return out


def resize_square(stack: np.ndarray, size: int) -> torch.Tensor:
    """(n, side, side) -> (n, size, size) float32 tensor.

    Shrinking is an integer block mean (the anti-aliasing step, several times cheaper
    than an antialiased interpolate) followed by bilinear interpolation by a factor
    below 2; growing is bilinear. The geometry is the same as one bilinear resize of
    the whole square, so maps can be sent back with ``box``.
    """
    stack = np.ascontiguousarray(stack, dtype=np.float32)
    n, side, _ = stack.shape
    factor = block_factor(side, size)
    if factor > 1:
        usable = (side // factor) * factor
        total = np.zeros((n, usable // factor, usable // factor), dtype=np.float32)
        for dr in range(factor):  # strided sums: much faster than a reshape-mean
            for dc in range(factor):
                total += stack[:, dr:usable:factor, dc:usable:factor]
        stack = total * np.float32(1.0 / (factor * factor))
    tensor = torch.from_numpy(np.ascontiguousarray(stack))
    if tensor.shape[-1] == size:
        return tensor
    return F.interpolate(tensor[None], size=(size, size), mode="bilinear", align_corners=False)[0]


def apply_windows(hu: torch.Tensor, windows: Sequence[tuple[float, float]]) -> torch.Tensor:
    """(n, S, S) HU -> (n * len(windows), S, S) in [0, 1], slice-major channel order."""
    centres = torch.tensor([c for c, _ in windows], dtype=torch.float32).view(1, -1, 1, 1)
    widths = torch.tensor([w for _, w in windows], dtype=torch.float32).view(1, -1, 1, 1)
    low = centres - widths / 2.0
    scaled = (hu[:, None] - low) / widths
    return scaled.clamp_(0.0, 1.0).reshape(-1, hu.shape[-2], hu.shape[-1])


def stack_input(slices_hu: Sequence[np.ndarray | None], spec: InputSpec) -> np.ndarray:
    """The network input (C, S, S) float32 for one centre slice.

    ``slices_hu`` holds the 2k+1 HU slices around the centre in foot-to-head order;
    ``None`` (or a slice of another shape) stands for a missing neighbour and becomes
    the centre slice repeated.
    """
    return _stack(slices_hu, spec)[0].numpy()


def stack_input_with_box(slices_hu: Sequence[np.ndarray | None], spec: InputSpec) -> tuple[np.ndarray, Box]:
    """Like ``stack_input`` and also the crop box, to map network space back to pixels."""
    tensor, box = _stack(slices_hu, spec)
    return tensor.numpy(), box


def _stack(slices_hu: Sequence[np.ndarray | None], spec: InputSpec) -> tuple[torch.Tensor, Box]:
    if len(slices_hu) != spec.n_slices:
        raise ValueError(f"expected {spec.n_slices} slices (context {spec.context}), got {len(slices_hu)}")
    centre = slices_hu[spec.context]
    if centre is None:
        raise ValueError("the centre slice is required")
    centre = np.asarray(centre, dtype=np.float32)
    if centre.ndim != 2:
        raise ValueError(f"a slice must be 2-D, got shape {centre.shape}")
    filled = [centre if image is None or np.shape(image) != centre.shape else np.asarray(image, dtype=np.float32)
              for image in slices_hu]
    box = head_box(centre, spec)
    cropped = np.stack([crop_square(image, box) for image in filled])
    resized = resize_square(cropped, spec.size)
    # non-finite pixels (broken files) count as air; cleaned here, on the small array
    torch.nan_to_num_(resized, nan=AIR_HU, posinf=AIR_HU, neginf=AIR_HU)
    return apply_windows(resized, spec.windows), box


BRAIN_HU = (10.0, 60.0)
"""Grey and white matter (and fresh blood) lie in this range; CSF and fat below, bone above."""
BRAIN_NEIGHBOURHOOD_HU = (-50.0, 150.0)
"""A brain pixel's 5 x 5 neighbourhood stays in this range: partial-volume pixels on the
edge between bone and air pass through 10..60 HU but have bone or air next to them."""


def centre_hu(inputs: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """(B, S, S) HU of the centre slice read back from network inputs (B, C, S, S).

    Each pixel's HU comes from the narrowest window that does not clip it, so the app and
    the trainer (which caches HU and windows it the same way) derive the same values.
    """
    n_windows = len(spec.windows)
    first = spec.context * n_windows
    centre = inputs[:, first:first + n_windows].float()
    hu = torch.full_like(centre[:, 0], float("nan"))
    for k in sorted(range(n_windows), key=lambda i: -spec.windows[i][1]):  # widest first, narrowest wins
        c, w = spec.windows[k]
        value = centre[:, k]
        unclipped = (value > 0.0) & (value < 1.0)
        hu = torch.where(unclipped | torch.isnan(hu), value * w + (c - w / 2.0), hu)
    return hu


def brain_fraction(inputs: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """(B,) share of the centre slice's pixels that are brain tissue, from network inputs.

    Computed from the windowed input itself (``centre_hu``), so the app and the trainer
    see the same thing.
    """
    hu = centre_hu(inputs, spec)[:, None]
    high = F.max_pool2d(hu, 5, 1, 2)
    low = -F.max_pool2d(-hu, 5, 1, 2)
    brain = ((hu >= BRAIN_HU[0]) & (hu <= BRAIN_HU[1]) & (high < BRAIN_NEIGHBOURHOOD_HU[1])
             & (low > BRAIN_NEIGHBOURHOOD_HU[0]))
    return brain.float().mean(dim=(1, 2, 3))


def neighbour_step(spacing_mm: float | None, spec: InputSpec) -> int:
    """Index distance to a neighbour so that it lies about ``neighbour_mm`` away."""
    if spec.neighbour_mm is None or not spacing_mm or spacing_mm <= 0:
        return 1
    return max(1, int(round(spec.neighbour_mm / spacing_mm)))


def neighbour_indices(index: int, n_slices: int, spec: InputSpec, spacing_mm: float | None = None) -> list[int | None]:
    """Indices of the 2k+1 slices around ``index``; None where the series ends."""
    step = neighbour_step(spacing_mm, spec)
    out: list[int | None] = []
    for offset in range(-spec.context, spec.context + 1):
        j = index + offset * step
        out.append(j if 0 <= j < n_slices else None)
    return out


SLAB_MIN_SHARE = 0.1
"""A neighbour that would cover less than this share of its own spacing is left out of a
slab: a 4.9 mm series is not worth averaging into 5 mm."""


def slab_weights(spec: InputSpec, spacing_mm: float | None, thickness_mm: float | None = None
                 ) -> tuple[tuple[int, float], ...]:
    """(index offset, weight) pairs that average slices into one slab ``spec.slab_mm`` thick.

    Each slice stands for its own spacing along the axis, weighted by how much of that
    lies inside the slab; a reconstruction thicker than its spacing already covers part of
    the slab, so the slab is narrowed by the overlap. A series without a known spacing or
    as thick as the slab gives ``((0, 1.0),)``: the slice as it is.
    """
    if not spec.slab_mm or not spacing_mm or spacing_mm <= 0:
        return ((0, 1.0),)
    overlap = max(0.0, (thickness_mm or spacing_mm) - spacing_mm)
    half = (spec.slab_mm - overlap) / 2.0
    reach = max(0, math.ceil(half / spacing_mm - 0.5))
    pairs = []
    for k in range(-reach, reach + 1):
        inside = min(half, (k + 0.5) * spacing_mm) - max(-half, (k - 0.5) * spacing_mm)
        if k == 0 or inside >= SLAB_MIN_SHARE * spacing_mm:
            pairs.append((k, inside))
    if len(pairs) == 1:
        return ((0, 1.0),)
    total = sum(w for _, w in pairs)
    return tuple((k, w / total) for k, w in pairs)


class SlabReader:
    """Slabs of one series by index, each averaged once and kept for a while.

    A slab is the centre slice of three inputs (its own and as a neighbour), so the reader
    keeps the most recent ones. ``read`` gives a slice in HU or None when it cannot be
    used; a slab without its own slice is None, one without some neighbours averages the
    rest. With a single weight each slice is returned as read, uncached: 5 mm series and
    the trainer's cache of them stay exactly what they were before slabs.
    """

    def __init__(self, read: Callable[[int], np.ndarray | None], n_slices: int,
                 weights: Sequence[tuple[int, float]], keep: int = 64) -> None:
        self._read, self._n, self._weights, self._keep = read, n_slices, tuple(weights), keep
        self._slabs: OrderedDict[int, np.ndarray | None] = OrderedDict()

    def __call__(self, index: int) -> np.ndarray | None:
        if len(self._weights) == 1:
            return self._read(index)
        if index in self._slabs:
            self._slabs.move_to_end(index)
            return self._slabs[index]
        centre = self._read(index)
        slab = None if centre is None else self._average(index, centre)
        self._slabs[index] = slab
        if len(self._slabs) > self._keep:
            self._slabs.popitem(last=False)
        return slab

    def _average(self, index: int, centre: np.ndarray) -> np.ndarray:
        total = np.zeros(centre.shape, dtype=np.float32)
        weight = 0.0
        for k, w in self._weights:
            j = index + k
            image = centre if k == 0 else (self._read(j) if 0 <= j < self._n else None)
            if image is None or image.shape != centre.shape:
                continue
            total += np.float32(w) * image
            weight += w
        total *= np.float32(1.0 / weight)
        return total

    def around(self, index: int, spec: InputSpec, spacing_mm: float | None) -> list[np.ndarray | None]:
        """The 2k+1 slabs ``stack_input`` needs for slice ``index``."""
        return [None if j is None else self(j) for j in neighbour_indices(index, self._n, spec, spacing_mm)]


def series_thickness(series: "Series") -> float | None:
    """The series' typical SliceThickness (mm), None when no slice gives one."""
    known = [h.slice_thickness for h in series.slices if h.slice_thickness and h.slice_thickness > 0]
    return float(np.median(known)) if known else None


def series_slab_reader(series: "Series", spec: InputSpec,
                       read: Callable[[int], np.ndarray | None] | None = None) -> SlabReader:
    """Slabs of a series; ``read`` defaults to its HU with an undecodable slice as None."""
    from ich_viewer.dicom.model import PixelDecodeError

    def decoded(j: int) -> np.ndarray | None:
        try:
            return series.hu(j)
        except PixelDecodeError:
            return None

    weights = slab_weights(spec, series.spacing_mm, series_thickness(series))
    keep = 4 * neighbour_step(series.spacing_mm, spec) * spec.context + 16  # both ends of an outward run
    return SlabReader(read or decoded, len(series), weights, keep)


def slab_note(series: "Series", spec: InputSpec) -> str:
    """How a thin series was fed to the network, for the reader ("" when slices were used as they are)."""
    weights = slab_weights(spec, series.spacing_mm, series_thickness(series))
    if len(weights) == 1 or not series.spacing_mm:
        return ""
    return (f"each slice scored as the {spec.slab_mm:g} mm slab around it ({len(weights)} slices of "
            f"{series.spacing_mm:.3g} mm averaged), the slice thickness the classifier was trained on")


def series_slices(series: "Series", index: int, spec: InputSpec) -> list[np.ndarray | None]:
    """The HU slices (slabs) ``stack_input`` needs; an undecodable neighbour counts as missing."""
    series.hu(index)  # the centre must decode; its error propagates
    return series_slab_reader(series, spec).around(index, spec, series.spacing_mm)


def series_input(series: "Series", index: int, spec: InputSpec) -> np.ndarray:
    """The network input for slice ``index`` of a series."""
    return stack_input(series_slices(series, index, spec), spec)
