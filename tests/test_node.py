"""The DICOM node against real peers: a real Orthanc and DCMTK's tools, real associations.

Orthanc runs on loopback ports with a temporary storage folder (``orthanc_helpers``);
studies are small phantoms (10 slices of 128 px) and the models small random networks
biased to flag everything or nothing, so a test checks plumbing and statuses, never
accuracy.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]

from ich_viewer.node.config import AllowRule, NodeConfig, Peer
from ich_viewer.node.scp import StorageNode
from node_fixtures import _ensure, pacs, storescu  # noqa: F401 (fixtures)

SLICES = 10
FINAL = ("flagged", "negative", "failed")


@pytest.fixture(scope="session")
def quiet_model_dir(tmp_path_factory):
    """A random network biased so that nothing is flagged."""
    from ich_viewer.inference.testing import SMALL_ARCH, export_random_model

    return export_random_model(tmp_path_factory.mktemp("quiet"), arch_changes=SMALL_ARCH, seed=2, any_bias=-8.0)


_STUDIES: dict[tuple[int, int], list[Path]] = {}


@pytest.fixture(scope="session")
def study_files(tmp_path_factory):
    """``study_files(seed, n=10)``: the files of a phantom study (one UID per seed)."""
    from ich_viewer.phantom.study import write_phantom_study

    def make(seed: int, n: int = SLICES) -> list[Path]:
        if (seed, n) not in _STUDIES:
            root = write_phantom_study(tmp_path_factory.mktemp(f"study{seed}"), seed=seed, subtypes=["subdural"],
                                       n_slices=n, matrix=128)
            _STUDIES[(seed, n)] = sorted(root.rglob("*.dcm"))
        return _STUDIES[(seed, n)]

    return make


@pytest.fixture
def make_node(tmp_path, flagging_model_dir):
    """``make_node(**config)``: a started node on a free port, stopped after the test."""
    from ich_viewer.commands.node import StoreAnalyser

    nodes: list[StorageNode] = []

    def make(model_dir: Path | None = None, documents: bool = True, send_to: Peer | None = None,
             **config) -> StorageNode:
        config.setdefault("quiet_s", 0.5)
        cfg = NodeConfig(data_dir=tmp_path / f"data{len(nodes)}", port=0, send_to=send_to, **config)
        analyser = StoreAnalyser(str(model_dir or flagging_model_dir), "cpu", send_to=send_to, documents=documents)
        node = StorageNode(cfg, analyser)
        node.start()
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop()


def wait_final(node: StorageNode, n_studies: int = 1, timeout_s: float = 90.0) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entries = node.worklist.entries()
        if len(entries) >= n_studies and all(e.status in FINAL for e in entries):
            return entries
        time.sleep(0.1)
    raise AssertionError(f"not analysed in time: {[(e.status, e.instances) for e in node.worklist.entries()]}")


def pixel_hashes(files) -> dict[str, str]:
    """SOP Instance UID -> sha256 of its pixel data: what must arrive unchanged."""
    out = {}
    for f in files:
        ds = dcmread(f)
        out[str(ds.SOPInstanceUID)] = hashlib.sha256(ds.PixelData).hexdigest()
    return out


def stored_files(node: StorageNode) -> list[Path]:
    return sorted(node.store.studies.rglob("*.dcm"))


def scu(calling: str = "ORTHANC") -> AE:
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(CTImageStorage, ImplicitVRLittleEndian)
    return ae


# -- receive and analyse -------------------------------------------------------------------
def test_orthanc_sends_a_study_it_is_analysed_and_listed(pacs, make_node, study_files, tmp_path):
    """Orthanc's own C-STORE -> stored under hashed names -> analysed once -> flagged in the
    worklist -> SR, key images and KOS sent back into Orthanc's copy of the study."""
    files = study_files(11)
    node = make_node(allow=(AllowRule.parse("ORTHANC@127.0.0.1"),), send_to=Peer.parse(pacs.peer))
    pacs.add_modality("ich1", "ICHVIEWER", node.port)
    study_id = pacs.upload(files)
    answer = pacs.send_study("ich1", study_id)
    assert answer["InstancesCount"] == SLICES and answer["FailedInstancesCount"] == 0

    [entry] = wait_final(node)
    assert entry.status == "flagged" and entry.suspected and entry.analyses == 1
    assert entry.instances == SLICES and entry.patient_id == "PHANTOM-11"
    assert pixel_hashes(stored_files(node)) == pixel_hashes(files), "every instance arrived unchanged"
    for path in stored_files(node):  # names come from hashes only, never from a value in the file
        assert all(re.fullmatch(r"[0-9a-f]+(\.dcm)?", part) for part in path.relative_to(node.store.studies).parts)

    out = StringIO()
    from ich_viewer.cli import main

    with redirect_stdout(out):
        assert main(["worklist", "--json", "--data", str(node.config.data_dir)]) == 0
    [listed] = json.loads(out.getvalue())
    assert listed["study_instance_uid"] == entry.study_instance_uid
    assert listed["status"] == "flagged" and listed["suspected"] == entry.suspected
    assert listed["received_at"] and listed["analysed_at"] and listed["study_date"]
    sr = [p for p in (node.store.results_folder(entry.study_instance_uid) / "dicom").iterdir() if p.name.startswith("SR_")]
    assert len(sr) == 1, "the SR is written into the node's own results folder"

    # ... and sent back to Orthanc (C-STORE) into the same study, where its REST API reads it
    series = {s["MainDicomTags"].get("Modality"): s for s in pacs.get(f"/studies/{study_id}/series")}
    assert {"CT", "SR", "KO"} <= set(series), f"Orthanc's study holds {sorted(series)}"
    tags = pacs.get(f"/instances/{series['SR']['Instances'][0]}/simplified-tags")
    assert tags["StudyInstanceUID"] == entry.study_instance_uid and tags["Modality"] == "SR"


