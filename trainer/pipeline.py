"""The whole recipe: caches, synthetic pre-training, patient-level CV, ablation, final fit.

Every training run lives in its own folder under ``<work>/runs/<config id>/``; a run that
finished is loaded instead of retrained, so ``reproduce`` and ``ablation`` share runs
(the synthetic pre-training and the folds of the chosen arm) and a killed command
continues with ``--resume``.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ich_viewer import LABELS
from ich_viewer.inference.preprocess import InputSpec
from trainer.cache import CachedSet, load_or_build, volumes_identity
from trainer.metrics import evaluate
from trainer.splits import fold_masks, patient_folds
from trainer.train import Recipe, RunStats, fit, predict

SLIM_ARCH = {"stem_width": 16, "widths": [16, 32, 64, 128]}
"""0.38 M parameters, 0.05 GFLOP per 128 x 128 input: a third of the default network's
cost, chosen so CV, ablation and the final fit fit the CPU budget of two shared cores."""
ARMS = ("synthetic", "real", "both")
"""Ablation arms: synthetic only, real only, synthetic pre-training then real fine-tuning."""


@dataclass
class Config:
    """What a reproduce run is made of; its hash names the run folders."""

    size: int = 128
    context: int = 1
    recipe: Recipe = field(default_factory=lambda: Recipe(epochs=10, arch=dict(SLIM_ARCH)))
    pretrain: Recipe = field(default_factory=lambda: Recipe(epochs=5, arch=dict(SLIM_ARCH)))
    synthetic_count: int = 102
    synthetic_seed: int = 1000
    synthetic_matrix: int = 256
    folds: int = 5
    split_seed: int = 0
    arm: str = "both"
    """The arm the bundled model is trained with."""
    max_patients: int | None = None
    """Use only the first N real patients (the quick mode)."""

    def spec(self) -> InputSpec:
        return InputSpec(size=self.size, context=self.context)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["recipe"] = self.recipe.to_dict()
        data["pretrain"] = self.pretrain.to_dict()
        return data

    def run_id(self) -> str:
        """Names the run folders; the arm is left out so every arm shares the same runs."""
        data = {k: v for k, v in self.to_dict().items() if k != "arm"}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def quick_config() -> Config:
    """A tiny model that trains end to end in well under two minutes on two cores."""
    tiny = {"stem_width": 8, "widths": [8, 16, 24, 32], "blocks": [1, 1, 1, 1], "dropout": 0.0}
    return Config(
        size=64,
        recipe=Recipe(epochs=2, batch_size=16, samples_per_epoch=160, arch=tiny),
        pretrain=Recipe(epochs=2, batch_size=16, samples_per_epoch=160, arch=tiny),
        synthetic_count=6,
        synthetic_matrix=128,
        folds=2,
        max_patients=8,
    )


class Logger:
    """Prints and appends to a log file, flushing each line (runs go to the background)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        print(line, flush=True)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")


@dataclass
class Workspace:
    """Where caches and runs go, and the data sets in use."""

    work: Path
    config: Config
    log: Callable[[str], None] = print
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    resume: bool = True
    timings: dict = field(default_factory=dict)
    trained: dict = field(default_factory=dict)

    @property
    def runs(self) -> Path:
        return self.work / "runs" / self.config.run_id()

    @property
    def cache(self) -> Path:
        return self.work / "cache"

    def real(self, ct_ich: Path | None, rsna_csv: Path | None = None, rsna_dir: Path | None = None) -> dict[str, CachedSet]:
        """Cached real sets by name ("ct-ich" for evaluation, "rsna" as extra training data)."""
        from trainer.data.ctich import read_ctich

        sets: dict[str, CachedSet] = {}
        spec = self.config.spec()
        if ct_ich is not None:
            volumes = read_ctich(ct_ich)
            if self.config.max_patients:
                volumes = volumes[: self.config.max_patients]
            sets["ct-ich"] = self._timed("cache ct-ich", lambda: load_or_build(
                lambda: volumes, volumes_identity(volumes), spec, self.cache, "ct-ich", self.log))
        if rsna_csv is not None and rsna_dir is not None:
            from trainer.data.rsna import read_rsna

            volumes = read_rsna(rsna_csv, rsna_dir)
            sets["rsna"] = self._timed("cache rsna", lambda: load_or_build(
                lambda: volumes, volumes_identity(volumes), spec, self.cache, "rsna", self.log))
        return sets

    def synthetic(self) -> CachedSet:
        from trainer.data.synthetic import phantom_code_digest, synthetic_volumes

        c = self.config
        identity = {"count": c.synthetic_count, "seed": c.synthetic_seed, "matrix": c.synthetic_matrix,
                    "phantom": phantom_code_digest()}
        return self._timed("cache synthetic", lambda: load_or_build(
            lambda: synthetic_volumes(c.synthetic_count, c.synthetic_seed, c.synthetic_matrix),
            identity, c.spec(), self.cache, "synthetic", self.log))

    def _timed(self, name: str, work):
        started = time.monotonic()
        result = work()
        self.timings[name] = self.timings.get(name, 0.0) + time.monotonic() - started
        return result

    def fit(self, name: str, data: CachedSet, recipe: Recipe, init_state: dict | None = None):
        """Train (or, with resume, re-use) the run ``name``; once per command either way."""
        if name in self.trained:
            return self.trained[name]
        run_dir = self.runs / name
        if not self.resume and run_dir.exists():
            shutil.rmtree(run_dir)
        self.trained[name] = self._timed(f"train {name.split('/')[0]}", lambda: fit(
            data, self.config.spec(), recipe, run_dir, init_state=init_state, device=self.device,
            resume=self.resume, log=self.log))
        return self.trained[name]

    def pretrained(self) -> tuple[torch.nn.Module, RunStats]:
        return self.fit("synthetic", self.synthetic(), self.config.pretrain)


