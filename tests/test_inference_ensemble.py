"""The bundled model's format: fold ensembles, calibration from the card, the no-brain gate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ich_viewer import LABELS
from ich_viewer.dicom.model import Series
from ich_viewer.inference.gradcam import attention_map
from ich_viewer.inference.model import ICHEnsemble, build_model, default_arch, ensemble_state
from ich_viewer.inference.predict import PredictState, predict_series
from ich_viewer.inference.preprocess import InputSpec, brain_fraction, stack_input
from ich_viewer.inference.results import NO_BRAIN_NOTE
from ich_viewer.inference.testing import SMALL_ARCH, export_random_model
from ich_viewer.inference.weights import ModelLoadError, export_model, load_model

SPEC = InputSpec(size=48)


def _head(size: int = 96, brain_hu: float = 32.0, skull: bool = True, brain: bool = True) -> np.ndarray:
    """An axial slice: air, a bone ring (skull) and brain inside it."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2) / (size / 2)
    image = np.full((size, size), -1000.0, dtype=np.float32)
    if skull:
        image[(r < 0.85) & (r >= 0.75)] = 1200.0
    if brain:
        image[r < 0.75] = brain_hu + np.random.default_rng(0).normal(0, 3, (r < 0.75).sum())
    return image


def _inputs(*slices: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([stack_input([s, s, s], SPEC) for s in slices]))


def test_brain_fraction_tells_brain_from_skull_cap_and_air():
    fractions = brain_fraction(_inputs(_head(), _head(brain=False), _head(skull=False, brain=False),
                                       _head(brain_hu=0.0)), SPEC).numpy()
    assert fractions[0] > 0.3  # a brain slice
    assert fractions[1] < 0.01  # skull cap only: the bone/air edge is not brain
    assert fractions[2] == 0.0  # only air (above the vertex)
    assert fractions[3] < 0.01  # water-dense content (CSF) is not brain tissue


def test_ensemble_averages_member_logits_and_keeps_any_on_top():
    arch = default_arch(SPEC.n_channels, **SMALL_ARCH)
    torch.manual_seed(0)
    members = [build_model(arch).eval() for _ in range(3)]
    ensemble = build_model({**arch, "members": 3}).eval()
    assert isinstance(ensemble, ICHEnsemble)
    ensemble.load_state_dict(ensemble_state([m.state_dict() for m in members]))
    x = _inputs(_head(), _head(brain_hu=60.0))
    with torch.no_grad():
        expected = torch.stack([m.raw_logits(m.features(x)) for m in members]).mean(dim=0)
        got = ensemble(x)
    assert torch.allclose(got[:, :5], expected[:, :5], atol=1e-5)
    assert torch.all(got[:, 5] >= got[:, :5].amax(dim=1) - 1e-6)
    # features/classify (Grad-CAM's path) give the same logits as forward
    assert torch.allclose(ensemble.classify(ensemble.features(x)), got, atol=1e-5)


def test_calibration_in_the_card_is_applied_and_checked(tmp_path):
    scale, bias = [2.0, 0.5, 1.0, 1.0, 3.0, 1.5], [-1.0, 0.5, 0.0, -2.0, 1.0, 0.2]
    plain = load_model(export_random_model(tmp_path / "plain", spec=SPEC, arch_changes=SMALL_ARCH), device="cpu")
    calibrated_dir = export_random_model(tmp_path / "cal", spec=SPEC, arch_changes=SMALL_ARCH,
                                         calibration={"scale": scale, "bias": bias})
    calibrated = load_model(calibrated_dir, device="cpu")
    x = _inputs(_head(), _head(brain_hu=70.0))
    with torch.no_grad():
        raw, got = plain.model(x), calibrated.model(x)
    want = raw * torch.tensor(scale) + torch.tensor(bias)
    want[:, 5] = torch.maximum(want[:, 5], want[:, :5].amax(dim=1))
    assert torch.allclose(got, want, atol=1e-5)
    card = json.loads((calibrated_dir / "model_card.json").read_text())
    for bad in ({"scale": [-1.0] * 6, "bias": [0.0] * 6}, {"scale": [1.0] * 5, "bias": [0.0] * 6},
                {"scale": [float("nan")] * 6, "bias": [0.0] * 6}, {"bias": [0.0] * 6}):
        card["calibration"] = bad
        (calibrated_dir / "model_card.json").write_text(json.dumps(card))
        with pytest.raises(ModelLoadError, match="calibration"):
            load_model(calibrated_dir, device="cpu")


