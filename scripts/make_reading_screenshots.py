"""Screenshots of daily reading on the real demo with the bundled model (issue 11).

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/make_reading_screenshots.py
    xvfb-run -a -s "-screen 0 1366x768x24"  .venv/bin/python scripts/make_reading_screenshots.py

Starts the window as ``ich-viewer --demo`` does after the first start (private settings,
guide already seen), fills the screen, waits for the classifier, and saves in docs/:

- reading-default-<W>x<H>.png: the default layout on slice 13, the mouse on the hematoma
  (its HU and position beside the cursor);
- reading-image-only-<W>x<H>.png: F11, the image alone;
- reading-review-<W>x<H>.png: Enter accepted the first run of flagged slices (the data set's
  readers labelled Im 11-29; the first one or two flags, at the skull base, are the model's
  false flags); back on slice 13: the decision on the image, the list and the plot together.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from screens import private_settings, wait  # noqa: E402  (this folder)

HEMATOMA = (0.48, 0.72)
"""(row, column) of the temporal hematoma on slice 13 of the demo, as a share of the image."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--slice", type=int, default=13, help="1-based slice of the default view")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    private_settings("ich-reading-")

    from PySide6.QtCore import QPointF

    from ich_viewer.options import ViewOptions
    from ich_viewer.ui.app import application, build_window
    from ich_viewer.ui.first_run import set_guide_shown

    app = application()
    set_guide_shown(True)
    window = build_window(ViewOptions(device=args.device))
    screen = app.primaryScreen()
    window.setGeometry(screen.availableGeometry())  # what showMaximized gives under a window manager
    window.show()
    window.open_demo()

    def finished() -> bool:
        series = window.current_series()
        return series is not None and window.extensions["inference"].session.is_complete(series)

    if not wait(finished, 600):
        print("the classifier did not finish; screenshots would not show its colours", file=sys.stderr)
        return 1
    size = f"{screen.size().width()}x{screen.size().height()}"
    args.out.mkdir(parents=True, exist_ok=True)

    def save(name: str) -> None:
        wait(lambda: False, 1.0)  # strip, frame, plot and panels repaint
        path = args.out / f"reading-{name}-{size}.png"
        window.grab().save(str(path))
        print(path)

    def show_slice(index: int) -> None:
        window.set_slice(index)
        wait(lambda: window.shown_index() == index, 30)

    def point_at_hematoma() -> None:
        view = window.image_view()
        rows, cols = view.image_item.image.shape
        scene = view.image_item.mapToScene(QPointF(HEMATOMA[1] * cols, HEMATOMA[0] * rows))
        view._on_mouse_moved(scene)  # what a mouse move over the image does

    show_slice(args.slice - 1)
    point_at_hematoma()
    save("default")

    window.action("image_only").trigger()  # F11
    window.setGeometry(screen.geometry())  # full screen, as a window manager would do it
    wait(lambda: False, 0.5)
    point_at_hematoma()
    save("image-only")
    window.action("image_only").trigger()
    window.setGeometry(screen.availableGeometry())
    window.image_view()._on_mouse_moved(QPointF(-10, -10))  # the mouse left the image

    session = window.extensions["inference"].session
    runs = session.flagged_runs()
    show_slice(runs[0][0])
    window.action("review_accept_next").trigger()  # Enter: accept the first run, go on to the next
    show_slice(args.slice - 1)
    save("review")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
