"""Scale-out numbers: training samples/s on 1 and 2 processes, loader and shard-preparation speed,
GPU throughput at 256 px in bf16 when CUDA exists, and the RSNA 2019 estimates they imply.

Everything runs the real code: ``trainer.train.fit`` with the bundled recipe (architecture,
batch, augmentation; 128 px unless said), two processes through ``torchrun`` (gloo on
CPU), ``trainer.loader.BatchStream`` for the loader, ``trainer.prepare.prepare`` for
shards. Training data are phantom slices saved as a memory-mapped cache. Prints JSON.

    .venv/bin/python bench/bench_scale.py            # add --steps N, --skip-prepare
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from trainer.cache import CachedSet, RowStack  # noqa: E402
from trainer.distributed import available_cores  # noqa: E402
from trainer.pipeline import Config  # noqa: E402
from trainer.train import fit, set_threads  # noqa: E402

RSNA_SLICES = 752_803
"""Labelled slices of RSNA 2019 stage 2 train."""
RECIPE_EPOCHS = 14
CT_ICH = ROOT.parent / "shared" / "data" / "ct-ich"


def _recipe(steps: int, batch: int | None = None):
    recipe = Config().recipe
    batch = batch or recipe.batch_size
    return replace(recipe, epochs=1, samples_per_epoch=steps * batch, batch_size=batch)


def _save(data: CachedSet, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "hu.npy", data.hu)
    np.savez(folder / "meta.npz", labels=data.labels, groups=data.groups, sources=data.sources, names=data.names)


def _load(folder: Path) -> CachedSet:
    meta = np.load(folder / "meta.npz")
    return CachedSet(RowStack([np.load(folder / "hu.npy", mmap_mode="r")]), meta["labels"], meta["groups"],
                     meta["sources"], meta["names"])


def _train(data: CachedSet, spec, steps: int, device: torch.device, batch: int | None = None, **options) -> dict:
    recipe = _recipe(steps, batch)
    with tempfile.TemporaryDirectory() as tmp:
        _, stats = fit(data, spec, recipe, Path(tmp) / "run", device=device, resume=False, log=lambda _: None,
                       **options)
    return {"samples_per_second": round(stats.slices_per_second, 1), "data_share": round(stats.data_share, 3),
            "steps": steps, "batch_size": recipe.batch_size}


def worker(folder: Path, steps: int) -> int:
    """One torchrun rank: the same fit as the one-process measurement; rank 0 prints."""
    from trainer.distributed import init_distributed, shutdown

    ctx = init_distributed()
    set_threads(1)
    result = _train(_load(folder), Config().spec(), steps, torch.device("cpu"), dist=ctx)
    if ctx.is_main:
        print("RESULT " + json.dumps(result), flush=True)
    shutdown(ctx)
    return 0


def _two_processes(folder: Path, steps: int) -> dict:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", __file__, "--worker", str(folder),
                           "--steps", str(steps)], env=env, capture_output=True, text=True, timeout=1800)
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode or not line:
        return {"error": done.stderr[-2000:]}
    return json.loads(line[-1][7:])


def _loader(data: CachedSet, steps: int, batch: int) -> dict:
    """Samples/s of the shard reader alone (no augmentation, no model), per worker count, from
    the first batch on (starting the worker processes is paid once per epoch)."""
    from trainer.loader import BatchStream
    from trainer.sampler import sample_weights

    out = {}
    for workers in (0, 1, 2):
        stream = BatchStream(data, sample_weights(data.labels), steps, batch, 0, workers=workers)
        batches = stream.epoch(0, np.random.default_rng(0))
        next(batches)
        started = time.monotonic()
        for _ in batches:
            pass
        out[f"{workers}_workers"] = round((steps - 1) * batch / (time.monotonic() - started), 1)
    return out


def _augment_rate(size: int, batch: int, repeats: int = 5) -> float:
    """Samples/s of the HU augmentation + windowing that each training process runs on its CPU."""
    from trainer.augment import HUAugment

    augment = HUAugment(replace(Config().spec(), size=size))
    hu = torch.full((batch, 3, size, size), 30.0)
    augment(hu)
    started = time.monotonic()
    for _ in range(repeats):
        augment(hu)
    return round(repeats * batch / (time.monotonic() - started), 1)


def _prepare_speed(tmp: Path) -> dict:
    from trainer.prepare import prepare

    if (CT_ICH / "hemorrhage_diagnosis.csv").is_file():
        patients = sorted(p.name for p in (CT_ICH / "Patients_CT").iterdir())[:4]
        root = tmp / "ct-ich"
        for patient in patients:
            shutil.copytree(CT_ICH / "Patients_CT" / patient, root / "Patients_CT" / patient)
        with (CT_ICH / "hemorrhage_diagnosis.csv").open() as source:
            rows = [r for i, r in enumerate(source) if i == 0 or r.split(",")[0].zfill(3) in patients]
        (root / "hemorrhage_diagnosis.csv").write_text("".join(rows))
        name = f"CT-ICH copy, {len(patients)} patients (650 x 650 JPEG pairs)"
    else:
        return {"skipped": "CT-ICH not at ../shared/data/ct-ich"}
    out = {"source": name}
    for workers in (1, 2):
        manifest = prepare(root, tmp / f"shards-{workers}", Config().spec(), workers=workers, shard_slices=16,
                           progress=False, log=lambda _: None)
        out[f"{workers}_workers_slices_per_second"] = manifest["last_run"]["slices_per_second"]
    hu = sum(f.stat().st_size for f in (tmp / "shards-1").glob("*.hu.npy"))
    out["bytes_per_slice"] = round(hu / manifest["last_run"]["slices_built"])
    return out


def _memory(size: int, batch: int) -> dict:
    """Per-GPU memory from counts: parameters (weights, gradients, AdamW's two moments, fp32) plus
    the tensors autograd keeps for backward at this input size (measured on the CPU, fp32; bf16 halves most)."""
    from ich_viewer.inference.model import build_model
    from trainer.train import arch_for

    spec = replace(Config().spec(), size=size)
    model = build_model(arch_for(Config().recipe, spec)).train()
    params = sum(p.numel() for p in model.parameters())
    saved = 0

    def pack(tensor):
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.rand(2, spec.n_channels, size, size)).sum()
    per_sample = saved / 2
    return {"input_px": size, "parameters": params, "parameter_state_mb": round(params * 16 / 2**20, 1),
            "activations_mb_per_sample_fp32": round(per_sample / 2**20, 2),
            f"estimate_mb_batch_{batch}_fp32": round((params * 16 + per_sample * batch) / 2**20),
            f"estimate_mb_batch_{batch}_bf16": round((params * 16 + per_sample * batch / 2) / 2**20)}


def _hours(slices_per_second: float, epochs: int = RECIPE_EPOCHS) -> float:
    return round(RSNA_SLICES * epochs / slices_per_second / 3600, 1) if slices_per_second else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip-prepare", action="store_true")
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.steps)

    from trainer.cache import build_cached_set
    from trainer.data.synthetic import synthetic_volumes

    config = Config()
    spec = config.spec()
    out: dict = {"benchmark": "scale", "date": time.strftime("%Y-%m-%d"),
                 "machine": f"{platform.machine()}, {available_cores()} cores, "
                            f"load average {os.getloadavg()[0]:.1f}, python {platform.python_version()}, "
                            f"torch {torch.__version__}",
                 "recipe": {"size": spec.size, "arch": config.recipe.arch, "batch_size": config.recipe.batch_size}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = build_cached_set(synthetic_volumes(3, seed=7, matrix=128), spec)
        _save(data, tmp / "cache")
        on_disk = _load(tmp / "cache")
        set_threads(2)
        one_two_threads = _train(on_disk, spec, args.steps, torch.device("cpu"))
        set_threads(1)
        one_one_thread = _train(on_disk, spec, args.steps, torch.device("cpu"))
        two = _two_processes(tmp / "cache", args.steps)
        out["cpu_training"] = {"1_process_2_threads": one_two_threads, "1_process_1_thread": one_one_thread,
                               "2_processes_1_thread_each_torchrun_gloo": two}
        out["loader_samples_per_second"] = _loader(on_disk, 10 * args.steps, config.recipe.batch_size)
        out["augment_samples_per_second_per_process"] = {"128px": _augment_rate(128, 32),
                                                         "256px": _augment_rate(256, 32)}
        if not args.skip_prepare:
            out["prepare"] = _prepare_speed(tmp)
        best = max(one_two_threads["samples_per_second"], two.get("samples_per_second", 0.0))
        out["rsna_estimate_this_machine"] = {"slices": RSNA_SLICES, "epochs": RECIPE_EPOCHS,
                                             "hours_at_measured_cpu_rate": _hours(best)}
        out["memory_per_gpu_estimate"] = _memory(256, 64)
        if torch.cuda.is_available():
            device = torch.device("cuda")
            spec256 = replace(spec, size=256)
            data256 = build_cached_set(synthetic_volumes(2, seed=7, matrix=256), spec256)
            _train(data256, spec256, 5, device, batch=64)  # warm-up (cuDNN autotune, allocator)
            torch.cuda.reset_peak_memory_stats()
            gpu = _train(data256, spec256, args.steps, device, batch=64)
            gpu["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
            gpu["device"] = torch.cuda.get_device_name()
            out["gpu_256px_bf16"] = gpu
            out["rsna_estimate_1_gpu_256px"] = {"epochs": RECIPE_EPOCHS, "hours": _hours(gpu["samples_per_second"])}
        else:
            out["gpu_256px_bf16"] = {"skipped": "no CUDA device on this machine"}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
