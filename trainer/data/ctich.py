"""CT-ICH (PhysioNet, Hssayeni et al.) in its published layout, as ordered HU volumes.

``Patients_CT/<n>/brain/<k>.jpg`` (window 40/120) and ``bone/<k>.jpg`` (700/3200) are
two 8-bit views of one slice; HU is rebuilt from the brain window where it is not
clipped (grey 1..254, ~0.5 HU per level) and from the bone window elsewhere (~12.5 HU per
level). JPEG noise breaks the plain rule: the air around the head is grey 1 (not 0) in
most brain-window files, which would make air -19.5 HU (and the whole image "head" for
the crop). So the brain window is used only where the bone window agrees that the value
lies near the brain window's range (within ``BONE_AGREEMENT_HU``); elsewhere the bone
window decides. A missing bone image (e.g. 84/36) leaves the brain window alone: grey
<= 1 becomes air (-1000 HU; fat is lost too), the rest is clipped to -20..100; the
volume's notes record it.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ich_viewer import LABELS
from trainer.data.volume import Volume

BRAIN_WINDOW = (40.0, 120.0)
BONE_WINDOW = (700.0, 3200.0)
READER_VERSION = 2
"""Bumped whenever the HU rebuilt from the JPEGs changes (it keys the caches)."""
BONE_AGREEMENT_HU = 60.0
"""How far outside -20..100 HU the bone window may put a pixel and still let the brain
window's finer value stand (bone window: 12.5 HU per grey level plus JPEG noise)."""
CSV_NAME = "hemorrhage_diagnosis.csv"
CSV_COLUMNS = {
    "epidural": "Epidural",
    "intraparenchymal": "Intraparenchymal",
    "intraventricular": "Intraventricular",
    "subarachnoid": "Subarachnoid",
    "subdural": "Subdural",
}
"""LABELS name -> CSV column (the CSV's own order differs from LABELS)."""


class DatasetError(ValueError):
    """The folder is not laid out as the reader expects (message says what is wrong)."""


def grey_to_hu(grey: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Invert an 8-bit window: 0 -> level - width/2, 255 -> level + width/2."""
    level, width = window
    return (level - width / 2.0) + grey.astype(np.float32) * (width / 255.0)


def rebuild_hu(brain: np.ndarray, bone: np.ndarray | None) -> np.ndarray:
    """HU from the brain window where it is open and the bone window agrees, else bone."""
    hu = grey_to_hu(brain, BRAIN_WINDOW)
    if bone is None:
        hu[brain <= 1] = -1000.0
        return hu
    if bone.shape != brain.shape:
        raise DatasetError(f"brain {brain.shape} and bone {bone.shape} images differ in size")
    coarse = grey_to_hu(bone, BONE_WINDOW)
    low = BRAIN_WINDOW[0] - BRAIN_WINDOW[1] / 2 - BONE_AGREEMENT_HU
    high = BRAIN_WINDOW[0] + BRAIN_WINDOW[1] / 2 + BONE_AGREEMENT_HU
    use_bone = (brain <= 0) | (brain >= 255) | (coarse < low) | (coarse > high)
    hu[use_bone] = coarse[use_bone]
    return hu


def _read_grey(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


def _label_row(row: dict[str, str]) -> list[int]:
    values = [int(float(row[CSV_COLUMNS[name]])) for name in LABELS[:-1]]
    any_blood = 1 - int(float(row["No_Hemorrhage"]))
    return values + [any_blood]


def read_labels(root: Path) -> dict[str, dict[int, list[int]]]:
    """patient number (no leading zeros) -> slice number -> six labels in LABELS order."""
    csv_path = root / CSV_NAME
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path} not found: is {root} the CT-ICH folder?")
    table: dict[str, dict[int, list[int]]] = {}
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"PatientNumber", "SliceNumber", "No_Hemorrhage", *CSV_COLUMNS.values()} - set(
            reader.fieldnames or ()
        )
        if missing:
            raise DatasetError(f"{csv_path} lacks columns: {', '.join(sorted(missing))}")
        for row in reader:
            patient = str(int(row["PatientNumber"]))
            table.setdefault(patient, {})[int(row["SliceNumber"])] = _label_row(row)
    return table


def _patient_folders(root: Path) -> dict[str, Path]:
    base = root / "Patients_CT"
    if not base.is_dir():
        raise DatasetError(f"{base} not found: is {root} the CT-ICH folder?")
    return {str(int(p.name)): p for p in base.iterdir() if p.is_dir() and p.name.isdigit()}


def read_ctich(root: str | Path) -> list[Volume]:
    """One volume per patient present both in the CSV and on disk, slices by number."""
    root = Path(root)
    labels = read_labels(root)
    folders = _patient_folders(root)
    volumes = []
    for patient in sorted(set(labels) & set(folders), key=int):
        folder = folders[patient]
        numbers = sorted(n for n in labels[patient] if (folder / "brain" / f"{n}.jpg").is_file())
        if not numbers:
            continue
        missing_bone = [n for n in numbers if not (folder / "bone" / f"{n}.jpg").is_file()]
        volumes.append(
            Volume(
                group=f"ct-ich:{patient}",
                source="ct-ich",
                names=[f"{folder.name}/brain/{n}.jpg" for n in numbers],
                labels=np.array([labels[patient][n] for n in numbers], dtype=np.uint8),
                load_hu=_loader(folder, numbers),
                notes=[f"bone window missing for slice {n}: HU from the brain window only" for n in missing_bone],
            )
        )
    if not volumes:
        raise DatasetError(f"no CT-ICH slices found under {root}")
    return volumes


def _loader(folder: Path, numbers: list[int]):
    def load() -> list[np.ndarray | None]:
        slices: list[np.ndarray | None] = []
        for n in numbers:
            brain = _read_grey(folder / "brain" / f"{n}.jpg")
            bone_path = folder / "bone" / f"{n}.jpg"
            bone = _read_grey(bone_path) if bone_path.is_file() else None
            slices.append(rebuild_hu(brain, bone))
        return slices

    return load
