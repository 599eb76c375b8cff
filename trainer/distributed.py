"""Training on several processes with PyTorch's own engine (torchrun + DistributedDataParallel).

``python -m trainer`` reads the environment torchrun sets (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``...) and joins the process group: NCCL when the process
has a GPU, gloo on CPU. Without torchrun nothing here changes what a single process does.

What each rank does, and why:

- the model is wrapped in ``DistributedDataParallel`` (gradients averaged in backward);
- a global batch of ``Recipe.batch_size`` is split evenly over the ranks, so the number
  of steps, the one-cycle schedule and the effective batch are those of one process;
- the weighted draw of an epoch (``DistributedWeightedSampler``) is the same on every
  rank (seeded by the recipe seed and the epoch) and each rank takes its share of each
  batch; augmentation and lesion insertion use a per-rank generator;
- only rank 0 logs, writes checkpoints, results and the exported model; every rank's
  random state goes into rank 0's checkpoint, so a run restarted by torchrun after a
  killed rank continues exactly where the last checkpoint left it;
- held-out predictions are split with ``DistributedSampler`` and gathered.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, cast

import numpy as np
import torch
import torch.distributed as torch_dist
from torch.utils.data import Dataset, DistributedSampler, Sampler

KILL_ENV = "ICH_TRAINER_KILL_RANK_AT"
"""Fault drill: ``RANK:RUN:EPOCH`` makes that rank SIGKILL itself after writing that
epoch's checkpoint of that run, on torchrun's first attempt only (tests and cluster
checks that restarts work)."""
TIMEOUT_ENV = "ICH_TRAINER_DIST_TIMEOUT_MIN"
"""Minutes a rank waits for the others (rank 0 may be building a cache meanwhile)."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job; the default is the single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def device(self, chosen: torch.device) -> torch.device:
        """One GPU per process (``LOCAL_RANK``); the choice as it was otherwise."""
        if self.active and chosen.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return chosen

    def barrier(self) -> None:
        if self.active:
            torch_dist.barrier()

    def rank_generator(self, seed: int, epoch: int = 0) -> np.random.Generator:
        """This rank's own stream for augmentation (torch) and lesion insertion (numpy)."""
        torch.manual_seed(int(np.random.SeedSequence([seed, self.rank, epoch, 1]).generate_state(1)[0]))
        return np.random.default_rng([seed, self.rank, epoch, 2])

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """DistributedDataParallel around the model (the model itself for one process)."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's batch-norm statistics everywhere: each rank's last forward updated its own,
        and every rank must hold the model rank 0 saves (they predict a share of the held-out set)."""
        if self.active:
            for buffer in model.buffers():
                torch_dist.broadcast(buffer, src=0)

    def mean(self, value: float) -> float:
        """Mean of a number over the ranks (the epoch loss that gets logged)."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._comm_device())
        torch_dist.all_reduce(tensor)
        return float(tensor.item()) / self.world

    def gather(self, obj: Any) -> list[Any]:
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        torch_dist.all_gather_object(out, obj)
        return out

    def _comm_device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")

    def rng_state(self, rng: np.random.Generator) -> dict:
        """What a checkpoint needs to continue every rank's random streams."""
        state: dict[str, Any] = {"numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
        if self.active:
            state["rank_rng"] = self.gather((state["numpy_rng"], state["torch_rng"]))
            state["world_size"] = self.world
        return state

    def restore_rng(self, saved: dict, rng: np.random.Generator, seed: int, log: Callable[[str], None]) -> None:
        """Back to the saved streams; a job resumed on another number of ranks draws fresh ones."""
        if not self.active:
            rng.bit_generator.state = saved["numpy_rng"]
            torch.set_rng_state(saved["torch_rng"])
            return
        if saved.get("world_size") == self.world:
            numpy_state, torch_state = saved["rank_rng"][self.rank]
            rng.bit_generator.state = numpy_state
            torch.set_rng_state(torch_state)
            return
        fresh = self.rank_generator(seed, int(saved["epoch"]))
        rng.bit_generator.state = fresh.bit_generator.state
        log(f"checkpoint from {saved.get('world_size', 1)} process(es), resumed on {self.world}: "
            "new random streams from here on")

    def maybe_kill(self, run: str, epoch: int) -> None:
        """The fault drill of ``KILL_ENV`` (does nothing unless it is set)."""
        target = os.environ.get(KILL_ENV, "")
        if not target or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
            return
        self.barrier()  # rank 0's checkpoint is on disk before anyone dies
        if target == f"{self.rank}:{run}:{epoch}":
            os.kill(os.getpid(), signal.SIGKILL)


SINGLE = DistContext()


def available_cores() -> int:
    """Cores this process may run on (what threads and worker pools default to)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def init_distributed() -> DistContext:
    """Join torchrun's process group when launched by it, else the single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not torch_dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed: run without torchrun")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() and torch_dist.is_nccl_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not torch_dist.is_initialized():
        timeout = timedelta(minutes=float(os.environ.get(TIMEOUT_ENV, "120")))
        store, rank, world = next(torch_dist.rendezvous("env://", timeout=timeout))
        # A key space per torchrun attempt: a restarted rank never reads a dead one's address.
        store = torch_dist.PrefixStore(f"ich-viewer/attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}",
                                       store)
        torch_dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
    return DistContext(rank=torch_dist.get_rank(), world=torch_dist.get_world_size(), local_rank=local_rank,
                       local_world=int(os.environ.get("LOCAL_WORLD_SIZE", "1")), backend=backend)


def shutdown(ctx: DistContext) -> None:
    if ctx.active and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def local_batch_size(batch_size: int, ctx: DistContext) -> int:
    """Each rank's share of the global batch; it must divide evenly (same steps as one process)."""
    if batch_size % ctx.world:
        raise ValueError(f"batch size {batch_size} does not split over {ctx.world} processes: "
                         f"use a multiple of {ctx.world} or another --nproc_per_node")
    return batch_size // ctx.world


class DistributedWeightedSampler(Sampler[np.ndarray]):
    """Weighted draw with replacement shared by all ranks; yields this rank's part of each batch.

    Every rank draws the same ``steps * batch_size`` indices from a generator seeded with
    ``(seed, epoch)`` (``set_epoch``, as ``DistributedSampler``), cuts them into global
    batches and keeps its contiguous share of each, sorted (memory-mapped shards are read
    in order). Over the ranks, an epoch holds exactly the draw one process would make
    from that generator.
    """

    def __init__(self, weights: np.ndarray, steps: int, batch_size: int, ctx: DistContext, seed: int = 0) -> None:
        self.p = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
        self.steps, self.batch_size, self.ctx, self.seed = steps, batch_size, ctx, seed
        self.local = local_batch_size(batch_size, ctx)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, 3])
        return rng.choice(len(self.p), size=self.steps * self.batch_size, replace=True, p=self.p)

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self.global_order().reshape(self.steps, self.batch_size)
        start = self.ctx.rank * self.local
        for batch in order:
            yield np.sort(batch[start:start + self.local])

    def __len__(self) -> int:
        return self.steps


def predict_sharded(predict: Callable[[Any], np.ndarray], data: Any, ctx: DistContext) -> np.ndarray:
    """``predict(subset)`` on this rank's share (``DistributedSampler``), gathered in order."""
    if not ctx.active:
        return predict(data)
    rows = cast(Dataset, range(len(data)))  # the sampler only needs len()
    index = np.fromiter(DistributedSampler(rows, num_replicas=ctx.world, rank=ctx.rank, shuffle=False), dtype=np.int64)
    parts = ctx.gather((index, predict(data.subset(index))))
    out = np.zeros((len(data), parts[0][1].shape[1]), dtype=np.float64)
    for rows, probs in parts:
        out[rows] = probs  # the sampler pads with repeats: the same rows, the same values
    return out
