"""The series' head angle: found by mirror symmetry, the HU stage reads left and right upright."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ich_viewer.demo import demo_study_path
from ich_viewer.dicom.loader import load_study
from ich_viewer.inference.guards import plausible_slabs
from ich_viewer.inference.head_angle import SAMPLE_SLICES, sample_indices, turned, upright_turn
from ich_viewer.inference.hu_features import FEATURE_NAMES, input_features
from ich_viewer.inference import predict as predict_module
from ich_viewer.inference.predict import PredictState, known_upright, predict, series_upright
from ich_viewer.inference.preprocess import InputSpec, apply_windows, centre_hu
from ich_viewer.inference.weights import load_model
from trainer.any_stage import slice_features as trainer_features
from trainer.cache import CachedSet
from trainer.evaluation import head_turn_report

SIZE = 128
SPEC = InputSpec(size=SIZE, context=1)
ASYMMETRY = [FEATURE_NAMES.index(n) for n in ("asymmetry_8", "asymmetry_15")]


def head(seed: int = 0) -> np.ndarray:
    """An upright 128 px head, symmetric left to right but not round: an oval skull, two
    ventricles, a sulcus on each side, brain with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    oval = np.hypot((yy - 64) / 58, (xx - 64) / 46)
    hu = np.full((SIZE, SIZE), -1000.0, np.float32)
    hu[oval < 1] = 1000.0
    brain = oval < 0.88
    hu[brain] = 33.0 + rng.normal(0, 3, brain.sum())
    for side in (-1, 1):
        hu[np.hypot((yy - 58) / 14, (xx - 64 - side * 9) / 4) < 1] = 5.0   # lateral ventricle
        hu[np.hypot((yy - 40) / 3, (xx - 64 - side * 30) / 8) < 1] = 8.0   # a sulcus
    return hu


def heads(n: int = 3) -> torch.Tensor:
    return torch.from_numpy(np.stack([head(seed) for seed in range(n)]))


def windowed(hu: torch.Tensor) -> torch.Tensor:
    """Network inputs (context 1: three identical slices) of (B, S, S) HU."""
    return torch.stack([apply_windows(torch.stack([h] * 3), SPEC.windows) for h in hu])


def test_sample_indices_lie_between_skull_base_and_vertex():
    assert sample_indices(0) == []
    assert sample_indices(1) == [0]
    picked = sample_indices(40)
    assert len(picked) == SAMPLE_SLICES and picked == sorted(picked)
    assert 13 <= picked[0] and picked[-1] <= 32


def test_a_straight_head_needs_no_turn():
    assert upright_turn(heads()) == 0.0
    assert upright_turn(heads()[:0]) == 0.0


@pytest.mark.parametrize("degrees", [-18.0, -7.0, 5.0, 12.0, 21.0])
def test_a_turned_head_is_found_and_turned_back(degrees):
    assert upright_turn(turned(heads(), degrees)) == pytest.approx(-degrees, abs=1.0)


def test_the_stage_reads_left_and_right_of_the_head_not_of_the_image():
    straight = windowed(heads())
    turned_inputs = windowed(turned(heads(), 14.0))
    upright = upright_turn(centre_hu(turned_inputs, SPEC))
    plain = input_features(straight, SPEC)[:, ASYMMETRY]
    as_lying = input_features(turned_inputs, SPEC)[:, ASYMMETRY]
    read_upright = input_features(turned_inputs, SPEC, upright)[:, ASYMMETRY]
    assert (as_lying > plain + 0.025).all(), "turned, the ventricles and sulci no longer mirror each other"
    assert (read_upright - plain).abs().max() < 0.01


def cached(patients: dict[str, tuple[float, bool]]) -> CachedSet:
    """Six slices per patient, each patient's head turned by its angle; bleeding or not."""
    hu, labels, groups = [], [], []
    for name, (degrees, bleeding) in patients.items():
        stack = turned(torch.stack([heads(6)] * 3, dim=1), degrees)  # (6, 3, S, S): context 1
        hu.append(stack.numpy().astype(np.float16))
        labels.append(np.tile(np.array([0, 0, 0, 0, 0, int(bleeding)], np.uint8), (6, 1)))
        groups += [name] * 6
    n = len(groups)
    return CachedSet(np.concatenate(hu), np.concatenate(labels), np.array(groups), np.array(["t"] * n),
                     np.array([f"{g}/{i}" for i, g in enumerate(groups)]))


def test_the_trainer_turns_each_patient_upright_as_the_app_does():
    data = cached({"a": (0.0, False), "b": (11.0, True), "c": (-16.0, True)})
    features = trainer_features(data, SPEC)
    for rows in (slice(0, 6), slice(6, 12), slice(12, 18)):
        hu = torch.from_numpy(np.asarray(data.hu[rows], dtype=np.float32))
        inputs = windowed(hu[:, 1])
        expected = input_features(inputs, SPEC, upright_turn(centre_hu(inputs[sample_indices(6)], SPEC)))
        assert np.allclose(features[rows], expected.numpy(), atol=1e-4)
    assert np.abs(features[6:, ASYMMETRY] - features[:6, ASYMMETRY][np.r_[0:6, 0:6]]).max() < 0.02


def test_the_evaluation_reports_a_head_turn_that_tells_the_bleeding_patients():
    report = head_turn_report(cached({"a": (0.0, False), "b": (1.0, False), "c": (12.0, True), "d": (-15.0, True)}), SPEC)
    assert report["patients"] == 4
    assert report["exam_auc_of_angle_alone"] == 1.0
    assert report["mean_abs_deg_bleeding"] == pytest.approx(13.5, abs=1.0)
    assert report["mean_abs_deg_normal"] == pytest.approx(0.5, abs=1.0)


def test_predict_scores_the_demo_with_its_series_angle(monkeypatch):
    series = load_study(demo_study_path("ct-ich")).image_series[0]
    loaded = load_model(None, device="cpu")
    assert loaded.model.any_stage is not None
    prepared: dict[int, np.ndarray] = {}
    upright = series_upright(series, loaded.spec, plausible_slabs(series, loaded.spec), prepared)
    assert sorted(prepared) == sample_indices(len(series))
    assert upright != 0.0, "CT-ICH 071's head lies turned in the gantry"
    index = sample_indices(len(series))[3]
    got = {p.index: p for p in predict(series, PredictState(loaded))}[index].probabilities["any"]
    x = torch.from_numpy(prepared[index][None])
    with torch.inference_mode():
        as_turned = torch.sigmoid(loaded.model(x, upright))[0, -1].item()
        as_lying = torch.sigmoid(loaded.model(x))[0, -1].item()
    assert got == pytest.approx(as_turned, abs=1e-6)
    assert abs(as_turned - as_lying) > 1e-4

    def measured_again(_hu):
        raise AssertionError("the run's angle is known: Grad-CAM on a slice change must not measure it again")

    monkeypatch.setattr(predict_module, "upright_turn", measured_again)
    assert known_upright(series, loaded.spec, plausible_slabs(series, loaded.spec)) == upright
