"""Persistent preferences (recent studies, window layout) through QSettings.

Tests and portable installs point ``ICH_VIEWER_SETTINGS`` at an ini file so they never
touch the user's real settings.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QSettings

from ich_viewer.imaging.presets import SUGGESTED_USER_PRESETS, Preset, format_user_presets, parse_user_presets

ORGANIZATION = "ICH Viewer"
APPLICATION = "ICH Viewer"
RECENT_KEY = "recent/studies"
USER_PRESETS_KEY = "presets/own"
MAX_RECENT = 10


def app_settings() -> QSettings:
    path = os.environ.get("ICH_VIEWER_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def recent_studies() -> list[str]:
    return [v for v in _as_list(app_settings().value(RECENT_KEY, [])) if v]


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


def _as_list(value: object) -> list[str]:
    if isinstance(value, str):  # QSettings returns a bare string for a one-item list
        return [value]
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def user_presets() -> list[Preset]:
    """The reader's own window presets (Shift+1 ...); the suggestions until any were saved."""
    settings = app_settings()
    if not settings.contains(USER_PRESETS_KEY):
        return list(SUGGESTED_USER_PRESETS)
    return parse_user_presets(_as_list(settings.value(USER_PRESETS_KEY, [])))


def save_user_presets(presets: list[Preset]) -> None:
    settings = app_settings()
    settings.setValue(USER_PRESETS_KEY, format_user_presets(presets) or "")
    settings.sync()
