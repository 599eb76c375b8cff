"""The trainer's --quick mode end to end: train, export, load in the app's runtime, predict."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ich_viewer import LABELS


@pytest.mark.slow
def test_quick_reproduce_exports_a_model_the_app_loads_and_runs(tmp_path):
    from ich_viewer.dicom.model import Series
    from ich_viewer.inference.predict import PredictState, predict_series
    from ich_viewer.inference.weights import load_model
    from ich_viewer.phantom import generate_phantom
    from trainer.commands import main

    out = tmp_path / "model"
    code = main(["reproduce", "--quick", "--work", str(tmp_path / "work"), "--out", str(out),
                 "--figures", str(tmp_path / "figures")])
    assert code == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["labels"] == list(LABELS)
    assert card["quick"] is True and card["recipe"]["size"] == 64
    assert card["data"]["used"] == ["synthetic"]
    assert card["git_commit"] and card["versions"]["torch"]
    assert (out / "MODEL_CARD.md").read_text().count("not a diagnosis") >= 1
    # The run left a checkpoint-free finished run that --resume re-uses without training.
    assert list((tmp_path / "work" / "runs").glob("synthetic-*/pretrain/done.pt"))

    loaded = load_model(out, device="cpu")
    assert loaded.spec.size == 64
    phantom = generate_phantom(seed=5, subtypes=["subdural"], matrix=128)
    series = Series.from_array(phantom.volume_hu, spacing_mm=phantom.spacing_mm)
    result = predict_series(series, PredictState(loaded=loaded))
    assert len(result.slices) == len(series)
    probs = np.array([[s.probabilities[label] for label in LABELS] for s in result.slices])
    assert np.all((probs >= 0) & (probs <= 1))
    assert np.all(probs[:, -1] >= probs[:, :-1].max(axis=1) - 1e-9)  # "any" >= subtypes


def test_reproduce_without_data_gives_a_clear_error(tmp_path, capsys):
    from trainer.commands import main

    code = main(["reproduce", "--quick", "--ct-ich", str(tmp_path / "nowhere"), "--work", str(tmp_path / "w"),
                 "--out", str(tmp_path / "m")])
    assert code == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "m" / "model_card.json").exists()
