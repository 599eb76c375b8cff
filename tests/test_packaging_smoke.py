"""The self-check behind ``ich-viewer --smoke-test``, run in-process with the dev venv.

The frozen app runs the same code; here it proves the checks themselves pass on a
working install and fail, with a message, when something is missing or wrong.
"""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ich_viewer import smoke_test
from ich_viewer.options import ViewOptions
from ich_viewer.smoke_test import SmokeContext, SmokeFailure, SmokeRun, run_smoke

ALL_STEPS = ["bundle", "phantom study", "load (headless)", "demo study", "main window", "qt platform",
             "open demo in window", "open in window",
             "classify in window", "close window", "classify", "export PDF+JSON+SR", "read back JSON", "read back PDF", "read back SR",
             "decoders", "decoder processes"]


def view_args() -> ViewOptions:
    return ViewOptions(device="cpu", smoke_test=True)


@pytest.fixture
def random_model(flagging_model_dir, tmp_path, monkeypatch):
    """A copy of the shared flagging test model standing in for the bundled one (the
    self-check may write beside it, so the shared folder is never used directly)."""
    folder = tmp_path / "model"
    shutil.copytree(flagging_model_dir, folder)
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(folder))
    return folder


@pytest.mark.slow
def test_smoke_test_passes_on_a_working_install(qapp, isolated_settings, random_model):
    from ich_viewer.ui.smoke import window_steps

    out = io.StringIO()
    run = run_smoke(out, window_steps(view_args()))
    text = out.getvalue()
    assert run.ok, text
    assert [s.name for s in run.steps] == ALL_STEPS
    assert text.strip().splitlines()[-2].startswith("smoke test PASSED: 17 steps")
    assert text.strip().splitlines()[-1] == "smoke-test: 17 passed, 0 failed"
    details = {s.name: s.detail for s in run.steps}
    assert "bit-exact: jpeg-lossless, jpeg2000" in details["decoders"]
    assert "12 slices shown" in details["open in window"]
    assert "29 slices 650x650 decoded" in details["demo study"] and "CC BY 4.0" in details["demo study"]
    assert "credit strip shown" in details["open demo in window"]
    assert "Comprehensive 3D SR" in details["read back SR"] or "SR" in details["read back SR"]
    for line in text.splitlines()[1:-2]:  # every step printed with its time
        assert line.startswith(("[ok  ]", "[FAIL]")) and " s  " in line


def test_smoke_test_fails_and_says_so_without_a_model(isolated_settings, tmp_path, monkeypatch):
    empty = tmp_path / "no-model"
    empty.mkdir()
    monkeypatch.setenv("ICH_VIEWER_MODEL_DIR", str(empty))
    out = io.StringIO()
    run = run_smoke(out, None)
    assert not run.ok
    result = {s.name: s for s in run.steps}
    assert not result["bundle"].ok and "no bundled model" in result["bundle"].detail
    assert not result["classify"].ok and str(empty) in result["classify"].detail
    assert result["export PDF+JSON+SR"].detail == "not run: needs step(s) classify"
    assert result["phantom study"].ok and result["decoders"].ok and result["decoder processes"].ok  # the rest ran
    assert result["demo study"].ok
    assert out.getvalue().strip().splitlines()[-2].startswith("smoke test FAILED")
    assert out.getvalue().strip().splitlines()[-1] == "smoke-test: 5 passed, 6 failed"


def test_untrained_weights_in_the_bundle_fail_the_classify_step(isolated_settings, random_model, monkeypatch):
    from ich_viewer import paths
    from ich_viewer.dicom.model import Series

    monkeypatch.delenv("ICH_VIEWER_MODEL_DIR")
    monkeypatch.setattr(paths, "models_dir", lambda: random_model)  # as if bundled
    ctx = SmokeContext(workdir=random_model, series=Series.from_array(np.zeros((1, 64, 64), np.float32)))
    with pytest.raises(SmokeFailure, match="untrained test weights"):
        smoke_test.step_classify(ctx)


def test_a_step_error_becomes_a_failed_step_and_blocks_its_dependants():
    run = SmokeRun(out=None)
    assert run.step("a", lambda: "fine")
    assert not run.step("b", lambda: 1 / 0)
    assert not run.step("c", lambda: "never", needs=("b",))
    assert not run.step("d", lambda: "never", needs=("unknown",))
    assert run.step("e", lambda: None, needs=("a",))
    by_name = {s.name: s for s in run.steps}
    assert by_name["b"].detail.startswith("ZeroDivisionError: division by zero")
    assert by_name["c"].detail == "not run: needs step(s) b"
    assert not run.ok and run.to_dict()["ok"] is False


