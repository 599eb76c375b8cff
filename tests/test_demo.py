"""The bundled real demo study (CT-ICH patient 071): what is on disk, its HU against the
source JPEG windows, and its credit in README, report and command line."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest

from ich_viewer import LABELS, demo
from ich_viewer.dicom.loader import load_study

ROOT = Path(__file__).resolve().parent.parent
CT_ICH = Path(os.environ.get("ICH_VIEWER_CT_ICH", ROOT.parent / "shared" / "data" / "ct-ich"))
"""The source data set (not in the repository); tests that compare against it skip without it."""
BRAIN_STEP = 120 / 255
BONE_STEP = 3200 / 255


@pytest.fixture(scope="module")
def info() -> demo.DemoInfo:
    found = demo.demo_info()
    assert found is not None, f"the demo study is missing from {demo.demo_root()}"
    return found


@pytest.fixture(scope="module")
def series(info):
    study = load_study(info.dicom_dir)
    assert study.study_uid == info.study_uid and not study.skipped
    (only,) = study.image_series
    return only


def test_demo_is_one_lossless_ct_series_with_its_credit_and_stays_small(info, series):
    files = sorted(info.dicom_dir.glob("*.dcm"))
    assert len(files) == len(series) == info.n_slices == 29
    size = sum(p.stat().st_size for p in info.folder.rglob("*") if p.is_file())
    assert size <= 5_000_000, f"{size} bytes"
    ds = pydicom.dcmread(files[0])
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGLSLossless
    assert ds.Modality == "CT" and ds.RescaleType == "HU" and float(ds.RescaleSlope) == 1.0
    assert ds.StudyDescription == demo.STUDY_DESCRIPTION and "CC BY 4.0" in ds.StudyDescription
    assert len(ds.StudyDescription) <= 64  # LO
    assert demo.TRAINING_NOTE in ds.ImageComments and "Hssayeni" in ds.ImageComments
    assert ds.LossyImageCompression == "01", "the source JPEGs were lossy; the files must say so"
    assert [float(v) for v in ds.PixelSpacing] == [0.32, 0.32]
    assert series.spacing_mm == pytest.approx(5.0)
    # slice 1 of the data set (skull base) is shown first, in the data set's order
    assert [h.instance_number for h in series.slices] == list(range(1, 30))


def test_demo_hu_look_like_a_head_ct_with_blood_on_the_labelled_slices(info, series):
    volume = series.volume_hu()
    assert volume.shape == (29, 650, 650)
    assert float(volume[:, :10, :10].max()) == -1000.0, "air is air"
    assert float(volume.max()) > 1000.0, "bone is there"
    mid = volume[14]
    brain = mid[(mid > 0) & (mid < 80)]
    assert 25.0 <= float(np.median(brain)) <= 40.0
    assert info.labels == {"intraparenchymal": [11, 12, 13, 14, 15], "subdural": list(range(12, 30))}


def _grey(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.int32)


@pytest.mark.skipif(not (CT_ICH / "Patients_CT" / demo.CT_ICH_PATIENT).is_dir(),
                    reason=f"CT-ICH source data not at {CT_ICH} (set ICH_VIEWER_CT_ICH)")
def test_demo_hu_match_the_source_jpeg_windows_within_their_quantisation(info, series):
    """Every pixel, windowed back to 8 bits, gives the source JPEG's grey.

    Brain window 40/120 (0.47 HU per grey) within one grey level (the HU are whole
    numbers, so 0.5 HU of rounding); bone window 700/3200 (12.5 HU per grey) exactly.
    Where the brain window is open and the bone window agrees, the value is the brain
    window's (the finer one); bone-window grey 0 ("-900 HU or less") is air, -1000.
    """
    manifest = json.loads((info.folder / demo.MANIFEST).read_text())
    assert len(manifest["slices"]) == len(series)
    for index, (header, item) in enumerate(zip(series.slices, manifest["slices"])):
        assert header.instance_number == item["slice"]
        brain_path, bone_path = CT_ICH / item["brain"], CT_ICH / item["bone"]
        assert hashlib.sha256(brain_path.read_bytes()).hexdigest() == item["brain_sha256"], brain_path
        assert hashlib.sha256(bone_path.read_bytes()).hexdigest() == item["bone_sha256"], bone_path
        hu = series.hu(index).astype(np.float64)
        brain, bone = _grey(brain_path), _grey(bone_path)
        assert hu.shape == brain.shape == bone.shape
        as_brain = np.clip(np.rint((hu - (40 - 60)) / BRAIN_STEP), 0, 255)
        as_bone = np.clip(np.rint((hu - (700 - 1600)) / BONE_STEP), 0, 255)
        from_brain = (brain >= 1) & (brain <= 254) & (np.abs(as_brain - brain) <= 1)
        from_bone = as_bone == bone
        assert np.all(from_brain | from_bone), f"slice {item['slice']}: pixels match neither window"
        bone_hu = -900 + bone * BONE_STEP
        agree = (brain >= 1) & (brain <= 254) & (bone_hu >= -80) & (bone_hu <= 160)
        assert np.all(np.abs(as_brain[agree] - brain[agree]) <= 1), f"slice {item['slice']}: brain window not used"
        assert np.all(hu[bone == 0] == -1000.0)


def test_the_labels_in_the_manifest_are_the_data_sets():
    if not (CT_ICH / "hemorrhage_diagnosis.csv").is_file():
        pytest.skip(f"CT-ICH source data not at {CT_ICH}")
    import csv

    columns = {"epidural": "Epidural", "intraparenchymal": "Intraparenchymal", "intraventricular": "Intraventricular",
               "subarachnoid": "Subarachnoid", "subdural": "Subdural"}
    with (CT_ICH / "hemorrhage_diagnosis.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["PatientNumber"]) == int(demo.CT_ICH_PATIENT)]
    expected = {label: sorted(int(r["SliceNumber"]) for r in rows if r[col] == "1") for label, col in columns.items()}
    assert demo.demo_info().labels == {k: v for k, v in expected.items() if v}
    assert len({label for label, v in expected.items() if v}) >= 2, "more than one subtype"


def test_credit_text_is_in_the_readme_and_the_demo_folder():
    credit = demo.CREDIT_REFERENCES
    for path in (ROOT / "README.md", demo.demo_root() / "README.md"):
        text = " ".join(path.read_text(encoding="utf-8").split())
        for ref in credit:
            assert " ".join(ref.split()) in text, f"{path.name} lacks: {ref}"
        assert "CC BY 4.0" in text and "training data" in text, path


def test_source_notes_only_for_the_demo(info, series):
    class Other:
        study_uid = "1.2.3"

    class Demo:
        study_uid = info.study_uid

    assert demo.source_notes(Other()) == []
    notes = demo.source_notes(Demo())
    assert notes[-1] == demo.TRAINING_NOTE and any("Hssayeni, M. (2019)" in n for n in notes)
    assert "intraparenchymal on slices 11-15; subdural on slices 12-29" in notes[-2]
    assert demo.label_summary(info) == "intraparenchymal on slices 11-15; subdural on slices 12-29"


def test_pdf_and_json_reports_of_the_demo_carry_the_credit_and_training_note(tmp_path, isolated_settings, series):
    from pypdf import PdfReader

    from ich_viewer.report.export import export_report
    from test_report_support import make_prediction

    study = load_study(demo.demo_study_path())
    series = study.image_series[0]
    prediction = make_prediction(series, {12: ("intraparenchymal", "subdural")})
    result = export_report(study, [(series, prediction)], pdf=tmp_path / "r.pdf", json=tmp_path / "r.json")
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(str(result.pdf)).pages).split())
    for ref in demo.CREDIT_REFERENCES:
        assert " ".join(ref.split()) in text
    assert "CC BY 4.0" in text and " ".join(demo.TRAINING_NOTE.split()) in text
    document = json.loads(Path(result.json).read_text())
    assert document["source_notes"][-1] == demo.TRAINING_NOTE


def test_demo_flag_picks_the_study(isolated_settings):
    from ich_viewer.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["view", "--demo"]).demo == "ct-ich"
    assert parser.parse_args(["view", "--demo", "phantom"]).demo == "phantom"
    assert parser.parse_args(["view"]).demo is None
    with pytest.raises(SystemExit):
        parser.parse_args(["view", "--demo", "other"])
    assert demo.demo_study_path("ct-ich") == demo.demo_root() / "dicom"
    with pytest.raises(ValueError, match="unknown demo"):
        demo.demo_study_path("other")


def test_missing_demo_is_reported_and_the_smoke_step_says_so(tmp_path, monkeypatch):
    from ich_viewer import smoke_test

    monkeypatch.setattr(demo, "demo_root", lambda: tmp_path / "nothing")
    assert demo.demo_info() is None and not demo.is_demo_study(type("S", (), {"study_uid": "x"})())
    with pytest.raises(demo.DemoMissing, match="--demo phantom"):
        demo.demo_study_path()
    with pytest.raises(smoke_test.SmokeFailure, match="demo study is missing"):
        smoke_test.step_demo(smoke_test.SmokeContext(workdir=tmp_path))


def test_smoke_demo_step_passes_on_the_bundled_demo(tmp_path):
    from ich_viewer import smoke_test

    detail = smoke_test.step_demo(smoke_test.SmokeContext(workdir=tmp_path))
    assert re.match(r"29 slices 650x650 decoded, air -1000 HU, brain median \d\d HU", detail), detail
    assert LABELS  # label order untouched by the demo module


def test_a_fresh_clone_carries_every_demo_file(info):
    """The demo is committed (not generated, not ignored): a fresh clone and the packaged app have it."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "ls-files", "--", str(info.folder.relative_to(ROOT))], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    tracked = set(result.stdout.split())
    manifest = json.loads((info.folder / demo.MANIFEST).read_text())
    wanted = {f"{info.folder.relative_to(ROOT).as_posix()}/{name}"
              for name in [item["file"] for item in manifest["slices"]] + ["README.md", demo.MANIFEST]}
    assert wanted <= tracked, sorted(wanted - tracked)[:5]
    ignored = subprocess.run(["git", "check-ignore", *sorted(wanted)], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout == "", ignored.stdout
