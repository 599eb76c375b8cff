"""One training run on cached slices: sampler, augmentation, weighted BCE, AdamW, one-cycle.

A run writes ``checkpoint.pt`` into its folder after every epoch (model, optimiser,
schedule, random states) so ``resume=True`` continues where a killed run stopped, and a
``done.pt`` with the final weights so a finished run is never trained twice.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ich_viewer import LABELS
from ich_viewer.inference.model import build_model, default_arch, normalise_arch, to_probabilities
from ich_viewer.inference.preprocess import InputSpec
from trainer.augment import AugmentConfig, HUAugment
from trainer.cache import CachedSet, window_batch
from trainer.distributed import SINGLE, DistContext, available_cores, local_batch_size
from trainer.loader import BatchStream
from trainer.metrics import series_position
from trainer.sampler import level_factors, sample_weights

LABEL_WEIGHTS = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 2.0])
"""BCE weight per label, LABELS order: "any" counts twice, as in the RSNA 2019 metric."""


@dataclass
class Recipe:
    """Everything that defines a training run (saved in the card and each run folder)."""

    epochs: int = 12
    samples_per_epoch: int | None = None
    """Slices drawn per epoch (None: as many as the training set holds)."""
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    pct_start: float = 0.2
    target_share: float = 0.06
    max_factor: float = 8.0
    any_share: float = 0.3
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    arch: dict = field(default_factory=dict)
    """Changes to the default architecture (``in_channels`` follows the spec)."""
    seed: int = 0
    ema_decay: float = 0.0
    """When > 0, the run returns an exponential moving average of the weights (and BN
    statistics), updated every step; 0 returns the last weights."""
    insert: dict | None = None
    """``trainer.insert.InsertConfig`` fields: synthetic lesions inserted into real normal
    slices of each batch (None: off)."""
    seg_weight: float = 0.0
    """When > 0 (needs ``insert``), a training-only 1x1 convolution on the last feature map
    learns where blood is: the inserted lesion's mask on inserted slices, nothing on normal
    slices (real bleeding slices have no mask and are left out); its BCE is added with this
    weight. The exported network is unchanged."""
    level_balance: float = 0.0
    """When > 1, normal slices at levels where bleeds are common are drawn up to this many
    times as often (``trainer.sampler.level_factors``)."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["augment"] = self.augment.to_dict()
        for optional in ("ema_decay", "insert", "seg_weight", "level_balance"):
            if not data[optional]:
                del data[optional]  # off: keeps run keys of recipes made before the option existed
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        values = dict(data)
        augment = values.pop("augment", None) or {}
        augment = {k: tuple(v) if isinstance(v, list) else v for k, v in augment.items()}
        return cls(augment=AugmentConfig(**augment), **values)


def arch_for(recipe: Recipe, spec: InputSpec) -> dict:
    return normalise_arch(default_arch(spec.n_channels, **recipe.arch))


def _inserter(recipe: Recipe, rng: np.random.Generator):
    """The lesion inserter of this recipe, drawing from the run's own generator (None when off)."""
    if not recipe.insert:
        return None
    from trainer.insert import InsertConfig, LesionInserter

    config = {k: tuple(v) if isinstance(v, list) else v for k, v in recipe.insert.items()}
    return LesionInserter(InsertConfig(**config), rng)


