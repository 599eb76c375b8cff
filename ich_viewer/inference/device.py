"""Which torch device runs the classifier: CUDA, else Apple MPS, else CPU.

A ``--device`` option or the saved preference overrides the automatic choice; asking
for a device this machine does not have is an error with a readable reason rather
than a silent fallback, so the reader knows what actually ran.
"""
from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)

AUTO = "auto"
CHOICES = ("auto", "cpu", "cuda", "mps")


class DeviceError(RuntimeError):
    """The requested device does not exist here; the message says why."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Device names usable on this machine, best first (always ends with "cpu")."""
    names = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if _mps_available():
        names.append("mps")
    return names + ["cpu"]


def choose_device(preference: str | None = None) -> torch.device:
    """The device for ``preference`` ("auto"/None, "cpu", "cuda", "cuda:N", "mps")."""
    wanted = (preference or AUTO).strip().lower()
    if wanted == AUTO:
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if wanted == "cpu":
        return torch.device("cpu")
    if wanted == "cuda" or wanted.startswith("cuda:"):
        if not torch.cuda.is_available():
            built = torch.version.cuda or "no CUDA support"
            raise DeviceError(
                f"device {preference!r} was requested but no CUDA GPU is available here "
                f"(torch {torch.__version__}, built with {built}); use --device cpu or auto")
        index = 0
        if ":" in wanted:
            try:
                index = int(wanted.split(":", 1)[1])
            except ValueError:
                raise DeviceError(f"device {preference!r}: the GPU number must be an integer, e.g. cuda:0") from None
        count = torch.cuda.device_count()
        if not 0 <= index < count:
            raise DeviceError(f"device {preference!r}: only {count} CUDA device(s) here (cuda:0..cuda:{count - 1})")
        return torch.device("cuda", index)
    if wanted == "mps":
        if not _mps_available():
            raise DeviceError(f"device {preference!r} was requested but Apple MPS is not available here; "
                              "use --device cpu or auto")
        return torch.device("mps")
    raise DeviceError(f"unknown device {preference!r}; choose one of auto, cpu, cuda, cuda:N, mps")


def describe_device(device: torch.device) -> str:
    """Short human text for the status bar, e.g. "CPU (1 thread)" or "CUDA 0: <GPU name>"."""
    if device.type == "cuda":
        index = device.index or 0
        try:
            name = torch.cuda.get_device_name(index)
        except Exception:  # pragma: no cover - driver trouble is reported, not fatal
            log.warning("CUDA device %d has no readable name", index, exc_info=True)
            name = "GPU"
        return f"CUDA {index}: {name}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


def background_threads() -> int:
    """Torch threads for inference beside a UI: leave one core to the event loop."""
    cores = os.cpu_count() or 1
    return max(1, cores - 1)
