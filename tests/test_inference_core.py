"""Qt-free inference core: preprocessing, network, weights, device, predict, Grad-CAM.

The network here is randomly initialised: these tests check behaviour, never accuracy.
"""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from ich_viewer import LABELS
from ich_viewer.dicom.model import PixelDecodeError, Series
from ich_viewer.inference import device as device_mod
from ich_viewer.inference.gradcam import attention_map, explained_label, to_slice_grid
from ich_viewer.inference.model import build_model, default_arch, normalise_arch, to_probabilities
from ich_viewer.inference.predict import PredictState, predict, predict_series, slice_order
from ich_viewer.inference.preprocess import (
    InputSpec, crop_square, head_box, neighbour_indices, series_input, stack_input,
)
from ich_viewer.inference.testing import SMALL_ARCH, export_random_model
from ich_viewer.inference.weights import CARD_NAME, ModelLoadError, export_model, load_model

SPEC = InputSpec(size=64)


def head_slice(rows: int = 96, cols: int = 96, centre=(48, 48), radius=30, value=40.0, seed=0,
               noise: float = 3.0) -> np.ndarray:
    """Air, a bone ring and brain-like tissue with a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:rows, :cols]
    r = np.hypot(yy - centre[0], xx - centre[1])
    image = np.full((rows, cols), -1000.0, np.float32)
    image[r < radius] = 1200.0
    image[r < radius - 3] = value
    return image + rng.normal(0, noise, image.shape).astype(np.float32)


def ring_series(n: int = 7, spacing: float = 5.0) -> Series:
    """Rings of bone around brain-like tissue: a head without anatomy, for the core's arithmetic."""
    volume = np.stack([head_slice(value=30.0 + 5 * i, seed=i) for i in range(n)])
    return Series.from_array(volume, spacing_mm=spacing)


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_model(model_dir, device="cpu")


# --- preprocessing -----------------------------------------------------------------

def test_spec_round_trips_and_rejects_unknown_fields():
    spec = InputSpec(size=96, context=2, windows=((40, 80), (600, 2800)), window_names=("brain", "bone"))
    again = InputSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.n_channels == 10
    with pytest.raises(ValueError, match="unknown"):
        InputSpec.from_dict({**spec.to_dict(), "colour": 1})


def test_stack_input_shape_range_and_channel_order():
    centre = head_slice()
    x = stack_input([None, centre, None], SPEC)
    assert x.shape == (9, 64, 64) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    # brain window 40/80 of 40 HU tissue is mid-grey; bone window of 40 HU is dark
    mid = (32, 32)
    assert abs(x[3][mid] - 0.5) < 0.15
    assert x[5][mid] < 0.35
    # a missing neighbour is the centre repeated
    np.testing.assert_array_equal(x[0:3], x[3:6])
    np.testing.assert_array_equal(x[6:9], x[3:6])


def test_non_finite_pixels_become_air():
    centre = head_slice()
    broken = centre.copy()
    broken[:10, :10] = np.nan
    broken[-5:, -5:] = np.inf
    x = stack_input([None, broken, None], SPEC)
    assert np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1


def test_neighbour_of_other_shape_counts_as_missing():
    centre = head_slice()
    odd = head_slice(rows=80, cols=80, centre=(40, 40))
    np.testing.assert_array_equal(stack_input([odd, centre, None], SPEC), stack_input([None, centre, None], SPEC))
    with pytest.raises(ValueError):
        stack_input([centre, None, centre], SPEC)
    with pytest.raises(ValueError):
        stack_input([centre, centre], SPEC)


def test_first_last_and_single_slice_repeat_the_centre():
    series = ring_series(5)
    vol = [series.hu(i) for i in range(5)]
    np.testing.assert_array_equal(series_input(series, 0, SPEC), stack_input([None, vol[0], vol[1]], SPEC))
    np.testing.assert_array_equal(series_input(series, 4, SPEC), stack_input([vol[3], vol[4], None], SPEC))
    np.testing.assert_array_equal(series_input(series, 2, SPEC), stack_input(vol[1:4], SPEC))
    single = Series.from_array(np.stack([vol[2]]))
    x = series_input(single, 0, SPEC)
    np.testing.assert_array_equal(x[0:3], x[3:6])
    np.testing.assert_array_equal(x, stack_input([None, vol[2], None], SPEC))


