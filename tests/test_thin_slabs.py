"""Thin series are averaged into 5 mm slabs before the network, the same in the app and the trainer."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch

from ich_viewer.dicom.model import PixelDecodeError, Series
from ich_viewer.inference.guards import checked_input
from ich_viewer.inference.predict import PredictState, predict
from ich_viewer.inference.preprocess import InputSpec, SlabReader, series_input, slab_weights, stack_input
from ich_viewer.inference.testing import export_random_model
from ich_viewer.inference.weights import load_model
from trainer.cache import build_cached_set, slice_stack_hu, window_batch
from trainer.data.volume import Volume

SLAB = InputSpec(size=64, slab_mm=5.0)


def head_volume(n: int, seed: int = 0, noise: float = 8.0) -> np.ndarray:
    """A disc of brain in a bone ring whose brain HU rises slice by slice, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:80, :80]
    r = np.hypot(yy - 40, xx - 40)
    out = np.full((n, 80, 80), -1000.0, np.float32)
    for i in range(n):
        out[i][r < 30] = 1200.0
        out[i][r < 27] = 30.0 + i
    return out + rng.normal(0, noise, out.shape).astype(np.float32)


def as_dict(weights) -> dict[int, float]:
    return {k: round(w, 6) for k, w in weights}


def test_slab_weights_cover_five_mm_of_each_spacing():
    assert as_dict(slab_weights(SLAB, 0.625)) == {k: (0.0625 if abs(k) == 4 else 0.125) for k in range(-4, 5)}
    assert as_dict(slab_weights(SLAB, 2.5)) == {-1: 0.25, 0: 0.5, 1: 0.25}
    assert as_dict(slab_weights(SLAB, 3.0)) == {-1: 0.2, 0: 0.6, 1: 0.2}
    for weights in (slab_weights(SLAB, 0.625), slab_weights(SLAB, 1.25), slab_weights(SLAB, 3.0)):
        assert sum(w for _, w in weights) == pytest.approx(1.0)
        assert [k for k, _ in weights] == [-k for k, _ in reversed(weights)]  # symmetric


@pytest.mark.parametrize("spacing, thickness", [(5.0, None), (4.9, 5.0), (2.5, 5.0), (6.0, 6.0), (None, None)])
def test_slices_as_thick_as_the_slab_are_used_as_they_are(spacing, thickness):
    """5 mm series, 5 mm reconstructions overlapping at 2.5 mm, and unknown spacing: no averaging."""
    assert slab_weights(SLAB, spacing, thickness) == ((0, 1.0),)
    assert slab_weights(InputSpec(slab_mm=None), 0.625) == ((0, 1.0),)


def test_an_overlapping_thin_reconstruction_averages_fewer_slices():
    """1.25 mm thick every 0.625 mm already covers 0.625 mm more than its spacing."""
    assert len(slab_weights(SLAB, 0.625, 1.25)) < len(slab_weights(SLAB, 0.625, 0.625))


def test_slab_reader_averages_and_leaves_out_missing_slices():
    images = [np.full((4, 4), float(i), np.float32) for i in range(10)]
    images[6] = None
    weights = slab_weights(SLAB, 2.5)  # 0.25, 0.5, 0.25
    reads: list[int] = []

    def read(j: int):
        reads.append(j)
        return images[j]

    slabs = SlabReader(read, len(images), weights)
    assert slabs(3)[0, 0] == pytest.approx(3.0)
    assert slabs(5)[0, 0] == pytest.approx((0.25 * 4 + 0.5 * 5) / 0.75)  # slice 6 missing
    assert slabs(0)[0, 0] == pytest.approx((0.5 * 0 + 0.25 * 1) / 0.75)  # series end
    assert slabs(6) is None  # a slab without its own slice
    count = len(reads)
    slabs(3)
    assert len(reads) == count  # kept, not averaged again


def test_a_thin_series_is_fed_as_slabs_and_a_thick_one_unchanged():
    thin = Series.from_array(head_volume(40), spacing_mm=0.625)
    volume = thin.volume_hu()
    weights = slab_weights(SLAB, 0.625)

    def slab(i: int) -> np.ndarray:
        return sum(w * volume[i + k] for k, w in weights)

    expected = stack_input([slab(12), slab(20), slab(28)], SLAB)
    np.testing.assert_allclose(series_input(thin, 20, SLAB), expected, atol=1e-5)
    np.testing.assert_allclose(checked_input(thin, 20, SLAB), expected, atol=1e-5)
    thick = Series.from_array(head_volume(5), spacing_mm=5.0)
    plain = dataclasses.replace(SLAB, slab_mm=None)
    np.testing.assert_array_equal(series_input(thick, 2, SLAB), series_input(thick, 2, plain))


