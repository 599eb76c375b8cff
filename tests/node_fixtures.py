"""Fixtures for the node tests: a real Orthanc and DCMTK, installed when possible, else skipped."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from orthanc_helpers import Orthanc, orthanc_binary


def _ensure(binary: str, package: str) -> str | None:
    """The tool's path; installs the Debian package when missing and running as root."""
    if shutil.which(binary) or Path(f"/usr/sbin/{binary}").exists():
        return shutil.which(binary) or f"/usr/sbin/{binary}"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", package], capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    if _ensure("Orthanc", "orthanc") is None or orthanc_binary() is None:
        pytest.skip("Orthanc is not installed and cannot be installed here (apt-get install orthanc)")
    with Orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="module")
def storescu():
    path = _ensure("storescu", "dcmtk")
    if path is None:
        pytest.skip("DCMTK is not installed and cannot be installed here (apt-get install dcmtk)")
    return path


