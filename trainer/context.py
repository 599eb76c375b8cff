"""Slice context: a small second stage along each series over the per-slice outputs.

A bleed rarely sits on one slice alone, and a lone flag between two clean neighbours is
more often noise; a 1D convolution over the sequence of the first stage's logits (plus
each slice's brain fraction) can learn that. It is trained on out-of-fold outputs only,
and evaluated nested: for each fold, the second stage is fitted on the other folds'
out-of-fold outputs and applied to the held fold, so its CV numbers are as honest as the
first stage's.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainer.calibration import logit

FEATURES = 7
"""Six logits of the first stage and the brain fraction."""


class ContextNet(nn.Module):
    """Residual correction of the six logits from a window of five neighbouring slices."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(FEATURES, hidden, 5, padding=2), nn.ReLU(),
                                  nn.Conv1d(hidden, 6, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, FEATURES, L) -> (B, 6, L)
        out = x[:, :6] + self.body(x)
        any_logit = torch.maximum(out[:, 5], out[:, :5].amax(dim=1))
        return torch.cat([out[:, :5], any_logit[:, None]], dim=1)


def sequences(probs: np.ndarray, brain: np.ndarray, groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(index into the set, features (FEATURES, L)) per patient, in series order."""
    out = []
    for g in dict.fromkeys(groups.tolist()):
        index = np.flatnonzero(groups == g)
        features = np.concatenate([logit(probs[index]).T, brain[index][None]], axis=0)
        out.append((index, features.astype(np.float32)))
    return out


def _padded(seqs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """All series as one zero-padded batch (B, FEATURES, L) and its mask (B, L).

    Zero padding past a series' end is what the convolution's own padding does at its
    ends, so a series reads the same alone or in the batch."""
    length = max(features.shape[1] for _, features in seqs)
    batch = torch.zeros(len(seqs), FEATURES, length)
    mask = torch.zeros(len(seqs), length, dtype=torch.bool)
    for row, (_, features) in enumerate(seqs):
        batch[row, :, :features.shape[1]] = torch.from_numpy(features)
        mask[row, :features.shape[1]] = True
    return batch, mask


def fit_context(probs: np.ndarray, brain: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                epochs: int = 300, seed: int = 0) -> ContextNet:
    """Train the second stage on whole series, all in one padded batch (a few thousand numbers)."""
    torch.manual_seed(seed)
    net = ContextNet()
    seqs = sequences(probs, brain, groups)
    inputs, mask = _padded(seqs)
    target = torch.zeros(len(seqs), 6, inputs.shape[2])
    for row, (index, _) in enumerate(seqs):
        target[row, :, :len(index)] = torch.from_numpy(labels[index].T.astype(np.float32))
    weights = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 2.0])[None, :, None]
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-3)
    for _ in range(epochs):
        optimiser.zero_grad()
        per = nn.functional.binary_cross_entropy_with_logits(net(inputs), target, reduction="none")
        loss = (per * weights * mask[:, None]).sum() / (weights.sum() * mask.sum())
        loss.backward()
        optimiser.step()
    return net.eval()


@torch.no_grad()
def apply_context(net: ContextNet, probs: np.ndarray, brain: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.zeros_like(probs, dtype=np.float64)
    seqs = sequences(probs, brain, groups)
    inputs, _ = _padded(seqs)
    refined = torch.sigmoid(net(inputs)).double().numpy()
    for row, (index, _) in enumerate(seqs):
        out[index] = refined[row, :, :len(index)].T
    return out


def nested_context(probs: np.ndarray, brain: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                   fold_of: np.ndarray) -> np.ndarray:
    """Second-stage out-of-fold probabilities: each fold's stage fitted on the other folds."""
    out = np.zeros_like(probs, dtype=np.float64)
    for fold in np.unique(fold_of):
        held = fold_of == fold
        net = fit_context(probs[~held], brain[~held], labels[~held], groups[~held], seed=int(fold))
        out[held] = apply_context(net, probs[held], brain[held], groups[held])
    return out
