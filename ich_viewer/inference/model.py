"""The classifier: a small residual CNN in plain PyTorch, shaped by an ``arch`` dict.

The trainer can widen, deepen or shrink it by changing the dict (saved in the model
card) without touching this code. Output: logits (B, 6) in ``LABELS`` order; the "any"
logit is never below any subtype logit, so P(any) >= P(subtype) holds by construction.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ich_viewer import LABELS
from ich_viewer.inference.hu_features import check_any_stage, input_features, stage_logit
from ich_viewer.inference.preprocess import InputSpec

ARCH_NAME = "ich-resnet"

DEFAULT_ARCH: dict = {
    "name": ARCH_NAME,
    "in_channels": 9,
    "stem_width": 24,
    "stem_stride": 2,
    "widths": [32, 64, 128, 192],
    "blocks": [1, 1, 2, 1],
    "strides": [2, 2, 2, 2],
    "dropout": 0.2,
    "pool": "avgmax",
    "members": 1,
}
"""~1.1 M parameters; about 0.3 GFLOP per 160 x 160 input. ``members`` > 1 makes an
ensemble of that many identical networks whose logits are averaged (the trainer bundles
its cross-validation fold models this way, so the thresholds fitted on their out-of-fold
predictions belong to exactly these weights)."""

_ARCH_KEYS = set(DEFAULT_ARCH)


def default_arch(in_channels: int = 9, **changes) -> dict:
    """A complete arch dict: the defaults with ``changes`` applied."""
    arch = {**DEFAULT_ARCH, "in_channels": in_channels, **changes}
    return normalise_arch(arch)


def normalise_arch(arch: dict) -> dict:
    """Fill defaults, check types and lengths; raises ValueError with the reason."""
    unknown = set(arch) - _ARCH_KEYS
    if unknown:
        raise ValueError(f"unknown architecture keys: {sorted(unknown)}")
    full = {**DEFAULT_ARCH, **arch}
    if full["name"] != ARCH_NAME:
        raise ValueError(f"architecture {full['name']!r} is not {ARCH_NAME!r}")
    widths, blocks = list(full["widths"]), list(full["blocks"])
    strides = list(full["strides"])[: len(widths)]
    if not widths or len(widths) != len(blocks) or len(strides) != len(widths):
        raise ValueError("architecture needs as many widths, blocks and strides as stages")
    if min(widths) < 1 or min(blocks) < 1 or int(full["in_channels"]) < 1:
        raise ValueError("architecture widths, blocks and in_channels must be positive")
    if int(full["members"]) < 1:
        raise ValueError("architecture members must be at least 1")
    if full["pool"] not in ("avg", "avgmax"):
        raise ValueError(f"pool must be 'avg' or 'avgmax', not {full['pool']!r}")
    full.update(widths=[int(w) for w in widths], blocks=[int(b) for b in blocks],
                strides=[int(s) for s in strides], in_channels=int(full["in_channels"]),
                stem_width=int(full["stem_width"]), stem_stride=int(full["stem_stride"]),
                dropout=float(full["dropout"]), members=int(full["members"]))
    return full


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (1x1 projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def check_calibration(scale, bias) -> tuple[torch.Tensor, torch.Tensor]:
    """Six finite positive scales and six finite biases, or ValueError saying what is wrong.

    A non-positive scale would reverse the ranking of a label, so it is refused.
    """
    try:
        scale_t = torch.as_tensor(scale, dtype=torch.float32).reshape(-1)
        bias_t = torch.as_tensor(bias, dtype=torch.float32).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"calibration values must be numbers ({exc})") from None
    if scale_t.numel() != len(LABELS) or bias_t.numel() != len(LABELS):
        raise ValueError(f"calibration needs {len(LABELS)} scales and {len(LABELS)} biases")
    if not (torch.isfinite(scale_t).all() and torch.isfinite(bias_t).all()) or bool((scale_t <= 0).any()):
        raise ValueError("calibration scales must be finite and positive, biases finite")
    return scale_t, bias_t


def _lift_any(logits: torch.Tensor) -> torch.Tensor:
    """Raise the "any" logit to at least the largest subtype logit (P(any) >= P(subtype))."""
    subtypes = logits[:, :-1]
    any_logit = torch.maximum(logits[:, -1], subtypes.amax(dim=1))
    return torch.cat([subtypes, any_logit[:, None]], dim=1)


class Calibrated(nn.Module):
    """Per-label Platt scaling of the logits (``scale * logit + bias``), then the "any" lift.

    Identity until ``set_calibration`` is called. The values are buffers outside the state
    dict: they live in the model card next to the thresholds fitted on the same
    out-of-fold predictions, so a weights file never silently carries its own calibration.
    """

    cal_scale: torch.Tensor
    cal_bias: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("cal_scale", torch.ones(len(LABELS)), persistent=False)
        self.register_buffer("cal_bias", torch.zeros(len(LABELS)), persistent=False)
        self.any_stage: dict | None = None
        self.stage_spec: InputSpec | None = None

    def set_calibration(self, scale, bias) -> None:
        scale_t, bias_t = check_calibration(scale, bias)
        self.cal_scale.copy_(scale_t.to(self.cal_scale.device))
        self.cal_bias.copy_(bias_t.to(self.cal_bias.device))

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor:
        calibrated = logits * self.cal_scale + self.cal_bias
        # With a second stage "any" is its own estimate: lifting it to the largest subtype
        # would bring back exactly the false flags the stage removes.
        return calibrated if self.any_stage is not None else _lift_any(calibrated)

    def set_any_stage(self, stage: dict | None, spec: "InputSpec | None") -> None:
        """The card's second stage for "any" (``hu_features``), or None for the network's own."""
        if stage is not None and spec is None:
            raise ValueError("a second stage needs the input spec to read its features")
        self.any_stage = check_any_stage(stage) if stage is not None else None
        self.stage_spec = spec

    def second_stage(self, raw: torch.Tensor, x: torch.Tensor, upright_deg: float = 0.0) -> torch.Tensor:
        """Replace the raw "any" logit by the second stage's, computed from the inputs ``x``
        turned by the series' ``upright_deg`` (``head_angle``)."""
        if self.any_stage is None or self.stage_spec is None:
            return raw
        features = input_features(x, self.stage_spec, upright_deg).to(raw.device)
        return torch.cat([raw[:, :-1], stage_logit(raw[:, -1], features, self.any_stage)[:, None]], dim=1)


