"""Generate a synthetic head CT phantom: pose, anatomy, lesions, scanner realism, labels."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ich_viewer import LABELS
from ich_viewer.phantom import anatomy as an
from ich_viewer.phantom.geometry import Canvas, Grid, Pose, rotation
from ich_viewer.phantom.lesions import extra_axial_thickness, mass_effect, paint_lesions, plan_lesions
from ich_viewer.phantom.realism import add_streaks, average_subplanes, blur_upsample_noise, upsample_labels
from ich_viewer.phantom.volume import SUBTYPES, Phantom

THICKNESS_CHOICES = (5.0, 5.0, 5.0, 5.0, 3.0, 2.5, 1.25, 1.0, 0.625)
"""Typical reconstructions; thick axial slices are the common case for a head CT."""
MAX_WORK_SIZE = 256
"""Anatomy is drawn on at most this many pixels across, then band-limited upsampled (the
default of ``generate_phantom``'s ``max_work_size``)."""
DEFAULT_MAX_SLICES = 96
SLAB_PLANE_MM = 2.0
"""A slice 2 mm or thicker is painted on an odd number of planes at most about this far apart and
averaged: its partial volume along z (three planes at 5 mm). With two planes (the phantom until
2026-11-30) a voxel whose slab the bleed's edge crossed between them was exactly half blood, and
that tie decided the mask: the masks left such voxels out and held 10-38 % less than the blood of
most bleeds measured. With three the masks agree with nine planes to 1 % for IPHs and epidurals,
not for thin subdurals (seed 96's: 0.76 of its blood against 0.68); a 32-slice 512 study is
generated in 1.8 s, within the phantom's 3 s target, where five planes take 4.1 s (bench/bench_phantom.py)."""
FINE_SLAB_PLANE_MM = 1.0
"""The bleed-outline protocol's planes (five at 5 mm), where the masks are the ground truth of every
Dice and volume error: they agree with nine planes (bench/bench_phantom_masks.py)."""


def labels_from_masks(masks: np.ndarray) -> np.ndarray:
    """Per-slice labels in LABELS order: a subtype is present if any voxel carries it."""
    labels = np.zeros((masks.shape[0], len(LABELS)), np.uint8)
    for k in range(1, len(SUBTYPES) + 1):
        labels[:, k - 1] = (masks == k).any(axis=(1, 2))
    labels[:, -1] = labels[:, : len(SUBTYPES)].any(axis=1)
    return labels


def slab_planes(thickness_mm: float, plane_mm: float = SLAB_PLANE_MM) -> int:
    """How many planes a slice is painted on, at most ``plane_mm`` apart: odd, so no voxel's
    blood lands exactly on the half-way tie by the planes alone."""
    if thickness_mm < 2.0:
        return 1
    n = math.ceil(thickness_mm / plane_mm - 1e-9)
    return n if n % 2 else n + 1


def _slab_masks(codes: np.ndarray, occupancy: np.ndarray, n_sub: int) -> np.ndarray:
    """A voxel of a slice is lesion when at least half of its slab (on average) is blood,
    so the mask matches what the averaged image shows (not blood hidden by bone in the
    rest of a thick slab)."""
    mean = average_subplanes(occupancy, n_sub)
    code = np.maximum.reduce([codes[k::n_sub] for k in range(n_sub)]) if n_sub > 1 else codes
    return np.where(mean >= 0.5, code, 0).astype(np.uint8)


def _choose_subtypes(rng: np.random.Generator, probability: float | dict) -> list[str]:
    if isinstance(probability, dict):
        return [s for s in SUBTYPES if rng.random() < probability.get(s, 0.0)]
    if rng.random() < 0.25:
        return []
    picked = [s for s in SUBTYPES if rng.random() < probability]
    return picked or [str(rng.choice(SUBTYPES))]


def _pose(rng: np.random.Generator, head: an.HeadParams, fov: float) -> Pose:
    size = float(rng.uniform(0.93, 1.06))
    scale = np.array([size * rng.uniform(0.96, 1.03), size, size], float)
    rot = rotation(rng.uniform(-9, 9), rng.uniform(-10, 10), rng.uniform(-4, 4))
    extent = (max(head.axes[:2]) + head.skull_mm + head.scalp_mm) * size
    room = max(0.0, fov / 2.0 - extent - 6.0)
    shift = np.array([rng.uniform(-1, 1) * min(room, 10.0), rng.uniform(-1, 1) * min(room, 12.0), 0.0])
    return Pose(scale=scale, rot=rot, shift=shift)


def generate_phantom(
    seed: int = 0,
    subtypes: Sequence[str] | None = None,
    n_slices: int | None = None,
    thickness_mm: float | None = None,
    matrix: int = 512,
    *,
    z_center_mm: float | None = None,
    subtype_probability: float | dict = 0.35,
    mass_effect_allowed: bool = True,
    streaks: bool | None = None,
    noise_sd: float | None = None,
    keep_tissue: bool = True,
    max_work_size: int = MAX_WORK_SIZE,
    planes_per_slice: int | None = None,
) -> Phantom:
    """A synthetic head CT; the same arguments always give the same phantom.

    ``subtypes=None`` draws a random mix from the seed (about a quarter of heads are
    normal; ``subtype_probability`` is the chance of each subtype, or a dict per subtype);
    ``[]`` is a normal head. The head itself (size, pose, atrophy, densities) depends only
    on ``seed``, so ``subtypes=[]`` with the same seed is the same head without lesions
    (and, with ``mass_effect_allowed=False``, exactly the same anatomy).
    ``n_slices`` defaults to covering skull base to vertex (at most 96 slices);
    ``z_center_mm`` centres a partial slab (head millimetres, ~-50 skull base .. ~95 vertex).
    ``max_work_size``: the anatomy is drawn on the matrix halved until at most this. A 512 series
    drawn at 256 is fast (a quarter of the painting) but its bone edge rings where the upsampling
    cuts the spectrum: 0-11 HU at 0.5-1.5 mm inside the inner table where real scans read 40-63,
    and its masks are 2 x 2 blocks. The bleed-outline protocol at 512 draws at 512 (3.5x slower).
    ``planes_per_slice`` overrides ``slab_planes``: the bleed-outline protocol paints five
    (``FINE_SLAB_PLANE_MM``), and two show what the phantom's masks were before.
    ``info["blood_ml"]`` holds each subtype's blood (the voxels' blood fractions summed), which
    the masks, at half blood, approximate.
    """
    root = np.random.SeedSequence(seed)
    head_ss, lesion_ss, mix_ss, noise_ss = root.spawn(4)
    rng_head = np.random.default_rng(head_ss)
    rng_les = np.random.default_rng(lesion_ss)
    rng_noise = np.random.default_rng(noise_ss)
    if subtypes is None:
        subtypes = _choose_subtypes(np.random.default_rng(mix_ss), subtype_probability)
    unknown = [s for s in subtypes if s not in SUBTYPES]
    if unknown:
        raise ValueError(f"unknown subtype(s) {unknown}; choose from {SUBTYPES}")
    subtypes = [s for s in SUBTYPES if s in set(subtypes)]

    head = an.random_head(rng_head)
    fov = float(rng_head.uniform(220, 250))
    pose = _pose(rng_head, head, fov)
    thickness = float(thickness_mm if thickness_mm is not None else rng_head.choice(THICKNESS_CHOICES))
    if not 0.3 <= thickness <= 20:
        raise ValueError(f"slice thickness {thickness} mm is outside 0.3-20 mm")
    z_lo_head = -52.0 + rng_head.uniform(-6, 3)
    z_hi_head = an.CAVITY_CENTRE[2] + head.axes[2] + head.skull_mm + head.scalp_mm + 2.0
    z_lo, z_hi = z_lo_head * pose.scale[2], z_hi_head * pose.scale[2]
    if n_slices is None:
        n = min(DEFAULT_MAX_SLICES, max(1, math.ceil((z_hi - z_lo) / thickness)))
    else:
        n = int(n_slices)
        if n < 1:
            raise ValueError("n_slices must be at least 1")
    centre = (z_lo + z_hi) / 2.0 if z_center_mm is None else float(z_center_mm) * pose.scale[2]
    if n_slices is None and n * thickness >= (z_hi - z_lo):
        centre = z_lo + n * thickness / 2.0
    z = (centre + (np.arange(n) - (n - 1) / 2.0) * thickness).astype(np.float64)

    if matrix < 16:
        raise ValueError("matrix must be at least 16")
    factor = 1
    while matrix // factor > max_work_size and matrix % (factor * 2) == 0:
        factor *= 2
    work = matrix // factor
    pixel = fov / matrix
    work_pixel = pixel * factor
    n_sub = slab_planes(thickness) if planes_per_slice is None else int(planes_per_slice)
    offsets = ((np.arange(n_sub) + 0.5) / n_sub - 0.5) * thickness  # the centres of equal parts of the slab
    planes = (z[:, None] + offsets[None, :]).ravel()
    grid = Grid(z=planes, size=work, pixel_mm=work_pixel, pose=pose)

    covered = (float(planes.min()) / pose.scale[2], float(planes.max()) / pose.scale[2])
    lesions = plan_lesions(rng_les, subtypes, covered)
    if mass_effect_allowed:
        mass_effect(lesions, head, rng_les)
    canvas = Canvas(grid.shape, work_pixel)
    for les in lesions:
        if les.subtype == "intraventricular":  # the fluid level is horizontal in the scanner
            les.params["atrium_scan_y"] = float(pose.head_to_scanner((0.0, -26.0, 20.0))[1])
    fields = an.paint_head(canvas, grid, head, extra_axial_thickness(lesions))
    codes, occupancy = paint_lesions(canvas, grid.shape, head, fields, lesions, rng_les)
    do_streaks = bool(rng_noise.random() < 0.5) if streaks is None else streaks
    if do_streaks:
        add_streaks(canvas, fields, rng_noise, float(rng_noise.uniform(0.6, 1.4)))

    masks = _slab_masks(codes, occupancy, n_sub)
    plane_ml = work_pixel**2 * thickness / n_sub / 1000.0
    blood_ml = {s: float(occupancy[codes == SUBTYPES.index(s) + 1].sum()) * plane_ml for s in subtypes}
    tissue = canvas.tissue[n_sub // 2::n_sub]  # the slab's middle plane
    hu = average_subplanes(canvas.hu, n_sub)
    # the scanner's blur alone: painting already averages each pixel's area (``Canvas.alpha``).
    # The inner table's edge then rises from brain into bone as on CT-ICH's scans, 10-90 % over
    # about 1.5 mm where met square-on (``phantom.sharpness``, bench/bench_phantom_edge.py);
    # with a further 0.6 pixel of blur it took 2.7 mm and hid a thin collection's outer voxels.
    sigma = float(rng_noise.uniform(0.35, 0.55))
    sd = float(rng_noise.uniform(2.5, 5.0)) if noise_sd is None else float(noise_sd)
    volume = blur_upsample_noise(hu, matrix, work_pixel, sigma, sd, rng_noise)
    labels = labels_from_masks(masks)  # presence survives nearest-neighbour upsampling
    masks = upsample_labels(masks, factor)
    info = {
        "head": head.to_dict(),
        "pose": pose.to_dict(),
        "fov_mm": fov,
        "work_matrix": work,
        "subplanes": n_sub,
        "blood_ml": blood_ml,
        "blur_sigma_mm": sigma,
        "noise_sd_hu": sd,
        "streaks": do_streaks,
        "lesions": [les.to_dict() for les in lesions],
    }
    return Phantom(
        volume_hu=volume,
        labels=labels,
        masks=masks,
        thickness_mm=thickness,
        spacing_mm=thickness,
        pixel_spacing=(pixel, pixel),
        seed=seed,
        subtypes=tuple(subtypes),
        z_mm=z.astype(np.float32),
        tissue=upsample_labels(tissue, factor) if keep_tissue else None,
        info=info,
    )


def head_coordinates(phantom: Phantom, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head coordinates (mm: x left, y anterior, z up) of every pixel of slice ``index``.

    Lets tests and tools ask anatomical questions of a generated phantom (which side of
    the falx, which skull bone) without re-running the generator.
    """
    pose = phantom.info["pose"]
    grid = Grid(
        z=np.array([float(phantom.z_mm[index])]),
        size=phantom.volume_hu.shape[1],
        pixel_mm=float(phantom.pixel_spacing[0]),
        pose=Pose(scale=np.array(pose["scale"]), rot=np.array(pose["rot"]), shift=np.array(pose["shift"])),
    )
    return grid.hx[0], grid.hy[0], grid.hz[0]
