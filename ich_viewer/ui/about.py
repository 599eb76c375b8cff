"""Help > About: version, the research-use statement, where the model card is, and the
demo study's credit (CC BY 4.0 asks for it wherever the images are shown)."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QScrollArea, QVBoxLayout, QWidget

from ich_viewer import RESEARCH_NOTICE, __version__, demo, paths


def model_card_path() -> str:
    """The human-readable model card of the bundled classifier (where a reader finds its limits)."""
    return str(paths.models_dir() / "MODEL_CARD.md")


def about_html() -> str:
    """The about box's text; built from ``ich_viewer.demo`` so it says what README and report say."""
    e = html.escape
    refs = "".join(f"<li>{e(ref)}</li>" for ref in demo.CREDIT_REFERENCES)
    parts = [
        f"<h3>ICH Viewer {e(__version__)}</h3>",
        "<p>Head CT viewer with a research classifier for intracranial hemorrhage.</p>",
        f"<p><b>{e(RESEARCH_NOTICE)}</b></p>",
        f"<p>What the classifier can and cannot do: Help &gt; Classifier model information, and the "
        f"model card <code>{e(model_card_path())}</code>.</p>",
        "<h4>Demo study</h4>",
        f"<p>Patient {e(demo.CT_ICH_PATIENT)} of {e(demo.DATASET_NAME)}, used under the "
        f"{e(demo.LICENCE)} (<a href='{demo.LICENCE_URL}'>{e(demo.LICENCE_URL)}</a>). Credit:</p>",
        f"<ul>{refs}</ul>",
        f"<p>{e(demo.CHANGES_NOTE)}</p>",
        f"<p><b>{e(demo.TRAINING_NOTE)}</b></p>",
        "<p>The synthetic phantom (File &gt; Open phantom study) is made by this program and shows no patient.</p>",
    ]
    return "".join(parts)


class AboutDialog(QDialog):
    """Non-modal, scrollable: the credit is long and must not push the buttons off a small screen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("about_dialog")
        self.setWindowTitle("About ICH Viewer")
        self.label = QLabel(about_html())
        self.label.setObjectName("about_text")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setOpenExternalLinks(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.label.setMargin(8)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        self.resize(620, 560)

    def plain_text(self) -> str:
        """The text as a reader sees it (tests look for the credit here)."""
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.label.text())
        return doc.toPlainText()

