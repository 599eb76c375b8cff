"""Each command's options are a dataclass that matches its parser exactly."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from ich_viewer.cli import build_parser
from ich_viewer.options import OPTIONS, AnalyzeOptions, ViewOptions, from_namespace


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_every_parser_option_has_a_field(command):
    """A flag the parser defines but the options lack would be silently dropped."""
    parser = _subparsers(build_parser())[command]
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    fields = {f.name for f in dataclasses.fields(OPTIONS[command])}
    assert dests <= fields, f"{command}: parser options without a field: {sorted(dests - fields)}"


def test_parsed_arguments_become_typed_options():
    args = build_parser().parse_args(["analyze", "/data/ct", "--json", "r.json", "--device", "cpu", "--overwrite"])
    options = from_namespace(AnalyzeOptions, args)
    assert options == AnalyzeOptions(path="/data/ct", json_out="r.json", device="cpu", overwrite=True)
    assert options.deidentify is False
    assert from_namespace(AnalyzeOptions, build_parser().parse_args(["analyze", "x", "--deidentify"])).deidentify
    assert from_namespace(ViewOptions, build_parser().parse_args(["view", "--demo"])) == ViewOptions(demo="ct-ich")


def test_deidentify_reaches_the_export(monkeypatch, tmp_path):
    """The flag once read with getattr() and never defined: now a field that reaches export_report."""
    from ich_viewer.report import export

    captured: dict = {}
    monkeypatch.setattr(export, "export_report",
                        lambda study, results, **kwargs: captured.update(kwargs) or export.ExportResult())
    options = AnalyzeOptions(path="x", sr=str(tmp_path / "sr"), deidentify=True)
    assert export.export_from_analyze(options, study=None, results=[]) == []
    assert captured["deidentify"] is True and captured["dicom_dir"] == str(tmp_path / "sr")