def test_negative_study(pacs, make_node, study_files, quiet_model_dir):
    """Nothing flagged -> "negative", no subtypes, no SR (the report module writes one only for flags)."""
    node = make_node(model_dir=quiet_model_dir)
    pacs.add_modality("ich2", "ICHVIEWER", node.port)
    pacs.send_study("ich2", pacs.upload(study_files(12)))
    [entry] = wait_final(node)
    assert entry.status == "negative" and entry.suspected == [] and entry.flagged_slices == 0
    assert entry.to_json()["reason"] is None and entry.analyses == 1


def test_duplicates_stored_once_and_two_associations_make_one_study(make_node, study_files, storescu):
    """Half by DCMTK storescu, half by pynetdicom, then everything again: one study, each instance once."""
    files = study_files(13)
    node = make_node(quiet_s=3.0)
    first, second = files[: SLICES // 2], files[SLICES // 2:]
    run = subprocess.run([storescu, "-aet", "SCANNER", "-aec", "ICHVIEWER", "127.0.0.1", str(node.port),
                          *map(str, first)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assoc = scu("SCANNER").associate("127.0.0.1", node.port, ae_title="ICHVIEWER")
    assert assoc.is_established
    for f in [*second, *files]:
        assert assoc.send_c_store(dcmread(f)).Status == 0x0000
    assoc.release()

    [entry] = wait_final(node)
    assert entry.instances == SLICES and entry.analyses == 1
    assert len(stored_files(node)) == SLICES
    assert node.counts["duplicates"] == SLICES and node.counts["stored"] == SLICES


# -- bad input -------------------------------------------------------------------------------
def test_unknown_peers_are_rejected_and_echo_answers_the_allowed(make_node, tmp_path):
    echoscu = _ensure("echoscu", "dcmtk") or pytest.skip("DCMTK (echoscu) is not installed and cannot be installed here")
    node = make_node(allow=(AllowRule.parse("ORTHANC@127.0.0.1"), AllowRule.parse("FARAWAY@10.255.0.1")))
    ok = subprocess.run([echoscu, "-aet", "ORTHANC", "-aec", "ICHVIEWER", "127.0.0.1", str(node.port)],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assoc = scu("INTRUDER").associate("127.0.0.1", node.port, ae_title="ICHVIEWER")
    assert assoc.is_rejected, "an unknown AE title is rejected"
    assoc = scu("FARAWAY").associate("127.0.0.1", node.port, ae_title="ICHVIEWER")
    assert assoc.is_rejected, "a known AE title from another host is rejected"
    refused = subprocess.run([echoscu, "-aet", "INTRUDER", "-aec", "ICHVIEWER", "127.0.0.1", str(node.port)],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "reject" in (refused.stderr + refused.stdout).lower()
    assert node.counts["rejected_associations"] == 3
    assert node.worklist.entries() == []


def test_malformed_datasets_are_refused_and_the_node_keeps_serving(make_node, study_files, tmp_path, monkeypatch):
    from pynetdicom import _config

    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send a file's bytes as they are
    files = study_files(14)
    node = make_node()
    assoc = scu().associate("127.0.0.1", node.port, ae_title="ICHVIEWER")
    assert assoc.is_established

    no_study = dcmread(files[0])
    del no_study.StudyInstanceUID
    assert assoc.send_c_store(no_study).Status == 0xA900

    escaping = dcmread(files[1])
    escaping.StudyInstanceUID = "../../../../tmp/evil"
    assert assoc.send_c_store(escaping).Status == 0xA900

    garbage = tmp_path / "garbage.dcm"  # a valid file meta, then bytes that are no dataset
    good = dcmread(files[2])
    with open(files[2], "rb") as handle:
        raw = handle.read()
    meta_end = 132 + 12 + int.from_bytes(raw[140:144], "little")
    garbage.write_bytes(raw[:meta_end] + b"\x08\x00\x16\x00\xff\xff\xff\x7f" + os.urandom(64))
    status = assoc.send_c_store(garbage)
    assert status.Status in (0xC000, 0xA900), hex(status.Status)

    assert assoc.send_c_store(good).Status == 0x0000, "the node still stores good instances"
    assoc.release()
    assert node.counts["refused"] == 3 and len(stored_files(node)) == 1
    assert not list(Path("/tmp").glob("evil*")) and not (tmp_path / "tmp").exists()
    echo = scu().associate("127.0.0.1", node.port, ae_title="ICHVIEWER")
    assert echo.is_established and echo.send_c_echo().Status == 0
    echo.release()


def test_non_image_objects_are_refused_when_configured(make_node, tmp_path):
    from pydicom.uid import generate_uid
    from pynetdicom.sop_class import BasicTextSRStorage  # type: ignore[attr-defined]

    node = make_node(store_non_image=False)
    ds = Dataset()
    ds.SOPClassUID = BasicTextSRStorage
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality = "SR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ae = AE(ae_title="ORTHANC")
    ae.add_requested_context(BasicTextSRStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="ICHVIEWER")
    assert assoc.send_c_store(ds).Status == 0x0122
    assoc.release()
    assert node.worklist.entries() == []


# -- query / retrieve -------------------------------------------------------------------------
def test_query_and_retrieve_from_orthanc_then_open(pacs, study_files, tmp_path):
    from ich_viewer.dicom.loader import load_study
    from ich_viewer.node.scp import Receiver
    from ich_viewer.node.scu import RemoteError, StudyQuery, echo, find_studies, retrieve_study
    from ich_viewer.node.store import Store
    from ich_viewer.node.worklist import Worklist
    from ich_viewer.tasks import TaskState

    files = study_files(15)
    pacs.upload(files)
    peer = Peer.parse(pacs.peer)
    echo(peer)
    found = find_studies(peer, StudyQuery(patient_id="PHANTOM-15", modality="CT"))
    assert len(found) == 1 and found[0]["PatientID"] == "PHANTOM-15"
    assert find_studies(peer, StudyQuery(patient_id="NOBODY")) == []
    study_uid = found[0]["StudyInstanceUID"]

    store, worklist = Store(tmp_path / "node"), Worklist(tmp_path / "node" / "worklist.sqlite")
    progress = []
    state = TaskState(lambda kind, value: progress.append(value) if kind == "progress" else None, interval_s=0)
    assert retrieve_study(peer, study_uid, Receiver(store, worklist), state) == SLICES
    assert progress[-1] == (SLICES, SLICES)
    entry = worklist.get(study_uid)
    assert entry is not None and entry.instances == SLICES and entry.source.endswith("(C-GET)")
    worklist.close()
    study = load_study(entry.folder)
    assert len(study.image_series) == 1 and len(study.image_series[0]) == SLICES

    with pytest.raises(RemoteError, match="cannot reach|rejected"):
        find_studies(Peer("NOBODY", "127.0.0.1", 1), StudyQuery())


# -- load and the command line ------------------------------------------------------------------
def test_three_senders_at_once_nothing_lost(make_node, study_files, storescu):
    """3 x 40 slices from three DCMTK storescu processes at once: three studies, each analysed once."""
    studies = [study_files(seed, 40) for seed in (21, 22, 23)]
    node = make_node(quiet_s=1.5, documents=False)
    senders = [subprocess.Popen([storescu, "-aet", f"SCANNER{i}", "-aec", "ICHVIEWER", "127.0.0.1", str(node.port),
                                 *map(str, files)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for i, files in enumerate(studies)]
    for sender in senders:
        _out, err = sender.communicate(timeout=120)
        assert sender.returncode == 0, err
    entries = wait_final(node, 3)
    assert sorted(e.instances for e in entries) == [40, 40, 40]
    assert all(e.analyses == 1 and e.status == "flagged" for e in entries)
    expected = {}
    for files in studies:
        expected.update(pixel_hashes(files))
    assert pixel_hashes(stored_files(node)) == expected


def test_serve_command_receives_and_stops_cleanly(tmp_path, study_files, storescu, flagging_model_dir):
    """``ich-viewer serve`` as its own process; ``worklist --json`` reads what it wrote."""
    from orthanc_helpers import free_port

    port, data = free_port(), tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-m", "ich_viewer", "serve", "--port", str(port), "--data", str(data),
                               "--quiet", "0.5", "--device", "cpu", "--model-dir", str(flagging_model_dir),
                               "--allow", "SCANNER@localhost"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = server.stdout.readline()
        while line and "listening as" not in line:
            line = server.stdout.readline()
        assert "listening as ICHVIEWER on port" in line
        run = subprocess.run([storescu, "-aet", "SCANNER", "-aec", "ICHVIEWER", "127.0.0.1", str(port),
                              *map(str, study_files(16))], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        deadline, listed = time.monotonic() + 90, []
        from ich_viewer.cli import main

        while time.monotonic() < deadline:
            out = StringIO()
            with redirect_stdout(out):
                main(["worklist", "--json", "--data", str(data)])
            listed = json.loads(out.getvalue())
            if listed and listed[0]["status"] in FINAL:
                break
            time.sleep(0.2)
        assert listed and listed[0]["status"] == "flagged", listed
    finally:
        server.terminate()
        rest = server.communicate(timeout=30)[0]
    assert server.returncode == 0, rest
    assert "stopped" in rest


def test_store_full_refuses_with_out_of_resources_and_leaves_nothing(tmp_path, study_files, storescu, monkeypatch):
    """A node whose writes hit a size limit (RLIMIT_FSIZE: EFBIG, the same path as ENOSPC) answers
    0xA700, leaves no partial file, says so, and stores again once an instance fits."""
    import resource
    import signal

    from ich_viewer.phantom.study import write_phantom_study
    from orthanc_helpers import free_port

    big = sorted(write_phantom_study(tmp_path / "big", seed=17, subtypes=[], n_slices=2, matrix=512).rglob("*.dcm"))
    small = study_files(18)[:1]
    limit = 200_000
    assert big[0].stat().st_size > limit > small[0].stat().st_size

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    port, data = free_port(), tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-m", "ich_viewer", "serve", "--port", str(port), "--data", str(data),
                               "--quiet", "60"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              preexec_fn=limit_file_size)
    try:
        line = server.stdout.readline()
        while line and "listening as" not in line:
            line = server.stdout.readline()
        assert "listening as" in line
        ae = scu("SCANNER")
        assoc = ae.associate("127.0.0.1", port, ae_title="ICHVIEWER")
        assert assoc.send_c_store(dcmread(big[0])).Status == 0xA700
        assert assoc.send_c_store(dcmread(small[0])).Status == 0x0000, "the node keeps serving"
        assoc.release()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "store full" in output and "0xA700" in output
    assert list((data / "node" / "incoming").iterdir()) == [], "no partial file left behind"
    assert len(list((data / "node" / "studies").rglob("*.dcm"))) == 1


def test_query_and_retrieve_from_the_command_line(pacs, study_files, tmp_path, flagging_model_dir, capsys):
    """``ich-viewer query`` finds the study, ``retrieve`` stores and analyses it, ``worklist`` lists it."""
    from ich_viewer.cli import main

    pacs.upload(study_files(19))
    assert main(["query", pacs.peer, "--patient-id", "PHANTOM-19", "--date", "19000101-29991231", "--json"]) == 0
    [found] = json.loads(capsys.readouterr().out)
    data = str(tmp_path / "data")
    assert main(["retrieve", pacs.peer, found["StudyInstanceUID"], "--data", data, "--device", "cpu",
                 "--model-dir", str(flagging_model_dir)]) == 0
    out = capsys.readouterr().out
    assert f"retrieved {SLICES} instance(s)" in out and "flagged" in out
    assert main(["worklist", "--json", "--data", data]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["status"] == "flagged" and entry["analyses"] == 1 and entry["instances"] == SLICES
    assert main(["query", "NOBODY@127.0.0.1:1"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_c_move_from_orthanc_to_the_running_node(pacs, make_node, study_files, capsys):
    """``retrieve --move-to AE``: Orthanc pushes the study to the node, which analyses it;
    a destination Orthanc does not know fails with the remote status."""
    from ich_viewer.cli import main

    files = study_files(20)
    pacs.upload(files)
    node = make_node(ae_title="ICHMOVE")  # its own AE title: Orthanc resolves C-MOVE destinations by title
    pacs.add_modality("ichmove", "ICHMOVE", node.port)
    study_uid = str(dcmread(files[0]).StudyInstanceUID)
    assert main(["retrieve", pacs.peer, study_uid, "--move-to", "ICHMOVE"]) == 0
    assert f"sent {SLICES} instance(s)" in capsys.readouterr().out
    [entry] = wait_final(node)
    assert entry.status == "flagged" and entry.instances == SLICES
    assert main(["retrieve", pacs.peer, study_uid, "--move-to", "UNKNOWNAE"]) == 1
    assert "to UNKNOWNAE failed: 0x" in capsys.readouterr().err  # Orthanc 1.10 answers 0xC000
