"""The window says why a series with a broken HU scale is not analysed (issue 15)."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from reliability_helpers import edit_series, small_study  # noqa: E402
from ich_viewer.dicom.loader import load_study  # noqa: E402
from ich_viewer.inference.preprocess import InputSpec  # noqa: E402
from ich_viewer.inference.testing import SMALL_ARCH, export_random_model  # noqa: E402


def test_window_shows_why_a_series_is_not_analysed(qtbot, make_window, tmp_path, monkeypatch):
    from ich_viewer.ui.load_log import load_log_rows

    model = export_random_model(tmp_path / "model", spec=InputSpec(size=48), arch_changes=SMALL_ARCH, seed=2)
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(model))
    folder = edit_series(small_study(tmp_path / "base"), tmp_path / "s", RescaleIntercept="nan")
    win = make_window()
    inference = win.extensions["inference"]
    qtbot.waitUntil(lambda: inference.loaded is not None, timeout=20000)
    study = load_study(folder)
    win.show_study(study)
    qtbot.wait(200)
    banner = inference.banner.plain_text()
    assert "Not analysed" in banner and "RescaleIntercept nan is not a finite number" in banner
    assert not inference.session.predictions_of(study.series[0])
    assert any("RescaleIntercept nan" in message for _, _, message in load_log_rows(study))
    win.close()
    assert inference.runner.is_idle()


def test_window_drops_every_flag_of_a_model_that_gives_nan(qtbot, make_window, tmp_path, monkeypatch):
    import json
    import shutil

    import torch

    from ich_viewer.inference.weights import CARD_NAME, WEIGHTS_NAME, sha256_file
    model = export_random_model(tmp_path / "model", spec=InputSpec(size=48), arch_changes=SMALL_ARCH, seed=2,
                                any_bias=3.0)
    state = torch.load(model / WEIGHTS_NAME, weights_only=True)
    state["fc.bias"][0] = float("nan")  # tampered, then re-signed: the card check passes
    torch.save(state, model / WEIGHTS_NAME)
    card = json.loads((model / CARD_NAME).read_text())
    card["sha256"] = sha256_file(model / WEIGHTS_NAME)
    (model / CARD_NAME).write_text(json.dumps(card))
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(model))
    study = load_study(small_study(tmp_path / "study"))
    win = make_window()
    inference = win.extensions["inference"]
    qtbot.waitUntil(lambda: inference.loaded is not None, timeout=20000)
    win.show_study(study)
    qtbot.waitUntil(lambda: "stopped with an error" in inference.banner.plain_text(), timeout=30000)
    assert "non-finite outputs" in inference.banner.plain_text()
    assert not inference.session.predictions_of(study.series[0])
    win.close()
    assert inference.runner.is_idle()
    shutil.rmtree(tmp_path / "model")
