"""The second stage for "any": HU features of a slice, the stage in the bundled model, its fitting."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ich_viewer import LABELS
from ich_viewer.inference.hu_features import (
    FEATURE_NAMES, FEATURE_SET, STAGE_INPUTS, input_features, slice_features, stage_logit,
)
from ich_viewer.inference.model import ICHNet
from ich_viewer.inference.preprocess import InputSpec, apply_windows, centre_hu
from ich_viewer.inference.testing import SMALL_ARCH, export_random_model
from ich_viewer.inference.weights import ModelLoadError, load_model

SIZE = 128
SPEC = InputSpec(size=SIZE, context=1)


def head(blob_hu: float | None = None, blob_side: int = -1, gap: bool = False, seed: int = 0) -> np.ndarray:
    """A 128 px axial head: air, a 6 px skull ring, brain at 35 HU with noise, optionally a dense blob."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    r = np.hypot(yy - 64, xx - 64)
    hu = np.full((SIZE, SIZE), -1000.0, np.float32)
    hu[r < 56] = 1000.0
    brain = r < 50
    hu[brain] = 35.0 + rng.normal(0, 3, brain.sum())
    if gap:  # a 3 px wide gap through the skull (a suture or foramen at this size)
        hu[62:65, 114:121] = 20.0
    if blob_hu is not None:
        blob = np.hypot(yy - 64, xx - (64 + blob_side * 25)) < 8
        hu[blob] = blob_hu
    return hu


def features(*images: np.ndarray) -> dict[str, np.ndarray]:
    values = slice_features(torch.from_numpy(np.stack(images))).numpy()
    return {name: values[:, k] for k, name in enumerate(FEATURE_NAMES)}


def inputs(*images: np.ndarray) -> torch.Tensor:
    """Network inputs of three identical slices per image (context 1), windowed as the app does."""
    return torch.stack([apply_windows(torch.from_numpy(np.stack([im] * 3)), SPEC.windows) for im in images])


def test_a_one_sided_dense_blob_raises_the_dense_and_asymmetry_features():
    f = features(head(), head(blob_hu=70.0))
    blob_area = np.pi * 8 ** 2 / (np.pi * 50 ** 2)  # of the cavity
    assert f["dense_50_90"][0] == 0 and f["dense_50_90"][1] == pytest.approx(blob_area, rel=0.25)
    assert f["dense_deep"][1] > 0 and f["dense_rim"][1] == 0, "the blob lies deep, 17 px from the inner table"
    assert f["asymmetry_15"][0] == 0 and f["asymmetry_15"][1] > 0
    assert f["dense_asymmetry"][1] > f["dense_asymmetry"][0]
    # the cavity (radius 50 px) less about one pixel along the inner table (partial volume with bone)
    assert np.pi * 48 ** 2 / SIZE ** 2 < f["head_area"][0] < np.pi * 50 ** 2 / SIZE ** 2
    assert f["brain_mean_hu"][0] == pytest.approx(35.0, abs=1.0)


def test_calcification_and_bone_are_not_dense_tissue_but_blood_is():
    f = features(head(blob_hu=300.0), head(blob_hu=55.0), head(blob_hu=40.0))
    assert f["dense_50_90"].tolist()[0] == 0, "calcium (300 HU) is above the blood range"
    assert f["dense_50_90"][1] > 0 and f["dense_50_90"][2] == 0


def test_a_gap_in_the_skull_does_not_empty_the_cavity():
    closed, open_ = features(head(), head(gap=True))["head_area"]
    assert open_ == pytest.approx(closed, rel=0.05)


def test_air_only_and_non_finite_slices_give_finite_zero_features():
    air = np.full((SIZE, SIZE), -1000.0, np.float32)
    broken = head()
    broken[10:20, 10:20] = np.nan
    f = slice_features(torch.from_numpy(np.stack([air, broken]))).numpy()
    assert np.isfinite(f).all()
    assert (f[0] == 0).all()


def test_features_read_back_from_network_inputs_equal_those_of_the_hu():
    images = [head(), head(blob_hu=70.0, blob_side=1)]
    x = inputs(*images)
    hu = torch.from_numpy(np.stack(images))
    inside_windows = (hu > -800) & (hu < 2000)  # the bone window's ends clip
    assert torch.allclose(centre_hu(x, SPEC)[inside_windows], hu[inside_windows], atol=1e-2)
    assert torch.allclose(input_features(x, SPEC), slice_features(torch.from_numpy(np.stack(images))), atol=1e-4)


def a_stage(weight_on_dense: float = 40.0) -> dict:
    coef = [1.0] + [0.0] * len(FEATURE_NAMES)
    coef[STAGE_INPUTS.index("dense_50_90")] = weight_on_dense
    return {"inputs": list(STAGE_INPUTS), "feature_set": FEATURE_SET, "mean": [0.0] * len(STAGE_INPUTS),
            "scale": [1.0] * len(STAGE_INPUTS), "coef": coef, "intercept": -1.0}


def test_the_loaded_model_replaces_any_by_the_stage_and_leaves_the_subtypes(tmp_path):
    plain = load_model(export_random_model(tmp_path / "plain", spec=SPEC, arch_changes=SMALL_ARCH), device="cpu")
    staged = load_model(export_random_model(tmp_path / "staged", spec=SPEC, arch_changes=SMALL_ARCH,
                                            any_stage=a_stage()), device="cpu")
    x = inputs(head(), head(blob_hu=70.0))
    with torch.inference_mode():
        raw = plain.model(x)  # identity calibration: the raw logits, "any" lifted
        out = staged.model(x)
    assert torch.equal(out[:, :-1], raw[:, :-1]), "subtypes are the network's"
    assert isinstance(staged.model, ICHNet)
    network_any = staged.model.raw_logits(staged.model.features(x))[:, -1]
    expected = stage_logit(network_any, input_features(x, SPEC), a_stage())
    assert torch.allclose(out[:, -1], expected, atol=1e-5)
    assert out[1, -1] - out[0, -1] > 1.0, "the dense blob raises the stage's 'any'"