def test_slabs_take_the_thin_slice_noise_out_of_the_input():
    """8 thin slices of 8 HU noise averaged: the brain channel's noise falls by about sqrt(8)."""
    thin = Series.from_array(head_volume(40, noise=8.0), spacing_mm=0.625)
    plain = dataclasses.replace(SLAB, slab_mm=None)
    brain = slice(SLAB.context * 3, SLAB.context * 3 + 1)  # the centre slice's brain window
    noisy = series_input(thin, 20, plain)[brain][0, 24:40, 24:40] * 80.0
    smooth = series_input(thin, 20, SLAB)[brain][0, 24:40, 24:40] * 80.0
    assert np.std(smooth) < np.std(noisy) / 2.0


def test_undecodable_and_implausible_thin_slices_are_left_out_of_a_slab():
    volume = head_volume(40, noise=0.0)
    volume[21] = 30000.0  # not CT
    thin = Series.from_array(volume, spacing_mm=0.625)
    source = thin.pixel_source
    broken = thin.slices[19].path

    def flaky(header):
        if header.path == broken:
            raise PixelDecodeError("bad pixels")
        return source(header)

    thin.pixel_source = flaky
    x = checked_input(thin, 20, SLAB)
    assert np.isfinite(x).all()
    with pytest.raises(ValueError, match="not analysed"):
        checked_input(thin, 21, SLAB)
    with pytest.raises(PixelDecodeError):
        checked_input(thin, 19, SLAB)


def test_trainer_cache_sees_a_thin_volume_as_the_app_does():
    hu = head_volume(40)
    volume = Volume(group="p1", source="rsna", names=[str(i) for i in range(40)],
                    labels=np.zeros((40, 6), np.uint8), load_hu=lambda: list(hu), spacing_mm=0.625,
                    thickness_mm=0.625)
    cached = build_cached_set([volume], SLAB)
    series = Series.from_array(hu, spacing_mm=0.625)
    for i in (0, 5, 20, 39):
        trained = window_batch(torch.from_numpy(np.asarray(cached.hu[i:i + 1], np.float32)), SLAB)[0].numpy()
        np.testing.assert_allclose(trained, series_input(series, i, SLAB), atol=0.02)  # float16 HU in the cache


def test_thick_volume_cache_is_unchanged_by_slabs():
    hu = head_volume(6)
    volume = Volume(group="p1", source="ct-ich", names=[str(i) for i in range(6)],
                    labels=np.zeros((6, 6), np.uint8), load_hu=lambda: list(hu))
    plain = dataclasses.replace(SLAB, slab_mm=None)
    np.testing.assert_array_equal(build_cached_set([volume], SLAB).hu, build_cached_set([volume], plain).hu)
    np.testing.assert_array_equal(slice_stack_hu(list(hu[1:4]), SLAB), slice_stack_hu(list(hu[1:4]), plain))


def test_model_with_slabs_in_its_card_feeds_slabs(tmp_path):
    """The card's input spec switches slabs on; an old card without the field leaves them off."""
    path = export_random_model(tmp_path / "m", spec=SLAB)
    loaded = load_model(path, device="cpu")
    assert loaded.spec.slab_mm == 5.0
    thin = Series.from_array(head_volume(24), spacing_mm=0.625)
    with_slabs = [p.probabilities["any"] for p in predict(thin, PredictState(loaded))]
    off = dataclasses.replace(loaded, spec=dataclasses.replace(loaded.spec, slab_mm=None))
    without = [p.probabilities["any"] for p in predict(thin, PredictState(off))]
    assert not np.allclose(with_slabs, without)
    assert "slab_mm" not in dataclasses.replace(SLAB, slab_mm=None).to_dict()
    assert InputSpec.from_dict(SLAB.to_dict()) == SLAB
    with pytest.raises(ValueError, match="slab_mm"):
        InputSpec.from_dict({**SLAB.to_dict(), "slab_mm": -1.0})


def test_the_reader_is_told_when_slices_were_scored_as_slabs(tmp_path):
    """The series result, the JSON export and the PDF say so for a thin series, and nothing for a thick one."""
    from pypdf import PdfReader

    from ich_viewer.dicom.model import Study
    from ich_viewer.inference.predict import predict_series
    from ich_viewer.report.data import build_report
    from ich_viewer.report.pdf import render_pdf
    from ich_viewer.report.tabular import results_document

    loaded = load_model(export_random_model(tmp_path / "m", spec=SLAB), device="cpu")
    thin = predict_series(Series.from_array(head_volume(16), spacing_mm=0.625), PredictState(loaded))
    thick = predict_series(Series.from_array(head_volume(4), spacing_mm=5.0), PredictState(loaded))
    assert "5 mm slab" in thin.input_note and "9 slices of 0.625 mm" in thin.input_note
    assert thick.input_note == ""

    series = Series.from_array(head_volume(16), spacing_mm=0.625)
    study = Study(source="", series=[series], study_uid="1.2.826.0.1.3680043.8.498.5")
    prediction = predict_series(series, PredictState(loaded))
    document = results_document(study, [(series, prediction)], {})
    assert document["series"][0]["input_note"] == prediction.input_note
    pdf = render_pdf(build_report(study, [(series, prediction)], {}), "A4")
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())
    assert "5 mm slab around it" in text
