"""Generate a synthetic head CT phantom (first version: simple ellipsoid anatomy)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ich_viewer import LABELS
from ich_viewer.phantom.volume import SUBTYPES, Phantom


def _labels_from_masks(masks: np.ndarray) -> np.ndarray:
    labels = np.zeros((masks.shape[0], len(LABELS)), np.uint8)
    for k in range(1, len(SUBTYPES) + 1):
        labels[:, k - 1] = (masks == k).any(axis=(1, 2))
    labels[:, -1] = labels[:, :-1].any(axis=1)
    return labels


def generate_phantom(
    seed: int = 0,
    subtypes: Sequence[str] | None = None,
    n_slices: int | None = None,
    thickness_mm: float | None = None,
    matrix: int = 512,
) -> Phantom:
    rng = np.random.default_rng(seed)
    if subtypes is None:
        subtypes = [s for s in SUBTYPES if rng.random() < 0.4]
    thickness = float(thickness_mm or 5.0)
    n = int(n_slices or max(1, round(140 / thickness)))
    fov = 240.0
    ps = fov / matrix
    c = (np.arange(matrix) - (matrix - 1) / 2) * ps
    z = -40 + (np.arange(n) + 0.5) * (140 / n)
    zz, yy, xx = np.meshgrid(z.astype(np.float32), -c.astype(np.float32), c.astype(np.float32), indexing="ij")
    r = np.sqrt((xx / 72) ** 2 + (yy / 90) ** 2 + ((zz - 20) / 75) ** 2)
    vol = np.full(zz.shape, -1000, np.float32)
    vol[r < 1.12] = 40
    vol[r < 1.08] = 1200
    vol[r < 1.0] = 8
    vol[r < 0.97] = 38
    vol[r < 0.9] = 26
    vent = ((np.abs(xx) - 8) / 5) ** 2 + (yy / 25) ** 2 + ((zz - 25) / 10) ** 2 < 1
    vol[vent] = 6
    masks = np.zeros(zz.shape, np.uint8)
    for name in subtypes:
        k = SUBTYPES.index(name) + 1
        if name == "intraventricular":
            m = vent & (yy < -5)
        elif name == "epidural":
            m = (r > 0.93) & (r < 1.0) & (xx > 40) & (np.abs(yy) < 25) & (np.abs(zz - 20) < 20)
        elif name == "subdural":
            m = (r > 0.96) & (r < 1.0) & (xx < -5)
        elif name == "subarachnoid":
            m = (np.abs(xx) < 2) & (r < 0.97) & (zz > 30)
        else:
            m = ((xx - 20) / 12) ** 2 + ((yy - 10) / 15) ** 2 + ((zz - 10) / 12) ** 2 < 1
        masks[m] = k
        vol[m] = 55
    vol += rng.normal(0, 3, vol.shape).astype(np.float32)
    return Phantom(
        volume_hu=vol, labels=_labels_from_masks(masks), masks=masks, thickness_mm=thickness,
        spacing_mm=thickness, pixel_spacing=(ps, ps), seed=seed, subtypes=tuple(subtypes), z_mm=z,
    )
