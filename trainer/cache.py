"""Every slice preprocessed once into a cached HU tensor file, re-used by every epoch.

The app's ``stack_input`` crops the head, resizes, then windows. The cache keeps the
cropped and resized HU of the 2k+1 slices (float16, ``(N, 2k+1, S, S)``), obtained by
calling ``stack_input`` itself with one linear "identity" window, so the crop and resize
are exactly the app's. Training applies HU offset, noise and window jitter in HU and only
then the model's windows (``apply_windows``, also the app's), which is where jitter
belongs: before the clipping of the windows, not after it.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ich_viewer.inference.preprocess import InputSpec, SlabReader, apply_windows, slab_weights, stack_input
from trainer.data.rsna import UNLABELLED
from trainer.data.volume import Volume

IDENTITY_WINDOW = (1000.0, 4000.0)
"""A window that maps -1000..3000 HU linearly onto [0, 1]; nothing in a head CT above
3000 HU matters to the model's windows (the bone window ends at 2000 HU)."""
CACHE_VERSION = 1


def hu_spec(spec: InputSpec) -> InputSpec:
    """The spec with its windows replaced by the identity window (one channel per slice)."""
    return replace(spec, windows=(IDENTITY_WINDOW,), window_names=("hu",))


def to_hu(identity_values: np.ndarray) -> np.ndarray:
    centre, width = IDENTITY_WINDOW
    return identity_values * width + (centre - width / 2.0)


def slice_stack_hu(slices_hu: Sequence[np.ndarray | None], spec: InputSpec) -> np.ndarray:
    """The cropped, resized HU of the 2k+1 slices, exactly as ``stack_input`` sees them."""
    return to_hu(stack_input(slices_hu, hu_spec(spec))).astype(np.float32)


def volume_slabs(volume: Volume, slices: Sequence[np.ndarray | None], spec: InputSpec) -> SlabReader:
    """The app's slabs over a volume's read slices, so a thin training series is seen as in the app."""
    weights = slab_weights(spec, volume.spacing_mm, volume.thickness_mm)
    return SlabReader(lambda j: slices[j], len(volume), weights, keep=len(volume))


def window_batch(hu: torch.Tensor, spec: InputSpec, windows=None) -> torch.Tensor:
    """(B, 2k+1, S, S) HU -> (B, C, S, S) network input with the app's windowing."""
    batch, n, size, _ = hu.shape
    out = apply_windows(hu.reshape(batch * n, size, size).float(), windows or spec.windows)
    return out.reshape(batch, -1, size, size)


@dataclass
class CachedSet:
    """Preprocessed samples of one or more data sets."""

    hu: np.ndarray | RowStack
    """(N, 2k+1, S, S) float16 HU (memory-mapped when loaded from disk; shards: a ``RowStack``)."""
    labels: np.ndarray
    """(N, 6) uint8 in LABELS order."""
    groups: np.ndarray
    """(N,) patient key per sample: the split unit."""
    sources: np.ndarray
    names: np.ndarray
    build_seconds: float = 0.0
    """How long building this cache took (kept with it, for the reproduce time)."""

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "CachedSet":
        index = np.asarray(index)
        return CachedSet(self.hu[index] if len(index) else self.hu[:0], self.labels[index],
                         self.groups[index], self.sources[index], self.names[index])

    @staticmethod
    def concat(parts: Sequence["CachedSet"]) -> "CachedSet":
        """One set; HU stays on disk when a part streams from shards (``RowStack``)."""
        hu = RowStack([p.hu for p in parts]) if any(isinstance(p.hu, RowStack) for p in parts) \
            else np.concatenate([p.hu for p in parts])
        labels, groups, sources, names = (np.concatenate([getattr(p, f) for p in parts]) for f in
                                          ("labels", "groups", "sources", "names"))
        return CachedSet(hu, labels, groups, sources, names)


