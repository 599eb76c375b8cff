"""Trainer data readers and the preprocessed cache, on tiny files written in each layout."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ich_viewer import LABELS
from ich_viewer.inference.preprocess import InputSpec, stack_input
from trainer.cache import build_cached_set, load_or_build, volumes_identity, window_batch
from trainer.data.ctich import BONE_WINDOW, BRAIN_WINDOW, DatasetError, read_ctich, rebuild_hu

CSV_HEADER = ("PatientNumber,SliceNumber,Intraventricular,Intraparenchymal,Subarachnoid,"
              "Epidural,Subdural,No_Hemorrhage,Fracture_Yes_No\n")


def _window_to_grey(hu: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    level, width = window
    return np.clip(np.round((hu - (level - width / 2)) / width * 255), 0, 255).astype(np.uint8)


def _head(size: int, value: float) -> np.ndarray:
    """A disc of brain (``value`` HU) in a ring of bone (1000 HU) on air."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    hu[r < size * 0.4] = 1000.0
    hu[r < size * 0.35] = value
    return hu


def write_ctich(root, patients: dict[int, list[list[int]]], drop_bone=(), size=48):
    """CT-ICH layout: Patients_CT/<nnn>/brain|bone/<k>.jpg + CSV (rows: IVH,IPH,SAH,EDH,SDH)."""
    from PIL import Image

    rows = []
    for patient, slice_rows in patients.items():
        for k, flags in enumerate(slice_rows, start=1):
            hu = _head(size, 20.0 + 3 * k)
            for sub in ("brain", "bone"):
                folder = root / "Patients_CT" / f"{patient:03d}" / sub
                folder.mkdir(parents=True, exist_ok=True)
                if sub == "bone" and (patient, k) in drop_bone:
                    continue
                grey = _window_to_grey(hu, BRAIN_WINDOW if sub == "brain" else BONE_WINDOW)
                Image.fromarray(grey).save(folder / f"{k}.jpg", quality=100)
            no_hem = int(not any(flags))
            rows.append(f"{patient},{k},{flags[0]},{flags[1]},{flags[2]},{flags[3]},{flags[4]},{no_hem},0\n")
    (root / "hemorrhage_diagnosis.csv").write_text(CSV_HEADER + "".join(rows))
    return root


def test_rebuild_hu_uses_brain_window_inside_and_bone_window_outside():
    brain = np.array([[0, 1, 128, 254, 255, 1]], dtype=np.uint8)
    # bone grey 74 ~ 28 HU, 80 ~ 104 HU: both agree with the brain window's range
    bone = np.array([[10, 74, 74, 80, 100, 0]], dtype=np.uint8)
    hu = rebuild_hu(brain, bone)
    assert hu[0, 1] == pytest.approx(-20 + 120 / 255)
    assert hu[0, 2] == pytest.approx(-20 + 128 * 120 / 255)
    assert hu[0, 3] == pytest.approx(-20 + 254 * 120 / 255)
    assert hu[0, 0] == pytest.approx(-900 + 10 * 3200 / 255)  # clipped dark: from bone
    assert hu[0, 4] == pytest.approx(-900 + 100 * 3200 / 255)  # clipped bright: from bone
    # JPEG noise: air is grey 1 in the brain window; the bone window says -900 HU.
    assert hu[0, 5] == pytest.approx(-900.0)
    only_brain = rebuild_hu(brain, None)
    assert only_brain[0, 4] == pytest.approx(100.0)
    assert only_brain[0, 1] == -1000.0


