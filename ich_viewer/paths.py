"""Where the program finds its bundled files and keeps its own data.

Works from a source checkout, an installed wheel and a PyInstaller bundle. The program's
own data (review decisions, caches, logs) never goes inside a study folder.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def bundle_root() -> Path:
    """The folder holding ``resources/`` and ``models/``."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    return bundle_root() / "resources"


def models_dir() -> Path:
    override = os.environ.get("ICH_VIEWER_MODEL_DIR")
    return Path(override) if override else bundle_root() / "models"


def data_dir() -> Path:
    """The program's own writable folder (XDG on Linux, per-user elsewhere)."""
    override = os.environ.get("ICH_VIEWER_DATA_DIR")
    if override:
        path = Path(override)
    elif sys.platform == "win32":
        path = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "ICH Viewer"
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / "ICH Viewer"
    else:
        path = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "ich-viewer"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = data_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
