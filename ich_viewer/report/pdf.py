"""The PDF report: what a referring clinician or an archive receives.

Layout with reportlab's platypus: a study block, per series the model, a summary, the
table of flagged slices and key images; the research-use statement and "page x of y"
on every page. Paper is A4, or Letter where that is the local standard.
"""
from __future__ import annotations

import io
import locale
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape

from PIL import Image
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import (
    Image as PdfImage, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle,
)

from ich_viewer import LABELS
from ich_viewer.dicom.model import Series
from ich_viewer.imaging.palette import LABEL_COLOURS
from ich_viewer.measure.records import Measurement
from ich_viewer.measure.thickness import thick_slice_note
from ich_viewer.report.notes import safe_text
from ich_viewer.report.atomic import atomic_write
from ich_viewer.report.data import LABEL_ABBREVIATIONS, ReportContent, SeriesSection, summary_lines
from ich_viewer.report.key_images import KEY_WINDOWS
from ich_viewer.report.measure_export import regrow, volume_picture
from ich_viewer.report.rows import SliceRow

log = logging.getLogger(__name__)

LETTER_TERRITORIES = frozenset({"US", "CA", "MX", "PH", "CL", "CO", "VE", "PR", "GT", "CR", "PA", "DO", "SV", "NI", "BZ"})
"""Where Letter is the usual paper (everywhere else uses A4)."""
LETTER_COUNTRY_NAMES = ("united states", "canada", "mexico", "philippines", "chile", "colombia")

MARGIN = 16 * mm
DECISION_TEXT = {"accepted": "Accepted", "rejected": "Rejected", "undecided": "Undecided", "": ""}


def paper_for_locale(name: str | None = None) -> str:
    """"Letter" or "A4" from a locale name like en_US.UTF-8 (default: the user's LC_PAPER/LANG)."""
    if name is None:
        name = next((os.environ[v] for v in ("LC_ALL", "LC_PAPER", "LANG") if os.environ.get(v)), "")
        if not name:
            try:
                name = locale.getlocale()[0] or ""
            except ValueError:
                name = ""
    lowered = name.lower()
    territory = name.split(".")[0].split("@")[0].replace("-", "_").split("_")[-1].upper() if "_" in name or "-" in name else ""
    if territory in LETTER_TERRITORIES or any(country in lowered for country in LETTER_COUNTRY_NAMES):
        return "Letter"
    return "A4"


# --- fonts -------------------------------------------------------------------------------

_FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("C:/Windows/Fonts/arial.ttf", "C:/Windows/Fonts/arialbd.ttf"),
    ("/Library/Fonts/Arial Unicode.ttf", "/Library/Fonts/Arial Unicode.ttf"),
)


def _fonts() -> tuple[str, str]:
    """A Unicode TrueType font when the system has one (names are not all Latin), else Vera."""
    if "ReportSans" in pdfmetrics.getRegisteredFontNames():
        return "ReportSans", "ReportSans-Bold"
    import reportlab

    vera = Path(reportlab.__file__).parent / "fonts"
    for regular, bold in (*_FONT_CANDIDATES, (str(vera / "Vera.ttf"), str(vera / "VeraBd.ttf"))):
        if Path(regular).is_file() and Path(bold).is_file():
            try:
                pdfmetrics.registerFont(TTFont("ReportSans", regular))
                pdfmetrics.registerFont(TTFont("ReportSans-Bold", bold))
                return "ReportSans", "ReportSans-Bold"
            except Exception:  # a broken system font: try the next one
                log.info("font %s not usable for the report; trying the next", regular, exc_info=True)
                continue
    return "Helvetica", "Helvetica-Bold"


