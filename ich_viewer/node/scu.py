"""Talking to a PACS: C-ECHO, C-FIND at study level, C-GET into the store, C-STORE out.

Each call opens one association and closes it. Long operations take a
``tasks.TaskState`` (progress, cancel) so the window runs them with a ``TaskRunner``
and the command line without one. Failures raise ``RemoteError`` naming the remote
status, e.g. "C-GET failed: 0xA701 (Out of resources: Unable to calculate number of matches)".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from pynetdicom.status import code_to_category

from ich_viewer.node.config import DEFAULT_AE_TITLE, Peer
from ich_viewer.node.scp import Receiver
from ich_viewer.tasks import TaskState

log = logging.getLogger(__name__)

FIND_FIELDS = ("PatientName", "PatientID", "StudyDate", "StudyTime", "StudyDescription", "ModalitiesInStudy",
               "AccessionNumber", "NumberOfStudyRelatedInstances")


class RemoteError(RuntimeError):
    """The peer refused, failed or could not be reached; the message says which and how."""


def describe_status(code: int) -> str:
    """"0xA700 (Failure)": the code as DICOM writes it and its category."""
    return f"0x{code:04X} ({code_to_category(code)})"


def _ae(calling: str) -> AE:
    ae = AE(ae_title=calling)
    ae.acse_timeout = 20
    ae.dimse_timeout = 120
    ae.network_timeout = 30
    return ae


def _associate(ae: AE, peer: Peer, **kwargs: Any) -> Any:
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, **kwargs)
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise RemoteError(f"{peer} rejected the association (is our AE title {ae.ae_title!r} known there?)")
    raise RemoteError(f"cannot reach {peer}: association {'aborted' if assoc.is_aborted else 'failed'}")


def echo(peer: Peer, calling: str = DEFAULT_AE_TITLE) -> None:
    """C-ECHO; raises ``RemoteError`` unless the peer answers with success."""
    ae = _ae(calling)
    ae.add_requested_context(Verification)
    assoc = _associate(ae, peer)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status or status.Status != 0:
        raise RemoteError(f"C-ECHO to {peer} failed: {describe_status(status.Status) if status else 'no answer'}")


@dataclass(frozen=True)
class StudyQuery:
    """A study-level C-FIND. Empty fields match anything; ``*`` wildcards work in names."""

    patient_name: str = ""
    patient_id: str = ""
    date_from: str = ""
    """YYYYMMDD; with ``date_to`` a range, alone "from this day on"."""
    date_to: str = ""
    description: str = ""
    modality: str = "CT"
    study_uid: str = ""

    def dataset(self) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = self.study_uid
        for keyword in FIND_FIELDS:
            setattr(ds, keyword, "")
        ds.PatientName = self.patient_name
        ds.PatientID = self.patient_id
        ds.StudyDescription = self.description
        ds.ModalitiesInStudy = self.modality
        if self.date_from or self.date_to:
            ds.StudyDate = self.date_from if self.date_from == self.date_to else f"{self.date_from}-{self.date_to}"
        return ds


def find_studies(peer: Peer, query: StudyQuery, calling: str = DEFAULT_AE_TITLE) -> list[dict[str, str]]:
    """Study-level C-FIND: one dict per match (StudyInstanceUID and ``FIND_FIELDS``)."""
    ae = _ae(calling)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(ae, peer)
    found: list[dict[str, str]] = []
    try:
        for status, identifier in assoc.send_c_find(query.dataset(), StudyRootQueryRetrieveInformationModelFind):
            if not status:
                raise RemoteError(f"C-FIND to {peer}: no answer (connection lost or timed out)")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01) and identifier is not None:
                found.append({k: str(identifier.get(k, "") or "") for k in ("StudyInstanceUID", *FIND_FIELDS)})
            elif code != 0:
                raise RemoteError(f"C-FIND to {peer} failed: {describe_status(code)}")
    finally:
        if assoc.is_established:
            assoc.release()
    return found


def _follow_suboperations(responses: Iterable, assoc, query: Dataset, state: TaskState, what: str,
                          where: str = "") -> int:
    """Read a C-GET/C-MOVE's pending responses: progress, C-CANCEL on request, the remote
    status named on failure; returns the peer's count of completed sub-operations."""
    completed = 0
    for status, _identifier in responses:
        if not status:
            raise RemoteError(f"{what}: no answer (connection lost or timed out)")
        code = int(status.Status)
        completed = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
        failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
        remaining = int(status.get("NumberOfRemainingSuboperations", 0) or 0)
        state.set_progress(completed + failed, completed + failed + remaining)
        if state.cancelled():
            assoc.send_c_cancel(1, query=query)
        if code == 0xFE00:
            raise RemoteError(f"{what} cancelled after {completed} instances")
        if code not in (0x0000, 0xFF00, 0xFF01):
            raise RemoteError(f"{what}{where} failed: {describe_status(code)}"
                              + (f", {failed} instance(s) not sent" if failed else ""))
    return completed