def _init_for(ws: Workspace, arm: str) -> dict | None:
    if arm == "real":
        return None
    model, _ = ws.pretrained()
    return {k: v.clone() for k, v in model.state_dict().items()}


def cross_validate(ws: Workspace, real: CachedSet, arm: str, extra: CachedSet | None = None) -> dict:
    """Patient-level k-fold CV of one arm on ``real``; out-of-fold predictions and metrics."""
    c = ws.config
    spec = c.spec()
    folds = patient_folds(real.groups, real.labels, c.folds, c.split_seed)
    probs = np.zeros((len(real), len(LABELS)))
    fold_of = np.array([folds[g] for g in real.groups])
    stats = []
    if arm == "synthetic":
        model, run_stats = ws.pretrained()
        probs = predict(model, real, spec, device=ws.device)
        stats.append(run_stats)
        fold_used = None  # nothing real was trained on: every slice is held out
    else:
        init = _init_for(ws, arm)
        for fold in range(c.folds):
            train_mask, held = fold_masks(real.groups, folds, fold)
            train = real.subset(np.flatnonzero(train_mask))
            if extra is not None:
                train = CachedSet.concat([train, extra])
            model, run_stats = ws.fit(f"{arm}/fold{fold}", train, c.recipe, init)
            probs[held] = predict(model, real.subset(np.flatnonzero(held)), spec, device=ws.device)
            stats.append(run_stats)
            ws.log(f"{arm}: fold {fold} done ({held.sum()} held-out slices)")
        fold_used = fold_of
    metrics = evaluate(real.labels, probs, real.groups, fold_used, seed=c.split_seed)
    metrics["train_seconds"] = float(sum(s.seconds for s in stats))
    metrics["train_slices_per_second"] = float(np.mean([s.slices_per_second for s in stats]))
    metrics["data_share"] = float(np.mean([s.data_share for s in stats]))
    split = {g: int(f) for g, f in sorted(folds.items())}
    return {"arm": arm, "metrics": metrics, "probs": probs, "fold_of": fold_of, "split": split}


def save_cv(result: dict, real: CachedSet, folder: Path) -> None:
    """Out-of-fold predictions (work folder only: derived per-slice data), metrics, split."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "oof.npz", probs=result["probs"], labels=real.labels,
                        groups=real.groups, names=real.names, fold_of=result["fold_of"])
    (folder / "metrics.json").write_text(json.dumps(result["metrics"], indent=1))
    (folder / "split.json").write_text(json.dumps(result["split"], indent=1))


def final_fit(ws: Workspace, real: CachedSet, extra: CachedSet | None = None):
    """The bundled model: the chosen arm's recipe on every real patient."""
    arm = ws.config.arm
    if arm == "synthetic":
        return ws.pretrained()
    train = real if extra is None else CachedSet.concat([real, extra])
    return ws.fit(f"final-{arm}", train, ws.config.recipe, _init_for(ws, arm))
