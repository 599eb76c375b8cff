"""Synthetic hemorrhages inserted into real CT slices that have none (training material only).

Issue 10, lever 1. A negative training sample is a stack of 2k+1 cropped, resized HU
slices (``trainer.cache``); the inserter finds the anatomy in the real image and paints
one lesion of a drawn subtype into it, following its compartment:

- skull: bone > 300 HU (the ring that encloses the cavity: > 150 HU, closed);
  cranial cavity: the soft tissue enclosed by the skull; inner table: cavity pixels
  next to bone (``depth``, the distance to the nearest non-cavity pixel); brain:
  smoothed 18-48 HU; CSF: smoothed <= 15 HU grown by 2 px through partial-volume pixels
  up to 24 HU; ventricles: thick CSF components deep in the middle of the cavity (not
  compact midline ones: those are cisterns); sulci, fissures and cisterns: CSF and dark
  valleys between gyri in the outer 25 mm, or CSF connected to them (a deep isolated
  CSF spot, a lacune, is none of them). A slice with too little cavity or brain
  (vertex, skull base, no head) gets no lesion.
- Epidural: biconvex lens against the inner table, arc at most ~70 degrees (it stops at
  the sutures), thickness up to 3 cm.
- Subdural: crescent along the inner table on one side (the falx stops it), long arc,
  thin, concave inner border; sometimes a band along the falx.
- Subarachnoid: CSF pixels near a seed in the sulci, fissures or cisterns become blood
  (in proportion to how much CSF each pixel holds), so it stays thin and serpiginous.
  As in the phantom, blood in thin sulci is painted ``THIN_BLOOD_BOOST_HU`` denser than
  the drawn mean: partial volume with the surrounding brain brings the mean back.
- Intraventricular: a cast of part of one ventricle or a dependent layer with a
  horizontal level in the posterior (bottom-row) parts of the ventricles.
- Intraparenchymal: irregular oval mass in parenchyma away from the inner table, with a
  darker edema rim and, when large, a small local push of the surrounding tissue.

Each lesion is a 3-D shape with a z-centre and a z-extent; a slice gets the share of its
thickness the lesion covers (sampled at a few depths in the slab, the outline shrinking
toward the lesion's ends) and soft partial-volume edges in-plane. The host's texture is
kept: a displacing lesion (EDH, SDH, IPH) replaces the smooth host by the lesion's HU
and keeps the host's fine noise; a filling lesion (SAH, IVH) adds blood where CSF was.
Lesion mean HU is drawn from the measured distributions (median, p10, p90), volume from
a log-normal through the measured median and p90 (floored at ``MIN_VOLUME_ML``, capped
at ``VOLUME_CAP`` x p90). The centre slice is labelled only when the lesion is visible on
it (``_visible``: a blood-equivalent area of ``MIN_VISIBLE_MM2`` with a few pixels at
least a third blood); a lesion only on a neighbour slice leaves the centre negative. A
lesion too faint on every slice is drawn again. mm per pixel come from the skull's width
on the centre slice (``InsertConfig.head_width_mm``).

Inserted samples are training material, never evidence: CV is measured on real slices.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np
from scipy import ndimage as ndi

from ich_viewer import LABELS
from ich_viewer.phantom.lesions import THIN_BLOOD_BOOST_HU

SUBTYPES = tuple(LABELS[:5])
"""epidural, intraparenchymal, intraventricular, subarachnoid, subdural."""

LESION_HU = {
    "epidural": (57.0, 42.0, 66.0),
    "intraparenchymal": (48.0, 38.0, 58.0),
    "intraventricular": (40.0, 30.0, 52.0),
    "subarachnoid": (43.0, 34.0, 54.0),
    "subdural": (51.0, 36.0, 64.0),
}
"""Measured lesion mean HU on 5 mm slices: (median, p10, p90)."""

VOLUME_ML = {
    "epidural": (3.9, 20.0),
    "intraparenchymal": (1.2, 34.0),
    "intraventricular": (0.5, 6.5),
    "subarachnoid": (0.18, 1.4),
    "subdural": (0.5, 14.0),
}
"""Measured lesion volumes (median, p90) in mL."""

VOLUME_CAP = 2.5
"""Volumes are capped at this multiple of the p90."""
MIN_VOLUME_ML = 0.12
"""Smaller lesions are not drawn: spread over a 5 mm slice they stay below the visibility
rule (``MIN_VISIBLE_MM2``), as they would for the readers who labelled the real slices."""

BONE_HU = 300.0
RING_HU = 150.0
"""Threshold of the skull ring that encloses the cavity (no soft tissue reaches it)."""
BRAIN_HU = (18.0, 48.0)
CSF_HU = (-15.0, 17.0)
CSF_REF_HU = 8.0
"""Pure CSF, for the CSF share of a pixel (linear mixing with the surrounding tissue)."""
WOBBLE = np.array([0.10, 0.06, 0.03])
"""Outline irregularity of a hematoma: amplitudes of its 2-, 3- and 5-lobed modes (an
oval, a slight asymmetry, a few bumps; no 4-lobed mode, which reads as a square)."""
TEXTURE_HU = 2.5
"""Amplitude of the smooth waves inside a hematoma (as the phantom's lesions)."""
LATERAL_VENTRICLE_MM = 5.0
"""IVH goes into ventricle pixels at least this far from the midline (the lateral
ventricles; deep midline CSF may be a cistern)."""
LAYER_POSTERIOR = 0.2
"""A dependent layer lies behind this share of the cavity radius past its centre (the
atria and occipital horns, where blood settles in a supine patient)."""
MAX_OWED = 3
"""At most this many subtypes wait for a slice with room for them (see ``_owed``)."""
MIN_VISIBLE_MM2 = 12.0
"""A slice is labelled when its blood-equivalent area (sum of blood shares) reaches this
and at least ``MIN_VISIBLE_PIXELS`` pixels are at least a third blood."""
MIN_VISIBLE_PIXELS = 4
MIN_CAVITY_SHARE = 0.45
"""Cranial cavity / head area below this (vertex, skull base, no head): no insertion."""
MIN_BRAIN_SHARE = 0.55
"""Brain-valued pixels / cavity below this: no insertion."""
MIN_CAVITY_SQUARE = 0.15
"""Cavity / whole square below this: no insertion."""
Z_SAMPLES = 3
"""Depths sampled in each slice's slab for partial volume (at 1/6, 1/2, 5/6 of it)."""


@dataclass(frozen=True)
class InsertConfig:
    probability: float = 0.5
    """Share of NEGATIVE samples (labels[:, 5] == 0) that get a lesion."""
    subtype_weights: tuple[float, ...] = (1, 1, 1.5, 1.5, 1)
    """LABELS[:5] order: epidural, intraparenchymal, intraventricular, subarachnoid, subdural."""
    head_width_mm: float = 150.0
    """Assumed biparietal width, sets mm per pixel from the head's width in the image."""
    slice_mm: float = 5.0
    """Distance between the 2k+1 stacked slices."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["subtype_weights"] = [float(w) for w in self.subtype_weights]
        return data


# --------------------------------------------------------------------------- anatomy

def _shift_or(mask: np.ndarray) -> np.ndarray:
    """8-neighbour binary dilation with numpy slicing (several times faster than ndimage)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    tmp = out.copy()
    out[:, 1:] |= tmp[:, :-1]
    out[:, :-1] |= tmp[:, 1:]
    return out


def _shift_and(mask: np.ndarray) -> np.ndarray:
    """8-neighbour binary erosion (the border counts as set, as in a closing)."""
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    tmp = out.copy()
    out[:, 1:] &= tmp[:, :-1]
    out[:, :-1] &= tmp[:, 1:]
    return out


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class SliceAnatomy:
    """The compartments of one real slice, computed lazily (only what a lesion needs)."""

    def __init__(self, hu: np.ndarray, px_mm: float) -> None:
        self.hu = np.asarray(hu, dtype=np.float32)
        self.px_mm = float(px_mm)
        self.size = self.hu.shape[0]

    @cached_property
    def smooth(self) -> np.ndarray:
        return ndi.gaussian_filter(self.hu, 0.8, truncate=2.5)

    @cached_property
    def bone(self) -> np.ndarray:
        return self.hu > BONE_HU

    @cached_property
    def enclosed(self) -> np.ndarray:
        """Everything inside the outer surface of the (closed) skull.

        The ring is everything above ``RING_HU`` (thin temporal squama falls below the bone
        threshold once resized), closed (dilate, erode) so that a suture or a thin spot
        does not open it; wider closings are tried when the first one leaks.
        """
        ring = self.hu > RING_HU
        for grow in (1, 3, 6):
            closed = ring
            for _ in range(grow):
                closed = _shift_or(closed)
            for _ in range(grow):
                closed = _shift_and(closed)
            labels, _ = ndi.label(~closed)
            border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
            outside = np.zeros(labels.max() + 1, bool)
            outside[border] = True
            outside[0] = False
            enclosed = ~outside[labels]
            self._closed = closed
            if (enclosed & ~closed).sum() >= MIN_CAVITY_SQUARE * self.size ** 2:
                break
        return enclosed

    @cached_property
    def cavity(self) -> np.ndarray:
        """Soft tissue enclosed by the skull."""
        return self.enclosed & ~self._closed & (self.smooth > -40.0)

    @cached_property
    def depth(self) -> np.ndarray:
        """Distance (px) from a cavity pixel's centre to the cavity edge (octagonal metric)."""
        cav = self.cavity
        if not cav.any():
            return np.zeros(cav.shape, np.float32)
        taxi = ndi.distance_transform_cdt(cav, metric="taxicab").astype(np.float32)
        chess = ndi.distance_transform_cdt(cav, metric="chessboard").astype(np.float32)
        # the mean of the two metrics is within a few % of Euclidean; minus half a pixel
        # so that it measures to the edge between cavity and bone
        return np.maximum(0.5 * (taxi + chess) - 0.5, 0.0)

    @cached_property
    def brain(self) -> np.ndarray:
        sm = self.smooth
        return self.cavity & (sm >= BRAIN_HU[0]) & (sm <= BRAIN_HU[1])

    @cached_property
    def head_area(self) -> int:
        return int((self.hu > -300.0).sum())

    @cached_property
    def valid(self) -> bool:
        """Enough cranial cavity, mostly brain: else (vertex, skull base, no head) no lesion."""
        brainlike = int(((self.hu >= BRAIN_HU[0]) & (self.hu <= BRAIN_HU[1])).sum())
        if brainlike < 0.5 * MIN_BRAIN_SHARE * MIN_CAVITY_SQUARE * self.size ** 2:
            return False  # cheap early exit before the anatomy
        cav = int(self.cavity.sum())
        if cav < MIN_CAVITY_SQUARE * self.size ** 2 or cav < MIN_CAVITY_SHARE * max(self.head_area, 1):
            return False
        return int(self.brain.sum()) >= MIN_BRAIN_SHARE * cav

    @cached_property
    def frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(centre (row, col), unit AP axis, unit lateral axis, mean radius px) of the cavity."""
        rr, cc = np.nonzero(self.cavity)
        centre = np.array([rr.mean(), cc.mean()])
        cov = np.cov(np.stack([rr - centre[0], cc - centre[1]]))
        vals, vecs = np.linalg.eigh(cov)
        ap = vecs[:, 1]
        if abs(ap[0]) < 0.85 or vals[1] < 1.1 * vals[0]:
            ap = np.array([1.0, 0.0])  # a round cavity or an odd tilt: keep the image axes
        ap = ap if ap[0] > 0 else -ap  # pointing posterior (down the rows)
        lat = np.array([-ap[1], ap[0]])
        lat = lat if lat[1] > 0 else -lat  # pointing to the image's right (columns up)
        radius = math.sqrt(len(rr) / math.pi)
        return centre, ap, lat, radius

    @cached_property
    def brain_hu(self) -> float:
        values = self.smooth[self.brain]
        return float(np.median(values)) if values.size else 33.0

    @cached_property
    def noise_sigma(self) -> float:
        resid = self.hu - self.smooth
        brain = self.brain
        sigma = 1.4826 * float(np.median(np.abs(resid[brain]))) if brain.any() else 2.0
        return max(sigma, 0.5)

    def noise(self, win: tuple[slice, slice]) -> np.ndarray:
        """The host's fine texture in a window: the residual from a soft-tissue-only smooth
        (bone does not leak into it), zeroed at strong edges (sulci, table)."""
        r0, r1 = max(win[0].start - 4, 0), min(win[0].stop + 4, self.size)
        c0, c1 = max(win[1].start - 4, 0), min(win[1].stop + 4, self.size)
        hu = self.hu[r0:r1, c0:c1]
        soft = ((hu > -100.0) & (hu < 100.0)).astype(np.float32)
        smooth = ndi.gaussian_filter(hu * soft, 0.8, truncate=2.5) / np.maximum(
            ndi.gaussian_filter(soft, 0.8, truncate=2.5), 1e-3)
        resid = (hu - smooth) * soft
        limit = 2.5 * self.noise_sigma
        resid = np.where(np.abs(resid) <= limit, resid, 0.0).astype(np.float32)
        return resid[win[0].start - r0:win[0].stop - r0, win[1].start - c0:win[1].stop - c0]

    @cached_property
    def csf_fraction(self) -> np.ndarray:
        """How much of each cavity pixel is CSF (0 brain .. 1 pure CSF), from its HU."""
        ref_brain = self.brain_hu
        ref_csf = CSF_REF_HU
        frac = (ref_brain - self.smooth) / max(ref_brain - ref_csf, 5.0)
        frac = np.clip(frac, 0.0, 1.0)
        frac[~self.cavity | (self.depth < 1.0) | (self.smooth < -30.0)] = 0.0
        return frac.astype(np.float32)

    @cached_property
    def csf(self) -> np.ndarray:
        """CSF-valued pixels (at most 15 HU, grown by 2 px through partial-volume pixels
        up to 24 HU), away from the inner table."""
        sm = self.smooth
        low = self.cavity & (sm >= CSF_HU[0]) & (sm <= CSF_HU[1] + 7.0) & (self.depth >= 1.0)
        seeds = low & (sm <= CSF_HU[1] - 2.0)
        grown = low & _shift_or(_shift_or(seeds))  # the partial-volume edge: 2 px at most
        labels, n = ndi.label(grown, structure=np.ones((3, 3), bool))
        self._csf_labels = (labels, n)
        return grown

    @cached_property
    def ventricles(self) -> np.ndarray:
        """CSF components deep in the middle of the cavity (at least 40 mm2, 12 mm from the
        inner table, centroid within half the cavity radius, thick enough to hold a 3x3
        block), except midline ones that are not an AP slit."""
        csf = self.csf
        labels, n = getattr(self, "_csf_labels", (None, 0))
        if n == 0:
            return csf
        labels = np.where(csf, labels, 0)
        flat = labels.ravel()
        areas = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
        rows, cols = _coords(self.size)
        com_r = np.bincount(flat, rows.ravel(), minlength=n + 1)[1:] / np.maximum(areas, 1)
        com_c = np.bincount(flat, cols.ravel(), minlength=n + 1)[1:] / np.maximum(areas, 1)
        centre, _, lat, radius = self.frame
        dist = np.hypot(com_r - centre[0], com_c - centre[1])
        px = self.px_mm
        ok = (areas * px * px >= 40.0) & (dist <= 0.5 * radius)
        depth = self.depth
        boxes = ndi.find_objects(labels, max_label=n)
        inner = ndi.distance_transform_cdt(csf, metric="chessboard") if ok.any() else None
        for label in np.flatnonzero(ok) + 1:  # few: the deep ones are ventricles
            here = labels == label
            ok[label - 1] = float(depth[here].min()) * px >= 12.0
            # thick enough to hold a 3x3 block: a thin curved band is a cistern (around
            # the midbrain), not a ventricle
            ok[label - 1] &= int(inner[here].max()) >= 2
            rows_, cols_ = boxes[label - 1]
            lateral = (com_r[label - 1] - centre[0]) * lat[0] + (com_c[label - 1] - centre[1]) * lat[1]
            slit = (rows_.stop - rows_.start) >= 1.3 * (cols_.stop - cols_.start)
            if abs(lateral) * px < 8.0 and not slit:
                # a midline space that is not an AP slit (the third ventricle, or the bodies
                # of both lateral ventricles joined): the suprasellar or quadrigeminal
                # cistern, the fourth ventricle, or joined frontal horns; left out
                ok[label - 1] = False
        keep = np.zeros(n + 1, bool)
        keep[1:] = ok
        return keep[labels]

    @cached_property
    def surface_csf(self) -> np.ndarray:
        """Pixels within 25 mm of the inner table, or CSF connected to them."""
        shallow = self.depth * self.px_mm <= 25.0
        csf = self.csf
        labels, n = self._csf_labels
        if n == 0:
            return shallow
        touching = np.zeros(n + 1, bool)
        touching[np.unique(labels[shallow & csf])] = True
        touching[0] = False
        return shallow | touching[labels]

    @cached_property
    def sulcal_weight(self) -> np.ndarray:
        """How much of each pixel is sulcal, fissural or cisternal CSF (0..1).

        At 1-1.5 mm per pixel most sulci are narrower than a pixel: they show as faint
        dark valleys between gyri, not as CSF-valued pixels. A pixel counts by the larger
        of its CSF share (true CSF values) and its darkness against the surrounding
        cavity (a valley), the latter only in the outer 25 mm where cortex, not white
        matter, surrounds it. Ventricles are excluded.
        """
        return _sulcal_weight(self, (slice(0, self.size), slice(0, self.size)))

    @cached_property
    def sulcal(self) -> np.ndarray:
        """Sulci, fissures and cisterns: pixels at least a fifth CSF, not ventricle."""
        return self.sulcal_weight >= 0.2


class NeighbourAnatomy(SliceAnatomy):
    """A neighbour slice's compartments, computed only in the lesion's window.

    The cavity is the soft tissue inside this slice's own skull ring that connects to
    the centre slice's deep cavity within the window; ventricles are this slice's CSF
    near the centre slice's ventricles. Frame, brain HU and noise level are the centre's.
    """

    PAD = 6

    def __init__(self, hu: np.ndarray, ref: SliceAnatomy, roi: tuple[int, int, int, int]) -> None:
        super().__init__(hu, ref.px_mm)
        r0, r1, c0, c1 = roi
        pad, size = self.PAD, self.size
        self.win = (slice(max(r0 - pad, 0), min(r1 + pad, size)), slice(max(c0 - pad, 0), min(c1 + pad, size)))
        self.ref = ref

    def _embed(self, part: np.ndarray, fill=0) -> np.ndarray:
        out = np.full((self.size, self.size), fill, dtype=part.dtype)
        out[self.win] = part
        return out

    @cached_property
    def smooth(self) -> np.ndarray:
        out = self.hu.copy()
        out[self.win] = ndi.gaussian_filter(self.hu[self.win], 0.8, truncate=2.5)
        return out

    @cached_property
    def cavity(self) -> np.ndarray:
        ring = self.hu[self.win] > RING_HU
        closed = _shift_and(_shift_or(ring))
        soft = ~closed & (self.smooth[self.win] > -40.0)
        labels, n = ndi.label(soft)
        if n == 0:
            return self._embed(soft)
        anchor = self.ref.cavity[self.win] & (self.ref.depth[self.win] >= 3.0)
        keep = np.zeros(n + 1, bool)
        keep[np.unique(labels[anchor & soft])] = True
        keep[0] = False
        return self._embed(keep[labels])

    @cached_property
    def depth(self) -> np.ndarray:
        """Own depth where the nearest edge lies inside the window, else the centre's."""
        cav = self.cavity[self.win]
        if cav.all():
            return self._embed(self.ref.depth[self.win].copy())
        taxi = ndi.distance_transform_cdt(cav, metric="taxicab").astype(np.float32)
        chess = ndi.distance_transform_cdt(cav, metric="chessboard").astype(np.float32)
        own = np.maximum(0.5 * (taxi + chess) - 0.5, 0.0) * cav
        rows, cols = np.indices(cav.shape)
        to_border = np.minimum(np.minimum(rows, cav.shape[0] - 1 - rows), np.minimum(cols, cav.shape[1] - 1 - cols))
        far = own > to_border
        own[far] = np.maximum(self.ref.depth[self.win][far], to_border[far])
        return self._embed(own)

    @property
    def valid(self) -> bool:
        return self.ref.valid

    @property
    def frame(self):
        return self.ref.frame

    @property
    def brain_hu(self) -> float:
        return self.ref.brain_hu

    @property
    def noise_sigma(self) -> float:
        return self.ref.noise_sigma

    @cached_property
    def csf(self) -> np.ndarray:
        sm = self.smooth[self.win]
        low = self.cavity[self.win] & (sm >= CSF_HU[0]) & (sm <= CSF_HU[1] + 7.0) & (self.depth[self.win] >= 1.0)
        seeds = low & (sm <= CSF_HU[1] - 2.0)
        return self._embed(low & _shift_or(_shift_or(seeds)))

    @cached_property
    def ventricles(self) -> np.ndarray:
        near = self.ref.ventricles[self.win]
        for _ in range(3):
            near = _shift_or(near)
        return self._embed(self.csf[self.win] & near)

    @cached_property
    def surface_csf(self) -> np.ndarray:
        near = self.ref.sulcal[self.win]
        for _ in range(3):
            near = _shift_or(near)
        return self._embed(near | (self.depth[self.win] * self.px_mm <= 25.0))

    @cached_property
    def sulcal_weight(self) -> np.ndarray:
        return self._embed(_sulcal_weight(self, self.win))


def _sulcal_weight(sl: SliceAnatomy, win) -> np.ndarray:
    """See ``SliceAnatomy.sulcal_weight``; computed in a window."""
    cav_mask = sl.cavity[win]
    cav = cav_mask.astype(np.float32)
    smooth = sl.smooth[win]
    sm = np.clip(smooth, -20.0, 60.0)
    local = ndi.uniform_filter(sm * cav, 7) / np.maximum(ndi.uniform_filter(cav, 7), 1e-3)
    local = np.maximum(local, sl.brain_hu)
    depth = sl.depth[win]
    # linear mixing of the surrounding tissue and CSF (8 HU); 1.5 HU of slack for noise
    valley = np.clip((local - sm - 1.5) / np.maximum(local - CSF_REF_HU, 5.0), 0.0, 1.0)
    valley *= depth * sl.px_mm <= 25.0
    # CSF-valued pixels count where they reach the outer 25 mm (sulci, fissures) or belong
    # to CSF that does (cisterns opening into the fissures); a deep isolated CSF spot (a
    # lacune, a perivascular space) is not a subarachnoid space
    csf = sl.csf_fraction[win] * (smooth <= 20.0) * sl.surface_csf[win]
    near_ventricle = _shift_or(_shift_or(sl.ventricles[win]))
    weight = np.maximum(valley, csf) * cav_mask * (depth >= 1.5) * ~near_ventricle
    return weight.astype(np.float32)


def pixel_mm(centre_hu: np.ndarray, head_width_mm: float) -> float:
    """mm per pixel from the skull's (else the head's) width on the centre slice."""
    size = centre_hu.shape[1]
    cols = np.flatnonzero((centre_hu > BONE_HU).any(axis=0))
    if cols.size < 2 or cols[-1] - cols[0] < size // 4:
        cols = np.flatnonzero((centre_hu > -300.0).any(axis=0))
    width = (cols[-1] - cols[0] + 1) if cols.size >= 2 else size
    return float(np.clip(head_width_mm / max(width, 1), 0.3, 5.0))


# --------------------------------------------------------------------------- lesions

def _visible(share: np.ndarray, px_mm: float) -> bool:
    """Whether a slice shows the lesion (the rule that sets its labels)."""
    if not share.any():
        return False
    return (float(share.sum()) * px_mm * px_mm >= MIN_VISIBLE_MM2
            and int((share >= 0.35).sum()) >= MIN_VISIBLE_PIXELS)


def _draw_hu(rng: np.random.Generator, subtype: str) -> float:
    """Two-piece normal through the measured median, p10 and p90."""
    median, p10, p90 = LESION_HU[subtype]
    z = rng.standard_normal()
    spread = (p90 - median if z > 0 else median - p10) / 1.2816
    return float(np.clip(median + z * spread, p10 - 8.0, p90 + 8.0))


def _draw_volume_mm3(rng: np.random.Generator, subtype: str) -> float:
    median, p90 = VOLUME_ML[subtype]
    sigma = (math.log(p90) - math.log(median)) / 1.2816
    ml = math.exp(math.log(median) + sigma * rng.standard_normal())
    return 1000.0 * float(np.clip(ml, MIN_VOLUME_ML, VOLUME_CAP * p90))


@dataclass
class Lesion:
    """One inserted lesion: subtype, HU, z placement and the in-plane rule's parameters."""

    subtype: str
    hu: float
    volume_ml: float
    z_centre_mm: float
    """Relative to the centre slice's mid-plane (positive toward the head end)."""
    half_height_mm: float
    params: dict = field(default_factory=dict)
    filling: bool = False
    """True for SAH/IVH: blood replaces CSF in proportion to each pixel's CSF share."""
    roi: tuple[int, int, int, int] | None = None
    """(row0, row1, col0, col1) of the square the lesion can reach."""
    geo: dict = field(default_factory=dict, repr=False, compare=False)
    """In-plane coordinates in the window, computed once (see ``_geometry``)."""

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("params", "geo")}
        out.update({k: (np.asarray(v).round(3).tolist() if isinstance(v, np.ndarray) else v)
                    for k, v in self.params.items()})
        return out