def retrieve_study(peer: Peer, study_uid: str, receiver: Receiver, state: TaskState | None = None,
                   calling: str = DEFAULT_AE_TITLE) -> int:
    """C-GET one study into the node's store; returns the number of instances received.

    Progress is the peer's count of completed sub-operations; ``state.cancel()`` sends
    C-CANCEL. Raises ``RemoteError`` with the remote status when the peer fails.
    """
    state = state or TaskState()
    ae = _ae(calling)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    roles = []
    for context in StoragePresentationContexts[:120]:  # 128 contexts at most in one association
        ae.add_requested_context(str(context.abstract_syntax))
        roles.append(build_role(str(context.abstract_syntax), scp_role=True))
    source = f"{peer.ae_title}@{peer.host} (C-GET)"
    assoc = _associate(ae, peer, ext_neg=roles,
                       evt_handlers=[(evt.EVT_C_STORE, receiver.on_store, [source])])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    try:
        responses = assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet, msg_id=1)
        return _follow_suboperations(responses, assoc, query, state, f"C-GET from {peer}")
    finally:
        if assoc.is_established:
            assoc.release()


def move_study(peer: Peer, study_uid: str, destination: str, state: TaskState | None = None,
               calling: str = DEFAULT_AE_TITLE) -> int:
    """C-MOVE one study to ``destination`` (an AE title the peer knows: our running node).

    For a PACS that refuses C-GET. The instances arrive at the node on their own
    associations; returns the number the peer reports as sent. Raises ``RemoteError``
    with the remote status (for an unknown ``destination`` the standard says 0xA801;
    Orthanc 1.10 answers 0xC000).
    """
    state = state or TaskState()
    ae = _ae(calling)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = _associate(ae, peer)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    try:
        responses = assoc.send_c_move(query, destination, StudyRootQueryRetrieveInformationModelMove, msg_id=1)
        return _follow_suboperations(responses, assoc, query, state, f"C-MOVE from {peer}", f" to {destination}")
    finally:
        if assoc.is_established:
            assoc.release()


def send_files(peer: Peer, paths: Iterable[Path], state: TaskState | None = None,
               calling: str = DEFAULT_AE_TITLE) -> int:
    """C-STORE files (SR, KOS, key images...) to ``peer``; returns the number sent.

    Raises ``RemoteError`` at the first instance the peer refuses, naming its status.
    """
    state = state or TaskState()
    files = [Path(p) for p in paths]
    datasets = [dcmread(p) for p in files]
    ae = _ae(calling)
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for ds in datasets if str(ds.SOPClassUID) == sop_class})
        ae.add_requested_context(sop_class, syntaxes)
    assoc = _associate(ae, peer)
    sent = 0
    try:
        for path, ds in zip(files, datasets):
            if state.cancelled():
                break
            status = assoc.send_c_store(ds)
            if not status:
                raise RemoteError(f"C-STORE of {path.name} to {peer}: no answer")
            code = int(status.Status)
            if code not in (0x0000, 0xB000, 0xB006, 0xB007):
                raise RemoteError(f"C-STORE of {path.name} to {peer} failed: {describe_status(code)}")
            sent += 1
            state.set_progress(sent, len(files))
    finally:
        if assoc.is_established:
            assoc.release()
    return sent
