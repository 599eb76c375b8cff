"""Screenshot of the slab and three-view layout on a thin series, with the classifier's flags.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/make_reformat_screenshot.py

The thin series is the bundled real demo (CT-ICH 071, 5 mm) resampled to 0.625 mm
(``phantom.thin``) and written as DICOM into a temporary folder; it is opened like any
folder, scored by the bundled classifier on the CPU, shown as a 5 mm average slab with the
coronal and sagittal reformats beside it, the cross-reference on the left temporal
hematoma. Saves docs/reformat-<screen width>x<screen height>.png (run it at 1920x1080 and 1366x768).
"""
from __future__ import annotations

import sys
from pathlib import Path

from screens import private_settings, wait

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLICES = 225
"""0.625 mm over the demo's 140 mm."""
HEMATOMA = (13.5, 330, 520)
"""(5 mm slice, row, col) of the left temporal hematoma on the demo's 650² slices."""


def main() -> int:
    tmp = private_settings("ich-reformat-shot-")
    from ich_viewer.demo import demo_study_path
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.options import ViewOptions
    from ich_viewer.phantom.thin import resample_thin
    from ich_viewer.phantom.writer import write_series
    from ich_viewer.ui.app import application, build_window

    demo = load_study(demo_study_path("ct-ich"))
    thick = demo.image_series[0]
    volume, spacing, pixel = resample_thin(thick, SLICES)
    folder = tmp / "thin"
    write_series(volume, folder, spacing_mm=round(spacing, 4), pixel_spacing=(pixel, pixel), thickness_mm=0.625,
                 description="CT-ICH 071 RESAMPLED 0.625 MM")

    app = application()
    window = build_window(ViewOptions(), ["ich_viewer.ui.inference_panel:attach_inference",
                                          "ich_viewer.ui.reformat_view:attach_reformat"])
    window.setGeometry(app.primaryScreen().availableGeometry())
    window.show()

    window.open_path(str(folder))
    assert wait(lambda: window.current_series() is not None, 60), "the thin series did not open"
    inference = window.extensions["inference"]
    series = window.current_series()
    finished = wait(lambda: inference.session.is_complete(series), 600)
    print("classifier finished:", finished, "flagged:", len(inference.flagged_indices()))
    reformat = window.extensions["reformat"]
    reformat.set_slab(True)
    reformat.set_three_views(True)
    assert wait(lambda: reformat.reformat is not None, 120), "no reformat"
    scale = 512 / thick.shape[0]
    k = int(round(HEMATOMA[0] * thick.spacing_mm / spacing))
    window.set_slice(k)
    reformat.go_to("axial", int(HEMATOMA[1] * scale), int(HEMATOMA[2] * scale))
    wait(lambda: False, 1.5)
    screen = app.primaryScreen().size()
    out = ROOT / "docs" / f"reformat-{screen.width()}x{screen.height()}.png"
    window.grab().save(str(out))
    print("saved", out, window.size().width(), "x", window.size().height(), "slice", k + 1)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
