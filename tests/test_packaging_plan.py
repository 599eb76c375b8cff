"""The PyInstaller spec and bundle plan, checked without running a build.

The spec is executed with PyInstaller's functions replaced by recorders, so the test sees
exactly what the spec hands to Analysis (hidden imports, data, metadata, excludes) and how
its filter treats collected files.
"""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import bundle_plan as plan  # noqa: E402
import check_bundle  # noqa: E402

COLLECTED_BINARIES = [
    ("PySide6/Qt/plugins/platforms/libqxcb.so", "/x/libqxcb.so", "BINARY"),
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", "/x/libqoffscreen.so", "BINARY"),
    ("PySide6/Qt/plugins/platforms/libqvnc.so", "/x/libqvnc.so", "BINARY"),
    ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", "/x/libqsqlite.so", "BINARY"),
    ("PySide6/Qt/plugins/imageformats/libqjpeg.so", "/x/libqjpeg.so", "BINARY"),
    ("torch/lib/libcudart.so.13", "/x/libcudart.so.13", "BINARY"),
    ("torch/lib/libtorch_cpu.so", "/x/libtorch_cpu.so", "BINARY"),
]


class Recorder:
    """Stands in for PyInstaller's spec globals and hook helpers."""

    def __init__(self) -> None:
        self.analysis: dict = {}
        self.collect_name: str | None = None

    def hooks_module(self) -> types.ModuleType:
        module = types.ModuleType("PyInstaller.utils.hooks")
        module.copy_metadata = lambda dist: [(f"/site/{dist}.dist-info", f"{dist}.dist-info")]
        module.collect_data_files = lambda package, includes=None, excludes=None: [
            (f"/site/{package}/data.bin", package)]
        module.collect_submodules = lambda package, filter=None: [
            name for name in (package, f"{package}.cli", f"{package}.ui.app", f"{package}.tests.x")
            if filter is None or filter(name)]
        return module

    def globals(self) -> dict:
        recorder = self

        def analysis(scripts, **kwargs):
            recorder.analysis = dict(kwargs, scripts=scripts)
            return types.SimpleNamespace(binaries=list(COLLECTED_BINARIES), datas=list(kwargs["datas"]),
                                         pure=[], scripts=[])

        def collect(*items, name, **kwargs):
            recorder.collect_name = name
            recorder.collected = items
            return name

        return {"SPECPATH": str(ROOT), "__file__": str(ROOT / "ich_viewer.spec"), "Analysis": analysis,
                "PYZ": lambda pure: "pyz", "EXE": lambda *a, **k: "exe", "COLLECT": collect}


def run_spec(monkeypatch, flavour_env: str | None, torch_requires: list[str], torch_version: str) -> Recorder:
    recorder = Recorder()
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", recorder.hooks_module())
    real = importlib.metadata.distribution

    def fake_distribution(name):
        if name == "torch":
            return types.SimpleNamespace(requires=torch_requires, version=torch_version)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", fake_distribution)
    if flavour_env is None:
        monkeypatch.delenv("ICH_VIEWER_FLAVOUR", raising=False)
    else:
        monkeypatch.setenv("ICH_VIEWER_FLAVOUR", flavour_env)
    code = compile((ROOT / "ich_viewer.spec").read_text(), "ich_viewer.spec", "exec")
    exec(code, recorder.globals())
    return recorder


def test_cpu_spec_hands_decoders_metadata_and_excludes_to_analysis(monkeypatch):
    rec = run_spec(monkeypatch, None, [], "2.13.0+cpu")
    kwargs = rec.analysis
    assert rec.collect_name == "ich-viewer"
    assert kwargs["scripts"] == [str(ROOT / "packaging" / "launcher.py")]
    for module in ("libjpeg", "openjpeg", "rle", "jpeg_ls", "gdcm", "pydicom.pixels.decoders.pylibjpeg",
                   "pydicom.pixels.decoders.gdcm", "pydicom.pixels.decoders.pyjpegls", "pyqtgraph"):
        assert module in kwargs["hiddenimports"], module
    assert "ich_viewer.cli" in kwargs["hiddenimports"]
    assert not any(".tests" in name for name in kwargs["hiddenimports"])
    destinations = {dest for _src, dest in kwargs["datas"]}
    for dist in ("pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle", "pyjpegls", "python-gdcm"):
        assert f"{dist}.dist-info" in destinations, dist
    assert {"resources", "highdicom", "reportlab", "_gdcm"} <= destinations
    for name in ("PyQt5", "PyQt6", "PySide2", "torchvision", "trainer", "tests", "matplotlib"):
        assert name in kwargs["excludes"], name
    kept = {entry[0].rsplit("/", 1)[-1] for entry in rec.collected[1]}
    assert kept == {"libqxcb.so", "libqoffscreen.so", "libqjpeg.so", "libtorch_cpu.so"}


