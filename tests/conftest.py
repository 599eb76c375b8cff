"""Shared fixtures. Qt tests run on the offscreen platform with their own QSettings."""
from __future__ import annotations

import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pytest


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """Fail a test that leaves a Python thread running behind it."""
    before = set(threading.enumerate())
    yield
    leaked = []
    for thread in set(threading.enumerate()) - before:
        if isinstance(thread, threading._DummyThread):
            continue  # a Qt thread Python only saw through logging: cannot be joined (QThreads are checked by the tests)
        thread.join(timeout=5)
        if thread.is_alive() and not thread.daemon:
            leaked.append(thread.name)
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def isolated_settings(tmp_path, monkeypatch):
    """Point QSettings and the app data folder at a temporary place for one test."""
    monkeypatch.setenv("ICH_VIEWER_DATA_DIR", str(tmp_path / "appdata"))
    monkeypatch.setenv("ICH_VIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    return tmp_path