@dataclass
class Insertion:
    """What was inserted into one sample (for tests, figures and logging)."""

    lesion: Lesion
    alpha: np.ndarray
    """(2k+1, S, S) float32: blood share of each pixel (after the CSF share for SAH/IVH)."""
    visible: bool
    """Whether the centre slice is labelled."""
    px_mm: float


class LesionInserter:
    """Insert one synthetic hemorrhage into a random share of a batch's negative samples."""

    def __init__(self, config: InsertConfig, rng: np.random.Generator) -> None:
        if len(config.subtype_weights) != len(SUBTYPES):
            raise ValueError(f"subtype_weights needs {len(SUBTYPES)} values, got {len(config.subtype_weights)}")
        weights = np.asarray(config.subtype_weights, dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("subtype_weights must be non-negative with a positive sum")
        self.config = config
        self.rng = rng
        self._p = weights / weights.sum()
        self.last: list[tuple[int, Insertion]] = []
        """(sample index, insertion) of the last call."""
        self._owed: list[str] = []
        """Subtypes drawn for a slice without their compartment (no ventricles, no CSF
        spaces): tried first on the next slice, so the mix follows the weights."""

    # ------------------------------------------------------------------ public
    def __call__(self, hu: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """hu: (B, 2k+1, S, S) float32 HU, cropped and resized (centre slice at index k);
        labels: (B, 6) uint8 in LABELS order. Returns new arrays (inputs untouched): lesions
        inserted into a random share of the negative samples, centre-slice labels set
        where the inserted lesion is visible on the centre slice."""
        out_hu = np.array(hu, dtype=np.float32, copy=True)
        out_labels = np.array(labels, copy=True)
        self.last = []
        negative = np.flatnonzero(np.asarray(labels)[:, 5] == 0)
        chosen = negative[self.rng.random(len(negative)) < self.config.probability]
        for i in chosen:
            result = self.insert(out_hu[i])
            if result is None:
                continue
            new, insertion = result
            out_hu[i] = new
            if insertion.visible:
                out_labels[i, SUBTYPES.index(insertion.lesion.subtype)] = 1
                out_labels[i, 5] = 1
            self.last.append((int(i), insertion))
        return out_hu, out_labels

    def insert(self, stack: np.ndarray, subtype: str | None = None,
               attempts: int = 4) -> tuple[np.ndarray, Insertion] | None:
        """One lesion into one (2k+1, S, S) stack; None when the slice has no room for one
        (too little cavity or brain, or no compartment of the drawn subtypes)."""
        stack = np.asarray(stack, dtype=np.float32)
        n = stack.shape[0]
        k = n // 2
        px_mm = pixel_mm(stack[k], self.config.head_width_mm)
        slices = {k: SliceAnatomy(stack[k], px_mm)}
        if not slices[k].valid:
            return None
        name = None
        for attempt in range(attempts):
            if subtype is not None:
                name = subtype
            elif name is None:  # first attempt, or the last subtype had no room here
                if attempt == 0 and self._owed:
                    name = self._owed.pop(0)  # a subtype an earlier slice had no room for
                else:
                    name = SUBTYPES[int(self.rng.choice(len(SUBTYPES), p=self._p))]
            lesion = _PLANNERS[name](self, slices[k], px_mm)
            if lesion is None:
                if subtype is None and len(self._owed) < MAX_OWED and name not in self._owed:
                    self._owed.append(name)
                name = None
                continue
            lesion.roi = _roi(lesion, slices[k])
            if lesion.roi is None:
                continue
            if not lesion.filling:  # a few smooth waves: a hematoma is not perfectly flat
                lesion.params["texture"] = np.concatenate(
                    [self.rng.normal(0.0, 0.35, (3, 2)), self.rng.uniform(0, 2 * np.pi, (3, 1))], axis=1)
            alpha = np.zeros(stack.shape, np.float32)
            new = stack.copy()
            r0, r1, c0, c1 = lesion.roi
            for j in range(n):
                z0 = (j - k) * self.config.slice_mm - 0.5 * self.config.slice_mm
                if j == k or np.array_equal(stack[j], stack[k]):  # a repeated centre at a series end
                    sl = slices[k]
                else:
                    sl = NeighbourAnatomy(stack[j], slices[k], lesion.roi)
                a = _occupancy(lesion, sl, z0, self.config.slice_mm, slices[k])
                if a is None or not a.any():
                    continue
                new[j], alpha[j, r0:r1, c0:c1] = _paint(lesion, sl, a)
            seen = [_visible(alpha[j], px_mm) for j in range(n)]
            if not any(seen):
                continue  # too faint anywhere: draw again
            return new, Insertion(lesion, alpha, seen[k], px_mm)
        return None

    # ------------------------------------------------------------------ planners
    def _z_place(self, half_height: float) -> float:
        """z-centre: mostly through the centre slice, sometimes only on a neighbour."""
        reach = half_height + 0.5 * self.config.slice_mm
        return float(self.rng.uniform(-0.8, 0.8) * reach)

    def _plan_extra_axial(self, sl: SliceAnatomy, px_mm: float, subtype: str) -> Lesion | None:
        rng = self.rng
        centre, ap, lat, radius = sl.frame
        radius_mm = radius * px_mm
        volume = _draw_volume_mm3(rng, subtype)
        side = float(rng.choice([-1.0, 1.0]))
        # the lesion's direction from the cavity centre, as an angle in image space
        lateral_angle = math.atan2(side * lat[0], side * lat[1])
        if subtype == "epidural":
            ratio = rng.uniform(3.0, 5.0)  # lens diameter / thickness
            diameter = (8.0 * ratio * volume / math.pi) ** (1.0 / 3.0)
            half_angle = min(math.radians(35.0), 0.5 * diameter / radius_mm)
            diameter = 2.0 * half_angle * radius_mm
            thickness = float(np.clip(8.0 * volume / (math.pi * diameter ** 2), 2.0, 30.0))
            # around the side of the head; never over the midline (the sagittal suture)
            reach = math.radians(85.0) - half_angle
            theta0 = lateral_angle + float(np.clip(rng.normal(0.0, math.radians(45.0)), -reach, reach))
            half_height = 0.5 * max(diameter * rng.uniform(0.7, 1.1), 2.0)
            params = dict(theta0=theta0, half_angle=half_angle, thickness_mm=thickness, side=side,
                          along_falx=False)
        else:
            along_falx = bool(rng.random() < 0.2)
            ratio = rng.uniform(6.0, 14.0)  # extent / thickness
            thickness = float(np.clip((6.0 * volume / (math.pi * ratio ** 2)) ** (1.0 / 3.0), 2.0, 15.0))
            extent = math.sqrt(6.0 * volume / (math.pi * thickness))
            if along_falx:
                thickness = min(thickness, float(rng.uniform(2.0, 5.0)))
                # the anterior or posterior falx, from the inner table inward: the falx does
                # not reach down between the lateral ventricles
                length = float(np.clip(extent * rng.uniform(1.0, 1.6), 15.0, 0.8 * radius_mm))
                ap0 = float(rng.choice([-1.0, 1.0]) * (radius_mm - 0.5 * length))
                params = dict(side=side, thickness_mm=thickness, length_mm=length, ap0_mm=ap0,
                              along_falx=True)
                half_height = 0.5 * max(extent, 2.0)
            else:
                # a long arc (at least 80 degrees); the volume of a crescent cap is
                # pi * arc * height * thickness / 6
                half_angle = float(np.clip(0.5 * extent / radius_mm, math.radians(40.0), math.radians(95.0)))
                arc = 2.0 * half_angle * radius_mm
                height = max(extent * rng.uniform(0.8, 1.3), 4.0)
                thickness = float(np.clip(6.0 * volume / (math.pi * arc * height), 2.0, 15.0))
                theta0 = lateral_angle + rng.uniform(-1.0, 1.0) * math.radians(35.0)
                params = dict(theta0=theta0, half_angle=half_angle, thickness_mm=thickness, side=side,
                              along_falx=False)
                half_height = 0.5 * height
        return Lesion(subtype, _draw_hu(rng, subtype), volume / 1000.0, self._z_place(half_height),
                      half_height, params)

    def _plan_epidural(self, sl, px_mm):
        return self._plan_extra_axial(sl, px_mm, "epidural")

    def _plan_subdural(self, sl, px_mm):
        return self._plan_extra_axial(sl, px_mm, "subdural")

    def _plan_intraparenchymal(self, sl: SliceAnatomy, px_mm: float) -> Lesion | None:
        rng = self.rng
        volume = _draw_volume_mm3(rng, "intraparenchymal")
        radius = (3.0 * volume / (4.0 * math.pi)) ** (1.0 / 3.0)
        centre, ap, lat, cav_radius = sl.frame
        radius = min(radius, 0.45 * cav_radius * px_mm)
        axes = rng.uniform(0.75, 1.25, 2)
        inplane = radius * float(axes.max())
        # centre: brain pixels away from the table and from the ventricles
        away = sl.depth * px_mm >= inplane + 6.0
        candidates = sl.brain & away
        if sl.ventricles.any():
            near_vent = ndi.distance_transform_cdt(~sl.ventricles, metric="chessboard") * px_mm < 0.5 * inplane
            candidates &= ~near_vent
        rr, cc = np.nonzero(candidates)
        if len(rr) == 0:
            radius *= 0.6
            inplane = radius * float(axes.max())
            rr, cc = np.nonzero(sl.brain & (sl.depth * px_mm >= inplane + 6.0))
            if len(rr) == 0:
                return None
        pick = int(rng.integers(len(rr)))
        z_axis = radius / math.sqrt(float(axes[0] * axes[1]))
        edema = float(rng.uniform(2.0, 7.0) * min(1.0, radius / 12.0)) if radius >= 5.0 else 0.0
        params = dict(row=float(rr[pick]), col=float(cc[pick]), radius_mm=radius, axes=axes,
                      angle=float(rng.uniform(0, math.pi)),
                      wobble=np.column_stack([rng.normal(size=3) * WOBBLE, rng.uniform(0, 0.63, 3)]),
                      edema_mm=edema, edema_hu=float(rng.uniform(5.0, 10.0)),
                      push=float(rng.uniform(0.15, 0.3)) if radius >= 12.0 else 0.0)
        return Lesion("intraparenchymal", _draw_hu(rng, "intraparenchymal"), volume / 1000.0,
                      self._z_place(z_axis), z_axis, params)

    @staticmethod
    def _ball_radius(candidates: np.ndarray, weight: np.ndarray, seed: tuple[float, float],
                     area_mm2: float, px_mm: float, max_mm: float = 40.0) -> float:
        """In-plane radius (mm) around ``seed`` whose candidate pixels hold ``area_mm2`` of
        blood-equivalent area (sum of CSF shares times the pixel area)."""
        rr, cc = np.nonzero(candidates)
        dist = np.hypot(rr - seed[0], cc - seed[1])
        order = np.argsort(dist)
        area = np.cumsum(weight[rr, cc][order]) * px_mm * px_mm
        at = min(int(np.searchsorted(area, area_mm2)), len(order) - 1)
        return float(min((dist[order[at]] + 0.7) * px_mm, max_mm))

    def _plan_filling(self, sl: SliceAnatomy, px_mm: float, subtype: str) -> Lesion | None:
        rng = self.rng
        volume = _draw_volume_mm3(rng, subtype)
        compartment = sl.sulcal if subtype == "subarachnoid" else sl.ventricles
        if compartment.sum() * px_mm * px_mm < 15.0:
            return None
        weight = sl.sulcal_weight if subtype == "subarachnoid" else sl.csf_fraction
        rr, cc = np.nonzero(compartment)
        if subtype == "subarachnoid":
            # favour wide CSF spaces (fissures, cisterns, open sulci) as the seed
            dens = ndi.uniform_filter(weight, 5)[rr, cc] + 1e-3
            pick = int(rng.choice(len(rr), p=dens / dens.sum()))
            pattern = "spaces"
        else:
            # the lateral ventricles (not the midline third ventricle or a cistern there)
            centre, ap, lat, _ = sl.frame
            lateral_mm = ((rr - centre[0]) * lat[0] + (cc - centre[1]) * lat[1]) * px_mm
            side_ok = np.abs(lateral_mm) >= LATERAL_VENTRICLE_MM
            pattern = "layer" if rng.random() < 0.55 else "cast"
            radius = sl.frame[3]
            # atria and occipital horns: lateral, in the posterior part of the cavity
            dependent = side_ok & (rr > centre[0] + LAYER_POSTERIOR * radius)
            if pattern == "layer" and dependent.sum() >= 3:
                # the fluid level: the rows below it (posterior: dependent) hold the blood
                half_height = float(rng.uniform(3.0, 8.0))
                target = volume / (2.0 * half_height * px_mm ** 2)
                order = np.argsort(-rr[dependent], kind="stable")
                cum = np.cumsum(weight[rr[dependent], cc[dependent]][order])
                at = int(np.clip(np.searchsorted(cum, target), 2, len(order) - 1))
                level = float(rr[dependent][order][at]) + 0.5
                return Lesion(subtype, _draw_hu(rng, subtype), volume / 1000.0, self._z_place(half_height),
                              half_height, dict(pattern="layer", level_row=level,
                                                min_row=float(centre[0] + LAYER_POSTERIOR * radius)),
                              filling=True)
            pattern = "cast"
            pool = np.flatnonzero(side_ok) if side_ok.any() else np.arange(len(rr))
            pick = int(pool[rng.integers(len(pool))])
        seed = (float(rr[pick]), float(cc[pick]))
        # an ellipsoid: its mid-plane holds volume / (4/3 half-height) of blood
        half_height = float(rng.uniform(3.0, 8.0 if subtype == "subarachnoid" else 10.0))
        ball = self._ball_radius(compartment, weight, seed, volume / (4.0 / 3.0 * half_height), px_mm)
        params = dict(pattern=pattern, row=seed[0], col=seed[1], ball_mm=ball)
        if subtype == "intraventricular":
            centre, ap, lat, _ = sl.frame
            params["side"] = float(np.sign((seed[0] - centre[0]) * lat[0] + (seed[1] - centre[1]) * lat[1]))
        return Lesion(subtype, _draw_hu(rng, subtype), volume / 1000.0, self._z_place(half_height),
                      half_height, params, filling=True)

    def _plan_subarachnoid(self, sl, px_mm):
        return self._plan_filling(sl, px_mm, "subarachnoid")

    def _plan_intraventricular(self, sl, px_mm):
        return self._plan_filling(sl, px_mm, "intraventricular")


_PLANNERS = {
    "epidural": LesionInserter._plan_epidural,
    "subdural": LesionInserter._plan_subdural,
    "intraparenchymal": LesionInserter._plan_intraparenchymal,
    "subarachnoid": LesionInserter._plan_subarachnoid,
    "intraventricular": LesionInserter._plan_intraventricular,
}


# --------------------------------------------------------------------------- shapes

def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    if size not in _COORDS:
        _COORDS[size] = tuple(np.indices((size, size), dtype=np.float32))
    return _COORDS[size]


_COORDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def _box(rows: np.ndarray, cols: np.ndarray, margin: float, size: int) -> tuple[int, int, int, int] | None:
    if len(rows) == 0:
        return None
    r0 = int(max(0, math.floor(float(np.min(rows)) - margin)))
    r1 = int(min(size, math.ceil(float(np.max(rows)) + margin) + 1))
    c0 = int(max(0, math.floor(float(np.min(cols)) - margin)))
    c1 = int(min(size, math.ceil(float(np.max(cols)) + margin) + 1))
    return (r0, r1, c0, c1) if r1 > r0 and c1 > c0 else None


def _roi(lesion: Lesion, ref: SliceAnatomy) -> tuple[int, int, int, int] | None:
    """The part of the square the lesion can reach on any of the slices (centre frame)."""
    p, px, size = lesion.params, ref.px_mm, ref.size
    centre, ap, lat, _ = ref.frame
    if lesion.subtype in ("epidural", "subdural") and not p["along_falx"]:
        rr, cc = np.nonzero(ref.cavity & (ref.depth < p["thickness_mm"] / px + 1.0))
        angle = np.arctan2(rr - centre[0], cc - centre[1])
        inside = np.abs(_wrap(angle - p["theta0"])) < p["half_angle"]
        return _box(rr[inside], cc[inside], 6.0, size)
    if lesion.subtype == "subdural":
        ends = [p["ap0_mm"] - 0.5 * p["length_mm"], p["ap0_mm"] + 0.5 * p["length_mm"]]
        pts = [centre + (a * ap + w * lat * p["side"]) / px for a in ends for w in (0.0, p["thickness_mm"])]
        pts = np.array(pts)
        return _box(pts[:, 0], pts[:, 1], 3.0, size)
    if lesion.subtype == "intraparenchymal":
        reach = (p["radius_mm"] * float(max(p["axes"])) * 1.2 + p["edema_mm"]) / px + 3.0
        if p["push"] > 0:
            reach = 3.0 * p["radius_mm"] * float(max(p["axes"])) / px + 2.0
        return _box(np.array([p["row"]]), np.array([p["col"]]), reach, size)
    if p["pattern"] == "layer":
        rr, cc = np.nonzero(ref.ventricles)
        keep = rr > p["min_row"]
        return _box(rr[keep], cc[keep], 8.0, size)
    return _box(np.array([p["row"]]), np.array([p["col"]]), p["ball_mm"] / px + 2.0, size)


def _geometry(lesion: Lesion, ref: SliceAnatomy) -> dict:
    """The lesion's in-plane coordinates in its window (the same for every slice)."""
    if lesion.geo:
        return lesion.geo
    p = lesion.params
    px = ref.px_mm
    r0, r1, c0, c1 = lesion.roi
    rows, cols = _coords(ref.size)
    rows, cols = rows[r0:r1, c0:c1], cols[r0:r1, c0:c1]
    centre, ap, lat, _ = ref.frame
    dr, dc = rows - centre[0], cols - centre[1]
    geo = lesion.geo
    geo["rows"] = rows
    if lesion.subtype in ("epidural", "subdural") and not p["along_falx"]:
        geo["angle2"] = (_wrap(np.arctan2(dr, dc) - p["theta0"]) / p["half_angle"]) ** 2
        if lesion.subtype == "subdural":  # the falx: never across the midline
            geo["side"] = np.clip((dr * lat[0] + dc * lat[1]) * p["side"] - 1.0, 0.0, 1.0)
    elif lesion.subtype == "subdural":  # along the falx, one side
        geo["lateral"] = (dr * lat[0] + dc * lat[1]) * p["side"] * px
        geo["along2"] = (((dr * ap[0] + dc * ap[1]) * px - p["ap0_mm"]) / (0.5 * p["length_mm"])) ** 2
    if "texture" in p:
        wave = np.zeros(rows.shape, np.float32)
        for kr, kc, phase in p["texture"].tolist():
            wave += np.sin(kr * rows + kc * cols + phase)
        geo["texture"] = (TEXTURE_HU / math.sqrt(1.5)) * wave
    if lesion.subtype in ("epidural", "subdural"):
        pass
    elif lesion.subtype == "intraparenchymal":
        dr, dc = rows - p["row"], cols - p["col"]
        ca, sa = math.cos(p["angle"]), math.sin(p["angle"])
        x = (dr * ca + dc * sa) * px / p["axes"][0]
        y = (-dr * sa + dc * ca) * px / p["axes"][1]
        phi = np.arctan2(y, x)
        wobble = 1.0
        for m, (amp, phase) in zip((2, 3, 5), p["wobble"].tolist()):
            wobble = wobble + amp * np.cos(m * phi + phase * 10.0)
        geo["dist"] = np.sqrt(x * x + y * y) + 1e-3
        geo["wobble"] = p["radius_mm"] * wobble
    elif p["pattern"] == "layer":  # not the midline (third ventricle, cisterns); no cut inside a horn
        lateral = np.abs(dr * lat[0] + dc * lat[1]) * px
        geo["side"] = np.clip(lateral - 2.0 + 0.5, 0.0, 1.0)
    else:
        geo["dist"] = np.hypot(rows - p["row"], cols - p["col"])
        if lesion.subtype == "intraventricular" and p.get("side"):
            # one lateral ventricle: the septum stops it
            geo["side"] = np.clip((dr * lat[0] + dc * lat[1]) * p["side"] + 2.0, 0.0, 1.0)
    return geo


def _inplane(lesion: Lesion, sl: SliceAnatomy, u: float, ref: SliceAnatomy) -> np.ndarray:
    """Blood share of each ROI pixel of ``sl`` for the lesion's cross-section at height u.

    ``ref`` is the centre slice: its frame (cavity centre and axes) places the lesion in
    every slice, so the lesion keeps its position while each slice's own anatomy
    (inner table, CSF, ventricles) decides where the blood may go. For SAH and IVH this
    is the region blood may fill; the CSF share of each pixel is applied when painting.
    """
    p = lesion.params
    px = sl.px_mm
    r0, r1, c0, c1 = lesion.roi
    win = (slice(r0, r1), slice(c0, c1))
    geo = _geometry(lesion, ref)
    cavity = sl.cavity[win]
    shrink = 1.0 - u * u
    if lesion.subtype in ("epidural", "subdural") and not p["along_falx"]:
        t = shrink - geo["angle2"]
        if lesion.subtype == "epidural":
            thick = p["thickness_mm"] * np.clip(t, 0.0, None)  # parabolic lens: biconvex
        else:
            thick = p["thickness_mm"] * np.sqrt(np.clip(t, 0.0, None))  # crescent: flat, thin ends
        a = np.clip(thick / px - sl.depth[win] + 0.5, 0.0, 1.0) * (thick > 0)
        if lesion.subtype == "subdural":
            a *= geo["side"]
        return a * cavity
    if lesion.subtype == "subdural":  # along the falx, one side
        width = p["thickness_mm"] * np.sqrt(np.clip(shrink - geo["along2"], 0.0, None))
        lateral = geo["lateral"]
        a = np.clip((width - lateral) / px + 0.5, 0.0, 1.0) * np.clip(lateral / px + 0.5, 0.0, 1.0)
        return a * (width > 0) * cavity * (sl.depth[win] >= 1.0) * ~sl.ventricles[win]
    if lesion.subtype == "intraparenchymal":
        sd = (geo["wobble"] * math.sqrt(shrink) - geo["dist"]) / px * float(min(p["axes"]))
        a = np.clip(sd + 0.5, 0.0, 1.0)
        return a * cavity * np.clip(sl.depth[win] - 1.0, 0.0, 1.0)
    if p["pattern"] == "layer":
        rows = geo["rows"]
        a = np.clip(rows - p["level_row"] + 0.5, 0.0, 1.0) * (rows > p["min_row"]) * geo["side"]
        return a * sl.ventricles[win]
    compartment = (sl.sulcal if lesion.subtype == "subarachnoid" else sl.ventricles)[win]
    ball = p["ball_mm"] * math.sqrt(shrink) / px
    a = np.clip(ball - geo["dist"] + 0.5, 0.0, 1.0)
    if "side" in geo:
        a *= geo["side"]
    return a * compartment


def _occupancy(lesion: Lesion, sl: SliceAnatomy, z0: float, thickness: float,
               ref: SliceAnatomy) -> np.ndarray | None:
    """Mean blood share over the slab [z0, z0 + thickness] (partial volume in z), in the ROI."""
    lo, hi = lesion.z_centre_mm - lesion.half_height_mm, lesion.z_centre_mm + lesion.half_height_mm
    if hi <= z0 or lo >= z0 + thickness:
        return None
    layer = lesion.filling and lesion.params["pattern"] == "layer"
    total, cache = None, {}
    for s in range(Z_SAMPLES):
        z = z0 + (s + 0.5) * thickness / Z_SAMPLES
        u = (z - lesion.z_centre_mm) / lesion.half_height_mm
        if abs(u) >= 1.0:
            continue
        if layer:
            u = 0.0  # a fluid level: the same outline over its whole height
        key = round(u, 6)
        if key not in cache:
            cache[key] = _inplane(lesion, sl, u, ref)
        a = cache[key]
        total = a.copy() if total is None else total + a
    if total is None:
        return None
    return (total / Z_SAMPLES).astype(np.float32)


def _paint(lesion: Lesion, sl: SliceAnatomy, occupancy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New HU of one slice (whole) and its blood share (ROI); keeps the host's fine texture."""
    r0, r1, c0, c1 = lesion.roi
    win = (slice(r0, r1), slice(c0, c1))
    out = sl.hu.copy()
    host = out[win]
    if lesion.filling:
        # blood replaces the CSF part of each pixel: a pure CSF pixel becomes blood (plus
        # its own noise); a pixel half brain, half CSF rises about halfway
        weight = sl.sulcal_weight if lesion.subtype == "subarachnoid" else sl.csf_fraction
        share = occupancy * weight[win]
        blood = lesion.hu + (THIN_BLOOD_BOOST_HU if lesion.subtype == "subarachnoid" else 0.0)
        csf_level = np.minimum(sl.smooth[win], CSF_REF_HU)
        out[win] = host + share * (blood - csf_level)
        return out, share.astype(np.float32)
    if lesion.subtype == "intraparenchymal" and lesion.params["push"] > 0 and occupancy.max() > 0:
        host = _push(lesion, sl, host, float(occupancy.max()))
    share = occupancy
    brain = sl.brain_hu
    target = lesion.hu + sl.noise(win) + _geometry(lesion, sl).get("texture", 0.0)
    # partial volume with bone at the inner table: only the soft part of such a pixel changes
    soft = np.clip((1000.0 - host) / (1000.0 - brain), 0.0, 1.0)
    delta = np.where(host > 80.0, soft * (lesion.hu - brain), target - host)
    new = host + share * delta
    if lesion.subtype == "intraparenchymal" and lesion.params["edema_mm"] > 0:
        new = _edema(lesion, sl, occupancy, new, win)
    out[win] = new
    return out, share.astype(np.float32)


def _push(lesion: Lesion, sl: SliceAnatomy, host: np.ndarray, strength: float) -> np.ndarray:
    """Mass effect: the tissue around a large hematoma is pushed outward a little."""
    p = lesion.params
    r0, r1, c0, c1 = lesion.roi
    rows, cols = _coords(sl.size)
    dr, dc = rows[r0:r1, c0:c1] - p["row"], cols[r0:r1, c0:c1] - p["col"]
    d = np.hypot(dr, dc) + 1e-3
    radius = p["radius_mm"] * float(max(p["axes"])) / sl.px_mm
    shift = p["push"] * strength * radius * np.minimum(d / radius, radius / d)
    shift *= np.clip((3.0 * radius - d) / radius, 0.0, 1.0)
    shift *= np.clip(sl.depth[r0:r1, c0:c1] * sl.px_mm / 10.0, 0.0, 1.0)  # the skull does not move
    src_r = rows[r0:r1, c0:c1] - shift * dr / d - r0
    src_c = cols[r0:r1, c0:c1] - shift * dc / d - c0
    return ndi.map_coordinates(host, [src_r, src_c], order=1, mode="nearest").astype(np.float32)


def _edema(lesion: Lesion, sl: SliceAnatomy, occupancy: np.ndarray, new: np.ndarray, win) -> np.ndarray:
    """A darker rim (-5..-10 HU) in the brain around the hematoma."""
    core = occupancy >= 0.5
    if not core.any():
        return new
    width = lesion.params["edema_mm"] / sl.px_mm
    dist = ndi.distance_transform_edt(~core)
    rim = np.clip(1.0 - (dist - 0.5) / max(width, 1.0), 0.0, 1.0) * (1.0 - occupancy)
    rim = ndi.gaussian_filter(rim.astype(np.float32), 0.7)
    brainish = np.clip((sl.smooth[win] - 12.0) / 10.0, 0.0, 1.0) * sl.cavity[win]
    return new - rim * brainish * lesion.params["edema_hu"] * float(occupancy.max())
