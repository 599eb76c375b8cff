"""How far the head is turned in the image (yaw), found once per series by mirror symmetry.

The HU stage compares the left and right halves of the head. Read about the crop's centre
line, a head turned in the gantry looks asymmetric; in CT-ICH the bleeding patients' heads
are turned more than the others' (``trainer.evaluation.head_turn_report``), so left-right
features read that way learn the turn as a sign of blood, which other patients need not share.
The stage therefore reads them on the head turned upright. One angle per series, from
slices above the skull base and below the vertex, is far steadier than one per slice.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ich_viewer.inference.preprocess import AIR_HU

SEARCH_DEG = 24
"""Turns tried: -24..24 degrees, every 3 degrees, then to the degree around the best (CT-ICH's
heads lie up to about 20 degrees off; a head turned further is only partly corrected)."""
COARSE_STEP = 3
SAMPLE_RANGE = (0.35, 0.8)
"""Where in the series (foot to head) the slices measured lie: above the skull base, below
the vertex, where the skull is a wide symmetric ring."""
SAMPLE_SLICES = 8
TISSUE_HU = (-100.0, 150.0)
"""What the symmetry is measured on: brain, CSF and the skull's edge, without air's and
bone's extremes outweighing the brain."""


def sample_indices(n_slices: int) -> list[int]:
    """Slice indices (display order, foot to head) the series' angle is measured on."""
    if n_slices <= 0:
        return []
    low, high = (round(f * (n_slices - 1)) for f in SAMPLE_RANGE)
    return sorted({int(i) for i in np.linspace(low, high, SAMPLE_SLICES).round()})


def turned(hu: torch.Tensor, degrees: float | torch.Tensor) -> torch.Tensor:
    """(B, S, S) or (B, n, S, S) HU turned about the image centre, air filling the corners."""
    flat = hu[:, None] if hu.dim() == 3 else hu
    angle = torch.as_tensor(degrees, dtype=torch.float32).reshape(-1).expand(len(flat)) * (math.pi / 180.0)
    theta = torch.zeros(len(flat), 2, 3)
    theta[:, 0, 0] = angle.cos()
    theta[:, 0, 1] = -angle.sin()
    theta[:, 1, 0] = angle.sin()
    theta[:, 1, 1] = angle.cos()
    grid = F.affine_grid(theta.to(flat.device), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat.float() - AIR_HU, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False) + AIR_HU
    return out[:, 0] if hu.dim() == 3 else out


def mirror_scores(hu: torch.Tensor, candidates: list[float]) -> torch.Tensor:
    """(B, len(candidates)): how well each slice matches its mirror image after each turn,
    the mirror line free to lie left or right of the centre (normalised correlation)."""
    small = F.avg_pool2d(torch.nan_to_num(hu.float(), nan=AIR_HU)[:, None], 2)[:, 0]
    width = small.shape[-1]
    rows = []
    for degrees in candidates:
        x = turned(small, degrees).clamp(*TISSUE_HU)
        x = x - x.mean(dim=(1, 2), keepdim=True)
        spectrum = torch.fft.rfft(x, n=2 * width, dim=2)
        mirror = torch.fft.rfft(x.flip(2), n=2 * width, dim=2)
        # read back at half-pixel shifts: a head a fraction of a pixel off the centre would
        # otherwise match its mirror best when turned by a degree or so
        correlation = torch.fft.irfft(spectrum * mirror.conj(), n=4 * width, dim=2).sum(dim=1) * 2.0
        rows.append(correlation.amax(dim=1) / (x * x).sum(dim=(1, 2)).clamp(min=1e-6))
    return torch.stack(rows, dim=1)


def upright_turn(centre_hu: torch.Tensor) -> float:
    """Degrees to turn these slices of one series (B, S, S HU) by so the head lies upright
    (``turned(hu, result)``); 0 without slices."""
    if len(centre_hu) == 0:
        return 0.0
    coarse = [float(d) for d in range(-SEARCH_DEG, SEARCH_DEG + 1, COARSE_STEP)]
    best = coarse[int(mirror_scores(centre_hu, coarse).mean(dim=0).argmax())]
    fine = [best + d for d in range(1 - COARSE_STEP, COARSE_STEP) if abs(best + d) <= SEARCH_DEG]
    return fine[int(mirror_scores(centre_hu, fine).mean(dim=0).argmax())]
