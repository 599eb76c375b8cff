"""Check a built one-folder bundle for what the frozen app needs and what must stay out.

    python packaging/check_bundle.py dist/ich-viewer --flavour cpu [--json]

Exit 0 when every check holds; prints one line per check (or a JSON document). Runs with
any Python (no imports from the bundle), right after PyInstaller in ``make package``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle_plan as plan  # noqa: E402


DECODER_EXTENSIONS = {
    "libjpeg": "_libjpeg.*",
    "openjpeg": "_openjpeg.*",
    "rle": "rle/rle.*",
    "jpeg_ls": "_CharLS.*",
    "gdcm": "_gdcm/_gdcmswig.*",
}
"""Compiled decoder modules (where their wheels put them) that must be in the bundle."""


def internal_dir(bundle: Path) -> Path:
    """PyInstaller >= 6 puts everything but the executable into ``_internal``."""
    inner = bundle / "_internal"
    return inner if inner.is_dir() else bundle


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def find(root: Path, pattern: str) -> list[Path]:
    return sorted(root.rglob(pattern))


def dist_info_names(root: Path) -> set[str]:
    names = set()
    for folder in root.glob("*.dist-info"):
        name = folder.name[: -len(".dist-info")].rsplit("-", 1)[0]
        names.add(name.lower().replace("_", "-"))
    return names


def check_demo(folder: Path) -> tuple[bool, str]:
    """The real demo study: every file its manifest lists, and its README's credit."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False, f"MISSING: {manifest} (the app's --demo and first start need it)"
    listed = [item["file"] for item in json.loads(manifest.read_text(encoding="utf-8")).get("slices", [])]
    missing = [name for name in listed if not (folder / name).is_file()]
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    absent = [mark for mark in plan.DEMO_CREDIT_MARKS if mark not in text]
    if not listed or missing or absent:
        return False, (f"{len(missing)} of {len(listed)} DICOM files missing" if missing or not listed
                       else f"README lacks {', '.join(absent)}")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return True, f"{len(listed)} DICOM files, credit in README, {size / 2**20:.1f} MiB"


def run_checks(bundle: Path, flavour: str) -> list[tuple[str, bool, str]]:
    inner = internal_dir(bundle)
    results: list[tuple[str, bool, str]] = []

    def add(name: str, ok: bool, detail: str) -> None:
        results.append((name, bool(ok), detail))

    exe = bundle / (plan.APP_NAME + (".exe" if sys.platform == "win32" else ""))
    add("executable", exe.is_file(), str(exe))
    add("resources", (inner / "resources").is_dir(), "resources/ bundled")
    add("demo study", *check_demo(inner / plan.DEMO_FOLDER))
    card = inner / "models" / "model_card.json"
    # not fatal for the build: the app copes without a model (and its smoke test says so)
    add("model", True, f"{card.relative_to(bundle)} present" if card.is_file()
        else "WARNING models/model_card.json missing: the app will run without a classifier")
    metadata = dist_info_names(inner)
    missing_meta = [d for d in plan.DECODER_DISTRIBUTIONS if d.lower() not in metadata]
    add("decoder metadata", not missing_meta,
        "entry-point metadata of " + (", ".join(plan.DECODER_DISTRIBUTIONS) if not missing_meta
                                      else "MISSING: " + ", ".join(missing_meta)))
    entry_points = [p for p in inner.glob("pylibjpeg_*.dist-info/entry_points.txt")]
    groups = {line.strip() for p in entry_points for line in p.read_text().splitlines() if line.startswith("[")}
    add("pylibjpeg plugins", "[pylibjpeg.pixel_data_decoders]" in groups and len(entry_points) >= 3,
        f"{len(entry_points)} plugin entry_points.txt, groups {sorted(groups)}")
    for name, pattern in DECODER_EXTENSIONS.items():
        ext = sorted(inner.glob(pattern))
        add(f"decoder {name}", bool(ext), ", ".join(p.name for p in ext) or f"nothing matches {pattern}")
    if not sys.platform.startswith("win"):
        shm = inner / "torch" / "bin" / "torch_shm_manager"
        add("torch shm manager", shm.is_file(), "torch/bin/torch_shm_manager (import torch needs it)")
    gdcm_xml = inner / "_gdcm" / "XML" / "Part3.xml"
    add("gdcm dictionaries", gdcm_xml.is_file(), str(gdcm_xml.relative_to(bundle)))
    fonts = find(inner / "reportlab", "*.afm") + find(inner / "reportlab", "*.pfb") + find(inner / "reportlab", "*.ttf")
    add("reportlab fonts", bool(fonts), f"{len(fonts)} font files")
    add("highdicom data", (inner / "highdicom" / "_standard" / "sop_class_iod_map.json").is_file(),
        "highdicom/_standard tables")
    platforms = inner / "PySide6" / "Qt" / "plugins" / "platforms"
    present = sorted(p.name for p in platforms.glob("*")) if platforms.is_dir() else []
    wanted = ("libqxcb.so", "libqoffscreen.so") if sys.platform.startswith("linux") else ()
    add("qt platforms", all(w in present for w in wanted), f"{', '.join(present) or 'none'}")
    unwanted = [d for d in ("PyQt5", "PyQt6", "PySide2", "torchvision", "trainer", "tests", "matplotlib")
                if (inner / d).exists()]
    add("excluded packages", not unwanted, "absent: other Qt bindings, torchvision, trainer, tests, matplotlib"
        if not unwanted else f"PRESENT: {', '.join(unwanted)}")
    cuda = [p.name for p in inner.rglob("*") if p.is_file() and plan.is_cuda_library(p.name)]
    if flavour == "cpu":
        add("no CUDA libraries", not cuda, "none" if not cuda else f"found {len(cuda)}: {', '.join(cuda[:5])}")
    else:
        add("CUDA libraries", bool(cuda), f"{len(cuda)} CUDA libraries")
    size = folder_size(bundle)
    add("size", True, f"{size / 2**20:.0f} MiB")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--flavour", choices=plan.FLAVOURS, default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.bundle.is_dir():
        print(f"{args.bundle} is not a folder: build it first (make package)", file=sys.stderr)
        return 2
    results = run_checks(args.bundle, args.flavour)
    ok = all(r[1] for r in results)
    if args.json:
        print(json.dumps({"bundle": str(args.bundle), "flavour": args.flavour, "ok": ok,
                          "checks": [{"name": n, "ok": o, "detail": d} for n, o, d in results]}, indent=2))
    else:
        for name, passed, detail in results:
            mark = ("warn" if detail.startswith("WARNING") else "ok  ") if passed else "FAIL"
            print(f"[{mark}] {name:<20} {detail}")
        print(f"bundle check {'passed' if ok else 'FAILED'}: {args.bundle}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
