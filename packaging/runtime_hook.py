"""Runs first inside the frozen app: pin pyqtgraph to the one Qt binding in the bundle."""
import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
