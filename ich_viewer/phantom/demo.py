"""The built-in demo study: generated once into the cache folder, re-used afterwards."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ich_viewer import paths

DEMO_SEED = 7
DEMO_SUBTYPES = ("intraparenchymal", "intraventricular", "subdural")
DEMO_VERSION = "2"
"""Bump when the generator changes so an old cached demo is rebuilt."""


def demo_study_path() -> Path:
    """Folder of the demo study (with hemorrhage, so the classifier has something to show)."""
    from ich_viewer.phantom.study import write_phantom_study

    root = paths.cache_dir() / f"demo-study-v{DEMO_VERSION}"
    done = root / ".complete"
    if done.exists() and (root / "study" / "dicom").is_dir():
        return root / "study" / "dicom"
    tmp = root.with_name(f"{root.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    write_phantom_study(tmp / "study", seed=DEMO_SEED, subtypes=list(DEMO_SUBTYPES), n_slices=32, thickness_mm=5.0)
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(root, ignore_errors=True)
    try:
        tmp.rename(root)
    except OSError:  # another process finished first; use its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return root / "study" / "dicom"
