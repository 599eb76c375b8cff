"""Fuzzing the loader with mutated real files: a loaded slice or a clean skip, never a crash or hang."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from dicom_helpers import make_volume
from ich_viewer.dicom.loader import load_study
from ich_viewer.dicom.model import PixelDecodeError
from ich_viewer.dicom.workers import shutdown_workers, start_pool
from ich_viewer.phantom.writer import write_series

SYNTAXES = ["explicit", "implicit", "big", "deflated", "rle", "jpeg-ls", "jpeg2000", "jpeg-lossless"]


def _seed_files() -> list[bytes]:
    """Small real files in every syntax the loader reads, plus two of pydicom's."""
    volume = make_volume(1, size=48)  # JPEG 2000 needs >= ~32 px for its levels
    seeds: list[bytes] = []
    with tempfile.TemporaryDirectory() as folder:
        for k, syntax in enumerate(SYNTAXES):
            (path,) = write_series(volume, Path(folder) / syntax, spacing_mm=1.0, pixel_spacing=(1, 1),
                                   syntax=syntax, signed=k % 2 == 0)
            seeds.append(path.read_bytes())
    for name in ("CT_small.dcm", "MR_small_RLE.dcm"):
        seeds.append(Path(get_testdata_file(name)).read_bytes())
    return seeds


SEEDS = _seed_files()

mutation = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("overwrite"), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
)


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    out = bytearray(data)
    for kind, where, value in mutations:
        if not out:
            break
        at = min(int(where * len(out)), len(out) - 1)
        if kind == "flip":
            out[at] ^= value
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = value
        else:
            out[at:at + len(value)] = value
    return bytes(out)


def test_seed_files_all_load():
    with tempfile.TemporaryDirectory() as folder:
        for k, data in enumerate(SEEDS):
            (Path(folder) / f"{k}.dcm").write_bytes(data)
        study = load_study(folder)
        assert not study.skipped and sum(len(s) for s in study.series) == len(SEEDS)


def check_outcome(path: Path) -> None:
    study = load_study(path)
    loaded = sum(len(s) for s in study.series)
    assert loaded >= 1 or (len(study.skipped) == 1 and study.skipped[0].reason), study
    for skipped in study.skipped:
        assert skipped.reason and not skipped.reason.startswith("unexpected error"), skipped
    for series in study.series:
        for i in range(len(series)):
            try:
                hu = series.hu(i)
            except PixelDecodeError as exc:
                assert str(exc)
                continue
            assert hu.shape == series.shape and hu.dtype == np.float32


@pytest.mark.timeout(180)
@settings(
    max_examples=250,
    deadline=3000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(seed=st.integers(0, len(SEEDS) - 1), mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_files_load_or_skip_cleanly(seed, mutations):
    data = mutate(SEEDS[seed], mutations)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutant.dcm"
        path.write_bytes(data)
        check_outcome(path)


COMPRESSED = [SYNTAXES.index(name) for name in ("rle", "jpeg-ls", "jpeg2000", "jpeg-lossless")]


@settings(max_examples=80, deadline=10000, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seed=st.sampled_from(COMPRESSED), mutations=st.lists(mutation, min_size=1, max_size=3))
def _mutants_through_the_worker_pool(seed, mutations):
    assert start_pool(2).wait(120)  # (re)started after a worker crash
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutant.dcm"
        path.write_bytes(mutate(SEEDS[seed], mutations))
        check_outcome(path)


@pytest.mark.timeout(240)
def test_mutated_files_in_worker_processes_never_take_the_program_down():
    """Compressed slices decode in the worker pool (with GDCM, which can abort on bad data)."""
    try:
        _mutants_through_the_worker_pool()
    finally:
        shutdown_workers()
