"""A head in HU, drawn from analytic shapes in head coordinates (see geometry).

Why analytic: every voxel is computed from its 3D position, so neighbouring slices agree,
any slice thickness or matrix samples the same head, and a seed varies the head (size,
shape, pose, atrophy, densities) without any stored template.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ich_viewer.phantom.geometry import Canvas, Grid, Region, ellipsoid_sd, smoothstep

# Tissue classes of Phantom.tissue (before blur and noise)
AIR, SOFT, FAT, BONE, CSF, VENTRICLE, GREY, WHITE, DURA, CALCIFICATION, EYE, BLOOD, EDEMA = range(13)
TISSUE_NAMES = ("air", "soft", "fat", "bone", "csf", "ventricle", "grey", "white", "dura",
                "calcification", "eye", "blood", "edema")

CAVITY_CENTRE = (0.0, 0.0, 15.0)
"""Centre of the inner-table ellipsoid in head coordinates (mm)."""


@dataclass
class HeadParams:
    """Everything about one synthetic head that a seed varies."""

    axes: tuple[float, float, float] = (68.0, 85.0, 70.0)
    """Inner-table semi-axes (left-right, antero-posterior, cranio-caudal) in mm."""
    skull_mm: float = 6.5
    scalp_mm: float = 5.5
    atrophy: float = 0.2
    """0 young brain, 1 marked atrophy: wider sulci, fissures and ventricles."""
    grey_hu: float = 40.0
    white_hu: float = 26.0
    csf_hu: float = 7.0
    diploe_hu: float = 850.0
    cortical_hu: float = 1650.0
    sulcal_waves: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    """Rows (kx, ky, kz, phase, amplitude) of the gyral pattern, a field on the unit sphere."""
    shift_mm: float = 0.0
    """Midline shift of the deep structures (positive: towards the patient's left)."""
    shift_centre: tuple[float, float, float] = (0.0, 0.0, 30.0)
    effaced_side: int = 0
    """+1/-1: that lateral ventricle is compressed (mass effect), 0 none."""

    def to_dict(self) -> dict:
        return {
            "axes_mm": list(self.axes), "skull_mm": self.skull_mm, "scalp_mm": self.scalp_mm,
            "atrophy": self.atrophy, "grey_hu": self.grey_hu, "white_hu": self.white_hu,
            "csf_hu": self.csf_hu, "midline_shift_mm": self.shift_mm, "effaced_side": self.effaced_side,
        }


def random_head(rng: np.random.Generator) -> HeadParams:
    atrophy = float(rng.uniform(0, 1) ** 1.5)
    grey = float(rng.uniform(40, 45))
    n_waves = 7
    directions = rng.normal(size=(n_waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    k = rng.uniform(12.0, 16.0, n_waves)[:, None] * directions  # cycles per unit sphere (radius ~70 mm)
    waves = np.column_stack([k, rng.uniform(0, 2 * np.pi, n_waves), np.ones(n_waves)]).astype(np.float32)
    return HeadParams(
        axes=(float(rng.uniform(64, 71)), float(rng.uniform(80, 89)), float(rng.uniform(66, 72))),
        skull_mm=float(rng.uniform(5.0, 7.5)),
        scalp_mm=float(rng.uniform(4.0, 7.0)),
        atrophy=atrophy,
        grey_hu=grey,
        white_hu=float(grey - rng.uniform(13, 17)),
        csf_hu=float(rng.uniform(3, 11)),
        diploe_hu=float(rng.uniform(700, 1000)),
        cortical_hu=float(rng.uniform(1450, 1800)),
        sulcal_waves=waves,
    )


def floor_height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height (mm) of the cranial floor: anterior fossa high, middle fossa deep, posterior deepest."""
    ax = np.abs(x)
    ridge = 6.0 - 0.55 * ax  # petrous ridge line: posterior fossa lies behind it
    anterior = -4.0 + 3.0 * np.exp(-(((ax - 24.0) / 13.0) ** 2)) - 5.0 * np.exp(-((x / 6.0) ** 2))
    # middle fossae: two bowls holding the temporal lobes, the sella between them
    middle = np.minimum(-13.0, -33.0 + 6.0 * ((ax - 36.0) / 14.0) ** 2 + 5.0 * ((y - 4.0) / 14.0) ** 2)
    posterior = -56.0 + 22.0 * (x / 50.0) ** 2 + 14.0 * ((y + 38.0) / 35.0) ** 2
    to_middle = smoothstep((y - 20.0 + 0.2 * ax) / 8.0)  # 0 behind the curved sphenoid ridge, 1 in front
    floor = middle + (anterior - middle) * to_middle
    to_posterior = smoothstep((ridge - y) / 8.0)
    return floor + (posterior - floor) * to_posterior


def cavity_depth(hx, hy, hz, head: HeadParams) -> np.ndarray:
    """Signed distance (mm) from the inner table into the cranial cavity (negative outside)."""
    ell = ellipsoid_sd(hx, hy, hz, CAVITY_CENTRE, head.axes)
    return np.minimum(ell, hz - floor_height(hx, hy))


def tentorium_height(x, y) -> np.ndarray:
    """The tentorium: highest at the incisura, sloping down to the occipital and petrous edges."""
    return 10.0 - 0.32 * np.abs(x) + 0.22 * (y + 12.0)


def gyral_sd(hx, hy, hz, head: HeadParams, width_mm: float, centre=CAVITY_CENTRE, k_scale: float = 1.0) -> np.ndarray:
    """Signed distance (mm, positive inside) to the sulci.

    Sulci are the zero sheets of a random field that depends only on the direction from
    ``centre``, so they run radially inward from the surface, as sulci do. Dividing the
    field by its tangential gradient turns it into a distance, so every sulcus has the
    same width wherever it runs.
    """
    cx, cy, cz = (float(c) for c in centre)
    dx, dy, dz = hx - cx, hy - cy, hz - cz
    rho = np.sqrt(dx * dx + dy * dy + dz * dz) + 1e-3
    inv = 1.0 / rho
    dx *= inv
    dy *= inv
    dz *= inv
    total = np.zeros_like(hx)
    gx = np.zeros_like(hx)
    gy = np.zeros_like(hx)
    gz = np.zeros_like(hx)
    for kx, ky, kz, phase, amp in head.sulcal_waves.tolist():
        kx, ky, kz = kx * k_scale, ky * k_scale, kz * k_scale
        arg = kx * dx + ky * dy + kz * dz + phase
        total += amp * np.sin(arg)
        c = amp * np.cos(arg)
        gx += c * kx
        gy += c * ky
        gz += c * kz
    radial = gx * dx + gy * dy + gz * dz
    gx -= radial * dx
    gy -= radial * dy
    gz -= radial * dz
    grad = np.sqrt(gx * gx + gy * gy + gz * gz) * inv + 1e-4
    return width_mm / 2.0 - np.abs(total) / grad


def _segment_distance(px, py, a, b) -> np.ndarray:
    ax, ay = a
    bx, by = b
    vx, vy = bx - ax, by - ay
    t = np.clip(((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy), 0.0, 1.0)
    return np.hypot(px - ax - t * vx, py - ay - t * vy)


def _band(z, lo, hi, soft=4.0) -> np.ndarray:
    """1 between lo and hi in z, fading over ``soft`` mm."""
    return smoothstep((z - lo) / soft + 0.5) * smoothstep((hi - z) / soft + 0.5)


@dataclass
class AnatomyFields:
    """Fields over the cranial cavity (``region``) that the lesion painter re-uses."""

    region: Region
    depth: np.ndarray
    """Distance into the cranial cavity from the inner table (mm)."""
    brain_depth: np.ndarray
    """Distance into the brain from its surface (mm), after extra-axial displacement."""
    sulcal_sd: np.ndarray
    """Distance into the nearest sulcus (positive inside), before depth limiting."""
    ventricle_sd: np.ndarray
    deep_x: np.ndarray
    """x of the deep structures after the midline shift."""


def paint_head(canvas: Canvas, grid: Grid, head: HeadParams, extra_axial=None) -> AnatomyFields:
    """Paint scalp, skull, skull base, orbits, sinuses and the brain into ``canvas``.

    ``extra_axial(region) -> thickness`` says how far extra-axial lesions push the brain in.
    """
    whole = Region.of_grid(grid)
    lx, ly, lz = head.axes
    outer = head.skull_mm + head.scalp_mm
    # the vault is a dome; below it the head continues as a cylinder into face and neck
    zc = np.maximum(whole.z, CAVITY_CENTRE[2] - 10.0)
    skin_sd = ellipsoid_sd(whole.x, whole.y * (1.0 + 0.12 * smoothstep((-whole.z - 5.0) / 30.0)), zc,
                           CAVITY_CENTRE, (lx + outer, ly + outer, lz + outer))
    keep = skin_sd > -canvas.edge_mm
    head_r = whole.select(keep)
    skin_sd = skin_sd[keep]
    x, y, z = head_r.x, head_r.y, head_r.z
    neck = smoothstep((z + 95.0) / 20.0)
    canvas.paint(head_r, skin_sd, 40.0, SOFT, where=neck)
    temporal = np.exp(-((z / 28.0) ** 2) - ((y - 5.0) / 35.0) ** 2) * (np.abs(x) > 0.6 * lx)
    canvas.paint(head_r, skin_sd - head.scalp_mm * 0.45 - 6.0 * temporal, -95.0, FAT)
    canvas.paint(head_r, skin_sd - head.scalp_mm * 0.7 - 6.0 * temporal, 48.0, SOFT)
    # bone: outer table, diploe, inner table; the skull base is thicker, petrous bone densest
    ell = ellipsoid_sd(x, y, z, CAVITY_CENTRE, head.axes)
    depth = np.minimum(ell, z - floor_height(x, y))
    base = np.clip((ell - depth) / 6.0, 0, 1)
    thickness = head.skull_mm * (1.0 - base) + 2.5 * base
    canvas.paint(head_r, np.minimum(-depth, depth + thickness), head.cortical_hu, BONE)
    canvas.paint(head_r, np.minimum(-depth - 1.6, depth + thickness - 1.8), head.diploe_hu + 300.0 * base, BONE)
    canvas.paint(head_r, np.minimum(-depth - thickness, skin_sd), 42.0, SOFT, where=neck * base)
    _paint_petrous(canvas, head_r, head)
    _paint_face(canvas, head_r, head)
    # --- the cranial cavity ----------------------------------------------------------
    keep = depth > -canvas.edge_mm
    cav = head_r.select(keep)
    depth = depth[keep]
    vault_depth = ell[keep]
    x, y, z = cav.x, cav.y, cav.z
    a = head.atrophy
    eff = depth if extra_axial is None else depth - extra_axial(cav)
    # CSF between the inner table and the cortex: none in a young brain, 1.5 mm with marked
    # atrophy. CT-ICH's scans read brain-like 1-1.5 mm from the bone's edge on 88 % of heads
    # (bench/bench_phantom_edge.py, "under the inner table"); 1.2-4.2 mm of CSF made every
    # phantom read like CSF there, and kept a subdural's brain side off the cortex.
    brain_depth = eff - 1.5 * a
    deep_x = x
    if head.shift_mm:
        sx, sy, sz = head.shift_centre
        prof = np.exp(-((y - sy) / 45.0) ** 2 - ((z - sz) / 40.0) ** 2) * np.clip(depth / 35.0, 0, 1)
        deep_x = x - head.shift_mm * prof
    sulcal_sd = gyral_sd(x, y, z, head, 0.6 + 2.0 * a)
    cerebellar = _cerebellum_weight(x, y, z)
    # sulci cut in from the convexity only; the basal surface stays smooth
    vault_brain = brain_depth + np.maximum(vault_depth - depth, 0.0)
    sulci = np.minimum(sulcal_sd, 8.0 + 8.0 * a - vault_brain) - 30.0 * cerebellar
    csf_sd = np.maximum(np.maximum(-brain_depth, sulci),
                        np.maximum(_fissures_sd(deep_x, x, y, z, a), _cisterns_sd(deep_x, y, z, a)))
    inside = canvas.alpha(depth)
    canvas.paint(cav, depth, head.csf_hu, CSF)
    canvas.paint(cav, -csf_sd, head.grey_hu, GREY, where=inside)
    canvas.paint(cav, -csf_sd - 3.2, head.white_hu, WHITE, where=inside)
    _paint_deep(canvas, cav, head, deep_x, inside)
    _paint_posterior_fossa(canvas, cav, head, inside, cerebellar, brain_depth)
    ventricle_sd = _paint_ventricles(canvas, cav, head, deep_x, inside)
    # membranes: falx in the interhemispheric fissure, tentorium over the cerebellum
    falx_low = 42.0 - 40.0 * smoothstep((np.abs(y) - 28.0) / 25.0)
    falx = np.minimum(0.35 - np.abs(deep_x), (z - falx_low) * 0.5)
    canvas.paint(cav, np.minimum(falx, depth - 0.5), 60.0, DURA, where=inside)
    tent = np.minimum(0.5 - np.abs(z - tentorium_height(x, y)), np.minimum(-12.0 - y, depth))
    canvas.paint(cav, tent - 0.2, 50.0, DURA, where=inside)
    # calcified choroid plexus in the atria and pineal gland: landmarks every reader knows
    for centre, axes, hu in (((-17.0, -26.0, 22.0), (2.2, 3.5, 2.2), 160.0), ((17.0, -26.0, 22.0), (2.2, 3.5, 2.2), 160.0),
                             ((0.0, -14.0, 17.0), (2.0, 2.5, 2.0), 140.0)):
        sub, sel = cav.near(centre, 6.0)
        canvas.paint(sub, ellipsoid_sd(deep_x[sel], sub.y, sub.z, centre, axes), hu, CALCIFICATION)
    return AnatomyFields(region=cav, depth=depth, brain_depth=brain_depth, sulcal_sd=sulcal_sd,
                         ventricle_sd=ventricle_sd, deep_x=deep_x)


def _paint_petrous(canvas: Canvas, region: Region, head: HeadParams) -> None:
    """The petrous pyramids: dense ridges running antero-medially from the mastoids."""
    for side in (-1.0, 1.0):
        sub, _ = region.near((side * 30.0, -8.0, -30.0), 26.0)
        if not len(sub):
            continue
        dist = _segment_distance(sub.x, sub.y, (side * 12.0, 4.0), (side * (head.axes[0] - 14.0), -24.0))
        ridge = np.minimum(7.0 - dist, np.minimum(sub.z + 40.0, -20.0 - sub.z))
        canvas.paint(sub, ridge, head.cortical_hu + 150.0, BONE)


def _paint_face(canvas: Canvas, region: Region, head: HeadParams) -> None:
    """Orbits (fat, globe, lens, optic nerve), ethmoid and sphenoid air cells, mastoids."""
    ly = head.axes[1]
    for side in (-1.0, 1.0):
        globe = (side * 31.0, ly - 8.0, -14.0)
        sub, _ = region.near((side * 30.0, ly - 20.0, -16.0), 28.0)
        if len(sub):
            x, y, z = sub.x, sub.y, sub.z
            canvas.paint(sub, ellipsoid_sd(x, y, z, (side * 29.0, ly - 20.0, -16.0), (16.0, 24.0, 14.0)), -85.0, FAT)
            canvas.paint(sub, ellipsoid_sd(x, y, z, globe, (12.0, 12.0, 12.0)), 45.0, SOFT)
            canvas.paint(sub, ellipsoid_sd(x, y, z, globe, (11.0, 11.0, 11.0)), 12.0, EYE)
            lens = (globe[0], globe[1] + 9.0, globe[2])
            canvas.paint(sub, ellipsoid_sd(x, y, z, lens, (4.0, 1.8, 4.0)), 95.0, SOFT)
            nerve = np.minimum(2.2 - np.hypot(x - side * (29.0 - 0.35 * (ly - 8.0 - y)), z + 14.0),
                               np.minimum(ly - 18.0 - y, y - (ly - 42.0)))
            canvas.paint(sub, nerve, 35.0, SOFT)
        mastoid = (side * (head.axes[0] - 18.0), -22.0, -32.0)
        sub, _ = region.near(mastoid, 12.0)
        if len(sub):
            cells = ellipsoid_sd(sub.x, sub.y, sub.z, mastoid, (9.0, 10.0, 9.0))
            septa = np.abs(np.sin(sub.x * 0.9) * np.sin(sub.y * 0.8) * np.sin(sub.z * 0.9)) > 0.18
            canvas.paint(sub, cells, -900.0, AIR, where=septa)
    sub, _ = region.near((0.0, ly - 25.0, -25.0), 30.0)
    if len(sub):
        x, y, z = sub.x, sub.y, sub.z
        ethmoid = np.maximum(ellipsoid_sd(x, y, z, (-7.0, ly - 28.0, -22.0), (5.5, 14.0, 11.0)),
                             ellipsoid_sd(x, y, z, (7.0, ly - 28.0, -22.0), (5.5, 14.0, 11.0)))
        septa = (np.abs(np.sin(y * 0.7) * np.sin(x * 0.9 + 0.5) * np.sin(z * 0.6)) > 0.12) & (np.abs(x) > 1.2)
        canvas.paint(sub, ethmoid, -900.0, AIR, where=septa)
    sub, _ = region.near((0.0, 18.0, -32.0), 14.0)
    if len(sub):
        canvas.paint(sub, ellipsoid_sd(sub.x, sub.y, sub.z, (0.0, 18.0, -32.0), (13.0, 11.0, 10.0)), -950.0, AIR,
                     where=(np.abs(sub.x) > 0.8))


def _fissures_sd(deep_x, hx, hy, hz, a) -> np.ndarray:
    """Interhemispheric fissure above the corpus callosum and both Sylvian fissures."""
    ihf_low = 47.0 - 42.0 * smoothstep((np.abs(hy) - 25.0) / 30.0)
    ihf = np.minimum(0.6 + 1.8 * a - np.abs(deep_x), hz - ihf_low)
    w = 1.2 + 2.5 * a
    ax = np.abs(hx)
    stem = w - _segment_distance(ax, hy, (62.0, 22.0), (38.0, 8.0))
    insular = np.minimum(w * 0.8 - np.abs(ax - 37.0 + 0.08 * hy), 16.0 - np.abs(hy + 2.0))
    sylvian = np.maximum(stem, insular) - 8.0 * (1.0 - _band(hz, -6.0, 24.0, 6.0))
    return np.maximum(ihf, sylvian)


def _cisterns_sd(deep_x, hy, hz, a) -> np.ndarray:
    """Suprasellar, perimesencephalic (ambient) and quadrigeminal cisterns; prepontine."""
    level = _band(hz, -14.0, 6.0, 4.0)
    r = np.hypot(deep_x, hy + 9.0)
    ambient = (2.0 + 1.5 * a) - np.abs(r - 12.5)
    suprasellar = 9.0 + 2.0 * a - np.hypot(deep_x * 0.9, hy - 10.0)
    quadrigeminal = 4.0 + a - np.hypot(deep_x, hy + 24.0)
    peri = np.maximum(np.maximum(ambient, suprasellar), quadrigeminal) - 10.0 * (1.0 - level)
    prepontine = np.minimum(np.minimum(2.0 + a - np.abs(hy - 2.5), 13.0 - np.abs(deep_x)), 12.0 - np.abs(hz + 27.0))
    return np.maximum(peri, prepontine)


def _paint_deep(canvas: Canvas, cav: Region, head: HeadParams, deep_x, inside) -> None:
    """Caudate heads, lentiform nuclei and thalami (grey) with the internal capsules between."""
    sub, sel = cav.near((0.0, 4.0, 16.0), 34.0)
    x, y, z, w = deep_x[sel], sub.y, sub.z, inside[sel]
    for side in (-1.0, 1.0):
        canvas.paint(sub, ellipsoid_sd(x, y, z, (side * 23.0, 6.0, 12.0), (7.0, 15.0, 10.0)), head.grey_hu - 1.0, GREY, where=w)
        canvas.paint(sub, ellipsoid_sd(x, y, z, (side * 10.0, -10.0, 13.0), (8.0, 10.0, 8.0)), head.grey_hu - 2.0, GREY, where=w)
        canvas.paint(sub, ellipsoid_sd(x, y, z, (side * 13.0, 19.0, 22.0), (5.5, 9.0, 9.0)), head.grey_hu - 1.0, GREY, where=w)


def _cerebellum_weight(hx, hy, hz) -> np.ndarray:
    """1 in the infratentorial compartment behind the brainstem, 0 above the tentorium."""
    below = smoothstep((tentorium_height(hx, hy) - hz) / 2.0 + 0.5)
    behind = smoothstep((-14.0 - hy) / 4.0 + 0.5)
    return below * behind


def _paint_posterior_fossa(canvas: Canvas, cav: Region, head: HeadParams, inside, cerebellar, brain_depth) -> None:
    """Cerebellar hemispheres with faint folia, brainstem (midbrain, pons, medulla)."""
    sel = cav.z < 14.0
    sub = cav.select(sel)
    x, y, z = sub.x, sub.y, sub.z
    bd = brain_depth[sel]
    w = inside[sel] * cerebellar[sel]
    canvas.paint(sub, np.minimum(bd, 3.0), head.grey_hu - 2.0, GREY, where=w)
    core = np.minimum(14.0 - np.hypot(np.abs(x) - 20.0, (y + 40.0) * 0.8), 8.0 - np.abs(z + 24.0))
    canvas.paint(sub, np.minimum(core, bd - 6.0), head.white_hu + 3.0, WHITE, where=w)
    folia = gyral_sd(x, y, z, head, 0.3 + 0.8 * head.atrophy, centre=(0.0, -40.0, -30.0), k_scale=1.6)
    canvas.paint(sub, np.minimum(folia, bd - 0.5), head.csf_hu, CSF, where=w)
    radius = 12.5 - 3.5 * smoothstep((-30.0 - z) / 10.0) - 1.5 * smoothstep((z + 8.0) / 8.0)
    centre_y = -10.0 - 2.0 * smoothstep((-5.0 - z) / 10.0)
    stem = np.minimum(radius - np.hypot(x * 1.1, y - centre_y), np.minimum(z + 60.0, 8.0 - z))
    canvas.paint(sub, stem, head.white_hu + 4.0, WHITE, where=inside[sel])


def _paint_ventricles(canvas: Canvas, cav: Region, head: HeadParams, deep_x, inside) -> np.ndarray:
    """Lateral ventricles (frontal horns, bodies, atria, occipital and temporal horns), 3rd, 4th."""
    a = head.atrophy
    grow = 1.0 + 0.9 * a
    sd = np.full(len(cav), -50.0, np.float32)
    sub, sel = cav.near((0.0, -8.0, 6.0), 52.0)
    x, y, z = deep_x[sel], sub.y, sub.z
    parts = []
    for side in (-1.0, 1.0):
        gx = grow * (0.45 if head.effaced_side == side else 1.0)
        off = 1.3 + 0.5 * a
        parts += [
            ellipsoid_sd(x, y, z, (side * (off + 3.6 * gx), 20.0, 24.0), (3.6 * gx, 13.0, 8.0)),  # frontal horn
            ellipsoid_sd(x, y, z, (side * (off + 4.5 * gx), -2.0, 31.0), (4.5 * gx, 24.0, 5.5 + a)),  # body
            ellipsoid_sd(x, y, z, (side * 16.0, -25.0, 21.0), (5.5 * gx, 9.0, 8.0)),  # atrium
            ellipsoid_sd(x, y, z, (side * 15.0, -38.0, 19.0), (3.0 * gx, 10.0, 4.0 * gx)),  # occipital horn
            ellipsoid_sd(x, y, z, (side * 27.0, 4.0, -4.0), (2.0 * gx, 13.0, 3.0 * gx)),  # temporal horn
            ellipsoid_sd(x, y, z, (side * 23.0, -12.0, 8.0), (2.5 * gx, 12.0, 8.0)),  # atrium to temporal horn
        ]
    parts.append(ellipsoid_sd(x, y, z, (0.0, 2.0, 12.0), (1.4 + 1.8 * a, 13.0, 8.0)))  # third
    parts.append(ellipsoid_sd(x, y, z, (0.0, -27.0, -27.0), (6.0 * grow, 3.5 * grow, 7.0)))  # fourth
    local = np.maximum.reduce(parts)
    for side in (-1.0, 1.0):  # the caudate heads indent the frontal horns laterally
        local = np.minimum(local, -ellipsoid_sd(x, y, z, (side * 13.0, 19.0, 22.0), (5.5, 9.0, 9.0)))
    sd[sel] = local
    canvas.paint(sub, local, head.csf_hu, VENTRICLE, where=inside[sel])
    return sd
