"""The classifier's state machine without Qt: model state, runs, Stop / Run, N / P, banner."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ich_viewer import LABELS
from ich_viewer.dicom.model import Series
from ich_viewer.inference.preprocess import InputSpec
from ich_viewer.inference.results import ModelInfo, SlicePrediction
from ich_viewer.inference.session import (
    SHORT_NOTICE, UNTRAINED_NOTICE, ClassifierSession, ModelState, RunState, predict_task,
)
from ich_viewer.tasks import TaskState

N = 6


def series(uid: str = "1.2.3", n: int = N, description: str = "AXIAL") -> Series:
    return Series.from_array(np.zeros((n, 8, 8), np.float32), series_uid=uid, description=description)


def fake_model(untrained: bool = False) -> SimpleNamespace:
    """What the session reads of a LoadedModel: info, card, thresholds and input spec (no network needed)."""
    thresholds = {label: 0.5 for label in LABELS}
    info = ModelInfo(name="test-net", version="0", sha256="0" * 64, device="cpu", thresholds=thresholds)
    return SimpleNamespace(info=info, card={"untrained": untrained}, thresholds=thresholds, spec=InputSpec(slab_mm=5.0))


def prediction(index: int, *flagged: str) -> SlicePrediction:
    probabilities = {label: (0.9 if label in flagged else 0.1) for label in LABELS}
    return SlicePrediction(index=index, sop_instance_uid=f"1.2.{index}", file="", probabilities=probabilities,
                           flagged=tuple(label for label in LABELS if label in flagged))


def ready_session(**kwargs) -> ClassifierSession:
    session = ClassifierSession()
    session.model_ready(fake_model(**kwargs), "CPU")
    return session


def test_model_states_and_their_banners():
    session = ClassifierSession()
    assert session.model_state is ModelState.LOADING
    assert session.banner().text == "Loading the classifier…"
    assert not session.select(series()), "nothing runs before a model is there"
    session.model_failed("No classifier model found in /x")
    banner = session.banner()
    assert (banner.state, session.button()) == ("off", None)
    assert "No classifier model found" in banner.text and "works normally" in banner.notice
    off = ClassifierSession(enabled=False)
    assert off.model_state is ModelState.OFF and "--no-model" in off.banner().text
    session.model_ready(fake_model(), "CPU")
    assert session.model_state is ModelState.READY and session.reason == ""


def test_a_shown_series_runs_once_and_completes():
    session, s = ready_session(), series()
    assert session.select(s) and session.running()
    assert session.button() == "Stop"
    for i in range(N):
        assert session.add(prediction(i, "subdural", "any") if i in (2, 3) else prediction(i))
    assert session.finish({5: "truncated"})
    run = session.run()
    assert run.state is RunState.COMPLETE and run.errors == {5: "truncated"}
    assert session.button() is None and not session.running()
    assert not session.select(s), "a complete series is not run again"
    banner = session.banner()
    assert banner.state == "suspected" and "2 of 6 slices flagged" in banner.text
    assert "subdural (SDH)" in banner.text and "1 slice could not be read" in banner.text
    assert banner.notice == SHORT_NOTICE


def test_stop_keeps_partial_results_and_run_starts_again():
    session, s = ready_session(), series()
    session.select(s)
    session.add(prediction(0, "any"))
    assert session.stop() and session.run().state is RunState.STOPPED
    assert not session.stop(), "stopping twice does nothing"
    assert not session.add(prediction(1)), "a stopped run takes no more results"
    assert session.button() == "Run"
    assert "Stopped after 1/6 slices (partial)" in session.banner().text
    assert session.press_button() and session.run() is None, "Run forgets the partial run"
    assert session.select(s) and session.running() and session.run().predictions == {}
    assert not session.press_button() and session.run().state is RunState.STOPPED, "Stop stops it"


def test_a_failed_run_says_why_and_offers_run():
    session = ready_session()
    session.select(series())
    session.fail("RuntimeError: out of memory")
    banner = session.banner()
    assert banner.state == "off" and "out of memory" in banner.text
    assert session.button() == "Run" and not session.finish({})


def test_a_localizer_is_skipped_with_its_reason():
    session, scout = ready_session(), series("9.9", n=2)
    scout.is_localizer = True
    assert not session.select(scout)
    assert session.run().state is RunState.SKIPPED and session.button() is None
    assert "Not analysed" in session.banner().text and "localizer" in session.banner().text


def test_n_and_p_targets_and_flagged_slices_of_the_shown_series_only():
    session, a, b = ready_session(), series("1.1"), series("2.2")
    session.select(a)
    for i, flags in ((1, ("any",)), (4, ("epidural", "any"))):
        session.add(prediction(i, *flags))
    assert session.flagged_indices() == [1, 4]
    assert [session.jump_target(0, 1), session.jump_target(1, 1), session.jump_target(4, 1)] == [1, 4, None]
    assert [session.jump_target(5, -1), session.jump_target(4, -1), session.jump_target(1, -1)] == [4, 1, None]
    for i in (5, 6, 7, 9):  # runs: [1], [4..7], [9]
        session.add(prediction(i, "subdural", "any"))
    assert session.flagged_runs() == [(1, 1), (4, 7), (9, 9)]
    assert [session.jump_target(1, 1), session.jump_target(4, 1), session.jump_target(6, 1)] == [4, 9, 9]
    assert [session.jump_target(6, -1), session.jump_target(4, -1), session.jump_target(9, -1)] == [4, 1, 4]
    assert session.jump_target(4, 1, by_run=False) == 5 and session.run_at(6) == (4, 7)
    assert session.run_at(8) is None
    session.select(b)
    assert session.flagged_indices() == [] and session.prediction_at(1) is None
    assert session.series_prediction(a).started_at, "the run's start time is kept per series"


def test_a_new_study_or_model_forgets_every_run():
    session, s = ready_session(), series()
    session.select(s)
    session.clear()
    assert session.runs == {} and session.series is s
    session.select(s)
    session.model_ready(fake_model(untrained=True), "CPU")
    assert session.runs == {}, "results of another model are obsolete"
    session.select(s)
    assert session.banner().notice.startswith(UNTRAINED_NOTICE)
    session.close()
    assert session.series is None and session.banner().text.startswith("Classifier ready")


def test_predict_task_reports_each_slice_and_stops_when_cancelled(model_dir):
    from ich_viewer.inference.weights import load_model

    loaded = load_model(model_dir, device="cpu")
    s = series(n=4)
    seen: list[int] = []
    state = TaskState(lambda kind, value: seen.append(value.index) if kind == "partial" else None)
    assert predict_task(s, loaded, start_index=2, batch_size=2)(state) == {}
    assert seen == [2, 3, 1, 0], "nearest the slice on screen first"
    cancelled = TaskState(lambda kind, value: None)
    cancelled.cancel()
    seen.clear()
    predict_task(s, loaded, start_index=None)(cancelled)
    assert seen == []


@pytest.mark.parametrize("running, stopped, expected", [(True, False, "running"), (False, True, "none")])
def test_banner_state_without_flags(running, stopped, expected):
    from ich_viewer.inference.session import banner_content

    state, text = banner_content([prediction(0)], 3, running=running, stopped=stopped)
    assert state == expected and ("Stopped after" in text) == stopped
