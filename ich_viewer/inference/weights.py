"""The bundled weights and their model card: the one place that defines the format.

``models/`` holds ``model_card.json`` and the weights file it names. The card records
architecture, input specification, label order, per-label thresholds, the sha256 of the
weights, versions, and whatever the trainer adds (metrics, data, licences, recipe, seed,
commit). Loading checks all of it and refuses anything missing, tampered or mismatched
with a readable ``ModelLoadError`` so the viewer can keep working without predictions.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from ich_viewer import LABELS, __version__, paths
from ich_viewer.inference.device import choose_device
from ich_viewer.inference.hu_features import check_any_stage
from ich_viewer.inference.model import ICHEnsemble, ICHNet, build_model, check_calibration, normalise_arch
from ich_viewer.inference.preprocess import InputSpec
from ich_viewer.inference.results import ModelInfo

CARD_NAME = "model_card.json"
WEIGHTS_NAME = "ich_classifier.pt"
CARD_FORMAT = "ich-viewer-model-card"
CARD_FORMAT_VERSION = 1
PROTECTED_KEYS = frozenset({
    "format", "format_version", "name", "version", "architecture", "input_spec", "labels",
    "thresholds", "weights_file", "sha256", "versions", "created", "calibration", "any_stage",
})
"""Card fields export_model owns; ``card_extra`` may not override them."""


class ModelLoadError(RuntimeError):
    """The model could not be used; the message says what is wrong and where."""


@dataclass
class LoadedModel:
    """A checked, ready-to-run network with everything needed to interpret it."""

    model: ICHNet | ICHEnsemble
    card: dict
    spec: InputSpec
    thresholds: dict[str, float]
    info: ModelInfo
    device: torch.device
    model_dir: Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_thresholds(thresholds: object) -> dict[str, float]:
    if not isinstance(thresholds, dict):
        raise ValueError("thresholds must be a mapping of label to probability")
    missing = [label for label in LABELS if label not in thresholds]
    extra = sorted(set(thresholds) - set(LABELS))
    if missing or extra:
        raise ValueError(f"thresholds must name exactly the six labels (missing {missing}, unknown {extra})")
    out = {label: float(thresholds[label]) for label in LABELS}
    bad = [label for label, value in out.items() if not 0.0 < value < 1.0]
    if bad:
        raise ValueError(f"thresholds must lie strictly between 0 and 1 (bad: {bad})")
    return out


def _check_calibration(calibration) -> dict[str, list[float]]:
    """``{"scale": [6], "bias": [6]}`` applied to the logits (identity when absent)."""
    if calibration is None:
        return {"scale": [1.0] * len(LABELS), "bias": [0.0] * len(LABELS)}
    if not isinstance(calibration, dict):
        raise ValueError("calibration must be a mapping with 'scale' and 'bias'")
    if "scale" not in calibration or "bias" not in calibration:
        raise ValueError("calibration needs 'scale' and 'bias'")
    scale, bias = check_calibration(calibration["scale"], calibration["bias"])
    return {"scale": scale.tolist(), "bias": bias.tolist()}


def export_model(
    model: torch.nn.Module,
    arch: dict,
    spec: InputSpec,
    thresholds: dict[str, float],
    card_extra: dict | None,
    out_dir: str | os.PathLike,
    *,
    name: str = "ich-resnet",
    version: str = "0.0.0",
    calibration: dict | None = None,
    any_stage: dict | None = None,
) -> Path:
    """Write the weights and ``model_card.json`` into ``out_dir``; returns the card path.

    ``card_extra`` carries the trainer's facts (metrics, data, licences, recipe, seed,
    git commit, ...); it may not override the fields this function owns. ``calibration``
    (per-label ``scale`` and ``bias`` on the logits) belongs with ``thresholds``: both are
    fitted on the same out-of-fold predictions and the thresholds are on the calibrated scale.
    ``any_stage`` (``hu_features``) re-weighs "any" with measured HU features; the
    calibration of "any" and its threshold are then fitted on the stage's output.
    """
    extra = dict(card_extra or {})
    clash = sorted(PROTECTED_KEYS & set(extra))
    if clash:
        raise ValueError(f"card_extra may not set {clash}; pass name/version as arguments")
    arch = normalise_arch(arch)
    if arch["in_channels"] != spec.n_channels:
        raise ValueError(f"architecture expects {arch['in_channels']} channels, input spec gives {spec.n_channels}")
    checked = _check_thresholds(thresholds)
    calibration_checked = _check_calibration(calibration)
    stage_checked = check_any_stage(any_stage) if any_stage is not None else None
    # Prove the state dict fits the declared architecture before writing anything.
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    build_model(arch).load_state_dict(state, strict=True)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / WEIGHTS_NAME
    _atomic(weights_path, lambda tmp: torch.save(state, tmp))
    card = {
        "format": CARD_FORMAT,
        "format_version": CARD_FORMAT_VERSION,
        "name": name,
        "version": version,
        "architecture": arch,
        "input_spec": spec.to_dict(),
        "labels": list(LABELS),
        "thresholds": checked,
        "calibration": calibration_checked,
        **({"any_stage": stage_checked} if stage_checked is not None else {}),
        "weights_file": WEIGHTS_NAME,
        "sha256": sha256_file(weights_path),
        "versions": {"torch": torch.__version__, "app": __version__, "python": platform.python_version()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    card_path = out / CARD_NAME
    text = json.dumps(card, indent=2, sort_keys=False, default=str)
    _atomic(card_path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return card_path


def _atomic(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_card(model_dir: str | os.PathLike | None = None) -> dict:
    """The parsed model card, or ModelLoadError saying why there is none."""
    folder = Path(model_dir) if model_dir is not None else paths.models_dir()
    card_path = folder / CARD_NAME
    if not card_path.is_file():
        raise ModelLoadError(f"No classifier model: {card_path} does not exist. "
                             "The viewer works without predictions; train and export one with `python -m trainer`.")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"The model card {card_path} cannot be read: {exc}") from exc
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ModelLoadError(f"{card_path} is not an ICH Viewer model card (format field missing or wrong)")
    if card.get("format_version") != CARD_FORMAT_VERSION:
        raise ModelLoadError(f"{card_path}: card format version {card.get('format_version')!r} is not supported "
                             f"(this program reads version {CARD_FORMAT_VERSION})")
    return card


def _load_failure(exc: Exception) -> str:
    """Why torch.load refused the file, in our words.

    PyTorch's own message advises re-running with ``weights_only=False``, which would
    run whatever code the file holds; a user must never be told that.
    """
    import pickle

    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text or "Unsupported global" in text:
        return ("it holds more than plain tensors (Python objects or code that loading would run); "
                "weights are only ever read as plain tensors, so this file is refused. "
                "Export the model again with `python -m trainer`.")
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"it is not a readable weights file ({type(exc).__name__}: {first[:200]})"


def load_model(model_dir: str | os.PathLike | None = None, device: str | torch.device | None = None) -> LoadedModel:
    """Check the card and the weights, build the network and move it to ``device``."""
    folder = Path(model_dir) if model_dir is not None else paths.models_dir()
    card = read_card(folder)
    where = folder / CARD_NAME
    labels = card.get("labels")
    if list(labels or []) != list(LABELS):
        raise ModelLoadError(f"{where}: label order {labels} does not match this program's {list(LABELS)}")
    try:
        thresholds = _check_thresholds(card.get("thresholds"))
        calibration = _check_calibration(card.get("calibration"))
        any_stage = check_any_stage(card["any_stage"]) if card.get("any_stage") is not None else None
        arch = normalise_arch(card.get("architecture") or {})
        spec = InputSpec.from_dict(card.get("input_spec") or {})
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{where}: {exc}") from exc
    if arch["in_channels"] != spec.n_channels:
        raise ModelLoadError(f"{where}: architecture expects {arch['in_channels']} input channels "
                             f"but the input spec gives {spec.n_channels}")
    weights_name = card.get("weights_file")
    if not isinstance(weights_name, str) or not weights_name or Path(weights_name).name != weights_name:
        raise ModelLoadError(f"{where}: weights_file must be a plain file name, got {weights_name!r}")
    weights_path = folder / weights_name
    if not weights_path.is_file():
        raise ModelLoadError(f"The weights file {weights_path} named by the model card is missing")
    expected = str(card.get("sha256", "")).lower()
    actual = sha256_file(weights_path)
    if actual != expected:
        raise ModelLoadError(f"The weights file {weights_path} does not match its model card "
                             f"(sha256 {actual[:12]}..., card says {expected[:12] or 'nothing'}...): "
                             "it was changed or damaged; refusing to use it")
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"The weights file {weights_path} cannot be used: {_load_failure(exc)}") from exc
    model = build_model(arch)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"The weights in {weights_path} do not fit the card's architecture: {first}") from exc
    model.set_calibration(calibration["scale"], calibration["bias"])
    model.set_any_stage(any_stage, spec)
    target = device if isinstance(device, torch.device) else choose_device(device)
    model = model.to(target).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    info = ModelInfo(
        name=str(card.get("name", "")),
        version=str(card.get("version", "")),
        sha256=actual,
        device=str(target),
        thresholds=thresholds,
        architecture=arch["name"],
    )
    return LoadedModel(model=model, card=card, spec=spec, thresholds=thresholds, info=info,
                       device=target, model_dir=folder)
