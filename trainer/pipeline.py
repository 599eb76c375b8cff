"""The whole recipe: caches, synthetic pre-training, patient-level CV, ablation, final fit.

Every training run lives in a folder ``<work>/runs/<arm>-<key>/<run>`` whose key hashes
only the settings that run depends on; with ``--resume`` a finished run is loaded instead
of retrained, so commands share runs (the synthetic pre-training, the folds of an arm
trained by an earlier ``--cv-only`` command) and a killed command continues.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ich_viewer import LABELS
from ich_viewer.inference.preprocess import InputSpec
from trainer.cache import CachedSet, cache_key, load_or_build, volumes_identity
from trainer.distributed import SINGLE, DistContext, predict_sharded
from trainer.metrics import evaluate
from trainer.splits import fold_masks, patient_folds
from trainer.train import Recipe, RunStats, fit, predict

SLIM_ARCH = {"stem_width": 16, "widths": [16, 32, 64, 128]}
"""0.38 M parameters, 0.05 GFLOP per 128 x 128 input (the default network: 0.17):
chosen so CV, ablation and the final fit fit the CPU budget of two shared cores."""
SLAB_MM = 5.0
"""CT-ICH's slice thickness: thinner series (other data in training, any in the app) are
averaged into slabs this thick. CT-ICH itself gives no spacing and the phantoms are 5 mm,
so their inputs are the same with and without slabs; only the cache keys differ."""
ARMS = ("synthetic", "real", "both")
"""Ablation arms: synthetic only, real only, synthetic pre-training then real fine-tuning."""


@dataclass
class Config:
    """What a reproduce run is made of; its hash names the run folders."""

    size: int = 128
    context: int = 1
    recipe: Recipe = field(default_factory=lambda: Recipe(epochs=14, arch=dict(SLIM_ARCH), insert=insert_settings()))
    """The v1.0 recipe plus lesions inserted into real normal slices: the one lever that CV
    supported (see ``lever_configs`` and the model card's ablation)."""
    pretrain: Recipe = field(default_factory=lambda: Recipe(epochs=4, arch=dict(SLIM_ARCH)))
    synthetic_count: int = 68
    synthetic_seed: int = 1000
    synthetic_matrix: int = 128
    synthetic_thickness: float = 5.0
    """Slice spacing of the phantoms, as CT-ICH (~5 mm)."""
    folds: int = 5
    split_seed: int = 0
    arm: str = "real"
    """The arm the bundled model is trained with: "real" (synthetic pre-training gave no
    gain in the ablation, so the simpler recipe is bundled)."""
    max_patients: int | None = None
    """Use only the first N real patients (the quick mode)."""

    def spec(self) -> InputSpec:
        return InputSpec(size=self.size, context=self.context, slab_mm=SLAB_MM)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["recipe"] = self.recipe.to_dict()
        data["pretrain"] = self.pretrain.to_dict()
        return data

    def run_id(self, arm: str | None = None) -> str:
        """Hash of the settings the runs of ``arm`` depend on (all settings when None)."""
        data = self.to_dict()
        synthetic = ("pretrain", "synthetic_count", "synthetic_seed", "synthetic_matrix", "synthetic_thickness")
        real = ("recipe", "folds", "split_seed", "max_patients")
        keep = {"synthetic": synthetic, "real": real, "both": synthetic + real}.get(arm or "", tuple(data))
        data = {k: v for k, v in data.items() if k in keep or k in ("size", "context")}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def insert_settings(probability: float = 0.5) -> dict:
    """Recipe ``insert`` settings: lesions in this share of the normal slices of each batch."""
    from trainer.insert import InsertConfig

    return replace(InsertConfig(), probability=float(probability)).to_dict()


def current_config() -> Config:
    """The v1.0 recipe (bundled until 2026-11-28): the reference every lever is measured against."""
    return Config(size=128, recipe=Recipe(epochs=14, arch=dict(SLIM_ARCH), insert=None))


def lever_configs(bundled: Config) -> dict[str, Config]:
    """Each training lever alone on top of the v1.0 recipe, plus the bundled combination."""
    base = current_config()
    inserted = current_config()
    inserted.recipe = replace(inserted.recipe, insert=insert_settings())
    capacity = current_config()
    capacity.size, capacity.recipe = 160, replace(capacity.recipe, epochs=24)
    longer = current_config()
    longer.recipe = replace(longer.recipe, epochs=24, insert=insert_settings())
    blood_map = replace(inserted, recipe=replace(inserted.recipe, seg_weight=1.0))
    level = replace(inserted, recipe=replace(inserted.recipe, level_balance=3.0))
    more = replace(inserted, recipe=replace(inserted.recipe, insert=insert_settings(0.8)))
    averaged = replace(inserted, recipe=replace(inserted.recipe, ema_decay=0.995))
    out = {"v1.0 recipe (128 px, 14 epochs)": base,
           "+ lesions inserted into real normal slices": inserted,
           "+ 160 px and 24 epochs": capacity,
           "+ lesions inserted and 24 epochs": longer,
           "+ lesions inserted and a blood-map loss on them": blood_map,
           "+ lesions inserted and level-balanced normal slices": level,
           "+ lesions inserted into 80 % of normal slices": more,
           "+ lesions inserted and an average of the weights (EMA 0.995)": averaged}
    if bundled.run_id() not in {c.run_id() for c in out.values()}:
        out["bundled recipe"] = bundled
    return out


def quick_config() -> Config:
    """A tiny model that trains end to end in well under two minutes on two cores."""
    tiny = {"stem_width": 8, "widths": [8, 16, 24, 32], "blocks": [1, 1, 1, 1], "dropout": 0.0}
    return Config(
        size=64,
        recipe=Recipe(epochs=2, batch_size=16, samples_per_epoch=160, arch=tiny),
        pretrain=Recipe(epochs=2, batch_size=16, samples_per_epoch=160, arch=tiny),
        synthetic_count=6,
        synthetic_matrix=96,
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
    data_keys: dict = field(default_factory=dict)
    """Cache key of each data set loaded so far; part of the run folder names."""
    dist: DistContext = SINGLE
    """This process's rank under torchrun (``trainer.distributed``)."""
    loader_workers: int = 0
    """Background readers of training batches per process (0: batches from RAM)."""

    def run_dir(self, arm: str, name: str) -> Path:
        """Keyed by the settings and the data (cache keys) the runs of ``arm`` depend on."""
        data = {k: v for k, v in self.data_keys.items() if (k == "synthetic") == (arm == "synthetic")
                or (arm == "both" and k == "synthetic")}
        key = hashlib.sha256(json.dumps([self.config.run_id(arm), data], sort_keys=True).encode())
        return self.work / "runs" / f"{arm}-{key.hexdigest()[:10]}" / name

    def _load(self, name: str, make_volumes, identity: dict) -> CachedSet:
        spec = self.config.spec()
        self.data_keys[name] = cache_key(spec, identity)
        if not self.dist.is_main:
            self.dist.barrier()  # rank 0 builds a missing cache, the others then read it
        data = self._timed(f"cache {name}", lambda: load_or_build(
            make_volumes, identity, spec, self.cache, name, self.log))
        if self.dist.is_main:
            self.dist.barrier()
        return data

    @property
    def cache(self) -> Path:
        return self.work / "cache"

    def real(self, ct_ich: Path | None, rsna_csv: Path | None = None, rsna_dir: Path | None = None,
             shards: Path | None = None) -> dict[str, CachedSet]:
        """Cached real sets by name ("ct-ich" for evaluation, "rsna" and "shards" as extra training data)."""
        from trainer.data.ctich import READER_VERSION, read_ctich

        sets: dict[str, CachedSet] = {}
        if ct_ich is not None:
            volumes = read_ctich(ct_ich)
            if self.config.max_patients:
                volumes = volumes[: self.config.max_patients]
            sets["ct-ich"] = self._load("ct-ich", lambda: volumes,
                                        {**volumes_identity(volumes), "reader": READER_VERSION})
        if rsna_csv is not None and rsna_dir is not None:
            from trainer.data.rsna import read_rsna

            rsna = read_rsna(rsna_csv, rsna_dir)
            sets["rsna"] = self._load("rsna", lambda: rsna, volumes_identity(rsna))
        if shards is not None:
            from trainer.shards import open_shards

            sets["shards"], self.data_keys["shards"] = open_shards(shards, self.config.spec())
        return sets

    def synthetic(self) -> CachedSet:
        from trainer.data.synthetic import phantom_code_digest, synthetic_volumes

        c = self.config
        identity = {"count": c.synthetic_count, "seed": c.synthetic_seed, "matrix": c.synthetic_matrix,
                    "thickness": c.synthetic_thickness, "phantom": phantom_code_digest()}
        return self._load("synthetic", lambda: synthetic_volumes(
            c.synthetic_count, c.synthetic_seed, c.synthetic_matrix, c.synthetic_thickness), identity)

    def _timed(self, name: str, work):
        started = time.monotonic()
        result = work()
        self.timings[name] = self.timings.get(name, 0.0) + time.monotonic() - started
        return result

    def fit(self, arm: str, name: str, data: CachedSet, recipe: Recipe, init_state: dict | None = None):
        """Train (or, with resume, re-use) run ``name`` of ``arm``; once per command either way."""
        run_dir = self.run_dir(arm, name)
        if run_dir in self.trained:
            return self.trained[run_dir]
        if not self.resume and run_dir.exists() and self.dist.is_main:
            shutil.rmtree(run_dir)
        self.dist.barrier()
        self.trained[run_dir] = self._timed(f"train {arm} {name.rstrip('0123456789')}", lambda: fit(
            data, self.config.spec(), recipe, run_dir, init_state=init_state, device=self.device,
            resume=self.resume, log=self.log, dist=self.dist, loader_workers=self.loader_workers))
        return self.trained[run_dir]

    def predict(self, model: torch.nn.Module, data: CachedSet) -> np.ndarray:
        """Probabilities of ``data``; under torchrun each rank predicts its share."""
        return predict_sharded(lambda part: predict(model, part, self.config.spec(), device=self.device),
                               data, self.dist)

    def pretrained(self) -> tuple[torch.nn.Module, RunStats]:
        return self.fit("synthetic", "pretrain", self.synthetic(), self.config.pretrain)


def _init_for(ws: Workspace, arm: str) -> dict | None:
    if arm == "real":
        return None
    model, _ = ws.pretrained()
    return {k: v.clone() for k, v in model.state_dict().items()}


def cross_validate(ws: Workspace, real: CachedSet, arm: str, extra: CachedSet | None = None) -> dict:
    """Patient-level k-fold CV of one arm on ``real``; out-of-fold predictions and metrics."""
    c = ws.config
    folds = patient_folds(real.groups, real.labels, c.folds, c.split_seed)
    probs = np.zeros((len(real), len(LABELS)))
    fold_of = np.array([folds[g] for g in real.groups])
    stats, models = [], []
    if arm == "synthetic":
        model, run_stats = ws.pretrained()
        probs = ws.predict(model, real)
        stats.append(run_stats)
        fold_used = None  # nothing real was trained on: every slice is held out
    else:
        init = _init_for(ws, arm)
        for fold in range(c.folds):
            train_mask, held = fold_masks(real.groups, folds, fold)
            train = real.subset(np.flatnonzero(train_mask))
            if extra is not None:
                train = CachedSet.concat([train, extra])
            model, run_stats = ws.fit(arm, f"fold{fold}", train, c.recipe, init)
            probs[held] = ws.predict(model, real.subset(np.flatnonzero(held)))
            stats.append(run_stats)
            models.append(model)
            ws.log(f"{arm}: fold {fold} done ({held.sum()} held-out slices)")
        fold_used = fold_of
    metrics = evaluate(real.labels, probs, real.groups, fold_used, seed=c.split_seed)
    metrics["train_seconds"] = float(sum(s.seconds for s in stats))
    metrics["train_slices_per_second"] = float(np.mean([s.slices_per_second for s in stats]))
    metrics["data_share"] = float(np.mean([s.data_share for s in stats]))
    split = {g: int(f) for g, f in sorted(folds.items())}
    return {"arm": arm, "metrics": metrics, "probs": probs, "fold_of": fold_of, "split": split, "models": models}


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
    return ws.fit(arm, "final", train, ws.config.recipe, _init_for(ws, arm))
