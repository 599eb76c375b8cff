"""What goes into the PyInstaller bundle and what stays out, as plain data.

``ich_viewer.spec`` reads these lists; the tests read them too, so the invariants the
frozen app depends on (decoder plugins with their entry-point metadata, no second Qt
binding, no torchvision) are checked without running a build. No PyInstaller import here.
"""
from __future__ import annotations

import fnmatch
from pathlib import PurePosixPath

APP_NAME = "ich-viewer"
"""Name of the executable and of the one-folder bundle for the CPU flavour."""

FLAVOURS = ("cpu", "cuda")

DEMO_FOLDER = "resources/demo/ct-ich-071"
"""The bundled real demo study (travels with ``resources/``); check_bundle.py looks for
every DICOM file its manifest lists and for the credit in its README. Must match
``ich_viewer.demo.demo_root()`` (a test checks)."""
DEMO_CREDIT_MARKS = ("CC BY 4.0", "Hssayeni", "PhysioNet", "training data")
"""Words the bundled demo's README must carry: the licence, the credit, the training-data note."""

DECODER_DISTRIBUTIONS = (
    "pydicom",
    "pylibjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
    "pyjpegls",
    "python-gdcm",
    "highdicom",
)
"""Distributions whose metadata must be inside the bundle.

pylibjpeg finds its plugins (libjpeg, openjpeg, rle) through ``importlib.metadata``
entry points; without the ``*.dist-info`` folders a frozen app silently loses JPEG
lossless and JPEG 2000 support. The others are cheap and keep version checks working.
"""

PLUGIN_ENTRY_POINT_GROUPS = (
    "pylibjpeg.pixel_data_decoders",
    "pylibjpeg.jpeg_decoders",
    "pylibjpeg.jpeg_ls_decoders",
    "pylibjpeg.jpeg_2000_decoders",
)
"""Entry-point groups pylibjpeg reads; every distribution serving one must be bundled."""

DECODER_MODULES = (
    "pydicom.pixels.decoders.gdcm",
    "pydicom.pixels.decoders.pylibjpeg",
    "pydicom.pixels.decoders.pillow",
    "pydicom.pixels.decoders.pyjpegls",
    "pydicom.pixels.decoders.rle",
    "pydicom.pixels.encoders.pylibjpeg",
    "pydicom.pixels.encoders.gdcm",
    "pydicom.pixels.encoders.pyjpegls",
    "pydicom.pixels.encoders.native",
    "pylibjpeg",
    "libjpeg",
    "openjpeg",
    "rle",
    "jpeg_ls",
    "gdcm",
)
"""Imported only by name at run time (entry points, ``import_module``): hidden imports."""

GUI_MODULES = ("PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtSvg", "pyqtgraph")
"""The viewer's Qt stack; named so a build always carries it even if the UI imports lazily."""

DATA_PACKAGES = (
    ("highdicom", ("**/*.json", "**/*.icc"), ()),
    ("reportlab", (), ()),
    ("_gdcm", ("XML/*",), ()),
)
"""(package, includes, excludes) whose data files are collected: highdicom's standard
tables and ICC profile, reportlab's fonts, gdcm's XML dictionaries (not its tools).
pydicom's own data is collected by its contributed hook (without the test files)."""

EXCLUDED_MODULES = (
    # other Qt bindings: pyqtgraph would pick whichever it finds first
    "PyQt5", "PyQt6", "PySide2",
    # Qt modules the viewer does not use
    "PySide6.Qt3DAnimation", "PySide6.Qt3DCore", "PySide6.Qt3DExtras", "PySide6.Qt3DInput",
    "PySide6.Qt3DLogic", "PySide6.Qt3DRender", "PySide6.QtBluetooth", "PySide6.QtCharts",
    "PySide6.QtDataVisualization", "PySide6.QtDesigner", "PySide6.QtHelp",
    "PySide6.QtMultimedia", "PySide6.QtMultimediaWidgets", "PySide6.QtNetworkAuth",
    "PySide6.QtPositioning", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuick3D",
    "PySide6.QtQuickControls2", "PySide6.QtQuickWidgets", "PySide6.QtQuickTest",
    "PySide6.QtRemoteObjects", "PySide6.QtScxml", "PySide6.QtSensors",
    "PySide6.QtSerialPort", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtUiTools",
    "PySide6.QtWebChannel", "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets",
    "PySide6.QtWebSockets", "PySide6.QtXml", "PySide6.QtLabsStyleKit",
    # the training side and developer tools
    "torchvision", "torchaudio", "triton", "trainer", "tests", "matplotlib", "IPython", "jupyter",
    "notebook", "pytest", "hypothesis", "importlinter", "tkinter", "_tkinter",
    "tensorboard", "torch.utils.tensorboard", "pyqtgraph.examples", "pyqtgraph.opengl",
    "PyInstaller",
)

