"""Every kind of DICOM object the viewer writes, checked by an independent validator.

dciodvfy (dicom3tools, David Clunie's) checks each object against the standard's modules:
required attributes, their types and conditions, value representations. A PACS may refuse
or misfile what it flags (a key image without a body part could not say whether its
Laterality was required; the demo study lacked three Type 2 attributes). Warnings are not
failures: the viewer's private coding scheme (99ICHV) and empty values the standard allows
(an unknown study date) are warned about by design.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ich_viewer.demo import demo_root
from ich_viewer.measure.planar import Calibration
from ich_viewer.measure.records import planar_measurement, volume_measurement
from ich_viewer.measure.region import deepest_point
from ich_viewer.measure.series import grow_in_series
from ich_viewer.phantom import generate_phantom
from ich_viewer.phantom.study import write_phantom_study
from ich_viewer.phantom.syntaxes import available_syntaxes
from ich_viewer.report.export import export_report
from ich_viewer.report.measurements import MeasurementStore
from ich_viewer.report.review import study_key
from test_report_support import make_prediction, make_study, phantom_study

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(DCIODVFY is None, reason="dicom3tools' dciodvfy is not installed "
                                "(sudo apt-get install dicom3tools; scripts/node_system_check.sh does it as root)")


def validation_errors(path: Path) -> list[str]:
    """dciodvfy's error lines for one file (it prints its findings on stderr)."""
    run = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def assert_valid(paths: list[Path]) -> None:
    assert paths, "nothing was written to validate"
    found = {path.name: validation_errors(path) for path in paths}
    assert not any(found.values()), {name: errors for name, errors in found.items() if errors}


def test_a_deliberately_broken_object_is_caught(tmp_path):
    """The check itself can fail: a CT slice without its Type 1 pixel spacing is reported."""
    import pydicom

    [first, *_] = sorted(write_phantom_study(tmp_path / "ct", seed=1, n_slices=2, matrix=64).glob("*.dcm"))
    broken = pydicom.dcmread(first)
    del broken.PixelSpacing
    broken.save_as(tmp_path / "broken.dcm")
    assert any("<PixelSpacing>" in line for line in validation_errors(tmp_path / "broken.dcm"))


def test_the_bundled_demo_study_is_valid_ct():
    assert_valid(sorted((demo_root() / "dicom").glob("*.dcm")))


def test_phantom_series_are_valid_in_every_transfer_syntax(tmp_path):
    files: list[Path] = []
    for syntax in available_syntaxes():
        folder = write_phantom_study(tmp_path / syntax, seed=3, subtypes=["subdural"], n_slices=2, matrix=64,
                                     syntax=syntax)
        for path in sorted(folder.glob("*.dcm")):
            if syntax == "deflated":  # dciodvfy does not inflate: DCMTK writes the same dataset plainly
                if shutil.which("dcmconv") is None:
                    continue
                plain = tmp_path / f"inflated-{path.name}"
                subprocess.run(["dcmconv", "+te", str(path), str(plain)], check=True, timeout=60)
                path = plain
            files.append(path)
    tilted = write_phantom_study(tmp_path / "tilted", seed=4, n_slices=2, matrix=64, tilt_deg=12.0, signed=False,
                                 dicomdir=True)  # unsigned pixels with their intercept, a gantry tilt, a file-set
    files += sorted(tilted.rglob("IM*")) + [tilted / "DICOMDIR"]
    messy = write_phantom_study(tmp_path / "messy", seed=5, n_slices=4, matrix=64, messy=True)  # localizer, bone series
    files += sorted(p for folder in ("scout", "bone") for p in (messy / folder).rglob("*") if p.is_file())
    assert_valid(files)


@pytest.mark.parametrize("deidentify", [False, True], ids=["identified", "deidentified"])
def test_report_objects_are_valid(tmp_path, isolated_settings, deidentify):
    """The SR (flags and TID 1500 measurements), the SEG of an outline, the KOS and the key
    images, from a study read from files."""
    study, series, flagged = phantom_study(tmp_path / "study", n_slices=24, matrix=128, subtypes=("subdural",), seed=2)
    truth = generate_phantom(seed=2, subtypes=["subdural"], n_slices=24, matrix=128).masks == 5
    region = grow_in_series(series, deepest_point(truth))
    k = region.seed[0]
    uid = series.slices[k].sop_instance_uid
    calibration = Calibration(*series.pixel_spacing)
    store, key = MeasurementStore(), study_key(study.study_uid, study.source)
    store.add(key, volume_measurement(region, series_uid=series.series_uid, slice_uid=uid, subtype="subdural"))
    for kind, points in (("distance", [(10, 10), (10, 50)]), ("ellipse", [(30, 30), (60, 70)]),
                         ("angle", [(20, 20), (40, 40), (20, 60)]), ("polygon", [(30, 30), (30, 60), (60, 45)]),
                         ("midline", [(10, 64), (120, 64), (64, 70)])):
        store.add(key, planar_measurement(kind, points, series.hu(k), calibration, series_uid=series.series_uid,
                                          slice_index=k, slice_uid=uid))
    result = export_report(study, [(series, make_prediction(series, flagged))], dicom_dir=tmp_path / "out",
                           deidentify=deidentify)
    written = sorted(result.written)
    kinds = {path.name.split("_")[0] for path in written}
    assert {"SR", "SEG", "KO", "SC"} <= kinds, kinds
    assert_valid(written)


def test_the_demo_read_by_the_loader_exports_valid_objects(tmp_path, isolated_settings):
    """The window's path on a real scan: the loader's headers, a bleed grown on the demo's
    hematoma, and everything the export writes for it (SEG of 650 x 650 frames included)."""
    from ich_viewer.demo import demo_study_path
    from ich_viewer.dicom.loader import load_study

    study = load_study(demo_study_path("ct-ich"))
    series = study.image_series[0]
    region = grow_in_series(series, (14, 330, 520))  # the hematoma (bench_measure_real.DEMO_CLICK)
    assert region.ok, region.reason
    MeasurementStore().add(study_key(study.study_uid, study.source), volume_measurement(
        region, series_uid=series.series_uid, slice_uid=series.slices[14].sop_instance_uid, subtype="intraparenchymal"))
    result = export_report(study, [(series, make_prediction(series, {13: ("intraparenchymal", "any")}))],
                           dicom_dir=tmp_path / "out")
    assert {"SR", "SEG", "KO", "SC"} <= {path.name.split("_")[0] for path in result.written}
    assert_valid(sorted(result.written))


def test_report_objects_of_an_in_memory_series_are_valid(tmp_path, isolated_settings):
    """A series with no file behind it gets its references from the study alone."""
    study, series = make_study(n_slices=6)
    result = export_report(study, [(series, make_prediction(series, {2: ("subdural", "any")}))],
                           dicom_dir=tmp_path / "out")
    assert_valid(sorted(result.written))