def test_neighbours_are_about_five_mm_away_on_thin_slices():
    assert neighbour_indices(10, 40, SPEC, spacing_mm=1.25) == [6, 10, 14]
    assert neighbour_indices(1, 40, SPEC, spacing_mm=1.25) == [None, 1, 5]
    assert neighbour_indices(3, 4, SPEC, spacing_mm=5.0) == [2, 3, None]
    assert neighbour_indices(3, 40, InputSpec(neighbour_mm=None), spacing_mm=0.5) == [2, 3, 4]


def test_undecodable_neighbour_is_missing_and_centre_error_propagates():
    series = ring_series(3)
    broken = series.slices[0].path

    source = series.pixel_source

    def flaky(header):
        if header.path == broken:
            raise PixelDecodeError("bad pixels")
        return source(header)

    series.pixel_source = flaky
    np.testing.assert_array_equal(series_input(series, 1, SPEC),
                                  stack_input([None, series.hu(1), series.hu(2)], SPEC))
    with pytest.raises(PixelDecodeError):
        series_input(series, 0, SPEC)


def test_head_box_is_square_covers_the_head_and_ignores_a_thin_table():
    image = head_slice(rows=256, cols=256, centre=(100, 150), radius=60)
    image[230:232, 10:246] = 300.0  # head-rest: thin and wide
    top, left, side = head_box(image, SPEC)
    assert top <= 40 and top + side >= 160 and left <= 90 and left + side >= 210
    assert side < 160, "the table must not widen the crop"
    empty = np.full((50, 70), -1000.0, np.float32)
    assert head_box(empty, SPEC)[2] == 70
    padded = crop_square(np.zeros((4, 4), np.float32), (-2, -2, 8))
    assert padded.shape == (8, 8) and padded[0, 0] == -1000 and padded[3, 3] == 0


def test_same_head_at_two_pixel_spacings_gives_the_same_input():
    small = head_slice(rows=128, cols=128, centre=(64, 64), radius=40, noise=0.0)
    big = np.kron(small, np.ones((2, 2), np.float32))  # same head, half the pixel spacing
    box_small, box_big = np.array(head_box(small, SPEC)), np.array(head_box(big, SPEC))
    assert np.abs(box_big - 2 * box_small).max() <= 3
    a = stack_input([None, small, None], SPEC)
    b = stack_input([None, big, None], SPEC)
    head_a, head_b = a[5] > 0.05, b[5] > 0.05  # not air, in the bone window
    assert (head_a & head_b).sum() / (head_a | head_b).sum() > 0.95
    inside = (slice(24, 40), slice(24, 40))
    assert abs(a[3][inside].mean() - b[3][inside].mean()) < 0.01


# --- network --------------------------------------------------------------------

def test_model_shapes_and_any_is_at_least_every_subtype():
    torch.manual_seed(0)
    model = build_model(default_arch(9, **SMALL_ARCH)).eval()
    with torch.no_grad():
        model.fc.weight.mul_(50)  # large logits so the constraint actually bites
        logits = model(torch.rand(5, 9, 64, 64))
    assert logits.shape == (5, len(LABELS))
    probs = to_probabilities(logits)
    assert probs.shape == (5, 6) and ((0 <= probs) & (probs <= 1)).all()
    assert (probs[:, 5] >= probs[:, :5].max(axis=1)).all()


def test_arch_dict_changes_the_network_and_is_checked():
    small = build_model(default_arch(9, **SMALL_ARCH))
    big = build_model(default_arch(9))
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(small) < count(big) / 10
    with pytest.raises(ValueError):
        normalise_arch({"widths": [8, 16], "blocks": [1]})
    with pytest.raises(ValueError):
        normalise_arch({"depth": 3})


# --- weights and card -------------------------------------------------------------

def test_card_has_what_the_app_needs(model_dir):
    card = json.loads((model_dir / CARD_NAME).read_text())
    assert card["labels"] == list(LABELS)
    assert set(card["thresholds"]) == set(LABELS)
    assert len(card["sha256"]) == 64 and card["versions"]["torch"] == torch.__version__
    assert card["untrained"] is True and card["input_spec"]["size"] == 64


