"""``python -m trainer``: reproduce the bundled weights (CV, levers, calibration, ensemble export)."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ich_viewer import LABELS, paths
from trainer.distributed import SINGLE, DistContext, available_cores, init_distributed, shutdown
from trainer.pipeline import (ARMS, Config, Logger, Workspace, cross_validate, final_fit, insert_settings,
                              lever_configs, quick_config, save_cv)
from trainer.train import arch_for, set_threads

REPO = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer",
                                     description="Train, evaluate and export the ICH classifier.")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="CV on CT-ICH, final fit on every patient, export to --out")
    rep.add_argument("--ct-ich", type=Path, help="CT-ICH folder (Patients_CT/ + hemorrhage_diagnosis.csv)")
    rep.add_argument("--rsna-csv", type=Path, help="RSNA 2019 stage_2_train.csv (extra training data)")
    rep.add_argument("--rsna-dir", type=Path, help="folder of the RSNA 2019 DICOM files")
    rep.add_argument("--work", type=Path, default=None,
                     help="caches, runs and logs (default: the app's cache folder /trainer)")
    rep.add_argument("--out", type=Path, default=REPO / "models", help="where the weights and cards go")
    rep.add_argument("--figures", type=Path, default=REPO / "docs" / "training",
                     help="ROC curves, ablation chart, split and metrics JSON")
    rep.add_argument("--arm", choices=ARMS, default=None, help="training data of the bundled model")
    rep.add_argument("--ablation", action="store_true",
                     help="also cross-validate each lever of the recipe alone against the v1.0 recipe")
    rep.add_argument("--insert", type=float, default=None,
                     help="share of normal training slices that get an inserted lesion (0 = off)")
    rep.add_argument("--seg-weight", type=float, default=None,
                     help="weight of the training-only blood-map loss on inserted lesions (0 = off)")
    rep.add_argument("--level-balance", type=float, default=None,
                     help="draw normal slices at levels where bleeds are common up to this many times as often")
    rep.add_argument("--quick", action="store_true", help="tiny model end to end (CI smoke test)")
    rep.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs per run")
    rep.add_argument("--batch-size", type=int, default=None,
                     help="global batch per step, split evenly over torchrun's processes (recipe: 32)")
    rep.add_argument("--size", type=int, default=None, help="input side in pixels")
    rep.add_argument("--ema", type=float, default=None,
                     help="decay of an exponential moving average of the weights (0 = off)")
    rep.add_argument("--resume", action="store_true",
                     help="re-use finished runs and continue interrupted ones from their checkpoints")
    rep.add_argument("--device", default=None, help="auto (CUDA when present), cpu, cuda, cuda:N")
    rep.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    rep.add_argument("--cv-only", action="store_true",
                     help="cross-validate (and write results) without the final fit and export")
    rep.add_argument("--shards", type=Path, default=None,
                     help="folder made by `prepare` (extra training data, streamed from disk)")
    rep.add_argument("--loader-workers", type=int, default=0,
                     help="background processes reading training batches, per process (0: from RAM)")
    prep = sub.add_parser("prepare", help="preprocess CT-ICH, RSNA 2019 or a DICOM tree + labels into shards",
                          description="Turn a data set into shards of the app's model input (resumable: run "
                                      "the same command again to finish an interrupted one).")
    prep.add_argument("source", type=Path,
                      help="CT-ICH folder, RSNA 2019 folder (stage_2_train/ + stage_2_train.csv) or a DICOM tree")
    prep.add_argument("out", type=Path, help="shard folder (manifest.json + shard-*.hu.npy/.meta.npz)")
    prep.add_argument("--labels", type=Path, default=None,
                      help="label CSV for a DICOM tree: RSNA 'ID,Label' rows or SOPInstanceUID + label columns")
    prep.add_argument("--size", type=int, default=Config().size, help="input side in pixels (as reproduce --size)")
    prep.add_argument("--context", type=int, default=Config().context, help="neighbour slices on each side")
    prep.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    prep.add_argument("--shard-slices", type=int, default=2048, help="labelled slices per shard (at least)")
    return parser


def _config(args) -> Config:
    config = quick_config() if args.quick else Config()
    if args.arm:
        config.arm = args.arm
    if args.epochs:
        config.recipe = replace(config.recipe, epochs=args.epochs)
    if args.batch_size:
        config.recipe = replace(config.recipe, batch_size=args.batch_size)
    if args.size:
        config.size = args.size
    if args.ema is not None:
        config.recipe = replace(config.recipe, ema_decay=args.ema)
    if args.insert is not None:
        config.recipe = replace(config.recipe, insert=insert_settings(args.insert) if args.insert > 0 else None)
    if args.seg_weight is not None:
        config.recipe = replace(config.recipe, seg_weight=args.seg_weight)
    if args.level_balance is not None:
        config.recipe = replace(config.recipe, level_balance=args.level_balance)
    return config


def _extra(sets: dict):
    """The extra training data (RSNA and/or prepared shards) as one set, or None."""
    from trainer.cache import CachedSet

    parts = [sets[name] for name in ("rsna", "shards") if name in sets]
    return CachedSet.concat(parts) if len(parts) > 1 else (parts[0] if parts else None)


def _cv(config: Config, args, log, device, work: Path,
        dist: DistContext = SINGLE) -> tuple[Workspace, dict, dict | None, dict]:
    """One configuration's data and patient-level CV on the "real" arm (runs re-used with --resume)."""
    ws = Workspace(work, config, log, device, resume=args.resume, dist=dist, loader_workers=args.loader_workers)
    sets = ws.real(args.ct_ich, args.rsna_csv, args.rsna_dir, args.shards)
    real, extra = sets.get("ct-ich"), _extra(sets)
    if real is None:
        return ws, sets, None, {}
    result = cross_validate(ws, real, config.arm, extra if config.arm != "synthetic" else None)
    if dist.is_main:
        save_cv(result, real, work / "results" / config.run_id() / config.arm)
    m = result["metrics"]
    log(f"{config.run_id()}: AUC any {m['labels']['any']['auc']:.3f}, mean subtype {m['mean_subtype_auc']:.3f}, "
        f"log loss {m['weighted_log_loss']:.4f}")
    return ws, sets, result, m