class ICHNet(Calibrated):
    """Stem, residual stages, global pooling, linear head with the "any" constraint."""

    def __init__(self, arch: dict) -> None:
        super().__init__()
        self.arch = normalise_arch(arch)
        a = self.arch
        self.stem = nn.Sequential(
            nn.Conv2d(a["in_channels"], a["stem_width"], 3, a["stem_stride"], 1, bias=False),
            nn.BatchNorm2d(a["stem_width"]),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        c_in = a["stem_width"]
        for width, n_blocks, stride in zip(a["widths"], a["blocks"], a["strides"]):
            blocks = [BasicBlock(c_in, width, stride)]
            blocks += [BasicBlock(width, width, 1) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            c_in = width
        self.stages = nn.Sequential(*stages)
        pooled = c_in * (2 if a["pool"] == "avgmax" else 1)
        self.dropout = nn.Dropout(a["dropout"])
        self.fc = nn.Linear(pooled, len(LABELS))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last residual block (B, C, h, w): where Grad-CAM looks."""
        return self.stages(self.stem(x))

    def raw_logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Pool, project, and lift "any" to at least the largest subtype logit (uncalibrated)."""
        pooled = feats.mean(dim=(2, 3))
        if self.arch["pool"] == "avgmax":
            pooled = torch.cat([pooled, feats.amax(dim=(2, 3))], dim=1)
        return _lift_any(self.fc(self.dropout(pooled)))

    def classify(self, feats: torch.Tensor, x: torch.Tensor | None = None, upright_deg: float = 0.0) -> torch.Tensor:
        """Calibrated logits from the last feature maps; ``x`` (the inputs) for the second stage."""
        raw = self.raw_logits(feats)
        return self.calibrate(self.second_stage(raw, x, upright_deg) if x is not None else raw)

    def forward(self, x: torch.Tensor, upright_deg: float = 0.0) -> torch.Tensor:
        return self.classify(self.features(x), x, upright_deg)


class ICHEnsemble(Calibrated):
    """Identical networks whose (uncalibrated) logits are averaged, then calibrated.

    ``features`` concatenates the members' last feature maps along the channel axis, so
    Grad-CAM over the ensemble works unchanged (each channel's weight comes from its own
    member's gradient).
    """

    def __init__(self, arch: dict) -> None:
        super().__init__()
        self.arch = normalise_arch(arch)
        member = {**self.arch, "members": 1}
        self.members = nn.ModuleList(ICHNet(member) for _ in range(self.arch["members"]))

    def nets(self) -> list[ICHNet]:
        return [m for m in self.members if isinstance(m, ICHNet)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m.features(x) for m in self.nets()], dim=1)

    def classify(self, feats: torch.Tensor, x: torch.Tensor | None = None, upright_deg: float = 0.0) -> torch.Tensor:
        nets = self.nets()
        chunks = feats.chunk(len(nets), dim=1)
        raw = torch.stack([m.raw_logits(c) for m, c in zip(nets, chunks)]).mean(dim=0)
        return self.calibrate(self.second_stage(raw, x, upright_deg) if x is not None else raw)

    def forward(self, x: torch.Tensor, upright_deg: float = 0.0) -> torch.Tensor:
        raw = torch.stack([m.raw_logits(m.features(x)) for m in self.nets()]).mean(dim=0)
        return self.calibrate(self.second_stage(raw, x, upright_deg))


def build_model(arch: dict | None = None) -> ICHNet | ICHEnsemble:
    """A freshly initialised network (an ensemble when ``arch["members"]`` > 1)."""
    full = normalise_arch(arch if arch is not None else DEFAULT_ARCH)
    return ICHEnsemble(full) if full["members"] > 1 else ICHNet(full)


def ensemble_state(states: list[dict]) -> dict:
    """The state dict of an ICHEnsemble made of these member state dicts, in order."""
    return {f"members.{i}.{key}": value for i, state in enumerate(states) for key, value in state.items()}


def to_probabilities(logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """Sigmoid of the logits as float64 numpy (B, 6), LABELS order."""
    tensor = torch.as_tensor(logits).detach().float().cpu()
    return torch.sigmoid(tensor).double().numpy()
