"""The classifier in models/: what the app loads, and that its card tells the measured truth."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ich_viewer import LABELS, paths
from ich_viewer.inference.model import ICHEnsemble
from ich_viewer.inference.weights import load_model

CARD = paths.models_dir() / "model_card.json"
pytestmark = pytest.mark.skipif(not CARD.is_file(), reason="no bundled model in models/")


@pytest.fixture(scope="module")
def loaded():
    return load_model(None, device="cpu")


def test_the_bundle_is_the_calibrated_fold_ensemble_with_a_no_brain_gate(loaded):
    card = loaded.card
    members = card["architecture"]["members"]
    assert isinstance(loaded.model, ICHEnsemble) and len(loaded.model.members) == members == card["recipe"]["folds"]
    assert loaded.spec.min_brain_fraction > 0
    calibration = card["calibration"]
    assert calibration["scale"] != [1.0] * 6 or calibration["bias"] != [0.0] * 6  # fitted, not the identity
    for label in LABELS:  # thresholds are the stated operating points, on the calibrated scale
        assert card["metrics"]["operating_points"][label]["threshold"] == pytest.approx(loaded.thresholds[label])


def test_the_card_states_real_cross_validated_numbers_and_the_markdown_matches(loaded):
    card = loaded.card
    metrics = card["metrics"]
    cv = metrics["cross_validation"]
    assert cv["patients"] == 66 and cv["slices"] == 1995  # every real CT-ICH slice, nothing synthetic
    assert set(metrics) >= {"exam_level", "operating_points", "calibration", "post_hoc_levers", "ablation"}
    assert "ct-ich" in card["data"]["used"] and "CC BY 4.0" in card["data"]["sources"]["ct-ich"]["licence"]
    text = (paths.models_dir() / "MODEL_CARD.md").read_text(encoding="utf-8")
    auc_any = cv["labels"]["any"]["auc"]
    assert re.search(rf"\| any \| {auc_any:.3f} \(", text), "MODEL_CARD.md shows the card's AUC for 'any'"
    assert f"AUC {metrics['exam_level']['auc']:.3f}" in text
    assert "not a diagnosis" in text and "Hssayeni" in text
    for name in metrics["ablation"]:
        assert name in text
    json.dumps(card, allow_nan=False)  # strict JSON


def test_the_bundle_scores_a_real_study_and_skips_slices_without_brain(loaded):
    from ich_viewer.demo import demo_study_path
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.inference.predict import PredictState, predict_series

    study = load_study(demo_study_path("ct-ich"))
    series = study.series[0]
    result = predict_series(series, PredictState(loaded=loaded))
    assert len(result.slices) == len(series)
    probs = np.array([[s.probabilities[label] for label in LABELS] for s in result.slices if s.scored])
    assert np.all(np.isfinite(probs)) and np.all((probs >= 0) & (probs <= 1))
    if loaded.model.any_stage is None:  # "any" lifted to the largest subtype
        assert np.all(probs[:, -1] >= probs[:, :-1].max(axis=1) - 1e-9)
    else:  # "any" is the second stage's own estimate; the demo patient's subdural is flagged
        assert any("any" in s.flagged for s in result.slices)
    assert all(not s.flagged for s in result.slices if not s.scored)
