"""Screenshots of the measure tools on the real demo, and a PDF page with a bleed volume.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/make_measure_screenshots.py

Opens the bundled CT-ICH demo (patient 071: left temporal hematoma and a left subdural),
draws with the real mouse path (the same events a reader makes): a ruler across the
subdural, an ellipse ROI in the hematoma, a midline-shift line, and a bleed volume from one
click at the default 45-90 HU, then one stroke of the erase brush along the outline's
posterior tail on Im 19 (a thin band along the occipital inner table that the hand-drawn
mask of that slice leaves out). Saves docs/measure-tools.png and, after running the bundled
classifier on the CPU, docs/report-measure.png (the PDF's measurement page) and prints the
numbers.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from screens import private_settings, wait  # noqa: E402  (this folder)

SEED = (14, 330, 520)
"""(slice, row, col) inside the left temporal hematoma, Im 15."""
TAIL = ((540, 472), (566, 405))
"""(row, col) ends of the erase stroke on Im 19: the outline's posterior tail along the inner table."""


def main() -> int:
    tmp = private_settings("ich-measure-shots-")
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    from ich_viewer.demo import demo_study_path
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.options import ViewOptions
    from ich_viewer.ui.app import application, build_window
    from ich_viewer.ui.measure_panel import EXTENSION_NAME, MeasureController

    app = application()
    window = build_window(ViewOptions(no_model=True), ["ich_viewer.ui.measure_panel:attach_measure"])
    window.setGeometry(app.primaryScreen().availableGeometry())
    window.show()
    study = load_study(str(demo_study_path()))
    window.show_study(study)
    controller = window.extensions.get(EXTENSION_NAME, MeasureController)
    assert controller is not None

    def at(row: float, col: float):
        scene = controller.view.image_item.mapToScene(QPointF(col + 0.5, row + 0.5))
        return controller.view.graphics.mapFromScene(scene)

    viewport = controller.view.graphics.viewport()

    def drag(p0, p1) -> None:
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*p0))
        QTest.mouseMove(viewport, at(*p1))
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*p1))

    def click(p) -> None:
        QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*p))

    wait(lambda: False, 1.0)
    window.set_slice(13)
    wait(lambda: False, 0.5)
    window.action("measure_ellipse").trigger()
    drag((298, 466), (326, 494))  # inside the hematoma, Im 14
    window.set_slice(SEED[0])
    wait(lambda: False, 0.5)
    window.action("measure_volume").trigger()
    controller.panel.subtype.setCurrentText("subdural")
    click(SEED[1:])
    if not wait(lambda: bool(controller.masks), 120):
        print("the volume did not grow", file=sys.stderr)
        return 1
    [grown] = controller.measurements()[-1:]
    print(f"  grown: {grown.text} ({'; '.join(grown.details.get('notes', []))})")
    window.set_slice(18)
    wait(lambda: False, 0.5)
    window.action("measure_brush_erase").trigger()
    controller.panel.brush.setValue(2.5)
    drag(TAIL[0], TAIL[1])  # along the outline's posterior tail
    window.action("measure_distance").trigger()
    drag((300, 506), (300, 548))  # across the subdural, perpendicular to the inner table
    window.action("measure_midline").trigger()
    drag((112, 336), (560, 352))  # expected course of the falx
    click((238, 318))  # septum pellucidum
    window.action("measure_midline").trigger()  # tool off
    wait(lambda: False, 1.5)
    docs = ROOT / "docs"
    window.grab().save(str(docs / "measure-tools.png"))
    print(docs / "measure-tools.png")
    for record in controller.measurements():
        print(f"  {record.label} (Im {record.slice_index + 1}): {record.text}")
    window.close()

    from ich_viewer.commands.analyze import analyze_study
    from ich_viewer.inference.weights import load_model
    from ich_viewer.report.export import export_report

    results = analyze_study(study, load_model(None, "cpu"))
    pdf = tmp / "report.pdf"
    export_report(study, results, pdf=pdf, paper="A4")
    from pypdf import PdfReader

    from PIL import Image

    pages = PdfReader(str(pdf)).pages
    texts = [p.extract_text() for p in pages]
    wanted = [next(i for i, t in enumerate(texts, start=1) if "Measurements (" in t),
              next(i for i, t in enumerate(texts, start=1) if "Red: outline" in t)]
    shots = []
    for page in dict.fromkeys(wanted):  # the table and the outline (the picture may move to the next page)
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile", str(pdf),
                        str(tmp / f"page-{page}")], check=True)
        shots.append(Image.open(tmp / f"page-{page}.png").convert("RGB"))
    joined = Image.new("RGB", (sum(s.width for s in shots) + 16 * (len(shots) - 1), max(s.height for s in shots)),
                       "white")
    x = 0
    for shot in shots:
        joined.paste(shot, (x, 0))
        x += shot.width + 16
    joined.save(docs / "report-measure.png")
    print(docs / "report-measure.png", f"(pages {', '.join(map(str, dict.fromkeys(wanted)))} of {len(pages)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
