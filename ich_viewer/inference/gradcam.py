"""Where the network looked on one slice: Grad-CAM on the last residual block.

The map is computed in network space (S x S of the cropped head) and sent back to the
slice's own pixel grid by undoing the crop and resize, so it lies exactly over the image.
It shows what drove one output, not where blood is; it is a reading aid, not a finding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ich_viewer import LABELS
from ich_viewer.inference.model import to_probabilities
from ich_viewer.inference.guards import checked_slices, plausible_slabs
from ich_viewer.inference.predict import known_upright
from ich_viewer.inference.preprocess import Box, stack_input_with_box

if TYPE_CHECKING:  # pragma: no cover
    from ich_viewer.dicom.model import Series
    from ich_viewer.inference.weights import LoadedModel


@dataclass(frozen=True)
class AttentionMap:
    """A map in [0, 1] on the slice's pixel grid and the label it explains."""

    index: int
    label: str
    probability: float
    heat: np.ndarray
    """float32 (rows, columns), 0 = no attention, 1 = strongest."""


def explained_label(probabilities: dict[str, float], thresholds: dict[str, float]) -> str:
    """The subtype most over its threshold when any is flagged, else "any"."""
    margins = {label: probabilities[label] - thresholds[label] for label in LABELS[:-1]}
    best = max(margins, key=margins.get)
    return best if margins[best] >= 0 else "any"


def network_cam(loaded: "LoadedModel", tensor: torch.Tensor, label_index: int,
                upright_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(cam S x S in [0, 1], probabilities (6,)) for one input (1, C, S, S); ``upright_deg``
    is its series' turn for the HU stage (``predict.known_upright``)."""
    model = loaded.model
    with torch.enable_grad():
        feats = model.features(tensor).detach().requires_grad_(True)
        logits = model.classify(feats, tensor, upright_deg)
        (grad,) = torch.autograd.grad(logits[0, label_index], feats)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * feats.detach()).sum(dim=1, keepdim=True))
    size = tensor.shape[-1]
    cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else torch.zeros_like(cam)
    return cam.cpu().numpy().astype(np.float32), to_probabilities(logits.detach())[0]


def to_slice_grid(cam: np.ndarray, box: Box, shape: tuple[int, int]) -> np.ndarray:
    """Undo crop and resize: a network-space map placed on the slice's (rows, cols) grid."""
    top, left, side = box
    rows, cols = shape
    tensor = torch.from_numpy(np.ascontiguousarray(cam, dtype=np.float32))[None, None]
    full = F.interpolate(tensor, size=(side, side), mode="bilinear", align_corners=False)[0, 0].numpy()
    out = np.zeros((rows, cols), dtype=np.float32)
    r0, r1 = max(0, top), min(rows, top + side)
    c0, c1 = max(0, left), min(cols, left + side)
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = full[r0 - top:r1 - top, c0 - left:c1 - left]
    return np.clip(out, 0.0, 1.0)


def attention_map(loaded: "LoadedModel", series: "Series", index: int, label: str | None = None,
                  *, head_only: bool = True) -> AttentionMap:
    """Grad-CAM for slice ``index``; ``label`` None picks ``explained_label``.

    ``head_only`` clears the map over air (below the body threshold): attention on the
    background says nothing a reader can use and hid the head's outline.
    """
    slabs = plausible_slabs(series, loaded.spec)
    slices = checked_slices(series, index, loaded.spec, slabs)
    array, box = stack_input_with_box(slices, loaded.spec)
    tensor = torch.from_numpy(array)[None].to(loaded.device)
    # the same turn as the series' run, so the probability shown is the one in the results
    upright = known_upright(series, loaded.spec, slabs) if getattr(loaded.model, "any_stage", None) else 0.0
    if label is None:
        with torch.inference_mode():
            probs = to_probabilities(loaded.model(tensor, upright))[0]
        label = explained_label(dict(zip(LABELS, map(float, probs))), loaded.thresholds)
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}")
    label_index = LABELS.index(label)
    cam, probs = network_cam(loaded, tensor, label_index, upright)
    centre = slices[loaded.spec.context]
    heat = to_slice_grid(cam, box, centre.shape)
    if head_only:
        heat[~(np.asarray(centre) > loaded.spec.body_threshold_hu)] = 0.0
    return AttentionMap(index=index, label=label, probability=float(probs[label_index]), heat=heat)