class _Styles:
    def __init__(self) -> None:
        regular, bold = _fonts()
        self.regular, self.bold = regular, bold
        self.title = ParagraphStyle("title", fontName=bold, fontSize=15, leading=19, spaceAfter=2 * mm)
        self.h2 = ParagraphStyle("h2", fontName=bold, fontSize=11.5, leading=15, spaceBefore=4 * mm, spaceAfter=1.5 * mm,
                                 keepWithNext=1)
        self.h3 = ParagraphStyle("h3", fontName=bold, fontSize=9.5, leading=12, spaceBefore=3 * mm, spaceAfter=1 * mm,
                                 keepWithNext=1)
        self.body = ParagraphStyle("body", fontName=regular, fontSize=9, leading=11.5)
        self.strong = ParagraphStyle("strong", parent=self.body, fontName=bold)
        self.small = ParagraphStyle("small", fontName=regular, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#333333"))
        self.cell = ParagraphStyle("cell", fontName=regular, fontSize=8, leading=9.5)
        self.notice = ParagraphStyle("notice", fontName=bold, fontSize=9, leading=11.5, textColor=colors.HexColor("#7a1f00"))


# --- page decoration -------------------------------------------------------------------


def _numbered_canvas(header_left: str, header_right: str, notice: str, fonts: tuple[str, str]):
    """A canvas class that writes the running header, the notice and "page x of y" on each page."""
    regular, bold = fonts

    class NumberedCanvas(pdf_canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            width, height = self._pagesize
            self.saveState()
            self.setFont(regular, 7.5)
            self.setFillColor(colors.HexColor("#444444"))
            self.drawString(MARGIN, height - 10 * mm, header_left)
            self.drawRightString(width - MARGIN, height - 10 * mm, header_right)
            self.setStrokeColor(colors.HexColor("#999999"))
            self.setLineWidth(0.4)
            self.line(MARGIN, height - 11.5 * mm, width - MARGIN, height - 11.5 * mm)
            self.line(MARGIN, 14 * mm, width - MARGIN, 14 * mm)
            self.setFont(bold, 7.5)
            self.setFillColor(colors.HexColor("#7a1f00"))
            self.drawString(MARGIN, 10 * mm, notice)
            self.setFont(regular, 7.5)
            self.setFillColor(colors.HexColor("#444444"))
            self.drawRightString(width - MARGIN, 6 * mm, f"Page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


# --- content -----------------------------------------------------------------------------


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(safe_text(text)), style)


def _format_name(raw: str) -> str:
    parts = [part for part in str(raw).split("^") if part]
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return f"{parts[0].upper()}, {' '.join(parts[1:])}"


def _format_da(raw: str) -> str:
    raw = str(raw or "")
    return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}" if len(raw) == 8 and raw.isdigit() else raw


def _format_time(iso: str) -> str:
    """ISO 8601 UTC -> '2026-11-22 10:00 UTC' (the report says the zone rather than guessing one)."""
    if not iso:
        return "-"
    try:
        stamp = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    zone = "UTC" if stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0 else stamp.strftime("%z")
    return f"{stamp:%Y-%m-%d %H:%M} {zone}".strip()


def study_fields(content: ReportContent) -> list[tuple[str, str]]:
    """Label/value pairs of the study block, in reading order."""
    study = content.study
    removed = "(removed: de-identified)"
    if content.deidentified:
        name, pid, date, accession, institution = removed, removed, removed, removed, removed
    else:
        name = _format_name(study["patient_name"]) or "-"
        pid = study["patient_id"] or "-"
        date = _format_da(study["study_date"]) or "-"
        accession = study["accession_number"] or "-"
        institution = study["institution"] or "-"
    sex_age = " / ".join(v for v in (study["patient_sex"], study["patient_age"]) if v) or "-"
    series = "; ".join(
        f"{'Se ' + str(s.series.series_number) + ': ' if s.series.series_number is not None else ''}"
        f"{removed if content.deidentified else (s.series.description or '(no description)')} "
        f"({len(s.series.slices)} slices)"
        for s in content.sections
    ) or "-"
    study_text = removed if content.deidentified else (study["study_description"] or "-")
    return [
        ("Patient", name), ("Patient ID", pid), ("Sex / age", sex_age), ("Study date", date),
        ("Accession", accession), ("Institution", institution),
        ("Study", study_text), ("Series", series),
    ]


def _key_value_table(pairs: Sequence[tuple[str, str]], styles: _Styles, width: float, columns: int = 2) -> Table:
    cells = [[_p(label, styles.small), _p(value, styles.body)] for label, value in pairs]
    per_row = []
    for start in range(0, len(cells), columns):
        row = []
        for pair in cells[start:start + columns]:
            row.extend(pair)
        row.extend([""] * (2 * columns - len(row)))
        per_row.append(row)
    label_w = 24 * mm
    value_w = width / columns - label_w
    table = Table(per_row, colWidths=[label_w, value_w] * columns, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.2),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
    ]))
    return table