def set_threads(threads: int | None = None) -> int:
    """CPU threads = cores available to this process unless told otherwise."""
    threads = threads or available_cores()
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def seg_targets(inserter, shape: tuple[int, ...], labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1, S, S) blood masks of the centre slices and which of them are known: an inserted
    lesion's blood share, or nothing on a slice still labelled normal; unknown on real bleeds."""
    batch, n, side = shape[0], shape[1], shape[-1]
    masks = np.zeros((batch, 1, side, side), np.float32)
    known = np.asarray(labels)[:, -1] == 0
    for i, insertion in (inserter.last if inserter is not None else []):
        masks[i, 0] = insertion.alpha[n // 2]
        known[i] = True
    return torch.from_numpy(masks), torch.from_numpy(known)


def seg_loss(seg_logits: torch.Tensor, masks: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """BCE of the coarse blood map: a cell is blood when half a pixel's worth of it is."""
    if not bool(known.any()):
        return seg_logits.sum() * 0.0
    target = (F.adaptive_max_pool2d(masks[known], seg_logits.shape[-2:]) / 0.5).clamp(max=1.0)
    return F.binary_cross_entropy_with_logits(seg_logits[known], target)


class BloodMapNet(torch.nn.Module):
    """The classifier and its training-only blood-map head as one module, so one forward
    (through DistributedDataParallel when there are several processes) yields both outputs."""

    def __init__(self, net: torch.nn.Module, head: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.head = net, head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.net.features(x)
        return self.net.classify(feats), self.head(feats)


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over slices of the label-weighted BCE (the RSNA 2019 loss)."""
    weights = LABEL_WEIGHTS.to(logits.device)
    per_label = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (per_label * weights).sum(dim=1).mean() / weights.sum()


def _format_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s" if seconds >= 3600 \
        else f"{seconds // 60}m{seconds % 60:02d}s"


@dataclass
class RunStats:
    """Timing of a run: what bench and the card report."""

    seconds: float = 0.0
    slices: int = 0
    data_seconds: float = 0.0
    """Time spent gathering, augmenting and windowing batches."""
    losses: list[float] = field(default_factory=list)

    @property
    def slices_per_second(self) -> float:
        return self.slices / self.seconds if self.seconds else 0.0

    @property
    def data_share(self) -> float:
        return self.data_seconds / self.seconds if self.seconds else 0.0


def fit(train: CachedSet, spec: InputSpec, recipe: Recipe, run_dir: Path, *,
        init_state: dict | None = None, device: torch.device | None = None, resume: bool = True,
        log: Callable[[str], None] = print, progress_every: float = 30.0,
        dist: DistContext = SINGLE, loader_workers: int = 0) -> tuple[torch.nn.Module, RunStats]:
    """Train a model on ``train``; returns it (eval mode, on CPU) and its timing.

    ``dist``/``loader_workers``: several torchrun processes and background readers
    (``trainer.distributed``, ``trainer.loader``); the defaults are the one-process run."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = device or torch.device("cpu")
    arch = arch_for(recipe, spec)
    done_path = run_dir / "done.pt"
    rng = seed_everything(recipe.seed)  # before building: the initial weights depend on it
    model = build_model(arch)
    if resume and done_path.is_file():
        saved = torch.load(done_path, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        log(f"{run_dir.name}: already trained, loaded {done_path}")
        return model.eval(), RunStats(**saved.get("stats", {}))
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    if dist.active:
        local_batch_size(recipe.batch_size, dist)  # fails early when the batch does not split
        rng = dist.rank_generator(recipe.seed)
    weights = sample_weights(train.labels, target_share=recipe.target_share,
                             max_factor=recipe.max_factor, any_share=recipe.any_share)
    if recipe.level_balance > 1:
        weights = weights * level_factors(train.labels[:, -1], series_position(train.groups), recipe.level_balance)
    per_epoch = recipe.samples_per_epoch or len(train)
    steps_per_epoch = max(1, per_epoch // recipe.batch_size)
    total_steps = steps_per_epoch * recipe.epochs
    seg_head = (torch.nn.Conv2d(arch["widths"][-1], 1, 1).to(device)
                if recipe.seg_weight > 0 and recipe.insert else None)  # training only: not exported
    trained = model if seg_head is None else BloodMapNet(model, seg_head)
    optimiser = torch.optim.AdamW(trained.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=recipe.lr, total_steps=total_steps,
                                                   pct_start=recipe.pct_start)
    augment = HUAugment(spec, recipe.augment)
    inserter = _inserter(recipe, rng)
    ema = (torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(recipe.ema_decay), use_buffers=True)
        if recipe.ema_decay > 0 else None)
    net = dist.wrap(trained, device)  # DistributedDataParallel on several processes
    start_epoch, stats = 0, RunStats()
    checkpoint_path = run_dir / "checkpoint.pt"
    if resume and checkpoint_path.is_file():
        saved = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
        if seg_head is not None:
            seg_head.load_state_dict(saved["seg_head"])
        start_epoch, stats = saved["epoch"], RunStats(**saved["stats"])
        dist.restore_rng(saved, rng, recipe.seed, log)
        log(f"{run_dir.name}: resumed after epoch {start_epoch}")
    if dist.is_main:
        (run_dir / "recipe.json").write_text(json.dumps({"recipe": recipe.to_dict(), "arch": arch,
                                                         "spec": spec.to_dict(), "train_slices": len(train)}, indent=1))
    stream = BatchStream(train, weights, steps_per_epoch, recipe.batch_size, recipe.seed, dist, loader_workers)
    last_report = time.monotonic()
    bar = tqdm(total=total_steps, initial=start_epoch * steps_per_epoch, desc=run_dir.name, unit="step",
               mininterval=5.0, disable=None if dist.is_main else True, leave=False)
    for epoch in range(start_epoch, recipe.epochs):
        model.train()
        batches = stream.epoch(epoch, rng)
        epoch_loss, started = 0.0, time.monotonic()
        for step in range(steps_per_epoch):
            t0 = time.monotonic()
            batch_hu, batch_labels = next(batches)
            if inserter is not None:
                batch_hu, batch_labels = inserter(batch_hu, batch_labels)
            masks, known = seg_targets(inserter, batch_hu.shape, batch_labels) if seg_head is not None else (None, None)
            inputs, masks = augment.with_masks(torch.from_numpy(batch_hu), masks)
            inputs = inputs.to(device)
            targets = torch.from_numpy(batch_labels.astype(np.float32)).to(device)
            t1 = time.monotonic()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = net(inputs)  # bf16 on a GPU (issue 10); the losses in float32
            logits, seg_logits = out if seg_head is not None else (out, None)
            loss = weighted_bce(logits.float(), targets)
            if seg_logits is not None and masks is not None and known is not None:
                loss = loss + recipe.seg_weight * seg_loss(seg_logits.float(), masks.to(device), known.to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if ema is not None:
                ema.update_parameters(model)
            schedule.step()
            t2 = time.monotonic()
            stats.data_seconds += t1 - t0
            stats.seconds += t2 - t0
            stats.slices += len(batch_labels) * dist.world  # every rank's share of the global batch
            epoch_loss += loss.item()
            bar.update(1)
            done = epoch * steps_per_epoch + step + 1
            if time.monotonic() - last_report >= progress_every or done == total_steps:
                last_report = time.monotonic()
                eta = (total_steps - done) * stats.seconds / max(done - start_epoch * steps_per_epoch, 1)
                log(f"{run_dir.name}: epoch {epoch + 1}/{recipe.epochs} step {step + 1}/{steps_per_epoch} "
                    f"loss {epoch_loss / (step + 1):.4f} lr {schedule.get_last_lr()[0]:.2e} "
                    f"{stats.slices_per_second:.0f} slices/s ETA {_format_eta(eta)}")
        stats.losses.append(dist.mean(epoch_loss / steps_per_epoch))
        log(f"{run_dir.name}: epoch {epoch + 1} done, loss {stats.losses[-1]:.4f}, "
            f"{time.monotonic() - started:.0f} s")
        random_state = dist.rng_state(rng)  # every rank's streams (a collective call)
        if dist.is_main:
            torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                        "schedule": schedule.state_dict(), "epoch": epoch + 1, "stats": asdict(stats),
                        "ema": ema.state_dict() if ema is not None else None,
                        "seg_head": seg_head.state_dict() if seg_head is not None else None, **random_state},
                       checkpoint_path.with_suffix(".tmp"))
            checkpoint_path.with_suffix(".tmp").replace(checkpoint_path)
        dist.maybe_kill(run_dir.name, epoch + 1)
    bar.close()
    if ema is not None:
        model = ema.module
    dist.broadcast_buffers(model)
    model = model.cpu().eval()
    if dist.is_main:
        torch.save({"model": model.state_dict(), "stats": asdict(stats)}, done_path)
        checkpoint_path.unlink(missing_ok=True)
    dist.barrier()
    return model, stats


@torch.no_grad()
def predict(model: torch.nn.Module, data: CachedSet, spec: InputSpec, batch_size: int = 64,
            device: torch.device | None = None) -> np.ndarray:
    """Probabilities (N, 6) in LABELS order, no augmentation."""
    device = device or torch.device("cpu")
    model = model.to(device).eval()
    out = np.zeros((len(data), len(LABELS)), dtype=np.float64)
    for start in range(0, len(data), batch_size):
        hu = torch.from_numpy(np.asarray(data.hu[start:start + batch_size], dtype=np.float32))
        logits = model(window_batch(hu, spec).to(device))
        out[start:start + len(hu)] = to_probabilities(logits)
    model.cpu()
    return out


def steps_estimate(recipe: Recipe, n_train: int) -> int:
    return recipe.epochs * max(1, (recipe.samples_per_epoch or n_train) // recipe.batch_size)

