"""Self-check of an install (``ich-viewer --smoke-test``): the whole job, end to end.

A packaged app can look fine and still miss a decoder plugin, a font or the model. This
runs the real code paths on generated data in a temporary folder - phantom study, load,
classify with the bundled model, export JSON/PDF/SR, read them back, decode compressed
files - and reports every step with its time. It never fakes a pass: a missing model, a
missing module or a wrong value is a failed step with a message that says what is wrong.

Qt-free; the window step is handed in by ``ich_viewer.ui.smoke``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

import numpy as np

from ich_viewer import LABELS

PHANTOM_SEED = 11
PHANTOM_SUBTYPES = ("subdural", "intraparenchymal")
PHANTOM_SLICES = 12
PHANTOM_MATRIX = 256
DECODER_SYNTAXES = ("jpeg-lossless", "jpeg2000", "jpeg-ls", "rle")
"""Compressed transfer syntaxes whose decoders must be inside the install."""
SR_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
    "1.2.840.10008.5.1.4.1.1.88.59": "Key Object Selection",
}


class SmokeFailure(RuntimeError):
    """A step's check did not hold; the message is shown as the step's result."""


@dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class SmokeContext:
    """What the steps hand each other."""

    workdir: Path
    study_dir: Path | None = None
    phantom_labels: np.ndarray | None = None
    study: Any = None
    series: Any = None
    loaded_model: Any = None
    prediction: Any = None
    exports: dict[str, Path] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SmokeRun:
    """Runs named steps, times them, turns exceptions into failed steps, prints as it goes."""

    out: TextIO | None = None
    steps: list[StepResult] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def failed(self, name: str) -> bool:
        return any(step.name == name and not step.ok for step in self.steps)

    def step(self, name: str, action: Callable[[], str | None], needs: tuple[str, ...] = ()) -> bool:
        missing = [n for n in needs if self.failed(n) or not any(s.name == n for s in self.steps)]
        if missing:
            return self._record(StepResult(name, False, 0.0, f"not run: needs step(s) {', '.join(missing)}"))
        t0 = time.perf_counter()
        try:
            detail = action() or ""
            ok = True
        except SmokeFailure as exc:
            detail, ok = str(exc), False
        except ImportError as exc:
            detail, ok = f"part of the program is missing: {exc}", False
        except Exception as exc:  # any error is the step's result, not a crash of the self-check
            last = traceback.extract_tb(exc.__traceback__)[-1]
            detail = f"{type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})"
            ok = False
        return self._record(StepResult(name, ok, time.perf_counter() - t0, detail))

    def _record(self, result: StepResult) -> bool:
        self.steps.append(result)
        if self.out is not None:
            mark = "ok  " if result.ok else "FAIL"
            print(f"[{mark}] {result.name:<22} {result.seconds:7.2f} s  {result.detail}", file=self.out, flush=True)
        return result.ok

    def summary(self) -> str:
        total = time.perf_counter() - self.started
        bad = [s.name for s in self.steps if not s.ok]
        if not bad:
            return f"smoke test PASSED: {len(self.steps)} steps in {total:.1f} s"
        return f"smoke test FAILED: {len(bad)} of {len(self.steps)} steps failed ({', '.join(bad)}) in {total:.1f} s"

    def counts(self) -> str:
        """The closing line CI reads, in the plain 'N passed, N failed' form."""
        bad = sum(1 for s in self.steps if not s.ok)
        return f"smoke-test: {len(self.steps) - bad} passed, {bad} failed"

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "seconds": round(time.perf_counter() - self.started, 3),
            "steps": [{"name": s.name, "ok": s.ok, "seconds": round(s.seconds, 3), "detail": s.detail}
                      for s in self.steps],
        }


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


@contextmanager
def isolated_workdir(keep: bool = False) -> Iterator[Path]:
    """A temporary folder for everything the self-check writes, plus private app data.

    The user's review decisions and settings are never touched: ICH_VIEWER_DATA_DIR and
    ICH_VIEWER_SETTINGS point inside the folder for the duration of the run.
    """
    workdir = Path(tempfile.mkdtemp(prefix="ich-viewer-smoke-"))
    saved = {key: os.environ.get(key) for key in ("ICH_VIEWER_DATA_DIR", "ICH_VIEWER_SETTINGS")}
    os.environ["ICH_VIEWER_DATA_DIR"] = str(workdir / "appdata")
    os.environ["ICH_VIEWER_SETTINGS"] = str(workdir / "settings.ini")
    try:
        yield workdir
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


# --- steps -------------------------------------------------------------------------------

def step_bundle(ctx: SmokeContext) -> str:
    """The bundled folders are where the program looks for them."""
    from ich_viewer import paths

    resources = paths.resources_dir()
    check(resources.is_dir(), f"resources folder {resources} is missing")
    models = paths.models_dir()
    card = models / "model_card.json"
    check(card.is_file(), f"no bundled model: {card} is missing (export one with the trainer into models/ "
                          "and rebuild); the classifier cannot run")
    source = " (ICH_VIEWER_MODEL_DIR, not the bundled folder)" if os.environ.get("ICH_VIEWER_MODEL_DIR") else ""
    return f"resources {resources}, model card {card}{source}"


def step_phantom(ctx: SmokeContext) -> str:
    from ich_viewer.phantom.study import write_phantom_study

    ctx.study_dir = write_phantom_study(ctx.workdir / "phantom", seed=PHANTOM_SEED, subtypes=list(PHANTOM_SUBTYPES),
                                        n_slices=PHANTOM_SLICES, matrix=PHANTOM_MATRIX)
    truth = ctx.study_dir.parent / "ground_truth" / "masks.npz"
    with np.load(truth) as data:
        ctx.phantom_labels = np.asarray(data["labels"])
    files = [p for p in ctx.study_dir.rglob("*") if p.is_file()]
    check(len(files) == PHANTOM_SLICES, f"expected {PHANTOM_SLICES} DICOM files, found {len(files)}")
    return f"{len(files)} slices {PHANTOM_MATRIX}x{PHANTOM_MATRIX}, subtypes {', '.join(PHANTOM_SUBTYPES)}"


def step_load(ctx: SmokeContext) -> str:
    """Headless load through the loader (the window step, when present, loads again itself)."""
    from ich_viewer.dicom.loader import load_study

    study = load_study(ctx.study_dir)
    series_list = study.image_series
    check(len(series_list) == 1, f"expected 1 image series, the loader found {len(series_list)}")
    series = series_list[0]
    check(len(series) == PHANTOM_SLICES, f"expected {PHANTOM_SLICES} slices, the loader found {len(series)}")
    mid = series.hu(len(series) // 2)
    check(mid.shape == (PHANTOM_MATRIX, PHANTOM_MATRIX), f"slice shape {mid.shape}")
    check(float(mid.max()) > 300.0 and float(mid.min()) <= -900.0,
          f"HU range {mid.min():.0f}..{mid.max():.0f} does not look like a head CT (air and bone)")
    if ctx.study is None:
        ctx.study, ctx.series = study, series
    return f"{len(series)} slices, spacing {series.spacing_mm} mm, HU {mid.min():.0f}..{mid.max():.0f}"


def step_demo(ctx: SmokeContext) -> str:
    """The bundled real demo study (what a new user opens first) loads and decodes in full."""
    from ich_viewer import demo
    from ich_viewer.dicom.loader import load_study

    info = demo.demo_info()
    check(info is not None, f"the demo study is missing from {demo.demo_root()} (resources/demo not bundled)")
    study = load_study(info.dicom_dir)
    check(study.study_uid == info.study_uid, "the demo's Study Instance UID does not match its manifest")
    check(demo.SHORT_CREDIT in study.study_description,
          f"the demo's StudyDescription {study.study_description!r} lacks the credit")
    series = study.image_series
    check(len(series) == 1 and len(series[0]) == info.n_slices,
          f"expected 1 series of {info.n_slices} slices, found {[len(s) for s in series]}")
    volume = series[0].volume_hu()  # decodes every slice (JPEG-LS lossless)
    air, brain = float(volume[:, :8, :8].mean()), float(np.median(volume[volume.shape[0] // 2][
        (volume[volume.shape[0] // 2] > 0) & (volume[volume.shape[0] // 2] < 80)]))
    check(air <= -990.0, f"air in the corner reads {air:.0f} HU, not about -1000")
    check(20.0 <= brain <= 45.0, f"brain tissue reads {brain:.0f} HU (median), not 20..45")
    return (f"{info.n_slices} slices {volume.shape[1]}x{volume.shape[2]} decoded, air {air:.0f} HU, "
            f"brain median {brain:.0f} HU; {study.study_description}")


def step_classify(ctx: SmokeContext) -> str:
    from ich_viewer.inference.predict import PredictState, predict_series
    from ich_viewer.inference.weights import load_model

    ctx.loaded_model = load_model()  # the bundled model; ModelLoadError says what is wrong
    info = ctx.loaded_model.info
    untrained = bool(ctx.loaded_model.card.get("untrained"))
    check(not untrained or bool(os.environ.get("ICH_VIEWER_MODEL_DIR")),
          f"the bundled model {info.name} is untrained test weights, not a classifier to ship")
    prediction = predict_series(ctx.series, PredictState(loaded=ctx.loaded_model))
    n = len(ctx.series)
    check(len(prediction.slices) == n, f"{len(prediction.slices)} predictions for {n} slices")
    check(sorted(p.index for p in prediction.slices) == list(range(n)), "predictions do not cover every slice")
    for p in prediction.slices:
        values = [p.probabilities[label] for label in LABELS]
        check(all(0.0 <= v <= 1.0 and np.isfinite(v) for v in values), f"slice {p.index}: probabilities {values}")
        if ctx.loaded_model.model.any_stage is None:  # with a second stage "any" is its own estimate
            check(p.probabilities["any"] + 1e-6 >= max(values[:-1]), f"slice {p.index}: 'any' below a subtype")
        check(p.sop_instance_uid == ctx.series.slices[p.index].sop_instance_uid,
              f"slice {p.index}: SOP Instance UID does not match the series")
    window = ctx.extra.get("window_prediction")
    if window is not None:  # the window's worker and the headless path must agree
        in_window = {p.sop_instance_uid: p.probabilities for p in window.slices}
        worst = max(abs(in_window[p.sop_instance_uid][label] - p.probabilities[label])
                    for p in prediction.slices for label in LABELS)
        check(worst < 1e-3, f"the window's classifier and the headless one differ by up to {worst:.4f}")
    ctx.prediction = prediction
    top = max(p.probabilities["any"] for p in prediction.slices)
    return (f"model {info.name} {info.version}{' (UNTRAINED test weights)' if untrained else ''} "
            f"on {info.device}: {n} slices, "
            f"{len(prediction.flagged_slices)} flagged, max P(any) {top:.2f}")


def step_export(ctx: SmokeContext) -> str:
    """PDF, JSON and DICOM (SR, key images, KOS) through the same call as the export dialog."""
    from ich_viewer.report.export import attention_overlay, export_report

    out = ctx.workdir / "export"
    result = export_report(ctx.study, [(ctx.series, ctx.prediction)], pdf=out / "report.pdf",
                           json=out / "results.json", dicom_dir=out / "dicom", sr=True, key_images=True,
                           overlay=attention_overlay(ctx.loaded_model))
    for name in ("pdf", "json", "sr"):
        path = getattr(result, name)
        check(path is not None and Path(path).is_file(), f"the export wrote no {name.upper()} file")
        ctx.exports[name] = Path(path)
    ctx.extra["key_images"] = [Path(p) for p in result.key_images]
    ctx.extra["kos"] = Path(result.kos) if result.kos else None
    return (f"{len(result.written)} files: PDF, JSON, SR, {len(result.key_images)} key image(s)"
            f"{', KOS' if result.kos else ''}; {result.n_flagged} flagged slice(s)")


def step_read_json(ctx: SmokeContext) -> str:
    path = ctx.exports["json"]
    document = json.loads(path.read_text(encoding="utf-8"))
    check(document.get("labels") == list(LABELS), f"labels {document.get('labels')}")
    rows = document.get("slices") or []
    check(len(rows) == len(ctx.series), f"{len(rows)} rows for {len(ctx.series)} slices")
    expected = {p.sop_instance_uid: p for p in ctx.prediction.slices}
    for row in rows:
        pred = expected.get(row.get("sop_instance_uid"))
        check(pred is not None, f"row with unknown SOP Instance UID {row.get('sop_instance_uid')}")
        for label in LABELS:
            got = _row_probability(row, label)
            check(abs(got - pred.probabilities[label]) < 1e-4,
                  f"slice {pred.index} {label}: JSON says {got}, the classifier said {pred.probabilities[label]}")
    check((document.get("model") or {}).get("sha256") == ctx.prediction.model.sha256, "model sha256 missing or wrong")
    return f"{path.name}: {len(rows)} rows, probabilities and model match the classifier"


def _row_probability(row: dict, label: str) -> float:
    if isinstance(row.get("probabilities"), dict):
        return float(row["probabilities"][label])
    for key in (label, f"p_{label}", f"prob_{label}"):
        if key in row:
            return float(row[key])
    raise SmokeFailure(f"JSON row has no probability for {label}: keys {sorted(row)}")


def step_read_pdf(ctx: SmokeContext) -> str:
    pdf = ctx.exports["pdf"]
    data = pdf.read_bytes()
    check(data.startswith(b"%PDF-"), "the PDF file does not start with %PDF-")
    check(b"%%EOF" in data[-1024:], "the PDF file has no %%EOF trailer")
    pages = pdf_page_count(data)
    check(pages >= 1, "the PDF has no pages")
    return f"{pdf.name}: {len(data) // 1024} KiB, {pages} page(s)"


def pdf_page_count(data: bytes) -> int:
    """Page objects in an uncompressed-xref PDF (as reportlab writes), else the /Count of the root."""
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    if pages:
        return pages
    counts = [int(c) for c in re.findall(rb"/Count\s+(\d+)", data)]
    return max(counts, default=0)


def step_read_dicom(ctx: SmokeContext) -> str:
    import pydicom

    sr = ctx.exports["sr"]
    ds = pydicom.dcmread(sr)
    check(ds.get("Modality") == "SR", f"Modality is {ds.get('Modality')}, not SR")
    sop_class = str(ds.get("SOPClassUID", ""))
    check(sop_class in SR_SOP_CLASSES, f"SOP Class {sop_class} is not a structured report")
    check(str(ds.get("StudyInstanceUID", "")) == ctx.study.study_uid,
          f"the SR's StudyInstanceUID {ds.get('StudyInstanceUID')} is not the phantom's {ctx.study.study_uid}")
    referenced = referenced_instances(ds)
    series_uids = {h.sop_instance_uid for h in ctx.series.slices}
    check(bool(referenced), "the SR references no image")
    stray = referenced - series_uids
    check(not stray, f"the SR references {len(stray)} instance(s) that are not in the series")
    flagged = {p.sop_instance_uid for p in ctx.prediction.flagged_slices}
    check(flagged <= referenced, f"{len(flagged - referenced)} flagged slice(s) are not referenced by the SR")
    for key_image in ctx.extra.get("key_images", []):
        image = pydicom.dcmread(key_image)
        check(str(image.StudyInstanceUID) == ctx.study.study_uid, f"{key_image.name} is not in the phantom's study")
        check(image.pixel_array.size > 0, f"{key_image.name} has no pixels")
    return (f"{sr.name}: {SR_SOP_CLASSES[sop_class]}, references {len(referenced & series_uids)} image(s) "
            f"of the series (all {len(flagged)} flagged); {len(ctx.extra.get('key_images', []))} key image(s) read")


def referenced_instances(ds: Any) -> set[str]:
    """Every ReferencedSOPInstanceUID anywhere in a dataset (content tree and evidence)."""
    found: set[str] = set()

    def walk(dataset: Any) -> None:
        for element in dataset:
            if element.keyword == "ReferencedSOPInstanceUID":
                found.add(str(element.value))
            elif element.VR == "SQ":
                for item in element.value:
                    walk(item)

    walk(ds)
    return found


def step_decoders(ctx: SmokeContext) -> str:
    """Write small compressed series and decode them back through the loader, bit-exact."""
    import pydicom

    from ich_viewer.dicom.loader import load_study
    from ich_viewer.phantom.syntaxes import get_syntax
    from ich_viewer.phantom.writer import write_series

    rng = np.random.default_rng(5)
    volume = np.rint(rng.normal(40.0, 300.0, size=(2, 64, 64))).clip(-1024, 3000).astype(np.float32)
    done, failures = [], []
    for name in DECODER_SYNTAXES:
        folder = ctx.workdir / "decoders" / name
        try:
            files = write_series(volume, folder, spacing_mm=5.0, pixel_spacing=(0.5, 0.5), syntax=name)
            wanted = get_syntax(name).uid
            actual = str(pydicom.dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID)
            check(actual == wanted, f"file written as {actual}, expected {wanted}")
            series = load_study(folder).image_series[0]
            back = series.volume_hu()
            check(back.shape == volume.shape, f"shape {back.shape}")
            error = float(np.abs(back - volume).max())
            check(error == 0.0, f"decoded HU differ from the written ones by up to {error}")
            done.append(name)
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    check(not failures, "; ".join(failures))
    return f"bit-exact: {', '.join(done)}"


def step_decoder_processes(ctx: SmokeContext) -> str:
    """Compressed slices decoded in worker processes (fork server or spawn of the frozen app).

    A frozen app must re-enter itself correctly to start workers, and the workers need
    the decoder plugins too; the loader quietly falls back to threads otherwise, so this
    step waits for the shared pool and checks it really decoded.
    """
    from concurrent.futures import ProcessPoolExecutor

    from ich_viewer.dicom import workers
    from ich_viewer.dicom.background import BackgroundDecoder
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.dicom.pixels import decode_job
    from ich_viewer.phantom.writer import write_series

    rng = np.random.default_rng(9)
    volume = np.rint(rng.normal(40.0, 300.0, size=(6, 64, 64))).clip(-1024, 3000).astype(np.float32)
    folder = ctx.workdir / "decoders" / "processes"
    write_series(volume, folder, spacing_mm=5.0, pixel_spacing=(0.5, 0.5), syntax="jpeg2000")
    series = load_study(folder).image_series[0]
    context = workers.process_context()
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        image = pool.submit(decode_job, series.pixel_source.job(series.slices[0])).result(timeout=120)
    check(float(np.abs(np.asarray(image, np.float32) - volume[0]).max()) == 0.0,
          "a worker process decoded the slice differently")
    try:
        check(workers.start_pool(2).wait(120) and workers.ready_pool() is not None,
              "the shared decoder pool did not start (see the log for the reason)")
        decoder = BackgroundDecoder(series, workers=2, mode="processes").start()
        check(decoder.wait(120), "background decoding did not finish within 120 s")
        check(decoder.mode_used == "processes", f"worker processes unused (decoded with {decoder.mode_used})")
        check(decoder.failed == 0 and all(series.is_decoded(i) for i in range(len(series))),
              f"{decoder.failed} slice(s) failed in worker processes")
        check(float(np.abs(series.volume_hu() - volume).max()) == 0.0, "decoded HU differ from the written ones")
    finally:
        workers.shutdown_workers()
    return f"JPEG 2000 in {context.get_start_method()} workers: {len(series)} slices bit-exact"


STEPS: tuple[tuple[str, Callable[[SmokeContext], str], tuple[str, ...]], ...] = (
    ("bundle", step_bundle, ()),
    ("phantom study", step_phantom, ()),
    ("load (headless)", step_load, ("phantom study",)),
    ("demo study", step_demo, ()),
)
AFTER_WINDOW: tuple[tuple[str, Callable[[SmokeContext], str], tuple[str, ...]], ...] = (
    ("classify", step_classify, ("load (headless)",)),
    ("export PDF+JSON+SR", step_export, ("classify",)),
    ("read back JSON", step_read_json, ("export PDF+JSON+SR",)),
    ("read back PDF", step_read_pdf, ("export PDF+JSON+SR",)),
    ("read back SR", step_read_dicom, ("export PDF+JSON+SR",)),
    ("decoders", step_decoders, ()),
    ("decoder processes", step_decoder_processes, ()),
)


def run_smoke(
    out: TextIO | None,
    window_steps: Callable[[SmokeRun, SmokeContext], None] | None = None,
    keep: bool = False,
) -> SmokeRun:
    """Run every step; ``window_steps`` adds the Qt ones between loading and classifying."""
    run = SmokeRun(out=out)
    with isolated_workdir(keep=keep or bool(os.environ.get("ICH_VIEWER_SMOKE_KEEP"))) as workdir:
        ctx = SmokeContext(workdir=workdir)
        if out is not None:
            print(f"ICH Viewer self-check in {workdir}", file=out, flush=True)
        for name, action, needs in STEPS:
            run.step(name, lambda action=action: action(ctx), needs)
        if window_steps is not None:
            window_steps(run, ctx)
        for name, action, needs in AFTER_WINDOW:
            run.step(name, lambda action=action: action(ctx), needs)
    if out is not None:
        print(run.summary(), file=out, flush=True)
        print(run.counts(), file=out, flush=True)
    return run
