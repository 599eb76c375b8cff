"""``ich-viewer serve | worklist | query | retrieve | send``: the DICOM node from the command line.

Also builds the node's analyser on ``commands.analyze.analyze_study``, so a study that
arrives over the network is classified exactly as ``ich-viewer analyze`` would do it,
and the window's worklist panel is attached from here (``attach_worklist``) so it can
hand that analyser to the node it starts.
"""
from __future__ import annotations

import io
import json
import logging
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ich_viewer.node.config import AllowRule, ConfigError, NodeConfig, Peer
from ich_viewer.node.pipeline import Outcome, outcome_of
from ich_viewer.node.worklist import Worklist
from ich_viewer.options import (
    QueryOptions, RetrieveOptions, SendOptions, ServeOptions, ViewOptions, WorklistOptions,
)
from ich_viewer.paths import data_dir
from ich_viewer.tasks import TaskState

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class StoreAnalyser:
    """The node's ``Analyser``: load the stored study, ``analyze_study``, write SR and key images.

    The model is loaded once, on the first study (a node that never receives anything
    never pays for it). With ``send_to`` the SR, key images and KOS go back with C-STORE.
    """

    def __init__(self, model_dir: str | None = None, device: str | None = None, *,
                 send_to: Peer | None = None, ae_title: str = "ICHVIEWER", documents: bool = True) -> None:
        self.model_dir = model_dir
        self.device = device
        self.send_to = send_to
        self.ae_title = ae_title
        self.documents = documents
        self._loaded: Any = None
        self._lock = threading.Lock()

    def model(self) -> Any:
        from ich_viewer.inference.weights import load_model

        with self._lock:
            if self._loaded is None:
                self._loaded = load_model(self.model_dir, device=self.device)
            return self._loaded

    def __call__(self, folder: Path, results_dir: Path, state: TaskState) -> Outcome:
        from ich_viewer.commands.analyze import analyze_study
        from ich_viewer.dicom.loader import load_study
        from ich_viewer.report.notes import study_notes

        study = load_study(folder, cancel=state.cancelled)
        if not study.image_series:
            return Outcome("failed", reason=f"no image series among {len(study.skipped)} file(s)")
        messages = io.StringIO()
        results = analyze_study(study, self.model(), log=messages)
        if messages.getvalue().strip():
            log.info("analysis notes for %s:\n%s", folder.name, messages.getvalue().rstrip())
        if not results:
            notes = "; ".join(study_notes(study, results).lines()) or "no series could be analysed"
            return Outcome("failed", reason=notes)
        outcome = outcome_of(prediction for _series, prediction in results)
        if self.documents:
            outcome = self._write_documents(study, results, results_dir, outcome)
        return outcome

    def _write_documents(self, study: Any, results: list, results_dir: Path, outcome: Outcome) -> Outcome:
        from ich_viewer.report.export import export_report

        shutil.rmtree(results_dir, ignore_errors=True)  # the node's own folder: the last analysis wins
        try:
            written = export_report(study, results, json=results_dir / "report.json", dicom_dir=results_dir / "dicom",
                                    key_images=outcome.status == "flagged", overwrite=True)
        except Exception as exc:
            log.error("report for %s not written: %s", results_dir.name, exc)
            return Outcome(outcome.status, outcome.suspected, outcome.flagged_slices, f"report not written: {exc}")
        documents = [p for p in written.written if p.suffix == ".dcm"]
        outcome = Outcome(outcome.status, outcome.suspected, outcome.flagged_slices, documents=documents)
        if self.send_to is not None and documents:
            from ich_viewer.node.scu import RemoteError, send_files

            try:
                send_files(self.send_to, documents, calling=self.ae_title)
                log.info("sent %d result object(s) to %s", len(documents), self.send_to)
            except RemoteError as exc:
                log.error("results not sent: %s", exc)
                return Outcome(outcome.status, outcome.suspected, outcome.flagged_slices,
                               f"results not sent: {exc}", documents)
        return outcome


def node_config(options: ServeOptions) -> NodeConfig:
    """``ServeOptions`` -> ``NodeConfig`` (raises ``ConfigError`` with what is wrong)."""
    return NodeConfig(
        data_dir=Path(options.data) if options.data else data_dir(),
        port=options.port, ae_title=options.ae_title, bind=options.bind,
        allow=tuple(AllowRule.parse(rule) for rule in options.allow or ()),
        quiet_s=options.quiet, store_non_image=not options.refuse_non_image,
        send_to=Peer.parse(options.send_to) if options.send_to else None,
    )