def test_cuda_torch_builds_the_cuda_flavour_and_keeps_its_libraries(monkeypatch):
    rec = run_spec(monkeypatch, None, ['nvidia-cudnn-cu13==9.1; platform_system == "Linux"'], "2.14.1")
    assert rec.collect_name == "ich-viewer-cuda"
    kept = {entry[0].rsplit("/", 1)[-1] for entry in rec.collected[1]}
    assert "libcudart.so.13" in kept and "libqvnc.so" not in kept


def test_cpu_flavour_refuses_a_cuda_torch(monkeypatch):
    with pytest.raises(SystemExit, match="CPU flavour needs a CPU build of torch"):
        run_spec(monkeypatch, "cpu", ["nvidia-nccl-cu13==2.30"], "2.14.1")


def test_models_folder_is_bundled_only_when_it_has_files(monkeypatch):
    rec = run_spec(monkeypatch, None, [], "2.13.0+cpu")
    has_models = (ROOT / "models").is_dir() and any((ROOT / "models").iterdir())
    assert ((str(ROOT / "models"), "models") in rec.analysis["datas"]) == has_models


def test_every_installed_pylibjpeg_plugin_is_in_the_plan():
    """A plugin found through entry points must have its metadata and module bundled."""
    serving = set()
    for group in plan.PLUGIN_ENTRY_POINT_GROUPS:
        for ep in importlib.metadata.entry_points(group=group):
            serving.add(ep.dist.metadata["Name"].lower())
            assert ep.value.split(":")[0].split(".")[0] in plan.DECODER_MODULES, ep
    assert {"pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle"} <= serving
    assert serving <= {d.lower() for d in plan.DECODER_DISTRIBUTIONS}


@pytest.mark.parametrize("dest, flavour, kept", [
    ("PySide6/Qt/plugins/platforms/libqxcb.so", "cpu", True),
    ("PySide6/Qt/plugins/platforms/libqeglfs.so", "cpu", False),
    ("PySide6/Qt/plugins/designer/libx.so", "cuda", False),
    ("PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", "cpu", True),
    ("nvidia/cudnn/lib/libcudnn.so.9", "cpu", False),
    ("nvidia/cudnn/lib/libcudnn.so.9", "cuda", True),
    ("torch/lib/libtorch_cpu.so", "cpu", True),
    ("torch/lib/libtorchbind_test.so", "cpu", False),
    ("torch/bin/protoc", "cuda", False),
    ("torch/bin/torch_shm_manager", "cpu", True),
    ("torch/test/Dict_test", "cpu", False),
    ("torch/testing/_internal/x.py", "cpu", True),
    ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "cpu", False),
    ("PySide6/Qt/plugins/printsupport/libcupsprintersupport.so", "cpu", False),
])
def test_keep_binary(dest, flavour, kept):
    assert plan.keep_binary(dest, flavour) is kept


def test_torch_flavour_and_bundle_names():
    assert plan.torch_flavour([], "2.13.0+cpu") == "cpu"
    assert plan.torch_flavour(None, "2.5.1+cu121") == "cuda"
    assert plan.torch_flavour(["nvidia-nccl-cu13"], "2.14.1") == "cuda"
    assert plan.bundle_name("cpu") == "ich-viewer" and plan.bundle_name("cuda") == "ich-viewer-cuda"
    with pytest.raises(ValueError):
        plan.bundle_name("rocm")