def test_pdf_checks_count_pages_and_reject_a_truncated_file(tmp_path):
    from reportlab.pdfgen import canvas

    path = tmp_path / "three.pdf"
    pdf = canvas.Canvas(str(path))
    for page in range(3):
        pdf.drawString(100, 700, f"page {page + 1}")
        pdf.showPage()
    pdf.save()
    assert smoke_test.pdf_page_count(path.read_bytes()) == 3
    ctx = SmokeContext(workdir=tmp_path, exports={"pdf": path})
    assert "3 page(s)" in smoke_test.step_read_pdf(ctx)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(SmokeFailure, match="%%EOF"):
        smoke_test.step_read_pdf(ctx)


def test_referenced_instances_walks_nested_sequences():
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = "1.2.3.2"
    content = Dataset()
    content.ContentSequence = Sequence([inner])
    evidence = Dataset()
    evidence.ReferencedSOPInstanceUID = "1.2.3.1"
    ds = Dataset()
    ds.ContentSequence = Sequence([content])
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([evidence])
    assert smoke_test.referenced_instances(ds) == {"1.2.3.1", "1.2.3.2"}


def test_json_read_back_catches_a_changed_probability(isolated_settings, tmp_path):
    import json

    from ich_viewer.dicom.model import Series, Study
    from ich_viewer.inference.results import ModelInfo, SeriesPrediction, SlicePrediction
    from ich_viewer.report.tabular import write_json

    series = Series.from_array(np.zeros((2, 8, 8), np.float32))
    study = Study(source=str(tmp_path / "study"), series=[series], study_uid="1.2.3")
    info = ModelInfo("m", "1", "abc", "cpu", {label: 0.5 for label in smoke_test.LABELS})
    probs = {label: 0.25 for label in smoke_test.LABELS}
    prediction = SeriesPrediction(series.series_uid, info, [
        SlicePrediction(i, h.sop_instance_uid, h.path, probs, ()) for i, h in enumerate(series.slices)])
    path = write_json(tmp_path / "out" / "r.json", study, [(series, prediction)])
    ctx = SmokeContext(workdir=tmp_path, series=series, prediction=prediction, exports={"json": path})
    assert "2 rows" in smoke_test.step_read_json(ctx)
    document = json.loads(path.read_text())
    document["slices"][1] = {**document["slices"][1], **_bumped(document["slices"][1])}
    path.write_text(json.dumps(document))
    with pytest.raises(SmokeFailure, match="slice 1"):
        smoke_test.step_read_json(ctx)


def _bumped(row: dict) -> dict:
    if isinstance(row.get("probabilities"), dict):
        return {"probabilities": {**row["probabilities"], "subdural": 0.9}}
    key = next(k for k in ("subdural", "p_subdural", "prob_subdural") if k in row)
    return {key: 0.9}


def test_first_paint_probe_prints_once_and_only_when_asked(qtbot, isolated_settings, monkeypatch, capsys):
    from ich_viewer.ui.app import application
    from ich_viewer.ui.smoke import FIRST_PAINT_MARK, exit_after_first_paint

    application()
    from ich_viewer.ui.main_window import MainWindow

    monkeypatch.delenv("ICH_VIEWER_EXIT_AFTER_SHOW", raising=False)
    quiet = MainWindow()
    qtbot.addWidget(quiet)
    exit_after_first_paint(quiet, None)
    quiet.show()
    qtbot.waitExposed(quiet)
    qtbot.wait(50)
    assert FIRST_PAINT_MARK not in capsys.readouterr().out

    monkeypatch.setenv("ICH_VIEWER_EXIT_AFTER_SHOW", "1")
    window = MainWindow()
    qtbot.addWidget(window)
    exit_after_first_paint(window, None)
    window.show()
    printed: list[str] = []

    def seen() -> bool:
        printed.append(capsys.readouterr().out)
        return FIRST_PAINT_MARK in "".join(printed)

    qtbot.waitUntil(seen, timeout=10000)
    window.update()
    qtbot.wait(100)
    lines = [l for l in ("".join(printed) + capsys.readouterr().out).splitlines() if l.startswith(FIRST_PAINT_MARK)]
    assert len(lines) == 1 and float(lines[0].split()[1]) > 1.7e9
    quiet.shutdown()
    window.shutdown()
