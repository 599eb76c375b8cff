"""Entry script of the frozen app: the same ``main`` as the ``ich-viewer`` console script."""
import multiprocessing
import sys

from ich_viewer.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not re-run the app
    sys.exit(main())