def run_serve(options: ServeOptions) -> int:
    """Listen until interrupted (Ctrl-C or SIGTERM), analysing each study once it is complete."""
    from ich_viewer.node.scp import StorageNode

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # not a line per instance
    logging.getLogger("highdicom").setLevel(logging.WARNING)
    try:
        config = node_config(options)
    except ConfigError as exc:
        print(f"ich-viewer serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    analyser = StoreAnalyser(options.model_dir, options.device, send_to=config.send_to, ae_title=config.ae_title)
    node = StorageNode(config, analyser)
    try:
        node.start()
    except OSError as exc:
        print(f"ich-viewer serve: cannot listen on port {config.port}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    allowed = ", ".join(f"{r.ae_title}@{r.host or '*'}" for r in config.allow) or "any AE title from this machine only"
    print(f"listening as {config.ae_title} on port {node.port}; allowed: {allowed}; data {config.node_dir}",
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
    return EXIT_OK


def run_worklist(options: WorklistOptions) -> int:
    """Print the worklist: JSON (a list of studies) or one line per study."""
    root = (Path(options.data) if options.data else data_dir()) / "node"
    worklist = Worklist(root / "worklist.sqlite")
    try:
        entries = worklist.entries()
    finally:
        worklist.close()
    if options.json:
        print(json.dumps([e.to_json() for e in entries], indent=2))
        return EXIT_OK
    if not entries:
        print(f"no studies received yet ({root})")
    for e in entries:
        what = ", ".join(e.suspected) if e.status == "flagged" else (e.reason if e.status == "failed" else "")
        print(f"{e.status:<9} {e.patient_id:<16} {e.study_date:<8} {e.description[:30]:<30} "
              f"{e.instances:>4} inst  {time.strftime('%H:%M:%S', time.localtime(e.received_at))}  {what}")
    return EXIT_OK


def _date_range(text: str | None) -> tuple[str, str]:
    if not text:
        return "", ""
    start, dash, end = text.partition("-")
    return start.strip(), (end.strip() if dash else start.strip())


def run_query(options: QueryOptions) -> int:
    from ich_viewer.node.scu import RemoteError, StudyQuery, find_studies

    date_from, date_to = _date_range(options.date)
    query = StudyQuery(patient_name=options.patient_name or "", patient_id=options.patient_id or "",
                       date_from=date_from, date_to=date_to, description=options.description or "",
                       modality=options.modality)
    try:
        found = find_studies(Peer.parse(options.peer), query, calling=options.ae_title)
    except (RemoteError, ConfigError) as exc:
        print(f"ich-viewer query: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if options.json:
        print(json.dumps(found, indent=2))
    else:
        for s in found:
            print(f"{s['StudyInstanceUID']}  {s['PatientID']:<14} {s['StudyDate']:<8} "
                  f"{s['ModalitiesInStudy']:<6} {s['StudyDescription']}")
    return EXIT_OK


def run_retrieve(options: RetrieveOptions) -> int:
    """C-GET studies into the store, then analyse them (as if they had been sent)."""
    from ich_viewer.node.pipeline import Pipeline
    from ich_viewer.node.scp import Receiver
    from ich_viewer.node.scu import RemoteError, retrieve_study
    from ich_viewer.node.store import Store

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = (Path(options.data) if options.data else data_dir()) / "node"
    store, worklist = Store(root), Worklist(root / "worklist.sqlite")
    try:
        peer = Peer.parse(options.peer)
        if options.move_to:  # the node that receives (and analyses) is the one listening as move_to
            from ich_viewer.node.scu import move_study

            for uid in options.study_uid:
                n = move_study(peer, uid, options.move_to, calling=options.ae_title)
                print(f"{peer} sent {n} instance(s) of {uid} to {options.move_to}")
            return EXIT_OK
        receiver = Receiver(store, worklist)
        for uid in options.study_uid:
            n = retrieve_study(peer, uid, receiver, calling=options.ae_title)
            print(f"retrieved {n} instance(s) of {uid}")
        if options.no_analysis:
            return EXIT_OK
        pipeline = Pipeline(worklist, store, StoreAnalyser(options.model_dir, options.device), quiet_s=0)
        for uid in options.study_uid:
            entry = worklist.take(uid)
            if entry is not None:
                outcome = pipeline.analyse(uid, Path(entry.folder), entry.last_received_at)
                print(f"{uid}: {outcome.status} {', '.join(outcome.suspected)} {outcome.reason}".rstrip())
    except (RemoteError, ConfigError) as exc:
        print(f"ich-viewer retrieve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        worklist.close()
    return EXIT_OK


def run_send(options: SendOptions) -> int:
    from ich_viewer.node.scu import RemoteError, send_files

    files = [p for f in options.files for p in (sorted(Path(f).rglob("*.dcm")) if Path(f).is_dir() else [Path(f)])]
    try:
        n = send_files(Peer.parse(options.peer), files, calling=options.ae_title)
    except (RemoteError, ConfigError, OSError) as exc:
        print(f"ich-viewer send: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"sent {n} file(s) to {options.peer}")
    return EXIT_OK


def attach_worklist(window: Any, options: ViewOptions | None = None) -> Any:
    """The window's worklist panel, with a node toggle whose analyser is ``StoreAnalyser``."""
    from ich_viewer.ui.worklist_panel import attach_worklist_panel

    device = options.device if options else None
    no_model = bool(options and options.no_model)
    return attach_worklist_panel(
        window, lambda send_to, ae: None if no_model else StoreAnalyser(None, device, send_to=send_to, ae_title=ae))