def test_app_runtime_imports_neither_torchvision_nor_trainer_nor_matplotlib():
    """Import every ich_viewer module as the frozen app could; none may pull these in."""
    code = (
        "import os, pkgutil, importlib, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "import ich_viewer\n"
        "for m in pkgutil.walk_packages(ich_viewer.__path__, 'ich_viewer.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(n for n in ('torchvision', 'trainer', 'matplotlib', 'PyQt5', 'PyQt6') if n in sys.modules)\n"
        "print('BAD', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr


def make_fake_bundle(root: Path) -> Path:
    import shutil

    bundle = root / "ich-viewer"
    inner = bundle / "_internal"
    (inner / "resources").mkdir(parents=True)
    shutil.copytree(ROOT / plan.DEMO_FOLDER, inner / plan.DEMO_FOLDER)
    bundle.joinpath("ich-viewer").write_bytes(b"\x7fELF")
    for dist in plan.DECODER_DISTRIBUTIONS:
        (inner / f"{dist.replace('-', '_')}-1.0.dist-info").mkdir()
    for dist in ("pylibjpeg_libjpeg", "pylibjpeg_openjpeg", "pylibjpeg_rle"):
        (inner / f"{dist}-1.0.dist-info" / "entry_points.txt").write_text("[pylibjpeg.pixel_data_decoders]\nx=y:z\n")
    for name in ("_libjpeg", "_openjpeg", "rle/rle", "_CharLS", "_gdcm/_gdcmswig"):
        (inner / name).parent.mkdir(exist_ok=True)
        (inner / f"{name}.cpython-311-x86_64-linux-gnu.so").write_bytes(b"so")
    (inner / "_gdcm" / "XML").mkdir()
    (inner / "_gdcm" / "XML" / "Part3.xml").write_text("<x/>")
    (inner / "reportlab" / "fonts").mkdir(parents=True)
    (inner / "reportlab" / "fonts" / "Vera.ttf").write_bytes(b"ttf")
    (inner / "highdicom" / "_standard").mkdir(parents=True)
    (inner / "highdicom" / "_standard" / "sop_class_iod_map.json").write_text("{}")
    (inner / "torch" / "bin").mkdir(parents=True)
    (inner / "torch" / "bin" / "torch_shm_manager").write_bytes(b"elf")
    platforms = inner / "PySide6" / "Qt" / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    for name in ("libqxcb.so", "libqoffscreen.so"):
        (platforms / name).write_bytes(b"so")
    return bundle


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fake bundle has Linux file names")
def test_check_bundle_passes_a_complete_bundle_and_names_each_defect(tmp_path, capsys):
    bundle = make_fake_bundle(tmp_path)
    assert check_bundle.main([str(bundle)]) == 0
    assert "WARNING models/model_card.json missing" in capsys.readouterr().out

    (bundle / "_internal" / "torchvision").mkdir()
    (bundle / "_internal" / "torch" / "lib").mkdir()
    (bundle / "_internal" / "torch" / "lib" / "libcudart.so.13").write_bytes(b"so")
    next((bundle / "_internal").glob("pylibjpeg_openjpeg-*.dist-info")).joinpath("entry_points.txt").unlink()
    (bundle / "_internal" / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so").unlink()
    assert check_bundle.main([str(bundle), "--flavour", "cpu"]) == 1
    out = capsys.readouterr().out
    failed = {line.split()[1] for line in out.splitlines() if line.startswith("[FAIL]")}
    assert failed == {"pylibjpeg", "qt", "excluded", "no"}, out
    assert "PRESENT: torchvision" in out and "libcudart.so.13" in out


def test_install_desktop_points_the_menu_entry_at_the_bundle(tmp_path):
    import shutil

    bundle = tmp_path / "ich-viewer"
    shutil.copytree(ROOT / "resources", bundle / "_internal" / "resources")
    exe = bundle / "ich-viewer"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    data = tmp_path / "xdg"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(data)}
    result = subprocess.run(["sh", str(ROOT / "packaging" / "install-desktop.sh"), str(bundle)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    entry = (data / "applications" / "ich-viewer.desktop").read_text()
    assert f'Exec="{exe}" %f' in entry.splitlines()
    assert "Icon=ich-viewer" in entry.splitlines() and "Type=Application" in entry.splitlines()
    assert (data / "icons" / "hicolor" / "256x256" / "apps" / "ich-viewer.png").stat().st_size > 0

    missing = subprocess.run(["sh", str(ROOT / "packaging" / "install-desktop.sh"), str(tmp_path)],
                             env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "build it first" in missing.stdout


def test_the_spec_bundles_the_demo_study_where_the_app_looks_for_it(monkeypatch):
    """resources/ goes in whole; the demo inside it is where ich_viewer.demo finds it, at most 5 MB."""
    from ich_viewer import demo, paths

    rec = run_spec(monkeypatch, None, [], "2.13.0+cpu")
    assert (str(ROOT / "resources"), "resources") in rec.analysis["datas"]
    assert demo.demo_root().relative_to(paths.bundle_root()).as_posix() == plan.DEMO_FOLDER
    size = sum(p.stat().st_size for p in (ROOT / plan.DEMO_FOLDER).rglob("*") if p.is_file())
    assert 1_000_000 < size <= 5_000_000, size


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fake bundle has Linux file names")
def test_check_bundle_fails_without_the_demo_or_its_credit(tmp_path, capsys):
    bundle = make_fake_bundle(tmp_path)
    demo_dir = bundle / "_internal" / plan.DEMO_FOLDER
    assert check_bundle.main([str(bundle)]) == 0
    assert "29 DICOM files, credit in README" in capsys.readouterr().out

    readme = demo_dir / "README.md"
    readme.write_text(readme.read_text().replace("CC BY 4.0", "some licence"))
    assert check_bundle.main([str(bundle)]) == 1
    assert "README lacks CC BY 4.0" in capsys.readouterr().out

    next((demo_dir / "dicom").glob("*.dcm")).unlink()
    assert check_bundle.main([str(bundle)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] demo study" in out and "1 of 29 DICOM files missing" in out
