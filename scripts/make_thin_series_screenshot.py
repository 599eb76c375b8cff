"""Screenshots of a bleed volume on 5 mm slices that offers the study's 2.5 mm series, and of it measured there.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/make_thin_series_screenshot.py

Writes phantom seed 2 (a left subdural, 512 matrix) as a 5 mm series with a 2.5 mm series beside
it (``write_phantom_study(thin_mm=2.5)``), clicks the subdural at the mask's deepest point on
the 5 mm slices with the real mouse path, saves docs/measure-thin-offer.png (the note and the
button), presses the button and saves docs/measure-thin.png; prints both volumes and the mask's.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from screens import private_settings, wait  # noqa: E402  (this folder)


def main() -> int:
    private_settings("ich-thin-shots-")
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    from ich_viewer.dicom.loader import load_study
    from ich_viewer.measure.region import deepest_point
    from ich_viewer.options import ViewOptions
    from ich_viewer.phantom.study import write_phantom_study
    from ich_viewer.ui.app import application, build_window
    from ich_viewer.ui.measure_panel import EXTENSION_NAME, MeasureController

    out = Path(tempfile.mkdtemp(prefix="ich-thin-study-")) / "study"
    folder = write_phantom_study(out, seed=2, subtypes=["subdural"], matrix=512, thickness_mm=5.0, thin_mm=2.5)
    truth = np.load(out / "ground_truth" / "masks.npz")
    mask = truth["masks"] == 5
    truth_ml = float(mask.sum() * np.prod(truth["pixel_spacing"]) * float(truth["spacing_mm"]) / 1000)
    seed = deepest_point(mask)

    app = application()
    window = build_window(ViewOptions(no_model=True), ["ich_viewer.ui.measure_panel:attach_measure"])
    window.setGeometry(app.primaryScreen().availableGeometry())
    window.show()
    study = load_study(str(folder))
    window.show_study(study)
    [thick] = [s for s in study.image_series if s.series_number == 1]
    window.show_series(thick)
    controller = window.extensions.get(EXTENSION_NAME, MeasureController)
    assert controller is not None
    wait(lambda: False, 1.0)
    window.set_slice(seed[0])
    window.action("measure_volume").trigger()
    controller.panel.subtype.setCurrentText("subdural")
    wait(lambda: False, 0.5)
    scene = controller.view.image_item.mapToScene(QPointF(seed[2] + 0.5, seed[1] + 0.5))
    QTest.mouseClick(controller.view.graphics.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     controller.view.graphics.mapFromScene(scene))
    if not wait(lambda: bool(controller.masks), 120) or not controller.panel.thinner.isVisible():
        print("the volume did not grow or no thinner series was offered", file=sys.stderr)
        return 1
    [on_thick] = controller.measurements()
    wait(lambda: False, 1.0)
    docs = ROOT / "docs"
    window.grab().save(str(docs / "measure-thin-offer.png"))
    controller.panel.thinner.click()
    if not wait(lambda: len(controller.masks) == 2, 120):
        print("the volume on the thin series did not grow", file=sys.stderr)
        return 1
    [on_thin] = controller.measurements()
    wait(lambda: False, 1.0)
    window.grab().save(str(docs / "measure-thin.png"))
    print(f"mask {truth_ml:.1f} mL; 5 mm: {on_thick.text}; 2.5 mm: {on_thin.text}")
    print(f"  note: {on_thick.details['notes'][-1]}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
