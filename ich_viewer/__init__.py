"""ICH Viewer: head CT reading with a research hemorrhage classifier (decision support, not diagnosis)."""

__version__ = "0.1.0"

LABELS: tuple[str, ...] = (
    "epidural",
    "intraparenchymal",
    "intraventricular",
    "subarachnoid",
    "subdural",
    "any",
)
"""Label order used everywhere: model outputs, model card, reports."""

RESEARCH_NOTICE = (
    "Research and decision support only - not a diagnosis. "
    "Every finding must be confirmed by a qualified reader."
)