def _model_pairs(section: SeriesSection) -> list[tuple[str, str]]:
    model = section.model
    thresholds = "  ".join(
        f"{LABEL_ABBREVIATIONS[label]} {model.thresholds[label]:.2f}" for label in LABELS if label in model.thresholds
    )
    prediction = section.prediction
    return [
        ("Model", f"{model.name} {model.version}".strip() + (f" ({model.architecture})" if model.architecture else "")),
        ("Device", model.device or "-"),
        ("Analysed", _format_time(prediction.started_at)),
        ("Thresholds", thresholds or "-"),
        ("Weights SHA-256", model.sha256 or "-"),
    ] + ([("Input", prediction.input_note)] if prediction.input_note else [])


def _light(rgb: tuple[int, int, int], amount: float = 0.35) -> colors.Color:
    r, g, b = (c / 255.0 for c in rgb)
    return colors.Color(1 - amount * (1 - r), 1 - amount * (1 - g), 1 - amount * (1 - b))


def _flagged_table(section: SeriesSection, styles: _Styles, width: float) -> Table:
    n = len(section.series.slices)
    head = ["Im", "Inst", "Loc mm", *(LABEL_ABBREVIATIONS[label] for label in LABELS), "Decision", "Note"]
    data: list[list] = [head]
    commands = [
        ("FONT", (0, 0), (-1, -1), styles.regular, 8),
        ("FONT", (0, 0), (-1, 0), styles.bold, 7.5),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (0, 1), (8, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f3f3")]),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    for k, label in enumerate(LABELS):
        commands.append(("LINEBELOW", (3 + k, 0), (3 + k, 0), 3, colors.Color(*(c / 255 for c in LABEL_COLOURS[label]))))
    for r, row in enumerate(section.flagged_rows, start=1):
        cells: list = [
            f"{row.index + 1}/{n}",
            "" if row.instance_number is None else str(row.instance_number),
            "" if row.location_mm is None else f"{row.location_mm:.1f}",
        ]
        for k, label in enumerate(LABELS):
            cells.append(f"{row.probabilities[label]:.2f}")
            if label in row.flagged:
                commands.append(("BACKGROUND", (3 + k, r), (3 + k, r), _light(LABEL_COLOURS[label])))
                commands.append(("FONT", (3 + k, r), (3 + k, r), styles.bold, 8))
        cells.append(DECISION_TEXT.get(row.decision, row.decision))
        cells.append(_p(row.note, styles.cell))
        if row.decision == "rejected":
            commands.append(("TEXTCOLOR", (0, r), (-2, r), colors.HexColor("#777777")))
        data.append(cells)
    fixed = [15 * mm, 10 * mm, 14 * mm] + [11 * mm] * len(LABELS) + [18 * mm]
    table = Table(data, colWidths=[*fixed, max(20 * mm, width - sum(fixed))], repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(commands))
    return table


def _legend(styles: _Styles) -> Paragraph:
    swatches = "  ".join(
        f'<font color="#{r:02x}{g:02x}{b:02x}">\u25a0</font> {LABEL_ABBREVIATIONS[label]} '
        f'{"any hemorrhage" if label == "any" else label}'
        for label, (r, g, b) in LABEL_COLOURS.items()
    )
    return Paragraph(
        swatches + "<br/>Im = image number as shown in the viewer (1..N, foot to head); Inst = DICOM Instance "
        "Number; Loc = position along the slice normal. Probabilities at or above the model's threshold are bold "
        "on the subtype colour. Rejected rows are greyed.",
        styles.small,
    )


def _key_image_block(section: SeriesSection, key, content: ReportContent, styles: _Styles, width: float) -> list:
    row: SliceRow = key.row
    n_panels = len(KEY_WINDOWS) + (1 if content.overlay is not None else 0)
    gap = 3 * mm
    panel = min(58 * mm, (width - gap * (n_panels - 1)) / n_panels)
    pictures, captions = [], []
    for window in KEY_WINDOWS:
        pixels = content.key_picture(section.series, row.index, window, row.flagged)
        pictures.append(_pdf_image(pixels, panel))
        captions.append(_p(f"{window.name} W {window.width:g} / L {window.center:g}", styles.small))
    if content.overlay is not None:
        pixels = content.key_picture(section.series, row.index, KEY_WINDOWS[0], row.flagged, attention=True)
        pictures.append(_pdf_image(pixels, panel))
        captions.append(_p("Brain + where the network looked (yellow)", styles.small))
    flagged = ", ".join(f"{LABEL_ABBREVIATIONS[label]} {row.probabilities[label]:.2f}" for label in row.flagged)
    location = "" if row.location_mm is None else f" · {row.location_mm:.1f} mm"
    instance = "" if row.instance_number is None else f" · Inst {row.instance_number}"
    title = f"Im {row.index + 1}/{len(section.series.slices)}{instance}{location} — {flagged} — {DECISION_TEXT[row.decision]}"
    parts = [_p(title, styles.h3)]
    if row.note:
        parts.append(_p(f"Note: {row.note}", styles.body))
    grid = Table([pictures, captions], colWidths=[panel + gap] * n_panels, hAlign="LEFT")
    grid.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 0.5),
                              ("BOTTOMPADDING", (0, 0), (-1, -1), 0.5), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    parts.append(grid)
    return parts


def _pdf_image(pixels, width_pt: float) -> PdfImage:
    """JPEG at high quality: a fraction of the size of lossless, no visible change at this scale."""
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    buffer.seek(0)
    height_pt = width_pt * image.height / image.width
    return PdfImage(buffer, width=width_pt, height=height_pt)


def _story(content: ReportContent, styles: _Styles, width: float) -> list:
    story: list = [
        _p("Head CT — intracranial hemorrhage flags", styles.title),
        _notice_box(content, styles, width),
        Spacer(1, 3 * mm),
        _p("Study", styles.h2),
        _key_value_table(study_fields(content), styles, width),
    ]
    if content.warnings:
        # before the results: a reader must know what was not looked at before reading "no flags"
        story.append(_p(f"Warnings, series not analysed and files left out ({len(content.warnings)})", styles.h3))
        story.extend(_p(line, styles.small) for line in content.warnings)
    if content.source_notes:  # the demo's CC BY 4.0 credit and its training-data note
        story.append(_p("Source of the images", styles.h3))
        story.extend(_p(line, styles.small) for line in content.source_notes[:-1])
        story.append(_p(content.source_notes[-1], styles.notice))
    for section in content.sections:
        series = section.series
        number = f"Series {series.series_number}: " if series.series_number is not None else "Series: "
        title = "(description removed: de-identified)" if content.deidentified else series.description
        story.append(_p(f"{number}{title or '(no description)'}", styles.h2))
        lines = summary_lines(section)
        story.append(_p(lines[0], styles.strong))
        story.extend(_p(line, styles.body) for line in lines[1:])
        story.append(Spacer(1, 2 * mm))
        story.append(_key_value_table(_model_pairs(section), styles, width, columns=1))
        if section.flagged_rows:
            story.append(_p(f"Flagged slices ({len(section.flagged_rows)})", styles.h3))
            story.append(_flagged_table(section, styles, width))
            story.append(Spacer(1, 1.5 * mm))
            story.append(_legend(styles))
        if section.key_images:
            heading = [
                _p("Key images (flagged slices not rejected by the reader)", styles.h2),
                _p("Frame colour = flagged subtype(s), outermost first. Image orientation as stored "
                   "(letters mark the patient's side).", styles.small),
            ]
            for number, key in enumerate(section.key_images):
                # the heading travels with the first picture so it never ends a page alone
                story.append(KeepTogether((heading if number == 0 else [])
                                          + _key_image_block(section, key, content, styles, width)))
            if section.key_images_left_out:
                story.append(_p(f"{section.key_images_left_out} more flagged slices are listed in the table "
                                "but not shown.", styles.body))

    story.extend(measurement_story(content, styles, width))
    story.append(Spacer(1, 4 * mm))
    story.append(_p(f"Generated {_format_time(content.generated_at)} by {content.software}.", styles.small))
    return story


def _notice_box(content: ReportContent, styles: _Styles, width: float) -> Table:
    text = content.notice + (" This copy is de-identified." if content.deidentified else "")
    box = Table([[_p(text, styles.notice)]], colWidths=[width])
    box.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.8, colors.HexColor("#7a1f00")),
                             ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fff4ec")),
                             ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]))
    return box


