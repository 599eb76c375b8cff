"""Shared fixtures: settings, models, phantom series and windows, one definition each.

Qt tests run on the offscreen platform with their own QSettings. Models are random
test networks (plumbing, never accuracy), exported once per session and never modified
by a test (a test that changes files copies the folder first).
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterator

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ich_viewer import LABELS  # noqa: E402

SMALL_SIZE = 64
"""Input size of the test networks: small enough for a CPU test, large enough for the crop."""
PHANTOM_SLICES = 14


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """Fail a test that leaves a Python thread running behind it."""
    before = set(threading.enumerate())
    yield
    leaked = []
    for thread in set(threading.enumerate()) - before:
        if thread.daemon:  # daemons (and Qt's pool threads, seen as dummies) never hold the exit
            continue
        thread.join(timeout=5)
        if thread.is_alive():
            leaked.append(thread.name)
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def isolated_settings(tmp_path, monkeypatch):
    """Point QSettings and the app data folder at a temporary place for one test."""
    monkeypatch.setenv("ICH_VIEWER_DATA_DIR", str(tmp_path / "appdata"))
    monkeypatch.setenv("ICH_VIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    return tmp_path


# -- phantom series ---------------------------------------------------------------------
def make_phantom_series(seed: int = 1, n: int = PHANTOM_SLICES, uid: str = "1.2.826.0.1.3680043.8.498.77",
                        matrix: int = 128) -> Any:
    """A synthetic head with a subdural and an intraparenchymal bleed as an in-memory Series."""
    from ich_viewer.dicom.model import Series
    from ich_viewer.phantom import generate_phantom

    ph = generate_phantom(seed=seed, subtypes=["subdural", "intraparenchymal"], matrix=matrix, n_slices=n)
    return Series.from_array(ph.volume_hu, series_uid=uid, spacing_mm=ph.spacing_mm,
                             pixel_spacing=ph.pixel_spacing, description=f"phantom {seed}")


@pytest.fixture
def phantom_series() -> Callable[..., Any]:
    """``phantom_series(seed=1, n=14, uid=...)``: see ``make_phantom_series``."""
    return make_phantom_series


# -- models (session-scoped: exporting a network costs a second or two) --------------------
@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A small random network (64 px input) with the default thresholds."""
    from ich_viewer.inference.preprocess import InputSpec
    from ich_viewer.inference.testing import SMALL_ARCH, export_random_model

    return export_random_model(tmp_path_factory.mktemp("model"), spec=InputSpec(size=SMALL_SIZE),
                               arch_changes=SMALL_ARCH, seed=3)


@pytest.fixture(scope="session")
def flagging_model_dir(tmp_path_factory):
    """A random network biased to flag ("any" high): gives the review and reports something to show."""
    from ich_viewer.inference.testing import SMALL_ARCH, export_random_model

    return export_random_model(tmp_path_factory.mktemp("flagging"), arch_changes=SMALL_ARCH, seed=1, any_bias=3.0)


@pytest.fixture(scope="session")
def graded_model_dir(tmp_path_factory):
    """Thresholds placed on ``make_phantom_series(1)``'s own probabilities, so some slices
    are flagged (some with two subtypes, some with "any" only) and some not."""
    from ich_viewer.inference.predict import PredictState, predict_series
    from ich_viewer.inference.preprocess import InputSpec
    from ich_viewer.inference.testing import SMALL_ARCH, export_random_model
    from ich_viewer.inference.weights import load_model

    spec = InputSpec(size=SMALL_SIZE)
    probe = export_random_model(tmp_path_factory.mktemp("probe"), spec=spec, arch_changes=SMALL_ARCH, seed=7)
    result = predict_series(make_phantom_series(1), PredictState(load_model(probe, "cpu")))
    probs = {label: np.array([s.probabilities[label] for s in result.slices]) for label in LABELS}
    thresholds = {label: 1 - 1e-6 for label in LABELS}
    thresholds["subdural"] = float(np.quantile(probs["subdural"], 0.5))
    thresholds["intraparenchymal"] = float(np.quantile(probs["intraparenchymal"], 0.7))
    thresholds["any"] = float(np.quantile(probs["any"], 0.6))
    return export_random_model(tmp_path_factory.mktemp("graded"), spec=spec, arch_changes=SMALL_ARCH, seed=7,
                               thresholds=thresholds)


# -- windows -------------------------------------------------------------------------------
@pytest.fixture
def make_window(qtbot, isolated_settings) -> Iterator[Callable[..., Any]]:
    """``make_window(options=None, extensions=None)``: a shown MainWindow (like napari's
    ``make_napari_viewer``). ``extensions=[]`` gives the bare window. Each window is
    closed after the test, and the test fails when any of its background tasks is still
    running after the close."""
    from ich_viewer.options import ViewOptions
    from ich_viewer.ui.app import build_window
    from ich_viewer.ui.tasks import TaskRunner

    windows: list[Any] = []

    def make(options: ViewOptions | None = None, extensions: list[str] | None = None) -> Any:
        win = build_window(options or ViewOptions(), extensions)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        win.activateWindow()
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.close()
        busy = [r for r in win.findChildren(TaskRunner) if not r.is_idle()]
        assert not busy, f"{len(busy)} background task(s) still running after the window closed"
        assert not win.cine_running()
