"""Augmentation of cached HU stacks, in HU, before the model's windows are applied.

Order (and why): geometry first (left-right flip, small rotation/scale/shift with air as
fill) because it does not depend on intensity; then intensity in HU - a per-study HU
offset (scanner calibration differs by a few HU), Gaussian noise (dose), a slight blur
(reconstruction kernel) - and last the window jitter, which moves each window's centre
and width a little when the windows are applied. Jitter must happen before the clipping
of the windows: after it, the clipped values could not move back into range.
The 2k+1 neighbour slices of a sample always get the same transform.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
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
    """Random, per-sample transforms of a (B, 2k+1, S, S) HU batch; returns the network input."""

    def __init__(self, spec: InputSpec, config: AugmentConfig | None = None) -> None:
        self.spec = spec
        self.config = config or AugmentConfig()
        c = self.config
        self.geometry = v2.Compose([
            v2.RandomHorizontalFlip(p=c.flip_p),
            v2.RandomAffine(degrees=c.degrees, translate=(c.translate, c.translate), scale=c.scale,
                            interpolation=v2.InterpolationMode.BILINEAR, fill=AIR_HU),
        ])
        self.blur = v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=c.blur_sigma)], p=c.blur_p)

    @staticmethod
    def _rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape)  # the global generator, seeded by the trainer (as v2 uses it)

    def __call__(self, hu: torch.Tensor) -> torch.Tensor:
        c = self.config
        batch = hu.shape[0]
        out = torch.stack([self.blur(self.geometry(sample)) for sample in hu.float()])
        offset = (self._rand(batch, 1, 1, 1) * 2 - 1) * c.hu_offset
        sigma = self._rand(batch, 1, 1, 1) * c.noise_hu
        out = out + offset + torch.randn(out.shape) * sigma
        windows = [
            (centre + float(self._rand(1) * 2 - 1) * c.window_centre_jitter,
             width * (1.0 + float(self._rand(1) * 2 - 1) * c.window_width_jitter))
            for centre, width in self.spec.windows
        ]
        return window_batch(out, self.spec, windows)