def test_loaded_model_reproduces_the_exported_network(tmp_path):
    torch.manual_seed(1)
    arch = default_arch(9, **SMALL_ARCH)
    model = build_model(arch).eval()
    export_model(model, arch, SPEC, {label: 0.4 for label in LABELS}, {"seed": 1}, tmp_path)
    loaded = load_model(tmp_path, device="cpu")
    x = torch.rand(2, 9, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(loaded.model(x).numpy(), model(x).numpy(), rtol=0, atol=1e-6)
    assert loaded.thresholds == {label: 0.4 for label in LABELS}
    assert loaded.info.sha256 == loaded.card["sha256"] and loaded.info.device == "cpu"
    with pytest.raises(ValueError, match="may not set"):
        export_model(model, arch, SPEC, {label: 0.4 for label in LABELS}, {"sha256": "x"}, tmp_path)
    with pytest.raises(ValueError, match="channels"):
        export_model(model, arch, InputSpec(context=0), {label: 0.4 for label in LABELS}, {}, tmp_path)


def _copy_model(src, dst):
    dst.mkdir()
    for item in src.iterdir():
        (dst / item.name).write_bytes(item.read_bytes())
    return dst


def test_missing_model_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ModelLoadError, match="No classifier model"):
        load_model(tmp_path / "nothing-here")


def test_tampered_weights_are_refused(model_dir, tmp_path):
    copy = _copy_model(model_dir, tmp_path / "m")
    weights = copy / json.loads((copy / CARD_NAME).read_text())["weights_file"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="does not match its model card"):
        load_model(copy, device="cpu")
    weights.unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(copy, device="cpu")


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(labels=list(reversed(c["labels"]))), "label order"),
    (lambda c: c["thresholds"].pop("subdural"), "thresholds"),
    (lambda c: c["architecture"].update(widths=[8, 16, 64]), "do not fit"),
    (lambda c: c["input_spec"].update(context=2), "channels"),
    (lambda c: c.update(weights_file="../elsewhere.pt"), "plain file name"),
    (lambda c: c.update(format="something-else"), "not an ICH Viewer model card"),
])
def test_mismatched_card_is_refused(model_dir, tmp_path, change, message):
    copy = _copy_model(model_dir, tmp_path / "m")
    card = json.loads((copy / CARD_NAME).read_text())
    change(card)
    (copy / CARD_NAME).write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=message):
        load_model(copy, device="cpu")


def test_unreadable_card_is_refused(model_dir, tmp_path):
    copy = _copy_model(model_dir, tmp_path / "m")
    (copy / CARD_NAME).write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot be read"):
        load_model(copy)


# --- device -------------------------------------------------------------------------

def test_device_falls_back_to_cpu_and_refuses_missing_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: False)
    assert device_mod.choose_device(None) == torch.device("cpu")
    assert device_mod.choose_device("auto") == torch.device("cpu")
    assert device_mod.available_devices() == ["cpu"]
    with pytest.raises(device_mod.DeviceError, match="no CUDA GPU"):
        device_mod.choose_device("cuda")
    with pytest.raises(device_mod.DeviceError, match="MPS"):
        device_mod.choose_device("mps")
    with pytest.raises(device_mod.DeviceError, match="unknown device"):
        device_mod.choose_device("tpu")
    assert device_mod.describe_device(torch.device("cpu")).startswith("CPU")


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device_mod.choose_device(None) == torch.device("cuda", 0)
    assert device_mod.choose_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(device_mod.DeviceError, match="only 2"):
        device_mod.choose_device("cuda:5")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: True)
    assert device_mod.choose_device(None) == torch.device("mps")


# --- predict ---------------------------------------------------------------------------

def test_batching_equals_one_by_one(loaded):
    series = ring_series(7)
    batched = list(predict(series, PredictState(loaded, batch_size=4, first_batch=3)))
    singles = list(predict(series, PredictState(loaded, batch_size=1, first_batch=1)))
    assert [p.index for p in batched] == list(range(7))
    for a, b in zip(batched, singles):
        assert list(a.probabilities) == list(LABELS)
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)
        assert a.sop_instance_uid == series.slices[a.index].sop_instance_uid
    # predictions really depend on the slice (the random net is not constant)
    assert len({round(p.probabilities["any"], 6) for p in batched}) > 1


def test_flags_follow_thresholds(model_dir, tmp_path):
    low = export_random_model(tmp_path / "low", spec=SPEC, arch_changes=SMALL_ARCH, seed=3,
                              thresholds={label: 0.01 for label in LABELS})
    high = export_random_model(tmp_path / "high", spec=SPEC, arch_changes=SMALL_ARCH, seed=3,
                               thresholds={label: 0.99 for label in LABELS})
    series = ring_series(3)
    assert all(p.flagged == LABELS for p in predict(series, PredictState(load_model(low, "cpu"))))
    assert all(p.flagged == () for p in predict(series, PredictState(load_model(high, "cpu"))))


