"""The RSNA 2019 reader on small DICOM files written in the Kaggle layout."""
from __future__ import annotations

import numpy as np
import pytest

from ich_viewer import LABELS
from trainer.data.ctich import DatasetError
from trainer.data.rsna import read_rsna, read_rsna_labels


def _write_rsna(root, n_slices=4):
    """Two patients, one series each, files named ID_<sop>.dcm in one flat folder, shuffled
    so that file order says nothing about slice order; the CSV labels all but one slice."""
    import pydicom

    from ich_viewer.phantom.writer import StudyInfo, write_series

    dicom_dir = root / "stage_2_train"
    rows = ["ID,Label"]
    truth = {}
    for p, patient in enumerate(("PAT-A", "PAT-B")):
        volume = np.full((n_slices, 32, 32), -1000.0, dtype=np.float32)
        for k in range(n_slices):
            volume[k, 8:24, 8:24] = 10.0 * (k + 1) + 100 * p  # slice k is recognisable by its HU
        written = write_series(volume, root / f"tmp{p}", spacing_mm=5.0, pixel_spacing=(0.5, 0.5),
                               file_names="random", study=StudyInfo(patient_id=patient))
        for path in written:
            ds = pydicom.dcmread(path)
            sop = ds.SOPInstanceUID
            dicom_dir.mkdir(exist_ok=True)
            path.rename(dicom_dir / f"ID_{sop}.dcm")
            k = int(round(float(ds.ImagePositionPatient[2]) / 5.0))
            labels = [0] * 6
            if k == 2:
                labels = [0, 0, 0, 1, 0, 1] if p == 0 else [1, 0, 0, 0, 0, 1]
            truth[sop] = (patient, k, labels)
            if p == 1 and k == 0:
                continue  # an unlabelled slice: kept as a neighbour, never a sample
            rows += [f"ID_{sop}_{label},{labels[j]}" for j, label in enumerate(LABELS)]
    (root / "stage_2_train.csv").write_text("\n".join(rows) + "\n")
    return root / "stage_2_train.csv", dicom_dir, truth


def test_rsna_labels_parse_ids_into_label_order(tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text("ID,Label\n" + "\n".join(
        f"ID_abc123_{label},{int(label in ('subdural', 'any'))}" for label in reversed(LABELS)) + "\n"
        + "ID_half_any,1\n")
    table = read_rsna_labels(csv)
    assert table == {"abc123": [0, 0, 0, 0, 1, 1]}  # "half" lacks five labels: dropped


def test_rsna_reader_groups_by_series_orders_by_position_and_keeps_labels(tmp_path):
    csv, dicom_dir, truth = _write_rsna(tmp_path)
    volumes = read_rsna(csv, dicom_dir)
    assert sorted(v.group for v in volumes) == ["rsna:PAT-A", "rsna:PAT-B"]
    for volume in volumes:
        assert volume.spacing_mm == pytest.approx(5.0)
        hu = volume.load_hu()
        patient = volume.group.split(":")[1]
        offset = 100 if patient == "PAT-B" else 0
        # Slices come back foot to head whatever the file names: HU rises with k.
        assert [float(img[16, 16]) for img in hu] == [10.0 * (k + 1) + offset for k in range(4)]
        for name, labels in zip(volume.names, volume.labels):
            _, k, expected = truth[name]
            if patient == "PAT-B" and k == 0:
                assert labels.tolist() == [255] * 6
            else:
                assert labels.tolist() == expected
    from trainer.cache import build_cached_set
    from ich_viewer.inference.preprocess import InputSpec

    data = build_cached_set(volumes, InputSpec(size=16))
    assert len(data) == 7  # 8 slices, one unlabelled
    assert int(data.labels[:, 5].sum()) == 2


def test_rsna_reader_says_when_nothing_matches(tmp_path):
    csv, dicom_dir, _ = _write_rsna(tmp_path)
    csv.write_text("ID,Label\nID_nothing_any,0\n")
    with pytest.raises(DatasetError, match="no DICOM slice"):
        read_rsna(csv, dicom_dir)
    csv.write_text("Image,Target\n")
    with pytest.raises(DatasetError, match="ID,Label"):
        read_rsna(csv, dicom_dir)