QT_PLATFORM_PLUGINS_KEPT = ("libqxcb.so", "libqoffscreen.so", "libqwayland.so",
                            "qwindows.dll", "qoffscreen.dll", "libqcocoa.dylib",
                            "libqoffscreen.dylib")
"""Platform plugins the bundle keeps: the desktop ones and offscreen for the self-check."""

QT_PLUGIN_DIRS_DROPPED = ("designer", "qmltooling", "sqldrivers", "egldeviceintegrations",
                          "wayland-graphics-integration-server", "networkinformation", "tls",
                          "printsupport")
"""Qt plugin folders no part of the viewer loads (reports are PDFs made by reportlab)."""

QT_PLUGINS_DROPPED = ("libqgtk3.so",)
"""Single plugins that would drag the build machine's GTK stack into the bundle."""

DROPPED_DIRS = ("torch/test", "torch/bin", "torch/include", "torch/share")
"""torch's C++ test programs, protoc and headers: about 135 MB nobody runs."""

KEPT_FILES = ("torch/bin/torch_shm_manager",)
"""Exceptions inside DROPPED_DIRS: ``import torch`` fails without its shared-memory manager."""

DROPPED_FILES = ("libjitbackend_test.so", "libtorchbind_test.so", "libbackend_with_compiler.so",
                 "libaoti_custom_ops.so")

CUDA_LIBRARY_PATTERNS = ("libcudart*", "libcublas*", "libcudnn*", "libcufft*", "libcurand*",
                         "libcusolver*", "libcusparse*", "libnccl*", "libnvrtc*", "libnvJitLink*",
                         "libcupti*", "libnvToolsExt*", "libcuda.so*", "libtorch_cuda*",
                         "libc10_cuda*", "libcufile*", "libnvshmem*", "cudart64*", "cublas64*",
                         "cudnn*")
"""Files that must never appear in the CPU flavour."""


def _parts(dest: str) -> tuple[str, ...]:
    return PurePosixPath(dest.replace("\\", "/")).parts


def keep_binary(dest: str, flavour: str) -> bool:
    """Whether a collected file (its path inside the bundle) stays in the bundle."""
    parts = _parts(dest)
    name = parts[-1] if parts else dest
    path = "/".join(parts)
    if name in DROPPED_FILES or name in QT_PLUGINS_DROPPED:
        return False
    if path in KEPT_FILES:
        return True
    if any(path == d or path.startswith(d + "/") for d in DROPPED_DIRS):
        return False
    if "plugins" in parts:
        below = parts[parts.index("plugins") + 1:]
        if below and below[0] in QT_PLUGIN_DIRS_DROPPED:
            return False
        if len(below) == 2 and below[0] == "platforms":
            return below[1] in QT_PLATFORM_PLUGINS_KEPT
    if flavour == "cpu" and is_cuda_library(name):
        return False
    return True


def is_cuda_library(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in CUDA_LIBRARY_PATTERNS)


def bundle_name(flavour: str) -> str:
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; use one of {FLAVOURS}")
    return APP_NAME if flavour == "cpu" else f"{APP_NAME}-{flavour}"


def torch_flavour(requires: list[str] | None, version: str) -> str:
    """'cuda' when the installed torch pulls NVIDIA libraries or names CUDA in its version."""
    if "+cu" in version or any(req.lower().startswith("nvidia-") for req in requires or ()):
        return "cuda"
    return "cpu"