class RowStack:
    """Arrays (memory-mapped shards) read as one along the first axis, without loading them.

    Supports what training and prediction ask of ``CachedSet.hu``: ``len``, ``shape``,
    a slice, and an index array (read part by part, in the order given)."""

    def __init__(self, parts: Sequence) -> None:
        flat: list[np.ndarray] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, RowStack) else [part])
        self.parts: list[np.ndarray] = [p for p in flat if len(p)]
        if not self.parts:
            raise ValueError("no rows to stack")
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.shape = (int(self.starts[-1]), *self.parts[0].shape[1:])
        self.dtype = self.parts[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        rows = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        if rows.ndim == 0:
            return self[rows[None]][0]
        rows = np.where(rows < 0, rows + len(self), rows)
        part = np.searchsorted(self.starts, rows, side="right") - 1
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        for k in np.unique(part):
            where = np.flatnonzero(part == k)
            out[where] = self.parts[k][rows[where] - self.starts[k]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype)


def cache_key(spec: InputSpec, identity: dict) -> str:
    """Changes when the input spec, the cache layout or the data's identity changes."""
    text = json.dumps({"v": CACHE_VERSION, "spec": spec.to_dict(), "data": identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def volumes_identity(volumes: Sequence[Volume]) -> dict:
    """What identifies a list of already-read volumes: groups, slice names and labels."""
    digest = hashlib.sha256()
    for volume in volumes:
        digest.update(volume.group.encode())
        digest.update("|".join(volume.names).encode())
        digest.update(volume.labels.tobytes())
    return {"volumes": len(volumes), "digest": digest.hexdigest()}


def build_cached_set(volumes: Iterable[Volume], spec: InputSpec,
                     log: Callable[[str], None] = lambda _: None) -> CachedSet:
    """Decode each volume once and preprocess every labelled slice with its neighbours."""
    hu, labels, groups, sources, names = [], [], [], [], []
    started = time.monotonic()
    for v_index, volume in enumerate(volumes):
        slices = volume.load_hu()
        slabs = volume_slabs(volume, slices, spec)
        for i in range(len(volume)):
            if volume.labels[i, 0] == UNLABELLED or slices[i] is None:
                continue
            hu.append(slice_stack_hu(slabs.around(i, spec, volume.spacing_mm), spec).astype(np.float16))
            labels.append(volume.labels[i])
            groups.append(volume.group)
            sources.append(volume.source)
            names.append(volume.names[i])
        if (v_index + 1) % 10 == 0:
            log(f"preprocessed {v_index + 1} volumes, {len(hu)} slices, {time.monotonic() - started:.0f} s")
    if not hu:
        raise ValueError("no labelled slice could be preprocessed")
    return CachedSet(np.stack(hu), np.stack(labels).astype(np.uint8), np.array(groups),
                     np.array(sources), np.array(names))


def load_or_build(make_volumes: Callable[[], Iterable[Volume]], identity: dict, spec: InputSpec,
                  cache_dir: Path, name: str, log: Callable[[str], None] = lambda _: None) -> CachedSet:
    """The cached set for this data and spec; ``make_volumes`` is only called on a miss."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = cache_dir / f"{name}-{cache_key(spec, identity)}"
    hu_path, meta_path = stem.with_suffix(".hu.npy"), stem.with_suffix(".meta.npz")
    if hu_path.is_file() and meta_path.is_file():
        meta = np.load(meta_path, allow_pickle=False)
        log(f"cache hit: {hu_path}")
        seconds = float(meta["build_seconds"]) if "build_seconds" in meta.files else 0.0
        return CachedSet(np.load(hu_path, mmap_mode="r"), meta["labels"], meta["groups"],
                         meta["sources"], meta["names"], seconds)
    started = time.monotonic()
    data = build_cached_set(make_volumes(), spec, log)
    data.build_seconds = time.monotonic() - started
    tmp = f".{os.getpid()}.tmp"  # two commands building one cache never share a temporary file
    tmp_hu, tmp_meta = stem.with_suffix(f"{tmp}.hu.npy"), stem.with_suffix(f"{tmp}.meta.npz")
    np.save(tmp_hu, data.hu)
    np.savez(tmp_meta, labels=data.labels, groups=data.groups, sources=data.sources, names=data.names,
             build_seconds=data.build_seconds)
    tmp_hu.replace(hu_path)
    tmp_meta.replace(meta_path)
    log(f"cache written: {hu_path} ({hu_path.stat().st_size / 1e6:.0f} MB)")
    return data
