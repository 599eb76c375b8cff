"""The built-in demo studies: one real head CT (CT-ICH patient 071) and the synthetic phantom.

The real study ships in ``resources/demo/`` as DICOM (HU, JPEG-LS lossless), made once by
``scripts/make_ctich_demo.py`` from the CT-ICH data set (CC BY 4.0). The licence asks for
credit wherever the images are shown, and the patient was part of the classifier's
training data, so every place that shows the demo (window, about box, first-run guide,
report, README) takes its wording from here: one text, said the same way everywhere.

Qt-free: the report writer and the smoke test use it too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ich_viewer import paths

DEMO_KINDS = ("ct-ich", "phantom")
"""What ``--demo`` accepts; plain ``--demo`` means the real study."""
DEFAULT_DEMO = "ct-ich"

CT_ICH_PATIENT = "071"
CT_ICH_FOLDER = f"ct-ich-{CT_ICH_PATIENT}"
MANIFEST = "manifest.json"

DATASET_NAME = ("Computed Tomography Images for Intracranial Hemorrhage Detection and "
                "Segmentation (CT-ICH), version 1.0.0, PhysioNet")
CREDIT_REFERENCES: tuple[str, ...] = (
    "Hssayeni, M. D., Croock, M. S., Salman, A. D., Al-khafaji, H. F., Yahya, Z. A., and Ghoraani, B. "
    "(2020). Intracranial Hemorrhage Segmentation Using a Deep Convolutional Model. Data, 5(1), 14.",
    "Hssayeni, M. (2019). Computed Tomography Images for Intracranial Hemorrhage Detection and "
    "Segmentation (version 1.0.0). PhysioNet.",
    "Goldberger, A., et al. (2000). PhysioBank, PhysioToolkit, and PhysioNet. Circulation, 101(23), "
    "e215-e220.",
)
"""The credit the data set's README asks for, word for word (ASCII hyphens)."""
LICENCE = "Creative Commons Attribution 4.0 International (CC BY 4.0)"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"

SHORT_CREDIT = "CT-ICH pt 071, Hssayeni et al., PhysioNet, CC BY 4.0"
"""Fits the demo's StudyDescription (LO, 64 characters)."""
STUDY_DESCRIPTION = SHORT_CREDIT
"""Short, so the image's corner texts do not run into each other on a small screen."""

TRAINING_NOTE = (
    "This patient was part of the classifier's training data: its flags here show how the "
    "program works, not how accurate it is. Accuracy on patients the network never saw is in "
    "the model card."
)
TRAINING_NOTE_SHORT = "This patient was in the classifier's training data: its flags show the mechanics, not accuracy."
"""The same, where one line must do (the notice strip over the demo)."""
CHANGES_NOTE = (
    "Changes from the source: HU rebuilt from the data set's brain (40/120) and bone (700/3200) "
    "JPEG windows and stored as DICOM CT; pixel spacing (0.32 mm) and orientation are assumed, "
    "the data set gives neither; names, dates and UIDs are made up."
)


@dataclass(frozen=True)
class DemoInfo:
    """What the bundled real demo says about itself (from its manifest)."""

    folder: Path
    study_uid: str
    series_uid: str
    n_slices: int
    labels: dict[str, list[int]]
    """Subtype -> slice numbers (1-based, foot to head) the data set's readers labelled."""

    @property
    def dicom_dir(self) -> Path:
        return self.folder / "dicom"


def credit_lines() -> list[str]:
    """The full credit as lines: source and licence, the references, what was changed."""
    return ([f"Demo study: patient {CT_ICH_PATIENT} of {DATASET_NAME}, used under {LICENCE} ({LICENCE_URL}). "
             "Credit:"]
            + [f"- {ref}" for ref in CREDIT_REFERENCES]
            + [CHANGES_NOTE])


def credit_text(separator: str = "\n") -> str:
    """The full credit in one text, for about box, report and README."""
    return separator.join(credit_lines())


def demo_root() -> Path:
    """Folder of the bundled real demo (inside ``resources/``, so the packaged app has it)."""
    return paths.resources_dir() / "demo" / CT_ICH_FOLDER


@lru_cache(maxsize=4)
def _read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def demo_info() -> DemoInfo | None:
    """The bundled real demo, or None when this install lacks it (then only the phantom exists)."""
    root = demo_root()
    manifest = root / MANIFEST
    if not manifest.is_file() or not (root / "dicom").is_dir():
        return None
    data = _read_manifest(manifest)
    return DemoInfo(folder=root, study_uid=str(data["study_uid"]), series_uid=str(data["series_uid"]),
                    n_slices=int(data["n_slices"]),
                    labels={str(k): [int(v) for v in vals] for k, vals in data.get("labels", {}).items()})


class DemoMissing(FileNotFoundError):
    """The install has no bundled real demo (the phantom still works)."""


def demo_study_path(kind: str = DEFAULT_DEMO) -> Path:
    """Folder of the demo study of ``kind`` ("ct-ich" or "phantom"; the phantom is made on first use)."""
    if kind == "phantom":
        from ich_viewer.phantom.demo import demo_study_path as phantom_path

        return phantom_path()
    if kind != "ct-ich":
        raise ValueError(f"unknown demo {kind!r}; choose one of {', '.join(DEMO_KINDS)}")
    info = demo_info()
    if info is None:
        raise DemoMissing(f"the bundled demo study is missing from {demo_root()}; "
                          "open the synthetic one with --demo phantom")
    return info.dicom_dir


def is_demo_study(study: Any) -> bool:
    """Whether ``study`` (a loaded Study, or anything with ``study_uid``) is the bundled real demo."""
    info = demo_info()
    return info is not None and str(getattr(study, "study_uid", "") or "") == info.study_uid


def label_summary(info: DemoInfo) -> str:
    """'intraparenchymal on slices 12-16; subdural on 13-30' from the data set's labels."""
    parts = []
    for label, numbers in info.labels.items():
        if numbers:
            parts.append(f"{label} on slices {_ranges(numbers)}")
    return "; ".join(parts)


def _ranges(numbers: list[int]) -> str:
    """[11, 12, 13, 20] -> '11-13, 20'."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def source_notes(study: Any) -> list[str]:
    """Paragraphs a report about ``study`` must carry (credit and training note for the demo)."""
    info = demo_info()
    if info is None or not is_demo_study(study):
        return []
    reference = (f"Reference labels of the data set's readers (slice numbers = Im numbers here): "
                 f"{label_summary(info)}.")
    return credit_lines() + [reference, TRAINING_NOTE]
