"""Augmentation of cached HU stacks, in HU, before the model's windows are applied.

Order (and why): geometry first (left-right flip, small rotation/scale/shift with air as
fill; the same for every sample's neighbour slices) because it does not depend on intensity; then intensity in HU - a per-study HU
offset (scanner calibration differs by a few HU), Gaussian noise (dose), a slight blur
(reconstruction kernel) - and last the window jitter, which moves each window's centre
and width a little when the windows are applied. Jitter must happen before the clipping
of the windows: after it, the clipped values could not move back into range.
The 2k+1 neighbour slices of a sample always get the same transform.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from ich_viewer.inference.preprocess import AIR_HU, InputSpec
from trainer.cache import window_batch


@dataclass(frozen=True)
class AugmentConfig:
    flip_p: float = 0.5
    degrees: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05
    hu_offset: float = 6.0
    """Uniform +-HU added to a whole sample."""
    noise_hu: float = 6.0
    """Maximum standard deviation of the Gaussian noise (HU)."""
    blur_p: float = 0.25
    blur_sigma: tuple[float, float] = (0.1, 0.8)
    window_centre_jitter: float = 5.0
    window_width_jitter: float = 0.1
    """Fractional change of each window width."""

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


class HUAugment:
    """Random, per-sample transforms of a (B, 2k+1, S, S) HU batch; returns the network input.

    Flips and blur are torchvision v2 transforms; rotation/scale/shift are drawn per
    sample and applied to the whole batch in one ``grid_sample`` call (a per-sample loop
    of ``v2.RandomAffine`` cost as much as the training step of a small model on 2 cores).
    """

    def __init__(self, spec: InputSpec, config: AugmentConfig | None = None) -> None:
        self.spec = spec
        self.config = config or AugmentConfig()
        c = self.config
        self.flip = v2.RandomHorizontalFlip(p=1.0)
        self.blur = v2.GaussianBlur(kernel_size=3, sigma=c.blur_sigma)

    @staticmethod
    def _rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape)  # the global generator, seeded by the trainer (as v2 uses it)

    def _affine(self, hu: torch.Tensor, masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        c = self.config
        batch = hu.shape[0]
        angle = (self._rand(batch) * 2 - 1) * math.radians(c.degrees)
        scale = c.scale[0] + self._rand(batch) * (c.scale[1] - c.scale[0])
        shift = (self._rand(batch, 2) * 2 - 1) * c.translate * 2  # grid units span 2
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                             torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(hu.shape), align_corners=False)
        # Shift by air so that padding with zeros means padding with air.
        out = F.grid_sample(hu - AIR_HU, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + AIR_HU
        if masks is not None:
            masks = F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out, masks

    def __call__(self, hu: torch.Tensor) -> torch.Tensor:
        return self.with_masks(hu)[0]

    def with_masks(self, hu: torch.Tensor, masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The network input, and (B, 1, S, S) lesion masks moved by the same flips, rotations,
        scalings and shifts as their samples (the same random draws as without masks)."""
        c = self.config
        out = hu.float()
        batch = out.shape[0]
        flip = self._rand(batch) < c.flip_p
        if flip.any():
            out = out.clone()
            out[flip] = self.flip(out[flip])
            if masks is not None:
                masks = masks.clone()
                masks[flip] = masks[flip].flip(-1)  # as v2's flip, without its random draw
        out, masks = self._affine(out, masks)
        blur = self._rand(batch) < c.blur_p
        if blur.any():
            out[blur] = self.blur(out[blur])
        offset = (self._rand(batch, 1, 1, 1) * 2 - 1) * c.hu_offset
        sigma = self._rand(batch, 1, 1, 1) * c.noise_hu
        out = out + offset + torch.randn(out.shape) * sigma
        windows = [
            (centre + float(self._rand(1) * 2 - 1) * c.window_centre_jitter,
             width * (1.0 + float(self._rand(1) * 2 - 1) * c.window_width_jitter))
            for centre, width in self.spec.windows
        ]
        return window_batch(out, self.spec, windows), masks