def test_a_damaged_stage_in_the_card_is_refused_with_a_reason(tmp_path):
    folder = export_random_model(tmp_path / "m", spec=SPEC, arch_changes=SMALL_ARCH, any_stage=a_stage())
    card_path = folder / "model_card.json"
    original = json.loads(card_path.read_text())
    for change, words in ((lambda s: s.update(inputs=s["inputs"][:-1]), "not this program's features"),
                          (lambda s: s.pop("feature_set"), "fitted on feature set None"),
                          (lambda s: s["scale"].__setitem__(2, -1.0), "positive"),
                          (lambda s: s["coef"].__setitem__(0, float("nan")), "finite"),
                          (lambda s: s.update(intercept="x"), "intercept")):
        card = json.loads(json.dumps(original))
        change(card["any_stage"])
        card_path.write_text(json.dumps(card))
        with pytest.raises(ModelLoadError, match=words):
            load_model(folder, device="cpu")


def test_grad_cam_of_any_reports_the_probability_the_slice_shows(tmp_path):
    from ich_viewer.inference.gradcam import network_cam
    from ich_viewer.inference.model import to_probabilities

    loaded = load_model(export_random_model(tmp_path / "m", spec=SPEC, arch_changes=SMALL_ARCH, any_stage=a_stage()),
                        device="cpu")
    x = inputs(head(blob_hu=70.0))
    _cam, probs = network_cam(loaded, x, LABELS.index("any"))
    with torch.inference_mode():
        shown = to_probabilities(loaded.model(x))[0]
    assert probs == pytest.approx(shown, abs=1e-6)


def test_the_nested_stage_never_sees_the_fold_it_scores():
    from trainer.any_stage import apply_stage, fit_stage, nested_stage

    rng = np.random.default_rng(0)
    n = 300
    labels = np.zeros((n, len(LABELS)), int)
    labels[:, -1] = rng.random(n) < 0.3
    feats = rng.normal(size=(n, len(FEATURE_NAMES))) + labels[:, -1:] * 0.8
    probs = np.clip(rng.random((n, len(LABELS))) * 0.5 + labels * 0.2, 0.01, 0.99)
    fold_of = np.arange(n) % 5
    out, _ = nested_stage(probs, feats, labels, fold_of)
    assert np.array_equal(out[:, :-1], probs[:, :-1])
    changed = labels.copy()
    changed[fold_of == 0, -1] = 1 - changed[fold_of == 0, -1]
    again, noisy = nested_stage(probs, feats, changed, fold_of, also=feats + 0.5)
    assert noisy is not None and not np.allclose(noisy[:, -1], again[:, -1])
    assert np.allclose(again[fold_of == 0, -1], out[fold_of == 0, -1]), "held-fold labels never reach its stage"
    assert not np.allclose(again[fold_of == 1, -1], out[fold_of == 1, -1])
    stage = fit_stage(probs[:, -1], feats, labels[:, -1])
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(labels[:, -1], apply_stage(stage, probs[:, -1], feats)) > \
        roc_auc_score(labels[:, -1], probs[:, -1]), "the features carry signal the stage uses"


def test_the_bundled_card_carries_a_stage_over_this_programs_features():
    loaded = load_model(None, device="cpu")
    assert loaded.card["any_stage"]["inputs"] == list(STAGE_INPUTS)
    assert loaded.model.any_stage is not None
    stage_report = loaded.card["metrics"]["post_hoc_levers"]["with HU stage for any"]
    assert stage_report["kept"] and stage_report["with"]["auc_any"] > stage_report["without"]["auc_any"]


def test_noise_of_a_thin_slice_does_not_read_as_dense_tissue():
    """0.6-1 mm slices carry 8-15 HU of noise in the brain; CT-ICH's 5 mm slices far less."""
    rng = np.random.default_rng(1)
    clean = head()
    noisy = clean + rng.normal(0, 12, clean.shape).astype(np.float32) * (clean > -500)
    f = features(clean, noisy, head(blob_hu=70.0))
    assert f["dense_50_90"][1] < 0.2 * f["dense_50_90"][2], "noise alone stays far below a real dense blob"
    assert f["asymmetry_15"][1] < 0.2 * f["asymmetry_15"][2]


def test_a_scanner_that_reads_brain_higher_does_not_make_it_dense():
    """Brain read 10 HU higher (another scanner's calibration) gives the same features; a blob
    of blood denser than that brain still counts."""
    base = head(seed=3)
    higher = base + 10.0 * ((base > 0) & (base < 100))
    f = features(base, higher, head(blob_hu=70.0, seed=3) + 10.0 * ((base > 0) & (base < 100)))
    for name in ("dense_50_90", "dense_58_90", "dense_rim", "dense_deep", "parenchyma_20_45", "asymmetry_8"):
        assert f[name][1] == pytest.approx(f[name][0], abs=1e-3), name
    assert f["brain_mean_hu"][1] == pytest.approx(f["brain_mean_hu"][0], abs=0.5)
    assert f["dense_50_90"][2] > 0.015, "blood 35 HU above the brain is still dense"
