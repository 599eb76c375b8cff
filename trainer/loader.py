"""Where each training step's slices come from: RAM, or streamed by DataLoader workers.

One process without loader workers keeps the original path (the whole set in RAM, the
epoch's weighted draw from the run's own generator), so its results never change. Loader
workers (``--loader-workers``) read the same batches from memory-mapped caches or shards
in background processes; several ranks (torchrun) each read their share of each global
batch (``DistributedWeightedSampler``). Workers only read: augmentation and lesion
insertion stay in the training process, on its own random stream, so the batches are the
same whatever the number of workers.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from trainer.distributed import SINGLE, DistContext, DistributedWeightedSampler
from trainer.sampler import epoch_indices


def _as_is(batch: Any) -> Any:
    return batch


class _Batches(Dataset):
    """Item ``i`` is the whole ``i``-th batch (one read of sorted rows per worker task)."""

    def __init__(self, hu: Any, labels: np.ndarray, batches: list[np.ndarray]) -> None:
        self.hu, self.labels, self.batches = hu, labels, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        index = self.batches[i]
        return np.asarray(self.hu[index]), self.labels[index]  # float16: half the bytes between processes


class BatchStream:
    """The batches of each epoch as (HU float32 (b, 2k+1, S, S), labels (b, 6)) pairs."""

    def __init__(self, data: Any, weights: np.ndarray, steps: int, batch_size: int, seed: int,
                 ctx: DistContext = SINGLE, workers: int = 0) -> None:
        self.labels, self.steps, self.batch_size, self.workers = data.labels, steps, batch_size, workers
        self.weights = weights
        self.in_memory = not ctx.active and workers == 0 and isinstance(data.hu, np.ndarray)
        self.hu = np.asarray(data.hu) if self.in_memory else data.hu  # a memory-mapped cache is read into RAM once
        self.sampler = DistributedWeightedSampler(weights, steps, batch_size, ctx, seed) if ctx.active else None

    def epoch(self, epoch: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Draws the epoch's order now (from ``rng`` for one process), then yields its batches."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
            batches = list(self.sampler)
        else:
            order = epoch_indices(self.weights, self.steps * self.batch_size, rng)
            batches = [np.sort(order[s * self.batch_size:(s + 1) * self.batch_size]) for s in range(self.steps)]
        if self.in_memory:
            return ((self.hu[index].astype(np.float32), self.labels[index]) for index in batches)
        loader = DataLoader(_Batches(self.hu, self.labels, batches), batch_size=None, shuffle=False,
                            num_workers=self.workers, collate_fn=_as_is,
                            prefetch_factor=4 if self.workers else None,
                            generator=torch.Generator().manual_seed(epoch))  # never the global stream
        return ((hu.astype(np.float32), labels) for hu, labels in loader)
