"""How sharp the inner table's edge is: the phantom's blur checked against real scans.

A thin subdural or epidural lies against the inner table, and how much of it the bone's
blur hides depends on how sharp that edge is. The distance over which HU rises from 10 %
to 90 % of the way from brain to the bone's peak, along rays from the head's centre on the
slices at and above the widest vault, is compared between phantoms and real CT
(``bench/bench_phantom_edge.py``); its lower percentiles are edges met square-on, where
the rise is the scanner's blur alone.
"""
from __future__ import annotations

import numpy as np

BONE_HU = 600.0
"""A ray meets the skull where it first reads this much."""
BRAIN_HU = (0.0, 60.0)
"""The median 4-8 mm inside the skull must read as brain (not CSF, not bone)."""
PEAK_MIN_HU = 900.0
"""Bone thinner than this after the blur (a suture, the skull base) says nothing of the edge."""
RAYS = 90
STEP_MM = 0.1


def _bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    top = image[r0, c0] * (1 - fc) + image[r0, c0 + 1] * fc
    bottom = image[r0 + 1, c0] * (1 - fc) + image[r0 + 1, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def ray_rises_mm(image: np.ndarray, pixel_mm: float) -> list[float]:
    """The 10-90 % rise (mm) of brain into bone along rays from the centre of the head on one slice."""
    brain = (image >= BRAIN_HU[0]) & (image <= 100.0)
    if brain.sum() * pixel_mm ** 2 < 5000.0:  # less than 50 cm² of brain: not a vault slice
        return []
    cy, cx = (float(np.mean(v)) for v in np.nonzero(brain))
    d = np.arange(0.0, 150.0, STEP_MM)
    rises = []
    for angle in np.linspace(0.0, 2.0 * np.pi, RAYS, endpoint=False):
        rows, cols = cy + np.sin(angle) * d / pixel_mm, cx + np.cos(angle) * d / pixel_mm
        ok = (rows >= 0) & (rows < image.shape[0] - 1) & (cols >= 0) & (cols < image.shape[1] - 1)
        hu = _bilinear(image, rows[ok], cols[ok])
        dist = d[ok]
        hits = np.flatnonzero(hu >= BONE_HU)
        if not hits.size or dist[hits[0]] < 20.0:
            continue
        at = dist[hits[0]]
        level = float(np.median(hu[(dist > at - 8.0) & (dist < at - 4.0)]))
        after = (dist >= at - 3.0) & (dist < at + 8.0)
        seg, seg_d = hu[after], dist[after]
        top = int(np.argmax(seg))
        peak = float(seg[top])
        if not (BRAIN_HU[0] <= level <= BRAIN_HU[1]) or peak < PEAK_MIN_HU:
            continue
        share = (seg[: top + 1] - level) / (peak - level)
        high = int(np.flatnonzero(share >= 0.9)[0])
        below = np.flatnonzero(share[:high] <= 0.1)
        if below.size:
            low = int(below[-1])
            rises.append(_crossing(share, seg_d, high, 0.9) - _crossing(share, seg_d, low + 1, 0.1))
    return rises


def _crossing(share: np.ndarray, dist: np.ndarray, i: int, level: float) -> float:
    """Where ``share`` passes ``level`` between samples i - 1 and i (linearly)."""
    a, b = float(share[i - 1]), float(share[i])
    return float(dist[i - 1] + (dist[i] - dist[i - 1]) * (level - a) / (b - a)) if b != a else float(dist[i])


def inner_table_rise_mm(volume: np.ndarray, pixel_mm: float, n_slices: int = 4) -> np.ndarray:
    """Every ray's rise on the lowest slice where the most rays meet the skull (the widest
    vault: brain all round) and the ``n_slices - 1`` above it."""
    per_slice = [ray_rises_mm(volume[k].astype(np.float32), pixel_mm) for k in range(volume.shape[0])]
    widest = int(np.argmax([len(r) for r in per_slice]))
    return np.asarray([r for k in range(widest, min(volume.shape[0], widest + n_slices)) for r in per_slice[k]])