def test_exported_ensemble_loads_predicts_and_explains(tmp_path):
    arch = {**default_arch(SPEC.n_channels, **SMALL_ARCH), "members": 2}
    torch.manual_seed(1)
    model = build_model(arch).eval()
    export_model(model, arch, SPEC, {label: 0.5 for label in LABELS}, None, tmp_path, name="ens")
    loaded = load_model(tmp_path, device="cpu")
    assert isinstance(loaded.model, ICHEnsemble) and len(loaded.model.members) == 2
    series = Series.from_array(np.stack([_head()] * 4), spacing_mm=5.0)
    result = predict_series(series, PredictState(loaded=loaded))
    x = _inputs(_head())
    with torch.no_grad():
        direct = torch.sigmoid(model(x))[0].numpy()
    assert np.allclose([result.slices[0].probabilities[label] for label in LABELS], direct, atol=1e-5)
    heat = attention_map(loaded, series, 1).heat
    assert heat.shape == series.hu(1).shape and 0.0 <= heat.min() and heat.max() <= 1.0


def test_slices_without_brain_are_not_scored(tmp_path):
    spec = InputSpec(size=48, min_brain_fraction=0.02)
    loaded = load_model(export_random_model(tmp_path, spec=spec, arch_changes=SMALL_ARCH, any_bias=5.0), device="cpu")
    volume = np.stack([_head(), _head(), _head(brain=False), _head(skull=False, brain=False)])
    result = predict_series(Series.from_array(volume, spacing_mm=5.0), PredictState(loaded=loaded))
    by_index = {s.index: s for s in result.slices}
    assert [by_index[i].scored for i in range(4)] == [True, True, False, False]
    assert by_index[0].flagged  # a strong bias flags every scored slice...
    for i in (2, 3):  # ...but never one without brain
        assert by_index[i].flagged == () and set(by_index[i].probabilities.values()) == {0.0}
        assert by_index[i].to_dict()["note"] == NO_BRAIN_NOTE
    assert by_index[0].to_dict()["note"] == ""
    assert InputSpec.from_dict(spec.to_dict()).min_brain_fraction == 0.02
    assert "min_brain_fraction" not in InputSpec(size=48).to_dict()  # off: old cache keys unchanged


def test_an_unscored_slice_is_never_written_or_shown_as_negative(tmp_path):
    from ich_viewer.inference.session import slice_caption
    from ich_viewer.report.rows import build_rows

    spec = InputSpec(size=48, min_brain_fraction=0.02)
    loaded = load_model(export_random_model(tmp_path, spec=spec, arch_changes=SMALL_ARCH), device="cpu")
    series = Series.from_array(np.stack([_head(), _head(skull=False, brain=False)]), spacing_mm=5.0)
    result = predict_series(series, PredictState(loaded=loaded))
    rows = {row.index: row for row in build_rows([(series, result)])}
    assert rows[1].to_json()["probabilities"] is None and rows[1].to_json()["note"] == NO_BRAIN_NOTE
    assert all(rows[1].to_csv()[label] == "" for label in LABELS)
    assert rows[0].to_json()["probabilities"] is not None and rows[0].to_csv()["any"] != ""
    assert NO_BRAIN_NOTE in slice_caption(result.slices[1])
