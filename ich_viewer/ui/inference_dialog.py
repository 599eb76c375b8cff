"""Help > Model information: what the classifier is, how it was made, where it runs."""
from __future__ import annotations

import html
import json
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from ich_viewer import LABELS, RESEARCH_NOTICE

CARD_SECTIONS = ("metrics", "data", "licences", "licenses", "recipe", "evaluation", "limitations", "intended_use")


def _value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"<pre>{html.escape(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"
    return html.escape(str(value))


def model_info_html(card: dict | None, device_text: str, problem: str = "") -> str:
    """The dialog's content; also what tests read."""
    parts = [f"<p><b>{html.escape(RESEARCH_NOTICE)}</b></p>"]
    if card is None:
        parts.append(f"<p>No classifier is loaded.</p><p>{html.escape(problem)}</p>")
        return "".join(parts)
    if card.get("untrained"):
        parts.append("<p style='color:#d55e00'><b>These weights are untrained (random): "
                     "their predictions mean nothing.</b></p>")
    rows = [
        ("Name", card.get("name", "")), ("Version", card.get("version", "")),
        ("Device", device_text), ("Weights sha256", card.get("sha256", "")),
        ("Created", card.get("created", "")), ("Versions", card.get("versions", {})),
        ("Training seed", card.get("seed", "")), ("Git commit", card.get("git_commit", "")),
    ]
    parts.append("<table cellspacing=4>" + "".join(
        f"<tr><td><b>{name}</b></td><td>{_value(value)}</td></tr>" for name, value in rows if value != "") + "</table>")
    thresholds = card.get("thresholds", {})
    parts.append("<h4>Thresholds (a slice is flagged at or above)</h4><table cellspacing=4>" + "".join(
        f"<tr><td>{label}</td><td>{float(thresholds.get(label, float('nan'))):.3f}</td></tr>" for label in LABELS)
        + "</table>")
    for key in CARD_SECTIONS:
        if key in card:
            parts.append(f"<h4>{key.replace('_', ' ').capitalize()}</h4>{_value(card[key])}")
    parts.append(f"<h4>Architecture</h4>{_value(card.get('architecture', {}))}")
    parts.append(f"<h4>Input</h4>{_value(card.get('input_spec', {}))}")
    return "".join(parts)


class ModelInfoDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("model_info_dialog")
        self.setWindowTitle("Classifier model information")
        self.resize(620, 640)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)

    def set_content(self, card: dict | None, device_text: str, problem: str = "") -> None:
        self.browser.setHtml(model_info_html(card, device_text, problem))

    def text(self) -> str:
        return self.browser.toPlainText()
