"""A real Orthanc on loopback for the node tests and benchmarks (no mocks).

Orthanc (Debian package ``orthanc``) runs as a plain process with a generated JSON
configuration, a temporary storage folder and free ports, and is stopped afterwards.
Its REST API uploads studies, makes it send them (C-STORE) and checks what arrived.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ORTHANC_AE = "ORTHANC"


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or (("/usr/sbin/Orthanc") if Path("/usr/sbin/Orthanc").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Orthanc:
    """``with Orthanc(folder) as pacs:`` a running Orthanc; ``pacs.peer`` is its AE@HOST:PORT."""

    def __init__(self, folder: Path, modalities: dict[str, list[Any]] | None = None) -> None:
        self.folder = Path(folder)
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.modalities = modalities or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def peer(self) -> str:
        return f"{ORTHANC_AE}@127.0.0.1:{self.dicom_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout_s: float = 30.0) -> "Orthanc":
        binary = orthanc_binary()
        if binary is None:
            raise RuntimeError("Orthanc is not installed (apt-get install orthanc)")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "ich-viewer-test", "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"), "HttpPort": self.http_port, "HttpServerEnabled": True,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomServerEnabled": True,
            "DicomAet": ORTHANC_AE, "DicomPort": self.dicom_port, "DicomCheckCalledAet": False,
            "DicomModalities": self.modalities, "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True,
            "UnknownSopClassAccepted": True, "Plugins": [], "StableAge": 3600, "SaveJobs": False,
            "DicomScuTimeout": 20, "ConcurrentJobs": 4, "LimitFindResults": 0, "LimitFindInstances": 0,
        }
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config, indent=1))
        self.log = open(self.folder / "orthanc.log", "wb")
        self.process = subprocess.Popen([binary, str(path)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(self.folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                self.get("/system")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Orthanc did not start within %.0f s" % timeout_s)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None
            self.log.close()

    def __enter__(self) -> "Orthanc":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- REST -------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
                timeout: float = 120) -> Any:
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": content_type} if body is not None else {})
        with urllib.request.urlopen(req, timeout=timeout) as response:
            data = response.read()
        return json.loads(data) if data[:1] in (b"{", b"[") else data

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post_json(self, path: str, value: Any) -> Any:
        return self.request("POST", path, json.dumps(value).encode())

    def upload(self, files: list[Path]) -> str:
        """Upload DICOM files; returns Orthanc's ID of their study."""
        study = ""
        for f in files:
            answer = self.request("POST", "/instances", Path(f).read_bytes(), "application/dicom")
            study = answer["ParentStudy"]
        return study

    def add_modality(self, name: str, ae_title: str, port: int, host: str = "127.0.0.1") -> None:
        self.request("PUT", f"/modalities/{name}",
                     json.dumps({"AET": ae_title, "Host": host, "Port": port}).encode())

    def send_study(self, modality: str, study_id: str) -> Any:
        """Orthanc's own C-STORE SCU sends a study to ``modality`` (synchronously)."""
        return self.post_json(f"/modalities/{modality}/store", {"Resources": [study_id], "Synchronous": True})

    def find_study(self, study_uid: str) -> str | None:
        found = self.request("POST", "/tools/lookup", study_uid.encode(), "text/plain")
        studies = [f["ID"] for f in found if f["Type"] == "Study"]
        return studies[0] if studies else None
