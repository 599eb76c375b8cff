"""Each sub-command's options as a typed dataclass, built from the parsed command line.

The commands read these, never an ``argparse.Namespace``: a misspelt or missing option
is then a type error (mypy) or a ``TypeError`` at the call, not a silent ``getattr``
default. ``tests/test_options.py`` checks that every parser option has a field here.
Qt-free and import-free, so every layer may take its options from here.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

O = TypeVar("O")


@dataclass(frozen=True)
class ViewOptions:
    """``ich-viewer [view] [PATH] [--demo] [--device D] [--no-model] [--smoke-test]``."""

    path: str | None = None
    demo: str | None = None
    """"ct-ich" (the real demo study) or "phantom"; None opens PATH or nothing."""
    device: str | None = None
    """auto, cpu, cuda, cuda:N, mps; None: the saved preference, else automatic."""
    no_model: bool = False
    smoke_test: bool = False


@dataclass(frozen=True)
class InspectOptions:
    """``ich-viewer inspect PATH [--json]``."""

    path: str
    json: bool = False


@dataclass(frozen=True)
class AnalyzeOptions:
    """``ich-viewer analyze PATH [--json F] [--csv F] [--report F.pdf] [--sr DIR] ...``."""

    path: str
    json_out: str | None = None
    csv_out: str | None = None
    report: str | None = None
    """PDF report path."""
    sr: str | None = None
    """Folder for the DICOM SR and key images."""
    device: str | None = None
    model_dir: str | None = None
    overwrite: bool = False
    deidentify: bool = False
    """Leave patient identity out of the PDF, CSV and JSON (the flag is added by issue 15)."""


@dataclass(frozen=True)
class PhantomOptions:
    """``ich-viewer phantom OUT [--seed N] [--subtypes ...] ...``."""

    out: str
    seed: int = 0
    subtypes: list[str] | None = None
    slices: int | None = None
    thickness: float | None = None
    matrix: int = 512
    syntax: str = "explicit"
    tilt: float = 0.0
    messy: bool = False
    dicomdir: bool = False
    unsigned: bool = False
    drop: list[int] | None = None


@dataclass(frozen=True)
class ServeOptions:
    """``ich-viewer serve [--port P] [--ae-title AE] [--allow AE@HOST ...] [--data DIR] ...``."""

    port: int = 11112
    ae_title: str = "ICHVIEWER"
    allow: list[str] | None = None
    """``AE@HOST``, ``AE`` (any host) or ``*@HOST``; none: any AE from this machine only."""
    data: str | None = None
    """The program's data folder (the node keeps ``node/`` in it); None: the per-user one."""
    bind: str = ""
    quiet: float = 5.0
    """Seconds without a new instance after which a study counts as complete."""
    refuse_non_image: bool = False
    send_to: str | None = None
    """``AE@HOST:PORT`` that receives the SR and key images after each analysis."""
    device: str | None = None
    model_dir: str | None = None


@dataclass(frozen=True)
class WorklistOptions:
    """``ich-viewer worklist [--json] [--data DIR]``."""

    json: bool = False
    data: str | None = None


@dataclass(frozen=True)
class QueryOptions:
    """``ich-viewer query AE@HOST:PORT [--patient-name N] [--patient-id I] [--date A-B] ...``."""

    peer: str
    patient_name: str | None = None
    patient_id: str | None = None
    date: str | None = None
    description: str | None = None
    modality: str = "CT"
    json: bool = False
    ae_title: str = "ICHVIEWER"


@dataclass(frozen=True)
class RetrieveOptions:
    """``ich-viewer retrieve AE@HOST:PORT STUDY_UID ... [--data DIR] [--no-analysis]``."""

    peer: str
    study_uid: list[str]
    data: str | None = None
    ae_title: str = "ICHVIEWER"
    no_analysis: bool = False
    device: str | None = None
    model_dir: str | None = None
    move_to: str | None = None
    """C-MOVE to this AE title (a running node the PACS knows) instead of C-GET."""


@dataclass(frozen=True)
class SendOptions:
    """``ich-viewer send AE@HOST:PORT FILE_OR_DIR ...``."""

    peer: str
    files: list[str]
    ae_title: str = "ICHVIEWER"


@dataclass(frozen=True)
class MeasureOptions:
    """``ich-viewer measure PATH --seed SLICE,ROW,COL | --seed-mm X,Y,Z [--hu LOW,HIGH] [--json F]``."""

    path: str
    seed: str | list[str] | None = None
    """"slice,row,col": slice in display order (foot to head, from 0), row and column in pixels;
    a list: one click per piece of the bleed (``--seed`` repeated), the first is the seed."""
    seed_mm: str | list[str] | None = None
    """"x,y,z" in patient coordinates (mm); a list as for ``seed``."""
    hu: str | None = None
    """"low,high" blood range in HU; None: the default (45-90)."""
    series: int | None = None
    """Index of the image series (``inspect`` order, from 0); None: the first one."""
    json_out: str | None = None
    overwrite: bool = False


OPTIONS: dict[str, type[Any]] = {
    "view": ViewOptions, "inspect": InspectOptions, "analyze": AnalyzeOptions, "phantom": PhantomOptions,
    "serve": ServeOptions, "worklist": WorklistOptions, "query": QueryOptions, "retrieve": RetrieveOptions,
    "send": SendOptions,
    "measure": MeasureOptions,
}
"""Sub-command name -> its options class."""


def from_namespace(cls: type[O], namespace: argparse.Namespace) -> O:
    """``cls`` filled from the parsed arguments; a field the parser lacks keeps its default."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in vars(namespace).items() if k in names})
