"""`python -m trainer prepare`: shards hold the app's own model input for every labelled slice."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ich_viewer import LABELS
from ich_viewer.inference.preprocess import InputSpec, neighbour_indices, series_input, stack_input
from trainer.cache import window_batch
from trainer.prepare import prepare
from trainer.shards import open_shards

CT_ICH = Path(__file__).resolve().parents[2] / "shared" / "data" / "ct-ich"
SPEC = InputSpec(size=48)
INPUT_TOLERANCE = 1e-3
"""Shards keep HU as float16 (as the trainer's cache): at most ~0.03 HU off inside the
brain and subdural windows and ~0.5 HU at 1000 HU, below 1e-3 of any window's width."""


def _model_inputs(hu: np.ndarray) -> np.ndarray:
    return window_batch(torch.from_numpy(np.asarray(hu, dtype=np.float32)), SPEC).numpy()


def _rows(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    data, _ = open_shards(folder, SPEC)
    inputs = _model_inputs(data.hu[np.arange(len(data))])
    return {str(name): (inputs[i], data.labels[i]) for i, name in enumerate(data.names)}


def _check_ctich(root: Path, out: Path) -> None:
    """Every slice's shard row against ``stack_input`` on the same slice and its neighbours."""
    from trainer.data.ctich import read_ctich

    rows = _rows(out)
    volumes = read_ctich(root)
    assert len(rows) == sum(len(v) for v in volumes)
    for volume in volumes:
        slices = volume.load_hu()
        for i, name in enumerate(volume.names):
            around = [None if j is None else slices[j] for j in neighbour_indices(i, len(volume), SPEC)]
            got, labels = rows[name]
            assert np.abs(got - stack_input(around, SPEC)).max() <= INPUT_TOLERANCE, name
            assert labels.tolist() == volume.labels[i].tolist()


def test_prepare_ctich_layout_matches_the_apps_input_and_finishes_an_interrupted_run(tmp_path):
    from test_trainer_data import write_ctich

    root = write_ctich(tmp_path / "ct-ich", {3: [[0, 0, 0, 0, 0]] * 4, 5: [[0, 1, 0, 0, 1]] * 3, 8: [[0] * 5] * 2})
    out = tmp_path / "shards"
    lines: list[str] = []
    manifest = prepare(root, out, SPEC, workers=2, shard_slices=4, progress=False, log=lines.append)
    assert [s["units"] for s in manifest["shards"]] == [["ct-ich:3"], ["ct-ich:5", "ct-ich:8"]]
    _check_ctich(root, out)
    before = (out / "shard-00001.hu.npy").read_bytes()
    (out / "shard-00001.hu.npy").unlink()  # as if killed while writing it
    prepare(root, out, SPEC, workers=1, shard_slices=4, progress=False, log=lines.append)
    assert "2 shards (1 already written)" in lines[-2] and "wrote 1 shards (5 slices)" in lines[-1]
    assert (out / "shard-00001.hu.npy").read_bytes() == before
    with pytest.raises(ValueError, match="another source, spec or shard size"):
        prepare(root, out, SPEC, workers=1, shard_slices=2, progress=False, log=lines.append)
    with pytest.raises(ValueError, match="prepared for input 48 px"):
        open_shards(out, InputSpec(size=64))


@pytest.mark.slow
@pytest.mark.skipif(not (CT_ICH / "hemorrhage_diagnosis.csv").is_file(), reason="CT-ICH not at ../shared/data/ct-ich")
def test_prepare_a_copy_of_ctich_matches_the_apps_input(tmp_path):
    root = tmp_path / "ct-ich"
    wanted = ("054", "066")  # one normal patient, one with hemorrhage
    for patient in wanted:
        shutil.copytree(CT_ICH / "Patients_CT" / patient, root / "Patients_CT" / patient)
    with (CT_ICH / "hemorrhage_diagnosis.csv").open() as source:
        kept = [line for i, line in enumerate(source) if i == 0 or line.split(",")[0].zfill(3) in wanted]
    (root / "hemorrhage_diagnosis.csv").write_text("".join(kept))
    prepare(root, tmp_path / "shards", SPEC, workers=2, progress=False, log=lambda _: None)
    _check_ctich(root, tmp_path / "shards")


def _write_rsna_layout(root: Path) -> dict[str, list[int]]:
    """Two phantom patients as Kaggle ships RSNA 2019: stage_2_train/ID_<sop>.dcm (shuffled
    names), stage_2_train.csv with ID_<sop>_<label>,Label rows; one slice left unlabelled.
    The second patient's SOP instance UIDs are RSNA's own style, ``ID_<hex>`` in the file."""
    import pydicom

    from ich_viewer.phantom import generate_phantom
    from ich_viewer.phantom.writer import StudyInfo, write_series

    dicom_dir = root / "stage_2_train"
    dicom_dir.mkdir(parents=True)
    rows, labels = ["ID,Label"], {}
    for p, subtypes in enumerate((["subdural"], [])):
        phantom = generate_phantom(seed=11 + p, subtypes=subtypes, matrix=96, n_slices=6)
        written = write_series(phantom.volume_hu, root / f"tmp{p}", spacing_mm=phantom.spacing_mm,
                               pixel_spacing=(0.5, 0.5), file_names="random", study=StudyInfo(patient_id=f"P{p}"))
        for k, path in enumerate(sorted(written, key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))):
            ds = pydicom.dcmread(path)
            if p == 1:
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"ID_{k:08x}{p}"
                ds.save_as(path)
            sop = ds.SOPInstanceUID
            path.rename(dicom_dir / f"ID_{sop.removeprefix('ID_')}.dcm")
            if p == 1 and k == 0:
                continue  # unlabelled: a neighbour, never a sample
            labels[sop] = [int(v) for v in phantom.labels[k]]
            rows += [f"ID_{sop.removeprefix('ID_')}_{label},{labels[sop][j]}" for j, label in enumerate(LABELS)]
    (root / "stage_2_train.csv").write_text("\n".join(rows) + "\n")
    return labels


def _check_dicom(dicom_dir: Path, out: Path, labels: dict[str, list[int]]) -> dict:
    """Every labelled slice's shard row against the app's ``series_input`` on the loaded study."""
    from ich_viewer.dicom.loader import load_study

    rows = _rows(out)
    assert sorted(rows) == sorted(labels)
    for series in load_study(dicom_dir).series:
        for i, header in enumerate(series.slices):
            if header.sop_instance_uid in labels:
                got, row_labels = rows[header.sop_instance_uid]
                assert np.abs(got - series_input(series, i, SPEC)).max() <= INPUT_TOLERANCE
                assert row_labels.tolist() == labels[header.sop_instance_uid]
    return rows


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # RSNA's ID_<hex> UIDs, on purpose
def test_prepare_rsna_layout_and_a_dicom_tree_match_the_apps_input(tmp_path, capsys):
    labels = _write_rsna_layout(tmp_path / "rsna")
    assert any(v[-1] for v in labels.values()) and not all(v[-1] for v in labels.values())
    manifest = prepare(tmp_path / "rsna", tmp_path / "rsna-shards", SPEC, workers=2, shard_slices=4,
                       progress=False, log=lambda _: None)
    assert manifest["source"] == "rsna" and len(manifest["shards"]) == 2  # one per series
    rows = _check_dicom(tmp_path / "rsna" / "stage_2_train", tmp_path / "rsna-shards", labels)
    data, _ = open_shards(tmp_path / "rsna-shards")
    assert sorted(set(data.groups.tolist())) == ["rsna:P0", "rsna:P1"]
    from trainer.commands import main

    assert main(["reproduce", "--quick", "--shards", str(tmp_path / "rsna-shards"), "--work", str(tmp_path / "w"),
                 "--out", str(tmp_path / "m")]) == 2
    assert "prepared for input 48 px" in capsys.readouterr().err  # the quick recipe needs 64 px
    assert not (tmp_path / "m").exists()

    # The same files in a nested tree, labels as one column per label (no "any": derived).
    tree = tmp_path / "tree"
    for i, path in enumerate(sorted((tmp_path / "rsna" / "stage_2_train").iterdir())):
        (tree / f"d{i % 3}" / "x").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, tree / f"d{i % 3}" / "x" / f"{i}.dcm")
    with (tmp_path / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["SOPInstanceUID", *LABELS[:-1]])
        writer.writerows([sop, *values[:-1]] for sop, values in labels.items())
    prepare(tree, tmp_path / "tree-shards", SPEC, labels_csv=tmp_path / "labels.csv", workers=1,
            progress=False, log=lambda _: None)
    tree_rows = _rows(tmp_path / "tree-shards")
    assert sorted(tree_rows) == sorted(rows)
    for sop, (inputs, row_labels) in rows.items():
        assert np.array_equal(tree_rows[sop][0], inputs) and np.array_equal(tree_rows[sop][1], row_labels)
    assert json.loads((tmp_path / "tree-shards" / "manifest.json").read_text())["source"] == "dicom"


def test_prepare_says_what_it_cannot_read(tmp_path, capsys):
    from trainer.commands import main

    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "neither CT-ICH" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("Image,Target\n")
    assert main(["prepare", str(tmp_path / "empty"), str(tmp_path / "out"), "--labels", str(tmp_path / "bad.csv")]) == 2
    assert "expected 'ID,Label' rows" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    assert "not found" in capsys.readouterr().err
