"""Broken and hostile input never yields a silent result, a hang, an escape from the study
folder or a leaked identity (issue 15). Every case is generated here; nothing from outside."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pypdf import PdfReader

from reliability_helpers import DELETE, dicom_files, edit_series, small_study
from ich_viewer.cli import CLOSED_PIPE_EXIT, main
from ich_viewer.dicom.inspect import study_summary
from ich_viewer.dicom.loader import load_study
from ich_viewer.inference.predict import PredictState, not_analysable, predict_series
from ich_viewer.inference.preprocess import InputSpec
from ich_viewer.inference.testing import SMALL_ARCH, export_random_model
from ich_viewer.inference.weights import CARD_NAME, WEIGHTS_NAME, ModelLoadError, load_model, sha256_file

SPEC = InputSpec(size=48)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_random_model(tmp_path_factory.mktemp("model"), spec=SPEC, arch_changes=SMALL_ARCH, seed=5,
                               any_bias=3.0)  # flags almost everything: "0 flagged" can only come from a bug


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return small_study(tmp_path_factory.mktemp("base") / "study")


def analyze(*args: str) -> int:
    return main(["analyze", *args])


# --- silent wrong results --------------------------------------------------------------


@pytest.mark.parametrize("values, reason", [
    ({"RescaleIntercept": "nan"}, "RescaleIntercept nan is not a finite number"),
    ({"RescaleSlope": "1e300"}, "RescaleSlope 1e+300 is implausible"),
    ({"RescaleSlope": "-1"}, "RescaleSlope -1 is not positive"),
    ({"RescaleSlope": "0"}, "RescaleSlope 0 is not positive"),
    ({"RescaleSlope": "inf"}, "RescaleSlope inf is not a finite number"),
    ({"RescaleSlope": "NaN"}, "RescaleSlope nan is not a finite number"),
    ({"RescaleIntercept": DELETE}, "RescaleIntercept missing"),
    ({"RescaleIntercept": "-1e9"}, "RescaleIntercept -1e+09 is implausible"),
])
def test_broken_hu_rescale_is_never_analysed(base, tmp_path, values, reason):
    study = load_study(edit_series(base, tmp_path / "s", **values))
    (series,) = study.image_series
    assert len(series) == 10
    assert reason in not_analysable(series)
    summary = study_summary(study)["series"][0]
    assert reason in summary["not_analysed_reason"]
    assert any(reason in w for w in summary["warnings"])


def test_nan_intercept_is_refused_in_every_output(base, model_dir, tmp_path, capsys):
    folder = edit_series(base, tmp_path / "s", RescaleIntercept="nan")
    out = tmp_path / "out"
    out.mkdir()
    code = analyze(str(folder), "--json", str(out / "r.json"), "--model-dir", str(model_dir), "--device", "cpu")
    captured = capsys.readouterr()
    assert code == 1
    assert "RescaleIntercept nan is not a finite number" in captured.err
    assert "flagged" not in captured.out
    doc = json.loads((out / "r.json").read_text())
    assert doc["slices"] == [] and "RescaleIntercept nan" in doc["not_analysed"][0]["reason"]


def test_repairs_are_said(base, tmp_path):
    study = load_study(edit_series(base, tmp_path / "s", RescaleSlope=DELETE, PixelRepresentation=DELETE))
    (series,) = study.image_series
    assert not_analysable(series) is None
    assert "RescaleSlope missing: taken as 1" in series.warnings
    assert "PixelRepresentation missing: stored values read as unsigned" in series.warnings


def test_implausible_pixels_are_not_analysed(tmp_path, model_dir):
    """A header that passes but whose pixels are not CT HU (intercept 20000 on signed data)."""
    folder = edit_series(small_study(tmp_path / "b", signed=True), tmp_path / "s", RescaleIntercept="20000")
    (series,) = load_study(folder).image_series
    prediction = predict_series(series, state := PredictState(load_model(model_dir, device="cpu")))
    assert prediction.slices == []
    assert len(state.errors) == 10 and all("HU scale is wrong" in e for e in state.errors.values())


def test_one_uid_for_every_slice_keeps_the_images_and_refuses_loudly(base, model_dir, tmp_path, capsys):
    folder = edit_series(base, tmp_path / "s", SOPInstanceUID="1.2.826.0.1.3680043.8.498.77")
    study = load_study(folder)
    (series,) = study.image_series
    assert len(series) == 10 and not study.skipped  # nothing dropped as a "duplicate"
    assert "share a SOPInstanceUID" in not_analysable(series)
    code = analyze(str(folder), "--model-dir", str(model_dir), "--device", "cpu")
    captured = capsys.readouterr()
    assert code == 1 and "share a SOPInstanceUID" in captured.err
    assert "suspected: none" not in captured.out


def test_true_duplicates_are_still_dropped(base, tmp_path):
    folder = tmp_path / "s"
    shutil.copytree(base, folder)
    first = dicom_files(folder)[0]
    shutil.copy(first, folder / "copy.dcm")
    study = load_study(folder)
    assert len(study.image_series[0]) == 10
    assert [s.reason for s in study.skipped] == [f"duplicate of {first} (same SOPInstanceUID and pixel data)"]


def test_loader_warnings_reach_console_json_csv_and_pdf(base, model_dir, tmp_path, capsys):
    folder = tmp_path / "s"
    shutil.copytree(base, folder)
    other = edit_series(base, tmp_path / "other", PatientID="SOMEONE-ELSE", StudyInstanceUID="1.2.3.4.5")
    shutil.copy(dicom_files(other)[0], folder / "stranger.dcm")
    (folder / "notes.txt").write_text("not an image")
    os.remove(dicom_files(folder)[4])  # a gap in the stack
    out = tmp_path / "out"
    out.mkdir()
    code = analyze(str(folder), "--json", str(out / "r.json"), "--csv", str(out / "r.csv"),
                   "--report", str(out / "r.pdf"), "--model-dir", str(model_dir), "--device", "cpu")
    printed = capsys.readouterr().out
    assert code == 0, printed
    study = load_study(folder)
    expected = [*study.warnings, *[w for s in study.series for w in s.warnings]]
    assert any("different patient IDs" in w for w in expected) and any("notes.txt" in s.path for s in study.skipped)
    doc = json.loads((out / "r.json").read_text())
    with open(out / "r.csv", encoding="utf-8-sig") as handle:
        csv_warnings = next(csv.DictReader(handle))["warnings"]
    pdf = " ".join(" ".join(p.extract_text() for p in PdfReader(str(out / "r.pdf")).pages).split())
    for warning in expected:
        assert warning in printed
        assert any(warning in w for w in doc["warnings"])
        assert warning in csv_warnings
        assert " ".join(warning.split())[:60] in pdf
    assert {"path": str(folder / "notes.txt"), "reason": next(s.reason for s in study.skipped
                                                              if s.path.endswith("notes.txt"))} in doc["skipped"]
    assert "notes.txt" in printed and "notes.txt" in csv_warnings and "notes.txt" in pdf
    assert doc["series"][0]["warnings"]


def _resign(model: Path) -> None:
    card = json.loads((model / CARD_NAME).read_text())
    card["sha256"] = sha256_file(model / WEIGHTS_NAME)
    (model / CARD_NAME).write_text(json.dumps(card))


def test_nan_model_output_stops_the_run(base, model_dir, tmp_path, capsys):
    tampered = tmp_path / "model"
    shutil.copytree(model_dir, tampered)
    state = torch.load(tampered / WEIGHTS_NAME, weights_only=True)
    state["fc.bias"] = torch.full_like(state["fc.bias"], float("nan"))
    torch.save(state, tampered / WEIGHTS_NAME)
    _resign(tampered)
    out = tmp_path / "r.json"
    code = analyze(str(base), "--json", str(out), "--model-dir", str(tampered), "--device", "cpu")
    captured = capsys.readouterr()
    assert code == 2 and "non-finite outputs" in captured.err
    assert "flagged" not in captured.out and not out.exists()


def test_every_json_is_strict(base, model_dir, tmp_path):
    from ich_viewer.inference.results import SeriesPrediction, SlicePrediction
    from ich_viewer.report.atomic import ExportError
    from ich_viewer.report.tabular import write_json

    study = load_study(base)
    series = study.image_series[0]
    loaded = load_model(model_dir, device="cpu")
    bad = SlicePrediction(0, series.slices[0].sop_instance_uid, "f", {k: float("nan") for k in loaded.thresholds}, ())
    with pytest.raises(ExportError, match="not a finite number"):
        write_json(tmp_path / "r.json", study, [(series, SeriesPrediction(series.series_uid, loaded.info, [bad]))])
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("edit, needle", [
    (lambda ds, k: setattr(ds, "BitsAllocated", 8) or setattr(ds, "BitsStored", 8) or setattr(ds, "HighBit", 7),
     "need only"),
    (lambda ds, k: setattr(ds, "Rows", ds.Rows // 2), "need only"),
])
def test_surplus_pixel_data_is_warned_about(base, tmp_path, edit, needle):
    study = load_study(edit_series(base, tmp_path / "s", edit=edit))
    (series,) = study.image_series
    assert any(needle in w and "only part of the data" in w for w in series.warnings)


# --- hangs and resource exhaustion -----------------------------------------------------


def test_dicm_then_zeros_is_refused_within_a_second(tmp_path):
    path = tmp_path / "zeros.dcm"
    with open(path, "wb") as handle:
        handle.write(b"\0" * 128 + b"DICM")
        handle.truncate(64 * 1024**2)
    started = time.perf_counter()
    study = load_study(path)
    assert time.perf_counter() - started < 20.0  # a hang guard (it took 30 s before); the 1 s goal is in bench/
    assert "group 0000" in study.skipped[0].reason


def test_zip_bomb_is_refused_within_a_second(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("big.dcm", "w", force_zip64=True) as member:
            member.write(b"\0" * 128 + b"DICM")
            for _ in range(16):
                member.write(bytes(1 << 24))  # 256 MiB of zeros in about 256 KB
    started = time.perf_counter()
    study = load_study(path)
    assert time.perf_counter() - started < 20.0  # a hang guard; the 1 s goal is in bench/
    assert "zip bomb" in study.skipped[0].reason


def test_deflate_bomb_is_refused_within_a_second(tmp_path):
    """A deflated data set of 500 KB that would inflate to 512 MiB (pydicom inflates it whole)."""
    import io
    import zlib

    from pydicom.dataset import FileMetaDataset
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3"
    buffer = io.BytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = b"\x09\x00\x10\x00OB\x00\x00" + (512 * 1024**2).to_bytes(4, "little")
    buffer.write(packer.compress(body) + b"".join(packer.compress(bytes(1 << 24)) for _ in range(32)) + packer.flush())
    path = tmp_path / "bomb.dcm"
    path.write_bytes(buffer.getvalue())
    started = time.perf_counter()
    study = load_study(path)
    assert time.perf_counter() - started < 20.0  # a hang guard; the 1 s goal is measured in bench/bench_hostile.py
    assert "decompression bomb" in study.skipped[0].reason


def test_large_zip_member_is_streamed_not_read_whole(tmp_path):
    """A stored (uncompressed) 200 MB member of junk: refused from its header, never read into memory."""
    import resource

    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        with archive.open("big.dcm", "w", force_zip64=True) as member:
            member.write(b"\0" * 128 + b"DICM")
            for _ in range(200):
                member.write(bytes(1 << 20))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    study = load_study(path)
    assert time.perf_counter() - started < 20.0  # a hang guard; the 1 s goal is in bench/
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100 and study.skipped


def test_cancel_is_seen_inside_a_file(base, tmp_path):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1  # not cancelled before the first file, cancelled while it is read

    study = load_study(dicom_files(base)[0], cancel=cancel)
    assert not study.series and any("cancelled" in w for w in study.warnings)


# --- escaping the study and the export guard -----------------------------------------


def _dicomdir_study(tmp_path: Path) -> tuple[Path, Path]:
    from ich_viewer.phantom.study import write_phantom_study

    root = write_phantom_study(tmp_path / "a", seed=1, matrix=64, n_slices=6, dicomdir=True)
    other = small_study(tmp_path / "other", n_slices=6, seed=9)
    return root, other


def test_dicomdir_references_are_confined_to_its_folder(tmp_path):
    root, other = _dicomdir_study(tmp_path)
    dicomdir = root / "DICOMDIR"
    ds = pydicom.dcmread(dicomdir)
    images = [r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    outside = [os.path.relpath(p, root).split(os.sep) for p in dicom_files(other)]
    for record, parts in zip(images, outside):
        record.ReferencedFileID = parts  # ../other/...
    images[-1].ReferencedFileID = "/etc/passwd"
    ds.save_as(dicomdir)
    study = load_study(dicomdir)
    read = {h.path for s in study.series for h in s.slices}
    assert not any(str(other) in p or p == "/etc/passwd" for p in read)
    reasons = [s.reason for s in study.skipped if "not followed" in s.reason]
    assert len(reasons) == len(images)
    assert any("'/etc/passwd'" in r for r in reasons) and any("'..'" in r for r in reasons)


def test_exports_are_refused_in_every_folder_an_image_came_from(base, model_dir, tmp_path, capsys):
    linked = tmp_path / "linked"
    linked.mkdir()
    for path in dicom_files(base):
        (linked / path.name).symlink_to(path)
    for option in ("--json", "--csv", "--report"):
        target = base / f"r{option}"
        code = analyze(str(linked), option, str(target), "--model-dir", str(model_dir), "--device", "cpu")
        assert code == 2 and "inside the study folder" in capsys.readouterr().err
        assert not target.exists()
    assert analyze(str(linked), "--sr", str(base / "sr"), "--model-dir", str(model_dir)) == 2
    assert not (base / "sr").exists()


@pytest.mark.parametrize("option", ["--json", "--csv", "--report", "--sr"])
def test_documents_are_checked_before_inference(base, model_dir, tmp_path, capsys, option):
    started = time.perf_counter()
    code = analyze(str(base), option, str(tmp_path / "missing" / "deeper" / "out"), "--model-dir", str(model_dir))
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err
    assert "slices analysed" not in err
    existing = tmp_path / "exists.pdf"
    existing.write_text("keep")
    if option in ("--json", "--csv", "--report"):
        assert analyze(str(base), option, str(existing), "--model-dir", str(model_dir)) == 2
        assert existing.read_text() == "keep"
    assert time.perf_counter() - started < 30


def test_non_utf8_file_names_reach_every_output(base, model_dir, tmp_path, capsys):
    folder = tmp_path / "s"
    folder.mkdir()
    raw_names = []
    for k, path in enumerate(dicom_files(base)):
        name = f"sl\xe9ice{k}".encode("latin-1") + b".dcm"  # not valid UTF-8
        raw_names.append(name)
        with open(os.path.join(os.fsencode(folder), name), "wb") as handle:
            handle.write(path.read_bytes())
    with open(os.path.join(os.fsencode(folder), b"junk\xff.txt"), "wb") as handle:
        handle.write(b"not an image")
    out = tmp_path / "out"
    out.mkdir()
    code = analyze(str(folder), "--json", str(out / "r.json"), "--csv", str(out / "r.csv"),
                   "--report", str(out / "r.pdf"), "--model-dir", str(model_dir), "--device", "cpu")
    assert code == 0, capsys.readouterr()
    doc = json.loads((out / "r.json").read_text(encoding="utf-8"))
    row = doc["slices"][0]
    assert "\\xe9" in row["file"]
    assert os.path.basename(bytes.fromhex(row["file_bytes_hex"])) in raw_names
    (junk,) = doc["skipped"]
    assert junk["path"].endswith("junk\\xff.txt") and bytes.fromhex(junk["path_bytes_hex"]).endswith(b"junk\xff.txt")
    (out / "r.csv").read_text(encoding="utf-8-sig")
    capsys.readouterr()
    assert main(["inspect", str(folder)]) == 0 and "\\xe9" in capsys.readouterr().out
    assert main(["inspect", str(folder), "--json"]) == 0
    assert "\\xe9" in json.loads(capsys.readouterr().out)["series"][0]["files"][0]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}  # a terminal that refuses surrogates
    shown = subprocess.run([sys.executable, "-m", "ich_viewer", "inspect", str(folder)], capture_output=True,
                           env=env, timeout=120)
    assert shown.returncode == 0 and b"\\xe9" in shown.stdout, shown.stderr[-500:]


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(base):
    """`ich-viewer inspect STUDY --json | head -1`: the reader has gone before the JSON is written."""
    child = subprocess.Popen([sys.executable, "-m", "ich_viewer", "inspect", str(base), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # closed long before the child has imported enough to write
    error = child.stderr.read()
    assert child.wait(timeout=120) == CLOSED_PIPE_EXIT, error[-500:]
    assert b"Traceback" not in error and b"BrokenPipe" not in error, error[-500:]


def test_unreadable_folder_is_listed_as_skipped(base, tmp_path, monkeypatch):
    folder = tmp_path / "s"
    shutil.copytree(base, folder / "good")
    (folder / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    study = load_study(folder)
    assert len(study.image_series[0]) == 10
    assert [(s.path, s.reason) for s in study.skipped] == [
        (str(folder / "locked"), "cannot read the folder: Permission denied")]


# --- identity --------------------------------------------------------------------------


def test_deidentify_flag_cleans_every_output(base, model_dir, tmp_path, capsys):
    folder = edit_series(base, tmp_path / "s", PatientName="DOE^JANE", PatientID="MRN-12345",
                         PatientBirthDate="19500101", AccessionNumber="ACC-999", StudyDescription="CT HEAD DOE JANE",
                         SeriesDescription="AXIAL FOR JANE DOE", ReferringPhysicianName="HOUSE^GREGORY",
                         InstitutionName="SAINT ELSEWHERE", StudyDate="20240102")
    out = tmp_path / "out"
    out.mkdir()
    code = analyze(str(folder), "--deidentify", "--json", str(out / "r.json"), "--csv", str(out / "r.csv"),
                   "--report", str(out / "r.pdf"), "--sr", str(out / "dicom"), "--model-dir", str(model_dir),
                   "--device", "cpu")
    assert code == 0, capsys.readouterr()
    secrets = ["DOE", "JANE", "MRN-12345", "19500101", "ACC-999", "HOUSE", "ELSEWHERE", "20240102", str(folder)]
    texts = {
        "json": (out / "r.json").read_text(), "csv": (out / "r.csv").read_text(encoding="utf-8-sig"),
        "pdf": " ".join(p.extract_text() for p in PdfReader(str(out / "r.pdf")).pages),
    }
    written = sorted((out / "dicom").iterdir())
    assert {p.name[:2] for p in written} == {"SR", "SC", "KO"}
    source_study = pydicom.dcmread(dicom_files(folder)[0]).StudyInstanceUID
    for path in written:
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES" and ds.StudyInstanceUID == source_study  # UIDs retained
        assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113110"]
        texts[path.name] = str(ds)
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, (where, secret)


def test_refused_weights_never_suggest_unsafe_loading(model_dir, tmp_path):
    tampered = tmp_path / "model"
    shutil.copytree(model_dir, tampered)
    torch.save({"fc.weight": np.arange(3)}, tampered / WEIGHTS_NAME)  # a numpy array: not weights-only
    _resign(tampered)
    with pytest.raises(ModelLoadError) as caught:
        load_model(tampered, device="cpu")
    message = str(caught.value)
    assert "weights_only" not in message and "False" not in message
    assert "more than plain tensors" in message and "refused" in message
