"""Review decisions: kept per study and series in the data folder, restored on reopen."""
from __future__ import annotations

import json

import pytest

from ich_viewer import paths
from ich_viewer.report.decisions import Decision
from ich_viewer.report.review import ReviewStore

STUDY = "1.2.3.4"
SERIES = "1.2.3.4.5"


def test_decisions_persist_across_reopen(isolated_settings):
    store = ReviewStore()
    store.set_decision(STUDY, SERIES, "1.2.3.4.5.1", state="accepted")
    store.set_decision(STUDY, SERIES, "1.2.3.4.5.1", note="left convexity")
    store.set_decision(STUDY, SERIES, "1.2.3.4.5.2", state="rejected", note="artefact")
    store.set_decision(STUDY, "9.9", "9.9.1", state="accepted")

    reopened = ReviewStore()
    assert reopened.decision(STUDY, SERIES, "1.2.3.4.5.1").state == "accepted"
    assert reopened.decision(STUDY, SERIES, "1.2.3.4.5.1").note == "left convexity"
    assert reopened.decision(STUDY, SERIES, "1.2.3.4.5.2") == store.decision(STUDY, SERIES, "1.2.3.4.5.2")
    assert reopened.decision(STUDY, SERIES, "1.2.3.4.5.3") == Decision()
    assert set(reopened.study_decisions(STUDY)) == {SERIES, "9.9"}
    assert reopened.decision("other", SERIES, "1.2.3.4.5.1") == Decision()
    saved = reopened.file_for(STUDY)
    assert saved.parent == paths.data_dir() / "reviews"
    assert str(isolated_settings) in str(saved)


def test_back_to_undecided_without_note_removes_entry(isolated_settings):
    store = ReviewStore()
    store.set_decision(STUDY, SERIES, "k", state="accepted")
    store.set_decision(STUDY, SERIES, "k", state="undecided")
    assert ReviewStore().series_decisions(STUDY, SERIES) == {}


def test_unknown_state_is_refused(isolated_settings):
    with pytest.raises(ValueError, match="unknown review state"):
        ReviewStore().set_decision(STUDY, SERIES, "k", state="maybe")


def test_damaged_file_is_set_aside_not_lost(isolated_settings):
    store = ReviewStore()
    path = store.file_for(STUDY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    fresh = ReviewStore()
    assert fresh.series_decisions(STUDY, SERIES) == {}
    assert fresh.warnings and "could not be read" in fresh.warnings[0]
    aside = [p for p in path.parent.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_text() == "{not json"
    fresh.set_decision(STUDY, SERIES, "k", state="rejected")
    assert json.loads(path.read_text())["series"][SERIES]["k"]["state"] == "rejected"


def test_odd_study_uid_cannot_escape_the_folder(isolated_settings):
    store = ReviewStore()
    path = store.file_for("../../etc/passwd")
    assert path.parent == store.folder and path.name.startswith("sha1-")
