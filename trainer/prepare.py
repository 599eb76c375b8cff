"""``python -m trainer prepare SOURCE OUT``: any supported data set into shards, once, in parallel.

Sources: CT-ICH (its published folder), the RSNA 2019 layout (``stage_2_train/*.dcm`` and
``stage_2_train.csv``) and any DICOM tree with a label CSV (``--labels``: RSNA's
``ID,Label`` rows or a ``SOPInstanceUID`` column plus one column per label). DICOM is
read with the app's own loader (series grouping, slice order, HU decoding) and every
slice goes through the app's ``stack_input`` crop and resize, via the trainer's cache
code, so a shard row is what the app would feed the network for that slice.

Work is planned first (which series or patients go into which shard, written to the
manifest), then shards are built by a process pool with a progress bar. A shard appears
only when complete, so running the same command again after a kill builds only the
missing shards.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from ich_viewer import LABELS
from ich_viewer.inference.preprocess import InputSpec
from trainer.data.ctich import DatasetError
from trainer.data.rsna import uid_key
from trainer.distributed import available_cores
from trainer.shards import FORMAT, MANIFEST, VERSION, shard_done, write_shard

RSNA_STAGES = ("stage_2_train", "stage_1_train")
HEADER_CHUNK = 256
"""Files per header-reading task."""


@dataclass(frozen=True)
class Unit:
    """A volume to preprocess: a CT-ICH patient or a DICOM series."""

    key: str
    slices: int
    """Labelled slices (rows it adds to a shard)."""
    files: tuple[str, ...] = ()
    """DICOM files of the series (empty for CT-ICH)."""
    labels: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """(SOP instance UID, six labels) of its labelled slices: a worker never reads the CSV."""


@dataclass(frozen=True)
class Source:
    kind: str
    """"ct-ich" or "dicom" (RSNA layout or a tree with a label CSV)."""
    root: str
    labels_csv: str = ""
    name: str = ""
    """Source name kept with every slice ("ct-ich", "rsna", "dicom")."""


def detect_source(source: Path, labels_csv: Path | None) -> Source:
    """What SOURCE is, from its layout; a clear error when it is none of the supported ones."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} not found (expected a folder)")
    if labels_csv is not None:
        if not Path(labels_csv).is_file():
            raise FileNotFoundError(f"{labels_csv} not found")
        return Source("dicom", str(source), str(labels_csv), "dicom")
    if (source / "hemorrhage_diagnosis.csv").is_file():
        return Source("ct-ich", str(source), name="ct-ich")
    for stage in RSNA_STAGES:
        if (source / f"{stage}.csv").is_file() and (source / stage).is_dir():
            return Source("dicom", str(source / stage), str(source / f"{stage}.csv"), "rsna")
    raise DatasetError(f"{source} is neither CT-ICH (hemorrhage_diagnosis.csv), the RSNA 2019 layout "
                       f"({RSNA_STAGES[0]}/ + {RSNA_STAGES[0]}.csv) nor given with --labels CSV")


