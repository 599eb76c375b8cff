"""Screenshots of the first start on the real demo, as a new user sees it.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/make_first_run_screenshots.py
    xvfb-run -a -s "-screen 0 1366x768x24"  .venv/bin/python scripts/make_first_run_screenshots.py --viewer

Starts the window exactly as ``ich-viewer`` does on a fresh install (private settings in a
temporary folder, so the guide's "shown once" flag is unset), fills the screen, waits for
the classifier to finish on the demo, goes to ``--slice`` and saves
docs/first-run-<W>x<H>.png with the guide on it. With ``--viewer`` it then closes the guide
with one key and saves docs/screenshot-viewer.png (the README's picture).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from screens import private_settings, wait  # noqa: E402  (this folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--slice", type=int, default=13, help="1-based slice to show (13: both subtypes labelled)")
    parser.add_argument("--viewer", action="store_true", help="also save docs/screenshot-viewer.png without the guide")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    private_settings("ich-first-run-")

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from ich_viewer.options import ViewOptions
    from ich_viewer.ui.app import application, build_window
    from ich_viewer.ui.first_run import first_start

    app = application()
    view_args = ViewOptions(device=args.device)
    window = build_window(view_args)
    screen = app.primaryScreen().availableGeometry()
    window.setGeometry(screen)
    window.show()
    assert first_start(window, view_args), "the first start did not open the demo"

    def finished() -> bool:
        series = window.current_series()
        controller = window.extensions["inference"]
        return series is not None and controller.session.is_complete(series)

    if not wait(finished, 300):
        print("the classifier did not finish; screenshots would not show its colours", file=sys.stderr)
        return 1
    window.set_slice(args.slice - 1)
    wait(lambda: window.current_series().is_decoded(args.slice - 1), 30)
    wait(lambda: False, 1.5)  # let the strip, frame and panels repaint
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"first-run-{screen.width()}x{screen.height()}.png"
    window.grab().save(str(args.out / name))
    print(args.out / name)
    if args.viewer:
        QTest.keyClick(window.slice_view, Qt.Key.Key_Escape)
        wait(lambda: not window.extensions["first_run"].guide.isVisible(), 5)
        wait(lambda: False, 1.0)
        window.grab().save(str(args.out / "screenshot-viewer.png"))
        print(args.out / "screenshot-viewer.png")
    window.close()
    window.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
