"""Measured HU facts of a slice and the small second stage that weighs them with the network's "any".

Fresh blood is denser than brain (about 50-90 HU against 20-45) and a bleed is nearly
always one-sided, so how much dense tissue lies inside the skull, near the inner table or
deep, and how different the two halves of the head are, are physical facts that hold on
any scanner. On 66 patients a network trained from scratch uses them poorly, so a
logistic model fitted on its out-of-fold "any" logit plus these features re-weighs the
"any" score (subtypes stay the network's). Everything is computed in torch on the
network input itself (HU read back by ``centre_hu``), so the app and the trainer compute
the same numbers from the same crop.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from ich_viewer.inference.head_angle import turned
from ich_viewer.inference.preprocess import InputSpec, centre_hu

FEATURE_NAMES = (
    "head_area", "dense_50_90", "dense_58_90", "dense_65_95", "dense_rim", "dense_deep",
    "brain_mean_hu", "brain_sd_hu", "deep_p99_hu", "parenchyma_20_45",
    "asymmetry_8", "asymmetry_15", "dense_asymmetry",
)
"""In the order of ``slice_features``' columns (and of the stage's coefficients)."""
FEATURE_SET = "levelled-upright-1"
"""Names how the features are computed; a stage fitted on another set is refused.
"levelled": every band is read after the slice's own parenchyma is brought to
``BRAIN_LEVEL_HU`` (``level_shift``); "upright": on the slice turned by its series' angle
(``head_angle``), so that left and right are the head's, not the image's."""
BRAIN_LEVEL_HU = 35.0
"""About the median of the parenchyma (``LEVEL_BAND_HU`` inside the skull) on CT-ICH's
slices. Scanners differ by several HU in how they read brain (water calibration, beam
hardening under the skull), and a fixed 50 HU line then moves normal brain into the
"dense" bands; each slice is shifted so that its own parenchyma reads this before any
band is counted, as a reader judges blood as denser than the brain beside it."""
LEVEL_BAND_HU = (10.0, 60.0)
MAX_LEVEL_SHIFT_HU = 20.0
"""A slice with little brain (vertex, skull base) is shifted at most this far."""
BONE_HU = 250.0
CLOSE_PX = 3
"""Gaps in the skull up to about twice this (sutures, foramina, thin temporal bone at the
input's 128 px) are closed before the cavity is filled."""
RIM_PX = 5
"""Pixels this close to the inner table count as extra-axial (epi/subdural territory)."""


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Square dilation of (B, S, S) bool masks by OR-ing shifted views, row pass then column pass
    (several times faster than torch's max pool with a wide kernel on the CPU)."""
    out = mask
    for axis in (-1, -2):
        padded = F.pad(out[:, None].to(torch.uint8), (radius, radius, 0, 0) if axis == -1 else (0, 0, radius, radius))[:, 0]
        size = out.shape[axis]
        acc = padded.narrow(axis, 0, size).clone()
        for shift in range(1, 2 * radius + 1):
            acc |= padded.narrow(axis, shift, size)
        out = acc.bool()
    return out


def _erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    return ~_dilate(~mask, radius)


# The optimal 19-exchange network for the median of nine (Paeth; Smith, Graphics Gems).
_MEDIAN9_PAIRS = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
                  (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))


def _median3(hu: torch.Tensor) -> torch.Tensor:
    """3 x 3 median (edges replicated): single noisy pixels do not count as dense tissue.

    A fixed exchange network over the nine shifted images: exact, and several times faster
    than sorting unfolded patches."""
    padded = F.pad(hu[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    rows, cols = hu.shape[-2:]
    v = [padded[:, i:i + rows, j:j + cols] for i in range(3) for j in range(3)]
    for a, b in _MEDIAN9_PAIRS:
        v[a], v[b] = torch.minimum(v[a], v[b]), torch.maximum(v[a], v[b])
    return v[4]


SMOOTH_PX = 5
"""Side of the mean filter after the median. Thin slices and other scanners are noisier
than CT-ICH's 5 mm slices, and with the median alone their noise let normal brain cross
50 HU; the card's noise check (``trainer.evaluation.robustness_check``) measures what is left."""


def _smooth(hu: torch.Tensor) -> torch.Tensor:
    padded = F.pad(_median3(hu)[:, None], (SMOOTH_PX // 2,) * 4, mode="replicate")
    return F.avg_pool2d(padded, SMOOTH_PX, 1)[:, 0]


def cranial_cavity(hu: torch.Tensor) -> torch.Tensor:
    """(B, S, S) pixels inside the skull: not reachable from the image border without crossing bone."""
    bone = hu > BONE_HU
    closed = _dilate(bone, CLOSE_PX)
    filled = torch.from_numpy(_fill_holes(closed.cpu().numpy())).to(hu.device)
    cavity = filled & ~closed
    return _dilate(_erode(cavity, 1), CLOSE_PX) & ~bone & (hu > -200.0)


def _fill_holes(masks: np.ndarray) -> np.ndarray:
    """2-D hole filling of (B, S, S) masks in one SimpleITK call.

    The slices are framed by one background pixel and stacked into one tall image, so every
    slice's outside reaches the image border through its frame and no hole spans two slices.
    (One call per slice cost more in SimpleITK's per-call overhead than the filling itself.)
    """
    batch, rows, cols = masks.shape
    framed = np.zeros((batch, rows + 2, cols + 2), np.uint8)
    framed[:, 1:-1, 1:-1] = masks
    fill = sitk.BinaryFillholeImageFilter()
    fill.SetFullyConnected(False)
    fill.SetForegroundValue(1)
    fill.SetNumberOfThreads(1)
    tall = fill.Execute(sitk.GetImageFromArray(framed.reshape(batch * (rows + 2), cols + 2)))
    return sitk.GetArrayFromImage(tall).reshape(framed.shape)[:, 1:-1, 1:-1].astype(bool)


def _fraction(mask: torch.Tensor, of: torch.Tensor) -> torch.Tensor:
    return mask.sum(dim=(1, 2)).float() / of.sum(dim=(1, 2)).clamp(min=1).float()


def level_shift(smooth: torch.Tensor, core: torch.Tensor) -> torch.Tensor:
    """(B,) HU to subtract so that each slice's parenchyma median reads ``BRAIN_LEVEL_HU``
    (0 for a slice without parenchyma)."""
    band = core & (smooth > LEVEL_BAND_HU[0]) & (smooth < LEVEL_BAND_HU[1])
    median = torch.nanmedian(torch.where(band, smooth, torch.nan).flatten(1), dim=1).values
    shift = torch.nan_to_num(median - BRAIN_LEVEL_HU, nan=0.0)
    return shift.clamp(-MAX_LEVEL_SHIFT_HU, MAX_LEVEL_SHIFT_HU)


def slice_features(hu: torch.Tensor) -> torch.Tensor:
    """(B, S, S) HU of centre slices -> (B, len(FEATURE_NAMES)) float32."""
    hu = torch.nan_to_num(hu.float(), nan=-1000.0)
    inside = cranial_cavity(hu)
    core = _erode(inside, 1)
    smooth = _smooth(hu)
    smooth = smooth - level_shift(smooth, core)[:, None, None]
    deep = core & _erode(inside, RIM_PX)
    rim = core & ~deep
    pixels = torch.ones_like(inside)

    def dense(low: float, high: float, where: torch.Tensor) -> torch.Tensor:
        return where & (smooth >= low) & (smooth <= high)

    brain = inside & (smooth > 0.0) & (smooth < 100.0)
    n_brain = brain.sum(dim=(1, 2)).clamp(min=1).float()
    brain_mean = torch.where(brain, smooth, 0.0).sum(dim=(1, 2)) / n_brain
    brain_sd = (torch.where(brain, (smooth - brain_mean[:, None, None]) ** 2, 0.0).sum(dim=(1, 2)) / n_brain).sqrt()
    deep_values = torch.where(core, smooth, torch.nan).flatten(1)
    p99 = torch.nan_to_num(torch.nanquantile(deep_values, 0.99, dim=1), nan=0.0)
    # left against right about the crop's vertical centre line (the crop is centred on the
    # head, and the caller has turned it upright)
    mirrored = smooth.flip(-1)
    both = core & core.flip(-1)
    difference = torch.where(both, smooth - mirrored, 0.0)
    dense_both = dense(50.0, 90.0, both)
    half = hu.shape[-1] // 2
    dense_sides = dense_both[..., :half].sum(dim=(1, 2)) - dense_both[..., hu.shape[-1] - half:].sum(dim=(1, 2))
    columns = [
        _fraction(inside, pixels),
        _fraction(dense(50.0, 90.0, core), inside),
        _fraction(dense(58.0, 90.0, core), inside),
        _fraction(dense(65.0, 95.0, core), inside),
        _fraction(dense(55.0, 90.0, rim), rim),
        _fraction(dense(55.0, 90.0, deep), deep),
        brain_mean,
        brain_sd,
        p99,
        _fraction(dense(20.0, 45.0, core), inside),
        _fraction(difference > 8.0, both),
        _fraction(difference > 15.0, both),
        dense_sides.abs().float() / both.sum(dim=(1, 2)).clamp(min=1).float(),
    ]
    return torch.stack(columns, dim=1).float()


def input_features(inputs: torch.Tensor, spec: InputSpec, upright_deg: float | torch.Tensor = 0.0) -> torch.Tensor:
    """The features of network inputs (B, C, S, S), exactly as the bundled stage saw them;
    ``upright_deg`` is the series' turn (``head_angle.upright_turn``), per slice or one for all."""
    hu = centre_hu(inputs, spec)
    if torch.as_tensor(upright_deg).abs().max() > 0:
        hu = turned(hu, upright_deg)
    return slice_features(hu)


STAGE_INPUTS = ("any_logit", *FEATURE_NAMES)


def check_any_stage(stage: object) -> dict:
    """The card's ``any_stage`` as plain lists, or ValueError saying what is wrong.

    The input names must be exactly this program's: a stage fitted on other features
    would silently mis-weigh them.
    """
    if not isinstance(stage, dict):
        raise ValueError("any_stage must be a mapping")
    if list(stage.get("inputs") or []) != list(STAGE_INPUTS):
        raise ValueError(f"any_stage inputs {stage.get('inputs')} are not this program's features {list(STAGE_INPUTS)}")
    if stage.get("feature_set") != FEATURE_SET:
        raise ValueError(f"any_stage was fitted on feature set {stage.get('feature_set')!r}; this program "
                         f"computes {FEATURE_SET!r}")
    out: dict = {"inputs": list(STAGE_INPUTS), "feature_set": FEATURE_SET}
    for key in ("mean", "scale", "coef"):
        try:
            values = torch.as_tensor(stage.get(key), dtype=torch.float64).reshape(-1)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"any_stage {key} must be numbers ({exc})") from None
        if values.numel() != len(STAGE_INPUTS) or not bool(torch.isfinite(values).all()):
            raise ValueError(f"any_stage {key} needs {len(STAGE_INPUTS)} finite numbers")
        out[key] = values.tolist()
    if min(out["scale"]) <= 0:
        raise ValueError("any_stage scales must be positive")
    intercept = stage.get("intercept")
    if not isinstance(intercept, (int, float)) or not torch.isfinite(torch.tensor(float(intercept))):
        raise ValueError("any_stage intercept must be a finite number")
    out["intercept"] = float(intercept)
    return out


def stage_logit(any_logit: torch.Tensor, features: torch.Tensor, stage: dict) -> torch.Tensor:
    """(B,) the second stage's "any" logit from the network's (B,) and the (B, F) features."""
    inputs = torch.cat([any_logit[:, None].float(), features.float()], dim=1).double()
    mean = torch.tensor(stage["mean"], dtype=torch.float64, device=inputs.device)
    scale = torch.tensor(stage["scale"], dtype=torch.float64, device=inputs.device)
    coef = torch.tensor(stage["coef"], dtype=torch.float64, device=inputs.device)
    return (((inputs - mean) / scale) @ coef + stage["intercept"]).to(any_logit.dtype)