def test_ctich_reader_orders_slices_maps_columns_and_handles_missing_bone(tmp_path):
    # Flags per slice in the CSV's own order: IVH, IPH, SAH, EDH, SDH.
    slices = [[0, 0, 0, 0, 0] for _ in range(11)]
    slices[9] = [1, 0, 0, 0, 0]    # slice 10: intraventricular
    slices[1] = [0, 0, 0, 1, 1]    # slice 2: epidural + subdural
    write_ctich(tmp_path, {7: slices, 12: [[0, 1, 0, 0, 0]] * 2}, drop_bone={(7, 3)})
    volumes = read_ctich(tmp_path)
    assert [v.group for v in volumes] == ["ct-ich:7", "ct-ich:12"]
    first = volumes[0]
    # Numeric, not lexical, order: 1, 2, ..., 10, 11 so neighbours are real neighbours.
    assert first.names[:3] == ["007/brain/1.jpg", "007/brain/2.jpg", "007/brain/3.jpg"]
    assert first.names[9] == "007/brain/10.jpg"
    assert first.labels[9].tolist() == [0, 0, 1, 0, 0, 1]
    assert first.labels[1].tolist() == [1, 0, 0, 0, 1, 1]
    assert first.labels[0].tolist() == [0, 0, 0, 0, 0, 0]
    assert volumes[1].labels[0].tolist() == [0, 1, 0, 0, 0, 1]
    assert LABELS[-1] == "any"
    assert any("slice 3" in note for note in first.notes)
    hu = first.load_hu()
    assert len(hu) == 11 and hu[0].shape == (48, 48)
    centre = hu[4][24, 24]  # brain 20 + 3*5 = 35 HU, JPEG-rounded
    assert abs(centre - 35.0) < 2.0
    assert hu[4][24, 24 + int(48 * 0.38)] > 600  # the bone ring comes from the bone window
    assert hu[2].max() <= 100.0 + 1e-3  # missing bone: brain window only
    assert hu[2][0, 0] == -1000.0 and hu[4][0, 0] < -850  # air is air either way


def test_ctich_reader_rejects_a_wrong_folder(tmp_path):
    with pytest.raises(DatasetError, match="hemorrhage_diagnosis.csv"):
        read_ctich(tmp_path)
    (tmp_path / "hemorrhage_diagnosis.csv").write_text("PatientNumber,SliceNumber\n1,1\n")
    with pytest.raises(DatasetError, match="lacks columns"):
        read_ctich(tmp_path)


def test_cache_matches_the_apps_stack_input_and_is_reused(tmp_path):
    write_ctich(tmp_path / "data", {1: [[0, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]}, size=64)
    volumes = read_ctich(tmp_path / "data")
    spec = InputSpec(size=32)
    built = load_or_build(lambda: volumes, volumes_identity(volumes), spec, tmp_path / "cache", "ct-ich")
    assert built.hu.shape == (3, 3, 32, 32) and built.hu.dtype == np.float16
    assert built.labels.tolist()[1] == [0, 1, 0, 0, 0, 1]
    slices = volumes[0].load_hu()
    for i, around in enumerate([[None, slices[0], slices[1]], slices, [slices[1], slices[2], None]]):
        expected = stack_input(around, spec)
        got = window_batch(torch.from_numpy(built.hu[i:i + 1].astype(np.float32)), spec)[0].numpy()
        assert np.abs(expected - got).max() < 2e-3
    again = load_or_build(lambda: pytest.fail("cache must be reused"), volumes_identity(volumes), spec,
                          tmp_path / "cache", "ct-ich")
    assert np.array_equal(np.asarray(again.hu), built.hu)
    assert again.groups.tolist() == ["ct-ich:1"] * 3


def test_build_cached_set_skips_unlabelled_slices(tmp_path):
    from trainer.data.volume import Volume

    hu = [_head(40, 30.0) for _ in range(3)]
    labels = np.array([[0] * 6, [255] * 6, [1, 0, 0, 0, 0, 1]], dtype=np.uint8)
    volume = Volume(group="p", source="rsna", names=["a", "b", "c"], labels=labels, load_hu=lambda: hu)
    data = build_cached_set([volume], InputSpec(size=16))
    assert data.names.tolist() == ["a", "c"]