def render_pdf(content: ReportContent, paper: str | None = None) -> bytes:
    """The whole PDF as bytes (the writer below puts them on disk atomically)."""
    rl_config.useA85 = 0  # binary image streams: smaller files, no slow pure-Python ASCII85 pass
    styles = _Styles()
    pagesize = LETTER if (paper or paper_for_locale()) == "Letter" else A4
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=pagesize, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=16 * mm, bottomMargin=19 * mm,
        title="ICH Viewer flagged-slice report", author=content.software, subject="Research decision support",
        creator=content.software,
    )
    width = pagesize[0] - 2 * MARGIN
    if content.deidentified:
        header_right = "De-identified"
    else:
        name = _format_name(content.study["patient_name"])
        pid = content.study["patient_id"]
        header_right = " · ".join(v for v in (name, f"ID {pid}" if pid else "", _format_da(content.study["study_date"])) if v)
    canvas_cls = _numbered_canvas("ICH Viewer — flagged-slice report", header_right, content.notice,
                                  (styles.regular, styles.bold))
    doc.build(_story(content, styles, width), canvasmaker=canvas_cls)
    return buffer.getvalue()


def write_pdf(path: str | os.PathLike, content: ReportContent, overwrite: bool = False, paper: str | None = None) -> Path:
    data = render_pdf(content, paper)
    return atomic_write(path, lambda handle: handle.write(data), overwrite=overwrite)


