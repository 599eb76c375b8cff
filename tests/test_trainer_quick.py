"""The trainer's --quick mode end to end: train, export, load in the app's runtime, predict."""
from __future__ import annotations

import json
from pathlib import Path

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


CT_ICH = Path(__file__).resolve().parents[2] / "shared" / "data" / "ct-ich"


@pytest.mark.slow
@pytest.mark.skipif(not (CT_ICH / "hemorrhage_diagnosis.csv").is_file(), reason="CT-ICH not at ../shared/data/ct-ich")
def test_quick_reproduce_on_real_slices_exports_a_calibrated_fold_ensemble(tmp_path):
    """The real-data path end to end: CV, evaluation, calibration, ensemble export, strict JSON."""
    from ich_viewer.inference.model import ICHEnsemble
    from ich_viewer.inference.weights import load_model
    from trainer.commands import main

    out, figures = tmp_path / "model", tmp_path / "figures"
    code = main(["reproduce", "--quick", "--ct-ich", str(CT_ICH), "--work", str(tmp_path / "work"),
                 "--out", str(out), "--figures", str(figures), "--insert", "0.5"])
    assert code == 0
    card = json.loads((out / "model_card.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in card"))
    assert card["data"]["used"] == ["ct-ich"] and card["recipe"]["recipe"]["insert"]["probability"] == 0.5
    assert card["metrics"]["cross_validation"]["patients"] == 8
    assert {"exam_level", "operating_points", "calibration", "post_hoc_levers"} <= set(card["metrics"])
    loaded = load_model(out, device="cpu")
    assert isinstance(loaded.model, ICHEnsemble) and len(loaded.model.members) == 2
    assert loaded.spec.min_brain_fraction > 0
    for name in ("roc_cv.png", "reliability.png", "metrics.json", "split.json"):
        assert (figures / name).is_file(), name
    json.loads((figures / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in metrics"))


def test_non_finite_metrics_become_null():
    from trainer.evaluation import finite_or_none

    data = {"auc": float("nan"), "ci": [0.5, float("inf")], "nested": {"x": 1, "y": float("-inf")}, "s": "a"}
    assert finite_or_none(data) == {"auc": None, "ci": [0.5, None], "nested": {"x": 1, "y": None}, "s": "a"}
    json.dumps(finite_or_none(data), allow_nan=False)
