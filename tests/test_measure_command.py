"""``ich-viewer measure``: the headless volume, its JSON, its refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ich_viewer.cli import build_parser, main
from ich_viewer.options import MeasureOptions, from_namespace


@pytest.fixture(scope="module")
def subdural_study(tmp_path_factory):
    from ich_viewer.phantom.study import write_phantom_study

    out = tmp_path_factory.mktemp("sdh")
    folder = write_phantom_study(out / "study", seed=0, subtypes=["subdural"], matrix=256, thickness_mm=5.0)
    truth = np.load(out / "study" / "ground_truth" / "masks.npz")
    mask = truth["masks"] == 5
    truth_ml = float(mask.sum() * np.prod(truth["pixel_spacing"]) * float(truth["spacing_mm"]) / 1000)
    return folder, mask, truth_ml


def _seed(mask):
    from ich_viewer.measure.region import deepest_point

    return deepest_point(mask)


def test_parser_gives_typed_options():
    args = build_parser().parse_args(["measure", "/d", "--seed", "3,100,120", "--hu", "40,95", "--json", "o.json"])
    assert from_namespace(MeasureOptions, args) == MeasureOptions(path="/d", seed=["3,100,120"], hu="40,95",
                                                                   json_out="o.json")
    twice = build_parser().parse_args(["measure", "/d", "--seed", "3,100,120", "--seed", "4,90,110"])
    assert from_namespace(MeasureOptions, twice).seed == ["3,100,120", "4,90,110"]


def test_measure_prints_volume_close_to_the_truth(subdural_study, tmp_path, capsys):
    folder, mask, truth_ml = subdural_study
    k, i, j = _seed(mask)
    out = tmp_path / "m.json"
    assert main(["measure", str(folder), "--seed", f"{k},{i},{j}", "--json", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["ok"] and printed["reason"] is None
    assert abs(printed["volume_ml"] - truth_ml) <= 0.10 * truth_ml
    assert printed["abc2_ml"] > printed["volume_ml"]  # ABC/2 over-estimates a crescent
    assert printed["voxels"] > 0 and k in printed["slices"] and 45 <= printed["mean_hu"] <= 90


def test_seed_in_millimetres_gives_the_same_region(subdural_study, capsys):
    from ich_viewer.dicom.loader import load_study

    folder, mask, _ = subdural_study
    k, i, j = _seed(mask)
    series = load_study(str(folder)).image_series[0]
    header = series.slices[k]
    row_mm, col_mm = header.pixel_spacing
    point = np.array(header.position) + j * col_mm * np.array(header.orientation[:3]) + i * row_mm * np.array(
        header.orientation[3:])
    assert main(["measure", str(folder), "--seed-mm", ",".join(f"{v:.3f}" for v in point)]) == 0
    by_mm = json.loads(capsys.readouterr().out)
    assert by_mm["seed"] == [k, i, j]


def test_a_repeated_seed_adds_pieces_and_says_which_added_nothing(subdural_study, capsys):
    folder, mask, _ = subdural_study
    k, i, j = _seed(mask)
    assert main(["measure", str(folder), "--seed", f"{k},{i},{j}"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["more_seeds"] == []
    assert main(["measure", str(folder), "--seed", f"{k},{i},{j}", "--seed", "10,3,3"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert two["seed"] == [k, i, j] and two["more_seeds"] == [[10, 3, 3]]
    assert two["volume_ml"] == one["volume_ml"] and any("click 2 (10,3,3) added nothing" in n and "air" in n
                                                        for n in two["notes"])
    assert main(["measure", str(folder), "--seed", f"{k},{i},{j}", "--seed-mm", "0,0,0"]) == 2
    assert "not both" in capsys.readouterr().err


def test_seed_in_air_says_why_and_exits_1(subdural_study, capsys):
    folder, _, _ = subdural_study
    assert main(["measure", str(folder), "--seed", "10,3,3"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert not printed["ok"] and "air" in printed["reason"] and printed["volume_ml"] is None


def test_refuses_bad_arguments_and_never_writes_into_the_study(subdural_study, capsys):
    folder, _, _ = subdural_study
    assert main(["measure", str(folder)]) == 2
    assert main(["measure", str(folder), "--seed", "1,2"]) == 2
    assert main(["measure", str(folder), "--seed", "10,100,100", "--series", "7"]) == 2
    inside = folder / "volume.json"
    assert main(["measure", str(folder), "--seed", "10,100,100", "--json", str(inside)]) == 2
    assert not inside.exists()
    assert "inside the study folder" in capsys.readouterr().err


def test_series_without_pixel_spacing_reports_pixels(tmp_path, capsys):
    from pydicom import dcmread

    from ich_viewer.phantom.study import write_phantom_study

    folder = write_phantom_study(tmp_path / "s", seed=6, subtypes=["intraparenchymal"], matrix=128, thickness_mm=5.0)
    for path in folder.rglob("*.dcm"):
        ds = dcmread(path)
        del ds.PixelSpacing
        ds.save_as(path)
    mask = np.load(tmp_path / "s" / "ground_truth" / "masks.npz")["masks"] == 2
    k, i, j = _seed(mask)
    main(["measure", str(folder), "--seed", f"{k},{i},{j}"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["calibrated"] is False and "not mm" in printed["unit_note"]
    assert printed["spacing_mm"][1:] == [1.0, 1.0]


def test_seed_in_millimetres_may_start_with_a_minus_sign(subdural_study, capsys):
    """Patient coordinates are negative on one side of the isocentre; argparse alone reads
    ``-12.5,40,30`` as an unknown option (and ``--hu -10,90`` too)."""
    from ich_viewer.commands.measure import EXIT_NOTHING
    from ich_viewer.dicom.loader import load_study

    folder, _, _ = subdural_study
    header = load_study(str(folder)).image_series[0].slices[0]
    row_mm, col_mm = header.pixel_spacing
    xs = []
    for i, j in ((10, 10), (246, 246)):  # in the air either side of the isocentre
        point = np.array(header.position) + j * col_mm * np.array(header.orientation[:3]) + i * row_mm * np.array(
            header.orientation[3:])
        xs.append(point[0])
        assert main(["measure", str(folder), "--seed-mm", ",".join(f"{v:.3f}" for v in point),
                     "--hu", "-10,90"]) == EXIT_NOTHING
        printed = json.loads(capsys.readouterr().out)
        assert printed["seed"] == [0, i, j] and printed["hu_range"] == [-10.0, 90.0]
        assert "air" in printed["reason"]
    assert min(xs) < 0 < max(xs)