# --- the reader's measurements -----------------------------------------------------------
def measurement_story(content: Any, styles: Any, width: float) -> list:
    """The PDF's "Measurements" section: a table, and the outline of every bleed volume."""
    records: list[Measurement] = list(getattr(content, "measurements", []) or [])
    if not records:
        return []
    story: list = [_p(f"Measurements ({len(records)})", styles.h2),
                   _p("Drawn or grown by the reader in ICH Viewer; volumes are planimetric (voxels x voxel volume), "
                      "ABC/2 beside them for comparison (an ellipsoid formula for intraparenchymal hematomas: it "
                      "over-estimates subdural and epidural crescents several-fold). Confirm every outline on the "
                      "images.", styles.small)]
    data = [[_p(h, styles.cell) for h in ("Im", "Measurement", "Value")]]
    for m in records:
        data.append([_p(str(m.slice_index + 1), styles.cell), _p(m.label, styles.cell), _p(m.text, styles.cell)])
    table = Table(data, colWidths=[12 * mm, 32 * mm, width - 44 * mm], repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(table)
    series_by_uid = {s.series.series_uid: s.series for s in content.sections}
    for m in records:
        series = series_by_uid.get(m.series_uid)
        if m.kind != "volume" or series is None:
            continue
        mask = content.volume_masks.get(m.id) if hasattr(content, "volume_masks") else None
        if mask is None:
            mask = regrow(series, m)
        if mask is None or not mask.any():
            story.append(_p(f"{m.label}: the outline could not be regrown for the picture.", styles.small))
            continue
        picture = volume_picture(series, m, mask)
        story.append(KeepTogether([_p(f"{m.label} — {m.text}", styles.h3), _pdf_image(picture, min(110 * mm, width)),
                                   _p(volume_caption(series), styles.small)]))
    return story


def volume_caption(series: Series) -> str:
    """Under a volume's picture; on thick slices it says the volume is less exact there (``measure.thickness``)."""
    thick = thick_slice_note(series)
    return "Red: outline on the slice with the largest area; blue: ABC/2's A diameter." + (
        f" The volume was {thick}." if thick else "")