def run_reproduce(args) -> int:
    """The whole recipe; under torchrun every rank trains and rank 0 alone evaluates and writes."""
    dist = init_distributed()
    try:
        return _reproduce(args, dist)
    finally:
        shutdown(dist)


def _reproduce(args, dist: DistContext) -> int:
    from ich_viewer.inference.device import choose_device
    from trainer.evaluation import finite_or_none, full_evaluation, summary
    from trainer.figures import plot_ablation, plot_reliability, plot_roc

    started = time.monotonic()
    config = _config(args)
    work = args.work or paths.cache_dir() / "trainer"
    log = Logger(work / "logs" / f"reproduce-{time.strftime('%Y%m%d-%H%M%S')}.log") if dist.is_main \
        else (lambda _: None)
    device = dist.device(choose_device(args.device))
    threads = set_threads(args.threads or (max(1, available_cores() // dist.local_world) if dist.active else None))
    log(f"config {config.run_id()}: {json.dumps(config.to_dict())}")
    log(f"device {device}, {threads} CPU threads, work folder {work}" +
        (f", {dist.world} processes ({dist.backend})" if dist.active else ""))
    if args.ct_ich is None and config.arm != "synthetic":
        log("no real evaluation data (--ct-ich): training on synthetic data only, no metrics")
        config.arm = "synthetic"
    ws, sets, chosen, _ = _cv(config, args, log, device, work, dist)
    real = sets.get("ct-ich")
    figures = Path(args.figures)
    metrics: dict = {}
    evaluation = None
    if chosen is not None and dist.is_main:
        evaluation = full_evaluation(real, chosen["probs"], chosen["fold_of"], config.spec(), seed=config.split_seed)
        metrics.update(evaluation["report"])
        metrics["first_stage_cross_validation"] = chosen["metrics"]
        title = f"CT-ICH patient-level {config.folds}-fold CV (out-of-fold real slices)"
        plot_roc(real.labels, evaluation["probs"], metrics["cross_validation"], figures / "roc_cv.png", title)
        plot_reliability(real.labels, evaluation["probs"], evaluation["calibrated"], figures / "reliability.png",
                         "Reliability on out-of-fold slices: before and after cross-fitted Platt scaling")
        figures.mkdir(parents=True, exist_ok=True)
        (figures / "split.json").write_text(json.dumps({"seed": config.split_seed, "folds": config.folds,
                                                        "patient_fold": chosen["split"]}, indent=1))
    if args.ablation and chosen is not None:
        levers = {}
        for name, lever in lever_configs(config).items():
            _, lever_sets, result, lever_metrics = _cv(lever, args, log, device, work, dist)
            levers[name] = {"summary": summary(lever_metrics), "recipe": lever.to_dict(), "metrics": lever_metrics}
        metrics["ablation"] = {name: entry["summary"] for name, entry in levers.items()}
        if dist.is_main:
            plot_ablation({name: entry["metrics"] for name, entry in levers.items()}, figures / "ablation.png",
                          "Levers on real CT-ICH slices held out by patient (same folds; first stage, uncalibrated)")
    if metrics and dist.is_main:
        (figures / "metrics.json").write_text(json.dumps(finite_or_none(metrics), indent=1, allow_nan=False))
    if args.cv_only:
        log(f"cross-validation done (--cv-only), wall {time.monotonic() - started:.0f} s")
        return 0
    return _export(args, config, ws, sets, chosen, evaluation, metrics, threads, started, log)


def _export(args, config: Config, ws: Workspace, sets: dict, chosen: dict | None, evaluation: dict | None,
            metrics: dict, threads: int, started: float, log: Callable[[str], None]) -> int:
    """The bundle: the fold models as one ensemble (or, without real data, the synthetic fit)."""
    from ich_viewer.inference.model import build_model, ensemble_state
    from ich_viewer.inference.weights import export_model
    from trainer.card import DATA_SOURCES, LIMITS, git_commit, model_card_markdown, parameter_count
    from trainer.evaluation import MIN_BRAIN_FRACTION, finite_or_none

    real, extra = sets.get("ct-ich"), _extra(sets)
    spec = config.spec()
    train_arch = arch_for(config.recipe if config.arm != "synthetic" else config.pretrain, spec)
    if chosen is None:
        model, _ = final_fit(ws, real, extra)  # every rank trains
        arch, thresholds, calibration, any_stage = train_arch, {label: 0.5 for label in LABELS}, None, None
    if not ws.dist.is_main:
        return 0
    if chosen is not None:
        members = chosen["models"]
        arch = {**train_arch, "members": len(members)}
        model = build_model(arch)
        model.load_state_dict(ensemble_state([m.state_dict() for m in members]))
        spec = replace(spec, min_brain_fraction=MIN_BRAIN_FRACTION)
        thresholds, calibration = evaluation["thresholds"], evaluation["calibration"]
        any_stage = evaluation["any_stage"]
        if evaluation["use_context"]:
            log("slice context helped in CV but is not part of the app's model format yet: bundled without it")
    used = ["ct-ich"] if real is not None else []
    used += ["synthetic"] if config.arm in ("synthetic", "both") or real is None else []
    used += [name for name in ("rsna", "shards") if name in sets]
    command = "python -m trainer reproduce" + (" --quick" if args.quick else "") + \
        (f" --ct-ich {shlex.quote(str(args.ct_ich))}" if args.ct_ich else "") + \
        (f" --arm {config.arm}" if args.arm else "") + (" --ablation" if args.ablation else "")
    wall = time.monotonic() - started
    cv_seconds = chosen["metrics"]["train_seconds"] if chosen else 0.0
    parts = {"caches": sum(d.build_seconds for d in (real, extra) if d is not None),
             "cross_validation": cv_seconds}
    if real is None:
        parts["synthetic"] = ws.synthetic().build_seconds + ws.pretrained()[1].seconds
    parts["total"] = sum(parts.values())
    card_extra = {
        "description": ("Slice-level intracranial hemorrhage classifier (2.5D residual CNN), the "
                        f"{len(chosen['models'])} cross-validation fold models as one ensemble, trained from scratch"
                        if chosen else "Slice-level intracranial hemorrhage classifier (2.5D residual CNN) trained from scratch"),
        "intended_use": "Research and decision support only; not a diagnosis.",
        "metrics": finite_or_none(metrics),
        "threshold_rule": metrics.get("operating_rule", "0.5 (no real-data evaluation)"),
        "data": {"used": used, "sources": {k: DATA_SOURCES[k] for k in used},
                 "training_slices": {"ct-ich": int(len(real)) if real is not None else 0,
                                     "rsna": int(len(sets["rsna"])) if "rsna" in sets else 0,
                                     **({"shards": int(len(sets["shards"]))} if "shards" in sets else {})},
                 "split": chosen["split"] if chosen else {}},
        "recipe": config.to_dict(),
        "seed": config.recipe.seed,
        "split_seed": config.split_seed,
        "git_commit": git_commit(REPO),
        "training": {"parameters": parameter_count(model), "device": str(ws.device), "threads": threads,
                     "slices_per_second": chosen["metrics"]["train_slices_per_second"] if chosen else None,
                     "command_wall_seconds": wall, "reproduce_seconds": parts,
                     "reproduce_seconds_note": "sum of the measured cache-building and training times of the "
                                               "runs behind these weights (runs re-used with --resume keep "
                                               "the times they were trained in)"},
        "limits": LIMITS,
        "reproduce_command": command,
        "quick": bool(args.quick),
    }
    name = "ich-resnet-quick" if args.quick else "ich-resnet-ctich"
    card_path = export_model(model, arch, spec, thresholds, card_extra, args.out, name=name, version="2.1.0",
                             calibration=calibration, any_stage=any_stage)
    card = json.loads(card_path.read_text())
    (Path(args.out) / "MODEL_CARD.md").write_text(model_card_markdown(card), encoding="utf-8")
    log(f"exported {card_path} (sha256 {card['sha256'][:12]}), wall {wall:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "reproduce":
        if bool(args.rsna_csv) != bool(args.rsna_dir):
            print("--rsna-csv and --rsna-dir go together", file=sys.stderr)
            return 2
        try:
            return run_reproduce(args)
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command == "prepare":
        return run_prepare(args)
    raise AssertionError(args.command)


def run_prepare(args) -> int:
    from ich_viewer.inference.preprocess import InputSpec
    from trainer.data.ctich import DatasetError
    from trainer.prepare import prepare

    try:
        spec = InputSpec.from_dict({"size": args.size, "context": args.context})
        if args.shard_slices < 1 or (args.workers is not None and args.workers < 1):
            raise ValueError("--shard-slices and --workers must be at least 1")
        prepare(args.source, args.out, spec, labels_csv=args.labels, workers=args.workers,
                shard_slices=args.shard_slices)
    except (ValueError, FileNotFoundError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

