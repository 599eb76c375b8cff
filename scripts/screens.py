"""What the screenshot scripts share: private settings and waiting while Qt works.

Imported by the scripts in this folder (``python scripts/make_*.py`` puts the folder on
``sys.path``). Qt is imported only inside ``wait``, after the settings are set.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable


def private_settings(prefix: str) -> Path:
    """Point the program's settings and data folder at a new temporary folder (a fresh install)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["ICH_VIEWER_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["ICH_VIEWER_DATA_DIR"] = str(tmp / "data")
    return tmp


def wait(condition: Callable[[], bool], seconds: float) -> bool:
    """Process Qt events until ``condition()`` holds (True) or ``seconds`` pass (False)."""
    from PySide6.QtCore import QCoreApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False
