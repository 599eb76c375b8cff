"""The five hemorrhage subtypes, each placed where its anatomy allows.

- Epidural: biconvex lens between inner table and dura, clipped at the sutures of one bone.
- Subdural: crescent over the convexity of one hemisphere, crossing sutures, stopped by
  the falx; may run along the falx or the tentorium.
- Subarachnoid: blood in sulci, Sylvian fissures, the interhemispheric fissure and the
  basal cisterns.
- Intraventricular: a cast of a ventricle or a dependent layer with a fluid level.
- Intraparenchymal: irregular round mass, lobar or deep, with a darker edema rim.

Extra-axial collections push the brain surface inward (``extra_axial_thickness``) and big
lesions may shift the midline, so the brain under a lesion is displaced, not overpainted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ich_viewer.phantom import anatomy as an
from ich_viewer.phantom.geometry import Canvas, Region, smoothstep
from ich_viewer.phantom.volume import SUBTYPES

HU_RANGES = {
    "epidural": (42.0, 66.0),
    "subdural": (36.0, 64.0),
    "intraparenchymal": (38.0, 58.0),
    "subarachnoid": (34.0, 54.0),
    "intraventricular": (30.0, 52.0),
}
"""Lesion mean HU drawn uniformly from these measured ranges."""

THIN_BLOOD_BOOST_HU = 12.0
"""Blood in thin sulci is painted denser than its drawn mean: partial volume with the
surrounding brain brings the measured mean back into the subarachnoid range."""

BONES = ("frontal", "parietal", "temporal", "occipital")


@dataclass
class Lesion:
    subtype: str
    hu: float
    side: float
    """+1 patient left, -1 patient right (0 midline)."""
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        clean = {k: (np.asarray(v).tolist() if isinstance(v, (np.ndarray, tuple)) else v) for k, v in self.params.items()}
        return {"subtype": self.subtype, "mean_hu": round(self.hu, 1), "side": "left" if self.side > 0 else "right" if self.side < 0 else "midline", **clean}


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def bone_of(hx, hy, hz) -> np.ndarray:
    """Which vault bone a point of the inner table belongs to (index into BONES).

    Coronal suture in front of the parietal bones, lambdoid behind them, squamosal
    above the temporal squama; frontal and occipital span both sides.
    """
    coronal = 12.0 + 0.22 * (80.0 - hz)
    lambdoid = -62.0 + 0.22 * (65.0 - hz)
    squamosal = 22.0 + 0.05 * hy
    bone = np.full(np.shape(hx), 1, np.int8)
    temporal = (hz < squamosal) & (np.abs(hx) > 25.0)
    bone[temporal] = 2
    bone[hy > coronal] = 0
    bone[hy < lambdoid] = 3
    return bone


def suture_sd(hx, hy, hz, bone: int, side: float) -> np.ndarray:
    """Distance (mm, positive inside) from the sutures bounding ``bone`` on ``side``."""
    coronal = hy - (12.0 + 0.22 * (80.0 - hz))
    lambdoid = hy - (-62.0 + 0.22 * (65.0 - hz))
    squamosal = hz - (22.0 + 0.05 * hy)
    if bone == 0:
        return coronal
    if bone == 3:
        return -lambdoid
    own_side = side * hx
    between = np.minimum(-coronal, lambdoid)
    if bone == 2:
        return np.minimum(np.minimum(between, -squamosal), own_side - 25.0)
    return np.minimum(np.minimum(between, np.maximum(squamosal, 25.0 - own_side)), own_side)


def _direction_for(bone: str, side: float, rng: np.random.Generator) -> np.ndarray:
    if bone == "temporal":
        return _unit([side, rng.uniform(-0.25, 0.3), rng.uniform(-0.35, -0.05)])
    if bone == "frontal":
        return _unit([side * rng.uniform(0.2, 0.7), 1.0, rng.uniform(0.1, 0.6)])
    if bone == "parietal":
        return _unit([side, rng.uniform(-0.5, 0.0), rng.uniform(0.5, 1.0)])
    return _unit([side * rng.uniform(0.2, 0.6), -1.0, rng.uniform(0.05, 0.4)])


def plan_lesions(rng: np.random.Generator, subtypes, z_range: tuple[float, float]) -> list[Lesion]:
    """Draw one lesion per requested subtype; ``z_range`` (head mm) is what the slices cover."""
    lesions = []
    z_lo, z_hi = z_range
    for name in subtypes:
        hu = float(rng.uniform(*HU_RANGES[name]))
        side = float(rng.choice([-1.0, 1.0]))
        p: dict = {}
        if name == "epidural":
            bone = str(rng.choice(BONES, p=[0.2, 0.15, 0.6, 0.05]))
            p.update(bone=bone, direction=_direction_for(bone, side, rng), thickness_mm=float(rng.uniform(6, 24)),
                     radius_rad=float(rng.uniform(0.28, 0.5)), swirl=bool(rng.random() < 0.3))
        elif name == "subdural":
            p.update(direction=_unit([side, rng.uniform(-0.3, 0.5), rng.uniform(0.0, 0.5)]),
                     thickness_mm=float(rng.uniform(3, 14)), radius_rad=float(rng.uniform(0.8, 1.3)),
                     along_falx=bool(rng.random() < 0.35), along_tentorium=bool(rng.random() < 0.25))
        elif name == "subarachnoid":
            pattern = str(rng.choice(["basal", "sylvian", "convexity", "interhemispheric"], p=[0.35, 0.2, 0.3, 0.15]))
            if pattern == "convexity":
                d = _unit([side * rng.uniform(0.4, 1.0), rng.uniform(-0.6, 0.6), rng.uniform(0.3, 1.0)])
                zc = float(np.clip(an.CAVITY_CENTRE[2] + 55.0 * float(d[2]), z_lo + 10, z_hi - 10))
                focus = (55.0 * d[0], 60.0 * d[1], zc)
            elif pattern == "interhemispheric":
                focus = (0.0, rng.uniform(-20, 30), float(np.clip(rng.uniform(45, 70), z_lo + 5, z_hi - 5)))
            else:
                focus = (side * 30.0 if pattern == "sylvian" else 0.0, 5.0, 0.0)
            p.update(pattern=pattern, focus=focus, radius_mm=float(rng.uniform(25, 55)))
        elif name == "intraventricular":
            p.update(pattern=str(rng.choice(["layering", "cast", "horn"], p=[0.5, 0.3, 0.2])),
                     level_mm=float(rng.uniform(-6, 6)))
        elif name == "intraparenchymal":
            radius = float(np.exp(rng.uniform(np.log(4.0), np.log(24.0))))
            if rng.random() < 0.45:
                deep = rng.choice(["putamen", "thalamus"])
                centre = (side * 23.0, 6.0, 12.0) if deep == "putamen" else (side * 11.0, -10.0, 13.0)
                radius = min(radius, 18.0)
                where = str(deep)
            else:
                d = _unit([side * rng.uniform(0.3, 1.0), rng.uniform(-0.8, 0.8), rng.uniform(-0.1, 0.8)])
                dist = rng.uniform(22.0, 45.0) - 0.3 * radius
                centre = tuple(float(v) for v in np.array(an.CAVITY_CENTRE) + dist * d * np.array([0.9, 1.1, 0.9]))
                where = "lobar"
            zc = float(np.clip(centre[2], max(z_lo + 4, -8.0), min(z_hi - 4, 70.0)))
            centre = (centre[0], centre[1], zc)
            waves = rng.normal(size=(4, 3)) * 2.0
            p.update(location=where, centre=centre, radius_mm=radius, edema_mm=float(rng.uniform(2, 8) * min(1.0, radius / 12)),
                     edema_hu=float(rng.uniform(14, 22)), irregular=waves, axes=rng.uniform(0.75, 1.25, 3))
        lesions.append(Lesion(name, hu, side, p))
    return lesions


def mass_effect(lesions: list[Lesion], head: an.HeadParams, rng: np.random.Generator) -> None:
    """Big lesions shift the midline away from themselves and efface the ipsilateral ventricle."""
    size = 0.0
    for les in lesions:
        if les.subtype in ("epidural", "subdural"):
            s = les.params["thickness_mm"] * (1.5 if les.subtype == "subdural" else 1.0)
        elif les.subtype == "intraparenchymal":
            s = les.params["radius_mm"]
        else:
            continue
        if s > size:
            size, side = s, les.side
    if size >= 10.0:
        head.shift_mm = float(-side * min(12.0, (size - 8.0) * rng.uniform(0.4, 0.8)))
        head.effaced_side = int(side)


def _lens_profile(r: Region, les: Lesion) -> np.ndarray:
    """Thickness (mm) of an extra-axial lesion above each voxel's foot on the inner table."""
    d = [float(v) for v in les.params["direction"]]
    cx, cy, cz = an.CAVITY_CENTRE
    dx, dy, dz = r.x - cx, r.y - cy, r.z - cz
    norm = np.sqrt(dx * dx + dy * dy + dz * dz) + 1e-3
    theta = np.arccos(np.clip((dx * d[0] + dy * d[1] + dz * d[2]) / norm, -1.0, 1.0))
    t = 1.0 - (theta / les.params["radius_rad"]) ** 2
    if les.subtype == "epidural":
        return les.params["thickness_mm"] * np.clip(t, 0, None)  # biconvex: parabolic lens
    return les.params["thickness_mm"] * np.sqrt(np.clip(t, 0, None))  # crescent: flat, thin edges


