"""docs/worklist.png: the window with its worklist filled by a real node.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/worklist_screenshot.py

The window's own node (the "Receive" toggle) gets the real CT-ICH demo study, phantom
studies (some with bleeds, some normal) and a study without images by C-STORE and
analyses them with the bundled model; the top study is opened by double-click, and one
more study is arriving when the window grabs itself.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
TMP = Path(tempfile.mkdtemp(prefix="worklist-shot-"))
os.environ["ICH_VIEWER_SETTINGS"] = str(TMP / "settings.ini")
os.environ["ICH_VIEWER_DATA_DIR"] = str(TMP / "data")

from pydicom import dcmread  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402
from pynetdicom import AE  # noqa: E402

from ich_viewer.phantom.study import write_phantom_study  # noqa: E402

STUDIES = [(41, ["subdural"]), (42, []), (43, ["epidural"]), (44, ["intraparenchymal", "intraventricular"]),
           (45, []), (46, ["subarachnoid"])]


def send(port: int, datasets: list[Dataset], calling: str) -> None:
    ae = AE(ae_title=calling)
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for ds in datasets if str(ds.SOPClassUID) == sop_class})
        ae.add_requested_context(sop_class, syntaxes)
    assoc = ae.associate("127.0.0.1", port, ae_title="ICHVIEWER")
    for ds in datasets:
        assoc.send_c_store(ds)
    assoc.release()


def main() -> int:
    from PySide6.QtWidgets import QApplication

    from ich_viewer.demo import demo_study_path
    from ich_viewer.options import ViewOptions
    from ich_viewer.ui.app import application, build_window
    from ich_viewer.ui.first_run import set_guide_shown
    from ich_viewer.ui.worklist_panel import save_node_settings
    from orthanc_helpers import free_port

    def pump(seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            QApplication.processEvents()
            time.sleep(0.03)

    app = application()
    set_guide_shown(True)
    port = free_port()
    save_node_settings({"port": port, "ae_title": "ICHVIEWER", "allow": "", "quiet": 2.0, "data": str(TMP / "data"),
                        "send_to": "", "pacs": ""})
    window = build_window(ViewOptions(device="cpu"))
    window.resize(1900, 1040)
    window.show()
    controller = window.extensions["worklist"]
    controller.show_panel()
    controller.panel.receive_button.setChecked(True)
    pump(1)
    real = [dcmread(f) for f in sorted(Path(demo_study_path("ct-ich")).rglob("*")) if f.is_file() and f.suffix == ".dcm"]
    send(port, real, "CT_SCANNER_1")
    for seed, subtypes in STUDIES:
        root = write_phantom_study(TMP / f"s{seed}", seed=seed, subtypes=subtypes, n_slices=24, matrix=256)
        send(port, [dcmread(f) for f in sorted(root.rglob("*.dcm"))], "CT_SCANNER_2")
        pump(0.5)
    sr = Dataset()  # a study holding only a text SR: nothing to analyse -> "failed" with the reason
    sr.SOPClassUID, sr.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.88.11", generate_uid()
    sr.StudyInstanceUID, sr.SeriesInstanceUID = generate_uid(), generate_uid()
    sr.PatientID, sr.PatientName, sr.Modality, sr.StudyDate = "DOC-ONLY", "REPORT^ONLY", "SR", "20261128"
    sr.StudyDescription = "OUTSIDE REPORT"
    sr.file_meta = FileMetaDataset()
    sr.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    send(port, [sr], "PACS")
    deadline = time.time() + 300
    while time.time() < deadline:
        pump(0.3)
        entries = controller.entries
        if len(entries) == len(STUDIES) + 2 and all(e.status in ("flagged", "negative", "failed") for e in entries):
            break
    controller.panel.table.cellDoubleClicked.emit(0, 0)
    pump(20)
    last = write_phantom_study(TMP / "last", seed=47, subtypes=["subdural"], n_slices=24, matrix=256)
    send(port, [dcmread(f) for f in sorted(last.rglob("*.dcm"))], "CT_SCANNER_2")  # arriving while we look
    controller.show_panel()
    pump(1.2)
    out = ROOT / "docs" / "worklist.png"
    window.grab().save(str(out))
    print(out)
    window.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
