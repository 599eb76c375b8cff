"""Persistent preferences (recent studies, window layout) through QSettings.

Tests and portable installs point ``ICH_VIEWER_SETTINGS`` at an ini file so they never
touch the user's real settings.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QSettings

ORGANIZATION = "ICH Viewer"
APPLICATION = "ICH Viewer"
RECENT_KEY = "recent/studies"
MAX_RECENT = 10


def app_settings() -> QSettings:
    path = os.environ.get("ICH_VIEWER_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def recent_studies() -> list[str]:
    value = app_settings().value(RECENT_KEY, [])
    if isinstance(value, str):  # QSettings returns a bare string for a one-item list
        value = [value]
    return [str(v) for v in (value if isinstance(value, (list, tuple)) else []) if v]


def add_recent_study(path: str) -> list[str]:
    """Put ``path`` first in the recent list (no duplicates, at most MAX_RECENT)."""
    items = [path] + [p for p in recent_studies() if p != path]
    items = items[:MAX_RECENT]
    settings = app_settings()
    settings.setValue(RECENT_KEY, items)
    settings.sync()
    return items


def clear_recent_studies() -> None:
    settings = app_settings()
    settings.remove(RECENT_KEY)
    settings.sync()
