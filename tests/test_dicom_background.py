"""BackgroundDecoder: every slice lands in the series, nearest first, errors recorded, cancel works."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from dicom_helpers import make_volume
from ich_viewer.dicom.background import BackgroundDecoder, outward_order
from ich_viewer.dicom.loader import load_study
from ich_viewer.dicom.model import Series
from ich_viewer.dicom.workers import shutdown_workers, start_pool
from ich_viewer.phantom.writer import write_series


@pytest.fixture(scope="module", autouse=True)
def warm_pool():
    """The viewer warms the decoder processes at start-up; do the same, and stop them after."""
    assert start_pool(2).wait(120)
    yield
    shutdown_workers()


def test_outward_order():
    assert outward_order(2, 6) == [2, 3, 1, 4, 0, 5]
    assert outward_order(0, 3) == [0, 1, 2]
    assert outward_order(9, 3) == [2, 1, 0]
    assert outward_order(0, 0) == []


def written_series(tmp_path, syntax="explicit", n=8):
    volume = make_volume(n, size=32)
    write_series(volume, tmp_path, spacing_mm=2.0, pixel_spacing=(0.5, 0.5), syntax=syntax, file_names="random")
    return load_study(tmp_path).series[0], volume


@pytest.mark.parametrize("syntax, mode, expected_mode", [
    ("explicit", "auto", "threads"),
    ("jpeg-lossless", "auto", "processes"),
    ("rle", "threads", "threads"),
])
def test_every_slice_is_decoded_nearest_first(tmp_path, syntax, mode, expected_mode):
    series, volume = written_series(tmp_path, syntax)
    order: list[int] = []
    threads: set[str] = set()

    def on_slice(i: int) -> None:
        order.append(i)
        threads.add(threading.current_thread().name)

    decoder = BackgroundDecoder(series, on_slice=on_slice, workers=2, start_index=5, mode=mode).start()
    assert decoder.wait(60) and decoder.done()
    assert decoder.mode_used == expected_mode
    assert order[0] == 5 and sorted(order) == list(range(8))
    assert threading.main_thread().name not in threads
    assert all(series.is_decoded(i) for i in range(8)) and decoder.failed == 0
    np.testing.assert_array_equal(series.volume_hu(), volume)
    assert series.cache_nbytes() == volume.size * 2  # int16 cache


def test_a_warm_pool_decodes_the_first_compressed_slice_too(tmp_path, monkeypatch):
    """GDCM in a worker beats this process's JPEG decoders 4x: with the pool running, the slice on
    screen goes there first (alone, so it still comes back first)."""
    series, volume = written_series(tmp_path, "jpeg-lossless")
    here: list[int] = []
    monkeypatch.setattr(BackgroundDecoder, "_decode_here", lambda self, index: here.append(index))
    order: list[int] = []
    decoder = BackgroundDecoder(series, on_slice=order.append, workers=2, start_index=3).start()
    assert decoder.wait(60) and decoder.mode_used == "processes"
    assert here == [] and order[0] == 3 and sorted(order) == list(range(8))
    np.testing.assert_array_equal(series.volume_hu(), volume)


def test_failed_slice_is_reported_and_others_finish(tmp_path):
    series, volume = written_series(tmp_path, "jpeg-ls")
    bad = series.slices[3].path
    data = bytearray(open(bad, "rb").read())
    start = data.index(b"\xff\xd8")
    data[start + 2:start + 4] = b"\x00\x00"
    open(bad, "wb").write(bytes(data))
    called: list[int] = []
    decoder = BackgroundDecoder(series, on_slice=called.append, workers=2, mode="processes").start()
    assert decoder.wait(60)
    assert sorted(called) == list(range(8)) and decoder.failed == 1
    assert "JPEG-LS" in series.decode_error(3)
    for i in (0, 1, 2, 4, 5, 6, 7):
        np.testing.assert_array_equal(series.hu(i), volume[i])


def test_cancel_stops_early(tmp_path):
    series, _ = written_series(tmp_path, n=30)
    gate = threading.Event()
    decoder = BackgroundDecoder(series, on_slice=lambda i: gate.wait(5), workers=1, mode="threads").start()
    decoder.cancel()
    gate.set()
    assert decoder.wait(10) and decoder.done()
    assert sum(series.is_decoded(i) for i in range(30)) < 30


def test_pool_starting_late_costs_nothing(tmp_path):
    """With no warm pool the decoder thread decodes by itself meanwhile, then uses the pool."""
    shutdown_workers()
    series, volume = written_series(tmp_path, "jpeg-ls", n=6)
    decoder = BackgroundDecoder(series, workers=2, mode="processes").start()
    assert decoder.wait(120)
    assert decoder.mode_used in ("processes", "here (the pool was still starting)")
    np.testing.assert_array_equal(series.volume_hu(), volume)
    assert start_pool(2).wait(120)  # (a boot still running would outlive the shutdown)
    shutdown_workers()  # leaves no pool thread behind this test


def test_in_memory_series_and_broken_listener():
    volume = np.arange(5 * 4 * 4, dtype=np.float32).reshape(5, 4, 4) + 0.5
    series = Series.from_array(volume)

    def listener(i: int) -> None:
        raise RuntimeError("a broken listener must not stop decoding")

    decoder = BackgroundDecoder(series, on_slice=listener, mode="processes").start()
    assert decoder.wait(10)
    assert decoder.mode_used == "threads"  # nothing to send to a process
    np.testing.assert_array_equal(series.volume_hu(), volume)


class CrashingPool:
    """Stands in for the worker pool: the slice at ``poison`` kills the 'worker' every time,
    and like a real broken pool every job in flight at that moment fails with it."""

    def __init__(self, poison: str) -> None:
        self.poison = poison
        self.discarded = 0

    def submit(self, fn, job):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        future: Future = Future()
        if job.ref.path == self.poison:
            future.set_exception(BrokenProcessPool("a decoder process died"))
        else:
            future.set_result(fn(job))
        return future


@pytest.fixture
def crashing_pool(monkeypatch):
    from ich_viewer.dicom import workers

    ready = threading.Event()
    ready.set()
    holder: dict = {}

    def discard(pool):
        pool.discarded += 1

    monkeypatch.setattr(workers, "start_pool", lambda *a, **k: ready)
    monkeypatch.setattr(workers, "ready_pool", lambda: holder.get("pool"))
    monkeypatch.setattr(workers, "discard_pool", discard)
    return holder


def test_a_crashing_slice_fails_alone(tmp_path, crashing_pool):
    series, volume = written_series(tmp_path, "jpeg-ls", n=8)
    poison = series.slices[4].path
    crashing_pool["pool"] = pool = CrashingPool(poison)
    called: list[int] = []
    decoder = BackgroundDecoder(series, on_slice=called.append, workers=2, mode="processes").start()
    assert decoder.wait(60)
    assert sorted(called) == list(range(8)) and decoder.failed == 1
    assert "decoder crashed on this slice" in series.decode_error(4)
    assert pool.discarded >= 1
    for i in (0, 1, 2, 3, 5, 6, 7):  # the slices in flight beside it were retried, not blamed
        np.testing.assert_array_equal(series.hu(i), volume[i])


def test_on_demand_decode_survives_a_dead_pool(tmp_path, crashing_pool):
    series, volume = written_series(tmp_path, "jpeg-ls", n=3)
    crashing_pool["pool"] = CrashingPool(series.slices[1].path)
    np.testing.assert_array_equal(series.hu(1), volume[1])  # decoded here instead, safely


def test_warm_up_starts_the_shared_pool_once():
    from ich_viewer.dicom import workers

    shutdown_workers()
    assert workers.ready_pool() is None
    workers.warm_up()
    assert start_pool(2).wait(120)  # the same start, not a second one
    pool = workers.ready_pool()
    assert pool is not None and start_pool(2).is_set() and workers.ready_pool() is pool
    assert pool.submit(workers._ping).result(timeout=60) > 0
    shutdown_workers()
    assert workers.ready_pool() is None