def test_progress_cancel_and_order(loaded):
    series = ring_series(9)
    seen = []
    results = list(predict(series, PredictState(loaded, batch_size=3, first_batch=1,
                                                progress=lambda d, t: seen.append((d, t)))))
    assert seen == [(1, 9), (4, 9), (7, 9), (9, 9)] and len(results) == 9

    cancel = threading.Event()
    got = []
    for p in predict(series, PredictState(loaded, batch_size=2, first_batch=2, cancel=cancel)):
        got.append(p.index)
        cancel.set()
    assert got == [0, 1], "cancel is honoured at the next batch boundary"

    ordered = [p.index for p in predict(series, PredictState(loaded, batch_size=2, start_index=4))]
    assert ordered == [4, 5, 3, 6, 2, 7, 1, 8, 0]
    assert slice_order(3, 10) == [2, 1, 0]


def test_only_axial_ct_is_analysable():
    from ich_viewer.inference.predict import not_analysable

    series = ring_series(2)
    assert not_analysable(series) is None
    series.modality = "MR"
    assert "MR" in not_analysable(series)
    series.modality, series.is_localizer = "CT", True
    assert "localizer" in not_analysable(series)


def test_undecodable_slice_is_skipped_and_reported(loaded):
    series = ring_series(4)
    source, broken = series.pixel_source, series.slices[2].path
    series.pixel_source = lambda h: (_ for _ in ()).throw(OSError("truncated")) if h.path == broken else source(h)
    state = PredictState(loaded)
    result = predict_series(series, state)
    assert [p.index for p in result.slices] == [0, 1, 3]
    assert "truncated" in state.errors[2]


# --- Grad-CAM ---------------------------------------------------------------------------

def test_attention_map_lies_on_the_slice_grid(loaded):
    rows, cols = 90, 120
    volume = np.stack([head_slice(rows, cols, centre=(45, 70), radius=25, seed=i) for i in range(3)])
    series = Series.from_array(volume)
    amap = attention_map(loaded, series, 1)
    assert amap.heat.shape == (rows, cols) and amap.heat.dtype == np.float32
    assert np.isfinite(amap.heat).all() and 0 <= amap.heat.min() and amap.heat.max() <= 1
    assert amap.label in LABELS and 0 <= amap.probability <= 1
    top, left, side = head_box(volume[1], loaded.spec)
    assert amap.heat[:, : max(0, left)].max(initial=0) == 0, "nothing outside the crop"
    assert attention_map(loaded, series, 1, label="subdural").label == "subdural"
    assert amap.heat[volume[1] <= loaded.spec.body_threshold_hu].max() == 0, "nothing over air"
    unmasked = attention_map(loaded, series, 1, head_only=False).heat
    assert unmasked.shape == (rows, cols) and unmasked.max() > 0


def test_crop_is_undone_exactly():
    cam = np.zeros((64, 64), np.float32)
    cam[:32, :] = 1.0  # the top half of network space
    heat = to_slice_grid(cam, (10, -20, 128), (100, 100))
    assert heat[:10].max() == 0  # above the box
    assert heat[20, 50] == pytest.approx(1.0) and heat[90, 50] == pytest.approx(0.0)


def test_explained_label_prefers_the_clearest_subtype():
    thresholds = {label: 0.5 for label in LABELS}
    probs = dict(zip(LABELS, [0.1, 0.7, 0.2, 0.9, 0.3, 0.95]))
    assert explained_label(probs, thresholds) == "subarachnoid"
    assert explained_label(dict(zip(LABELS, [0.1] * 6)), thresholds) == "any"


@pytest.mark.parametrize("name", [d for d in device_mod.available_devices() if d != "cpu"] or ["no-gpu"])
def test_every_available_device_gives_the_cpu_numbers(model_dir, name):
    if name == "no-gpu":
        pytest.skip("no GPU on this machine: CPU is the only device")
    series = ring_series(4)
    cpu = predict_series(series, PredictState(load_model(model_dir, "cpu")))
    other = predict_series(series, PredictState(load_model(model_dir, name)))
    for a, b in zip(cpu.slices, other.slices):
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-3)
