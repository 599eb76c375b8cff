"""Headers read by the warm decoder processes: the same study as reading them here, data sets on demand."""
from __future__ import annotations

import numpy as np
import pytest

from dicom_helpers import make_volume
from ich_viewer.dicom import loader, workers
from ich_viewer.dicom.loader import load_study
from ich_viewer.phantom.extras import write_junk_files
from ich_viewer.phantom.writer import write_series

WORKER_MIN_FILES = 48
N = WORKER_MIN_FILES + 13


@pytest.fixture(autouse=True)
def _workers_from_48_files(monkeypatch):
    """The worker path at a size a test can write quickly (the product's threshold is larger)."""
    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", WORKER_MIN_FILES)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    write_series(make_volume(N, 32), root, spacing_mm=1.0, pixel_spacing=(0.5, 0.5), file_names="random",
                 syntax="jpeg-lossless")
    write_junk_files(root)
    return root


def _summary(study):
    series = study.image_series[0]
    return ([(h.path, h.sop_instance_uid, h.position, h.rescale_intercept) for h in series.slices],
            sorted(s.path for s in study.skipped), study.patient_id, study.study_uid, study.warnings)


def test_workers_give_the_study_that_reading_here_gives(folder):
    workers.shutdown_workers()
    here = load_study(folder)
    assert all(h.full_dataset().SOPInstanceUID == h.sop_instance_uid for h in here.image_series[0].slices)
    assert workers.start_pool(2).wait(120)
    try:
        pooled = load_study(folder)
    finally:
        workers.shutdown_workers()
    assert _summary(pooled) == _summary(here)
    series = pooled.image_series[0]
    assert len(series) == N and pooled.skipped  # the junk is skipped with its reasons, as before
    assert series.slices[5].dataset is None  # not sent back from the worker ...
    dataset = series.slices[5].full_dataset()  # ... read again when the tag browser asks
    assert dataset.SOPInstanceUID == series.slices[5].sop_instance_uid
    np.testing.assert_array_equal(series.hu(3), here.image_series[0].hu(3))


def test_a_dead_pool_never_loses_the_study(folder, monkeypatch):
    assert workers.start_pool(2).wait(120)
    try:
        def broken(*args, **kwargs):
            raise RuntimeError("cannot schedule new futures after shutdown")

        monkeypatch.setattr(workers.ready_pool(), "submit", broken)
        study = load_study(folder)
    finally:
        workers.shutdown_workers()
    assert len(study.image_series[0]) == N
    assert all(h.full_dataset() is not None for h in study.image_series[0].slices)


def test_cancel_stops_the_worker_read(folder):
    assert workers.start_pool(2).wait(120)
    asked = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 2

    try:
        study = load_study(folder, cancel=cancel)
    finally:
        workers.shutdown_workers()
    assert any("cancelled" in w for w in study.warnings)
    assert sum(len(s) for s in study.series) < N
    assert loader.CHUNK_FILES < N
