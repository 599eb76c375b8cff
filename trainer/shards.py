"""Prepared shards: the model input of many slices, written once, streamed by training.

A shard folder holds ``manifest.json`` (input spec, source, the plan of which volumes go
into which shard, and which shards are finished) and per shard ``<name>.hu.npy`` (float16
``(n, 2k+1, S, S)``: the head crop and resize of ``stack_input``, in HU, exactly as the
trainer's cache) plus ``<name>.meta.npz`` (labels, patient groups, sources, slice names).
The network input is ``window_batch`` of those rows: the app's windows; augmentation
happens in HU before them, which is why the HU and not the windowed input is kept.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ich_viewer.inference.preprocess import InputSpec
from trainer.cache import CachedSet, RowStack

MANIFEST = "manifest.json"
FORMAT = "ich-viewer-shards"
VERSION = 1


def shard_paths(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / f"{name}.hu.npy", folder / f"{name}.meta.npz"


def shard_done(folder: Path, name: str) -> bool:
    return all(p.is_file() for p in shard_paths(folder, name))


def write_shard(folder: Path, name: str, data: CachedSet) -> None:
    """Both files under temporary names first: a killed writer never leaves a half shard."""
    hu_path, meta_path = shard_paths(folder, name)
    tmp = f".{os.getpid()}.tmp"
    tmp_hu, tmp_meta = folder / f"{name}{tmp}.hu.npy", folder / f"{name}{tmp}.meta.npz"
    np.save(tmp_hu, np.asarray(data.hu, dtype=np.float16))
    np.savez(tmp_meta, labels=data.labels, groups=data.groups, sources=data.sources, names=data.names)
    tmp_meta.replace(meta_path)
    tmp_hu.replace(hu_path)  # last: it marks the shard finished


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a folder made by `python -m trainer prepare`?")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ValueError(f"{path}: not a version-{VERSION} {FORMAT} manifest")
    return manifest


def open_shards(folder: str | Path, spec: InputSpec | None = None) -> tuple[CachedSet, str]:
    """Every shard as one memory-mapped set, and a key for run folders (spec + content)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    saved = InputSpec.from_dict(manifest["spec"])
    if spec is not None and saved.to_dict() != spec.to_dict():
        raise ValueError(f"{folder} was prepared for input {saved.size} px, context {saved.context}; "
                         f"this run needs {spec.size} px, context {spec.context}: "
                         "prepare again with --size/--context or change the run's")
    names = [s["name"] for s in manifest["shards"]]
    missing = [n for n in names if not shard_done(folder, n)]
    if missing:
        raise ValueError(f"{folder}: {len(missing)} of {len(names)} shards not written yet "
                         "(run `python -m trainer prepare` again to finish)")
    hu, metas = [], []
    for name in names:
        hu_path, meta_path = shard_paths(folder, name)
        hu.append(np.load(hu_path, mmap_mode="r"))
        metas.append(np.load(meta_path, allow_pickle=False))
    if not sum(len(h) for h in hu):
        raise ValueError(f"{folder}: the shards hold no labelled slice")
    meta = {f: np.concatenate([m[f] for m in metas]) for f in ("labels", "groups", "sources", "names")}
    data = CachedSet(RowStack(hu), meta["labels"], meta["groups"], meta["sources"], meta["names"])
    key = hashlib.sha256(json.dumps([manifest["spec"], manifest["plan_digest"]]).encode()).hexdigest()[:16]
    return data, key