def read_label_csv(path: str | Path) -> dict[str, list[int]]:
    """SOP instance UID -> six labels, from RSNA ``ID,Label`` rows or one column per label."""
    from trainer.data.rsna import read_rsna_labels

    with Path(path).open(newline="") as handle:
        header = [h.strip() for h in next(csv.reader(handle), [])]
    if header[:2] == ["ID", "Label"]:
        return read_rsna_labels(path)
    if "SOPInstanceUID" not in header or not set(LABELS[:-1]) <= set(header):
        raise DatasetError(f"{path}: expected 'ID,Label' rows (RSNA) or columns SOPInstanceUID, "
                           f"{', '.join(LABELS[:-1])} (and optionally any); found {header}")
    table: dict[str, list[int]] = {}
    with Path(path).open(newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                values = [int(float(row[name])) for name in LABELS[:-1]]
                any_blood = int(float(row["any"])) if row.get("any", "").strip() else max(values)
            except ValueError as exc:
                raise DatasetError(f"{path}:{line_no}: {exc}") from exc
            table[uid_key(row["SOPInstanceUID"].strip())] = values + [any_blood]
    return table


# --- what runs in the worker processes -------------------------------------------------

def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one slice at a time per process: the pool is the parallelism


@lru_cache(maxsize=4)
def _ctich_volumes(root: str) -> dict[str, Any]:
    from trainer.data.ctich import read_ctich

    return {v.group: v for v in read_ctich(root)}


def _header_chunk(paths: list[str]) -> list[tuple[str, str, list[str]]]:
    """(file, series UID, SOP UIDs) of every readable image; anything else is left out."""
    from ich_viewer.dicom.headers import ImageFile, read_outcome
    from ich_viewer.dicom.sources import FileRef

    out = []
    for path in paths:
        outcome = read_outcome(FileRef(path))
        if isinstance(outcome, ImageFile):
            out.append((path, outcome.series_uid, [h.sop_instance_uid for h in outcome.headers]))
    return out


def _volumes(source: Source, units: list[Unit]) -> list[Any]:
    if source.kind == "ct-ich":
        volumes = _ctich_volumes(source.root)
        return [volumes[u.key] for u in units]
    from ich_viewer.dicom.grouping import assemble_series
    from ich_viewer.dicom.headers import ImageFile, read_outcome
    from ich_viewer.dicom.sources import FileRef
    from trainer.data.rsna import labelled_volumes

    out = []
    for unit in units:
        images = [o for o in (read_outcome(FileRef(f)) for f in unit.files) if isinstance(o, ImageFile)]
        series, _, _ = assemble_series(images)
        labels = {sop: list(values) for sop, values in unit.labels}
        out.extend(labelled_volumes(series, labels, source.name))
    return out


def _build(source: Source, units: list[Unit], spec: InputSpec, folder: str, name: str) -> tuple[str, int, float]:
    """One shard: read its volumes, preprocess every labelled slice, write it."""
    from trainer.cache import CachedSet, build_cached_set

    started = time.monotonic()
    volumes = _volumes(source, units)
    try:
        data = build_cached_set(volumes, spec)
    except ValueError:  # nothing decodable: an empty shard keeps the plan's numbering
        none = np.array([], dtype=str)
        data = CachedSet(np.zeros((0, spec.n_slices, spec.size, spec.size), np.float16),
                         np.zeros((0, len(LABELS)), np.uint8), none, none, none)
    write_shard(Path(folder), name, data)
    return name, len(data), time.monotonic() - started


# --- planning --------------------------------------------------------------------------

def _all_files(root: str) -> list[str]:
    files: list[str] = []
    for folder, _, names in os.walk(root):
        files.extend(os.path.join(folder, n) for n in names if not n.startswith("."))
    return sorted(files)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def plan_units(source: Source, labels: dict[str, list[int]], pool: ProcessPoolExecutor,
               progress: bool = True) -> list[Unit]:
    """Every volume with at least one labelled slice (``labels`` of DICOM slices), in a fixed order."""
    if source.kind == "ct-ich":
        return [Unit(key, int(len(v.labels))) for key, v in sorted(_ctich_volumes(source.root).items())]
    files = _all_files(source.root)
    series: dict[str, list[tuple[str, list[str]]]] = {}
    with tqdm(total=len(files), desc="headers", unit="file", disable=None if progress else True) as bar:
        jobs = {pool.submit(_header_chunk, chunk): len(chunk) for chunk in _chunks(files, HEADER_CHUNK)}
        for job in as_completed(jobs):
            for path, uid, sops in job.result():
                series.setdefault(uid, []).append((path, sops))
            bar.update(jobs[job])
    units = []
    for uid, entries in sorted(series.items()):
        keys = [uid_key(sop) for _, sops in entries for sop in sops]
        known = tuple(sorted((key, tuple(labels[key])) for key in keys if key in labels))
        if known:
            units.append(Unit(uid, len(known), tuple(sorted(path for path, _ in entries)), known))
    if not units:
        raise DatasetError(f"no DICOM slice under {source.root} has a label in {source.labels_csv}")
    return units


def pack(units: list[Unit], shard_slices: int) -> list[list[Unit]]:
    """Consecutive volumes into shards of at least ``shard_slices`` labelled slices."""
    shards: list[list[Unit]] = [[]]
    filled = 0
    for unit in units:
        if filled >= shard_slices:
            shards.append([])
            filled = 0
        shards[-1].append(unit)
        filled += unit.slices
    return [s for s in shards if s]


# --- the command -----------------------------------------------------------------------

def prepare(source_path: Path, out: Path, spec: InputSpec, *, labels_csv: Path | None = None,
            workers: int | None = None, shard_slices: int = 2048, progress: bool = True,
            log: Callable[[str], None] = print) -> dict:
    """Shards of ``source_path`` in ``out`` (finishing an interrupted run); returns the manifest."""
    started = time.monotonic()
    source = detect_source(source_path, labels_csv)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or available_cores()
    labels = read_label_csv(source.labels_csv) if source.kind == "dicom" else {}  # bad CSV: fail before the pool
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        units = plan_units(source, labels, pool, progress)
        groups = pack(units, shard_slices)
        shards: list[dict[str, Any]] = [{"name": f"shard-{i:05d}", "units": [u.key for u in group],
                                         "slices": sum(u.slices for u in group)} for i, group in enumerate(groups)]
        digest = hashlib.sha256(json.dumps([source.kind, source.name, spec.to_dict(), shards]).encode()).hexdigest()
        manifest = {"format": FORMAT, "version": VERSION, "source": source.name, "source_path": str(source_path),
                    "spec": spec.to_dict(), "plan_digest": digest, "shards": shards}
        manifest_path = out / MANIFEST
        if manifest_path.is_file():
            previous = json.loads(manifest_path.read_text())
            if previous.get("plan_digest") != digest:
                raise ValueError(f"{out} holds shards of another source, spec or shard size: use a new folder")
            manifest = {**previous, **manifest}
        manifest["complete"] = False
        manifest_path.write_text(json.dumps(manifest, indent=1))
        by_name = dict(zip([s["name"] for s in shards], groups))
        todo = [s for s in shards if not shard_done(out, s["name"])]
        total = sum(s["slices"] for s in shards)
        log(f"{source.name}: {len(units)} volumes, {total} labelled slices, {len(shards)} shards "
            f"({len(shards) - len(todo)} already written), {workers} worker processes")
        built, build_started = 0, time.monotonic()
        with tqdm(total=total, initial=total - sum(s["slices"] for s in todo), desc="shards", unit="slice",
                  disable=None if progress else True) as bar:
            jobs = [pool.submit(_build, source, by_name[s["name"]], spec, str(out), s["name"]) for s in todo]
            planned = {s["name"]: s["slices"] for s in todo}
            for job in as_completed(jobs):
                name, rows, _ = job.result()
                built += rows
                bar.update(planned[name])
    seconds = time.monotonic() - build_started
    manifest["complete"] = True
    manifest["last_run"] = {"workers": workers, "slices_built": built, "build_seconds": round(seconds, 2),
                            "slices_per_second": round(built / seconds, 2) if seconds and built else None,
                            "wall_seconds": round(time.monotonic() - started, 2)}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    log(f"wrote {len(todo)} shards ({built} slices) in {seconds:.1f} s to {out}")
    return manifest
