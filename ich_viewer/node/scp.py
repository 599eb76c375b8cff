"""The storage SCP: associations from allowed peers, C-ECHO, C-STORE into the store.

Every received instance is checked (decodable, valid UIDs matching the request) before
anything is written; a bad one gets a DICOM failure status and a log line, and the node
keeps serving. Completed studies (quiet for ``quiet_s``) go to the ``Pipeline``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from ich_viewer.node.config import NodeConfig
from ich_viewer.node.pipeline import Analyser, Pipeline
from ich_viewer.node.store import Store, StoreFullError, valid_uid
from ich_viewer.node.worklist import Worklist

log = logging.getLogger(__name__)

# C-STORE statuses (PS3.4 Annex B.2.3 and PS3.7 C)
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATASET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
PROCESSING_FAILURE = 0x0110


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value)[:200]


def is_image(ds: Dataset) -> bool:
    """An instance the classifier could read (it carries pixels)."""
    return "PixelData" in ds or "FloatPixelData" in ds


class Receiver:
    """Checks and stores one received instance; shared by the SCP and by C-GET."""

    def __init__(self, store: Store, worklist: Worklist, *, store_non_image: bool = True) -> None:
        self.store = store
        self.worklist = worklist
        self.store_non_image = store_non_image
        self._write_lock = threading.Lock()
        self.counts = {"stored": 0, "duplicates": 0, "refused": 0}
        self._count_lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._count_lock:  # several associations store at once
            self.counts[key] += 1

    def on_store(self, event: Any, source: str = "") -> int:
        """The C-STORE handler: a status for the sender, never an exception."""
        try:
            return self._store(event, source)
        except Exception as exc:  # a bug here must not kill the association thread silently
            log.exception("unexpected failure storing an instance")
            return self._refuse(PROCESSING_FAILURE, source, f"{type(exc).__name__}: {exc}")

    def _store(self, event: Any, source: str) -> int:
        peer = source or f"{str(event.assoc.requestor.ae_title).strip()}@{event.assoc.requestor.address}"
        request = event.request
        try:
            ds = event.dataset
            sop_uid, study_uid, series_uid, ds_class = (
                str(ds.get(k, "") or "") for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                                                   "SOPClassUID"))
            image = is_image(ds)
        except Exception as exc:  # whatever a broken encoding raises
            return self._refuse(CANNOT_UNDERSTAND, peer, f"cannot decode the dataset: {type(exc).__name__}: {exc}")
        for name, uid in (("SOP Instance", sop_uid), ("Study Instance", study_uid), ("Series Instance", series_uid)):
            if not valid_uid(uid):
                return self._refuse(DATASET_MISMATCH, peer, f"invalid {name} UID {uid[:80]!r}")
        if sop_uid != str(request.AffectedSOPInstanceUID) or ds_class != str(request.AffectedSOPClassUID):
            return self._refuse(DATASET_MISMATCH, peer, "the dataset's SOP Class/Instance UID differs from the request")
        if not image and not self.store_non_image:
            return self._refuse(SOP_CLASS_NOT_SUPPORTED, peer, f"non-image SOP class {UID(ds_class).name} refused")
        if self.worklist.has_instance(sop_uid):
            self._count("duplicates")
            log.info("duplicate instance %s from %s: already stored", sop_uid, peer)
            return SUCCESS
        try:
            data = _encode(event)
        except Exception as exc:
            return self._refuse(CANNOT_UNDERSTAND, peer, f"cannot encode the dataset: {type(exc).__name__}: {exc}")
        with self._write_lock:  # a duplicate arriving in parallel is stored once
            if self.worklist.has_instance(sop_uid):
                self._count("duplicates")
                return SUCCESS
            try:
                stored = self.store.write(study_uid, series_uid, sop_uid, data)
            except StoreFullError as exc:
                log.error("DICOM node: %s; instances are refused until space is freed", exc)
                return self._refuse(OUT_OF_RESOURCES, peer, str(exc))
            except OSError as exc:
                return self._refuse(OUT_OF_RESOURCES, peer, f"cannot write to the store: {exc}")
            identity = {
                "patient_id": _text(ds, "PatientID"), "patient_name": _text(ds, "PatientName"),
                "study_date": _text(ds, "StudyDate"), "study_time": _text(ds, "StudyTime"),
                "description": _text(ds, "StudyDescription"),
            }
            self.worklist.add_instance(
                study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid, path=str(stored.path),
                sha256=stored.sha256, folder=str(self.store.study_folder(study_uid)), identity=identity,
                source=peer, now=time.time())
        self._count("stored")
        return SUCCESS

    def _refuse(self, status: int, peer: str, reason: str) -> int:
        self._count("refused")
        log.warning("refused an instance from %s with status 0x%04X: %s", peer, status, reason)
        return status


class StorageNode:
    """A listening DICOM node; ``start()`` returns at once, ``stop()`` waits for the threads.

    Example
    -------
    >>> node = StorageNode(NodeConfig(data_dir=Path("/tmp/node"), port=11112), analyser)  # doctest: +SKIP
    >>> node.start(); ...; node.stop()                                                      # doctest: +SKIP
    """

    def __init__(self, config: NodeConfig, analyser: Analyser | None = None) -> None:
        self.config = config
        self.store = Store(config.node_dir)
        self.worklist = Worklist(config.node_dir / "worklist.sqlite")
        self.receiver = Receiver(self.store, self.worklist, store_non_image=config.store_non_image)
        self.pipeline = Pipeline(self.worklist, self.store, analyser, quiet_s=config.quiet_s) if analyser else None
        self._server: Any = None
        self.rejected_associations = 0

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        """Listen (raises ``OSError`` when the port is taken) and start the analysis thread."""
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_associations = 16
        ae.network_timeout = 30
        ae.acse_timeout = 30
        ae.dimse_timeout = 60
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(str(context.abstract_syntax), ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self.receiver.on_store),
        ]
        self.worklist.requeue_interrupted()
        self._server = ae.start_server((self.config.bind, self.config.port), block=False, evt_handlers=handlers)
        if self.pipeline:
            self.pipeline.start()
        log.info("DICOM node %s listening on port %d, store %s", self.config.ae_title, self.port, self.store.root)

    @property
    def counts(self) -> dict[str, int]:
        return {**self.receiver.counts, "rejected_associations": self.rejected_associations}

    @property
    def port(self) -> int:
        """The port really listened on (useful with port 0: a free one)."""
        if self._server is None:
            return self.config.port
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self.pipeline:
            self.pipeline.stop()
        self.worklist.close()
        log.info("DICOM node %s stopped", self.config.ae_title)

    def __enter__(self) -> "StorageNode":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handlers (pynetdicom's threads) -----------------------------------------------
    def _on_requested(self, event: Any) -> None:
        """Reject an association from a peer not on the allow-list (A-ASSOCIATE-RJ, logged)."""
        calling = str(event.assoc.requestor.primitive.calling_ae_title).strip()
        address = str(event.assoc.requestor.address)
        if not self.config.allows(calling, address):
            self.rejected_associations += 1
            log.warning("rejected association from %r at %s: not an allowed peer", calling, address)
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)  # permanent, service user, calling AE not recognised
            event.assoc.kill()

    def _on_echo(self, event: Any) -> int:
        return SUCCESS


def _encode(event: Any) -> bytes:
    """The received instance as a DICOM file (preamble, meta, the dataset's bytes as sent)."""
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    meta: FileMetaDataset = event.file_meta
    write_file_meta_info(buffer, meta, enforce_standard=True)
    buffer.write(event.request.DataSet.getvalue())
    return buffer.getvalue()