def _extra_axial_region(r: Region, les: Lesion) -> np.ndarray:
    """Signed distance of the compartment the collection is allowed to occupy."""
    if les.subtype == "epidural":
        return suture_sd(r.x, r.y, r.z, BONES.index(les.params["bone"]), les.side)
    allowed = les.side * r.x - 0.9  # the falx: a subdural never reaches the other side
    above_tent = np.maximum(r.z - an.tentorium_height(r.x, r.y), r.y + 12.0)
    return np.minimum(allowed, above_tent)


def extra_axial_thickness(lesions: list[Lesion]) -> Callable[[Region], np.ndarray] | None:
    """How far the extra-axial lesions push the brain surface in (mm), per voxel of a region."""
    extra = [les for les in lesions if les.subtype in ("epidural", "subdural")]
    if not extra:
        return None

    def thickness(r: Region) -> np.ndarray:
        total = np.zeros(len(r), np.float32)
        for les in extra:
            t = _lens_profile(r, les) * smoothstep(_extra_axial_region(r, les) / 2.0 + 0.5)
            np.maximum(total, t, out=total)
        return total

    return thickness


def paint_lesions(canvas: Canvas, grid_shape: tuple[int, ...], head: an.HeadParams, fields: an.AnatomyFields,
                  lesions: list[Lesion], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint every lesion; return (codes, occupancy): 0 none, k = subtype index + 1, and
    the blood fraction of each voxel (so thick slices can label by their mean content)."""
    masks = np.zeros(grid_shape, np.uint8)
    occupancy = np.zeros(grid_shape, np.float32)
    flat = masks.reshape(-1)
    occ = occupancy.reshape(-1)
    r = fields.region
    inside = canvas.alpha(fields.depth)
    for les in lesions:
        code = SUBTYPES.index(les.subtype) + 1
        value = les.hu + _texture(r, rng, 2.5)
        where = inside
        if les.subtype in ("epidural", "subdural"):
            t = _lens_profile(r, les)
            sd = np.minimum(np.minimum(fields.depth, t - fields.depth), _extra_axial_region(r, les))
            if les.subtype == "subdural":
                sd = np.maximum(sd, _subdural_extensions(fields, les))
            if les.params.get("swirl"):
                value = value - 14.0 * (_texture(r, rng, 1.0) > 1.2)
        elif les.subtype == "subarachnoid":
            sd = _subarachnoid_sd(head, fields, les, canvas.edge_mm)
            value = value + THIN_BLOOD_BOOST_HU
            where = where * np.isin(canvas.tissue_of(r), (an.CSF, an.GREY, an.DURA, an.BLOOD))
        elif les.subtype == "intraventricular":
            sd = _intraventricular_sd(fields, les, head)
            where = where * np.isin(canvas.tissue_of(r), (an.VENTRICLE, an.CALCIFICATION, an.BLOOD))
        else:
            sd = _intraparenchymal_sd(fields, les)
            edema = sd + les.params["edema_mm"]
            canvas.paint(r, np.minimum(edema, fields.brain_depth), les.params["edema_hu"], an.EDEMA, where=inside)
            sd = np.minimum(sd, fields.depth - 1.0)
        a = canvas.paint(r, sd, value, an.BLOOD, where=where)
        hit = a > 0.05
        flat[r.idx[hit]] = code
        occ[r.idx[hit]] = a[hit]
    return masks, occupancy


def _texture(r: Region, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Smooth random variation (a few waves) so a lesion is not perfectly flat."""
    k = rng.normal(size=(3, 3)) * 0.25
    ph = rng.uniform(0, 2 * np.pi, 3)
    out = np.zeros(len(r), np.float32)
    for (kx, ky, kz), p in zip(k.tolist(), ph.tolist()):
        out += np.sin(kx * r.x + ky * r.y + kz * r.z + p)
    return (amplitude / np.sqrt(1.5)) * out


def _subdural_extensions(fields: an.AnatomyFields, les: Lesion) -> np.ndarray:
    r = fields.region
    x, y, z = r.x, r.y, r.z
    out = np.full(len(r), -50.0, np.float32)
    width = max(2.0, 0.35 * les.params["thickness_mm"])
    if les.params.get("along_falx"):
        s = les.side * fields.deep_x
        falx = np.minimum(np.minimum(s - 0.9, width - s + 0.9), np.minimum(fields.depth - 0.5, 60.0 - np.abs(y - 5.0)))
        falx = np.minimum(falx, z - 40.0 + 35.0 * smoothstep((np.abs(y) - 28.0) / 25.0))
        out = np.maximum(out, falx)
    if les.params.get("along_tentorium"):
        h = z - an.tentorium_height(x, y)
        tent = np.minimum(np.minimum(h, width - h), np.minimum(-14.0 - y, les.side * x - 2.0))
        out = np.maximum(out, np.minimum(tent, fields.depth))
    return out


def _subarachnoid_sd(head: an.HeadParams, fields: an.AnatomyFields, les: Lesion, pixel_mm: float) -> np.ndarray:
    """CSF spaces of the chosen pattern near its focus; drawn at least ~1 pixel wide."""
    r = fields.region
    x, y, z = r.x, r.y, r.z
    a = head.atrophy
    fx, fy, fz = (float(v) for v in les.params["focus"])
    near = les.params["radius_mm"] - np.sqrt((x - fx) ** 2 + (y - fy) ** 2 + (z - fz) ** 2)
    pattern = les.params["pattern"]
    widen = max(0.0, 1.3 * pixel_mm - (0.8 + 2.4 * a)) / 2.0
    if pattern == "convexity":
        spaces = np.minimum(fields.sulcal_sd + widen, 10.0 + 8.0 * a - fields.brain_depth)
        spaces = np.minimum(spaces, fields.brain_depth + 1.0)
    elif pattern == "interhemispheric":
        spaces = np.minimum(0.9 + 1.6 * a + widen - np.abs(fields.deep_x), fields.depth - 1.0)
        spaces = np.minimum(spaces, z - 47.0 + 42.0 * smoothstep((np.abs(y) - 25.0) / 30.0))
    else:
        fis = an._fissures_sd(fields.deep_x, x, y, z, a) + widen
        if pattern == "sylvian":
            spaces = np.minimum(fis, les.side * x - 20.0)
        else:
            spaces = np.maximum(an._cisterns_sd(fields.deep_x, y, z, a) + widen, fis)
    return np.minimum(np.minimum(spaces, near), fields.depth - 0.5)


def _intraventricular_sd(fields: an.AnatomyFields, les: Lesion, head: an.HeadParams) -> np.ndarray:
    v = fields.ventricle_sd
    pattern = les.params["pattern"]
    if pattern == "cast":
        return np.minimum(v, np.maximum(les.side * fields.deep_x, 3.0 - np.abs(fields.deep_x)))
    # supine patient: blood settles posteriorly in scanner space (toward the table)
    level = les.params["atrium_scan_y"] + les.params["level_mm"]
    dependent = level - fields.region.scan_y
    if pattern == "horn":
        dependent = np.minimum(dependent, les.side * fields.deep_x)
    return np.minimum(v, dependent)


def _intraparenchymal_sd(fields: an.AnatomyFields, les: Lesion) -> np.ndarray:
    c = [float(v) for v in les.params["centre"]]
    rad = les.params["radius_mm"]
    ax = [float(v) for v in les.params["axes"]]
    r = fields.region
    sub, sel = r.near(c, rad * 1.5 + les.params["edema_mm"] + 4.0)
    sd = np.full(len(r), -50.0, np.float32)
    dx, dy, dz = (sub.x - c[0]) / ax[0], (sub.y - c[1]) / ax[1], (sub.z - c[2]) / ax[2]
    dist = np.sqrt(dx * dx + dy * dy + dz * dz) + 1e-3
    wobble = np.zeros_like(dist)
    for kx, ky, kz in les.params["irregular"].tolist():
        wobble += np.sin((kx * dx + ky * dy + kz * dz) / dist + kx)
    sd[sel] = np.minimum(rad * (1.0 + 0.08 * wobble) - dist, fields.brain_depth[sel] + 2.0)
    return sd
