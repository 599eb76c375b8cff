"""Command line: parses arguments into an options dataclass and hands it to the module that does the work."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

from ich_viewer.options import OPTIONS, from_namespace

COMMANDS = ("view", "inspect", "analyze", "phantom", "measure", "serve", "worklist", "query", "retrieve", "send")
CLOSED_PIPE_EXIT = 141
"""What a shell reports for a tool whose reader closed the pipe (128 + SIGPIPE), as ``cat`` into ``head`` does."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ich-viewer",
        description="Head CT viewer with a research ICH classifier (decision support, not diagnosis).",
    )
    sub = parser.add_subparsers(dest="command")

    view = sub.add_parser("view", help="open the viewer window (default)")
    view.add_argument("path", nargs="?", help="study folder, DICOM file, DICOMDIR or zip")
    view.add_argument("--demo", nargs="?", const="ct-ich", default=None, choices=("ct-ich", "phantom"),
                      help="open a built-in study: ct-ich (default: a real head CT, CT-ICH patient 071, "
                           "CC BY 4.0) or phantom (synthetic)")
    view.add_argument("--device", help="inference device: auto, cpu, cuda, cuda:N, mps")
    view.add_argument("--no-model", action="store_true", help="do not run the classifier")
    view.add_argument("--smoke-test", action="store_true", help="self-check of an install; exits 0 when all works")

    inspect = sub.add_parser("inspect", help="what the loader finds under PATH")
    inspect.add_argument("path")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")

    analyze = sub.add_parser("analyze", help="run the classifier without a window")
    analyze.add_argument("path")
    analyze.add_argument("--json", dest="json_out", metavar="F", help="write per-slice results as JSON")
    analyze.add_argument("--csv", dest="csv_out", metavar="F", help="write per-slice results as CSV")
    analyze.add_argument("--report", metavar="F.pdf", help="write a PDF report")
    analyze.add_argument("--sr", metavar="DIR", help="write a DICOM SR and key images into DIR")
    analyze.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N, mps")
    analyze.add_argument("--model-dir", default=None, help="folder with weights and model card")
    analyze.add_argument("--overwrite", action="store_true", help="replace existing output files")
    analyze.add_argument("--deidentify", action="store_true",
                         help="de-identify every output (DICOM PS3.15 Basic Profile, UIDs retained)")

    phantom = sub.add_parser("phantom", help="write a synthetic head CT study")
    phantom.add_argument("out", help="output folder (created; must be empty or new)")
    phantom.add_argument("--seed", type=int, default=0)
    phantom.add_argument("--subtypes", nargs="*", default=None,
                         help="epidural intraparenchymal intraventricular subarachnoid subdural (none for a normal head)")
    phantom.add_argument("--slices", type=int, default=None, help="number of slices")
    phantom.add_argument("--thickness", type=float, default=None, help="slice thickness in mm")
    phantom.add_argument("--matrix", type=int, default=512, help="rows and columns")
    phantom.add_argument("--syntax", default="explicit",
                         help="transfer syntax: implicit, explicit, big, deflated, rle, jpeg-lossless, jpeg-ls, jpeg2000")
    phantom.add_argument("--tilt", type=float, default=0.0, help="gantry tilt in degrees")
    phantom.add_argument("--messy", action="store_true",
                         help="random file names, nested folders, a localizer, a second series and junk files")
    phantom.add_argument("--dicomdir", action="store_true", help="also write a DICOMDIR")
    phantom.add_argument("--unsigned", action="store_true", help="store unsigned 12-bit values with intercept -1024")
    phantom.add_argument("--drop", type=int, nargs="*", default=None, metavar="I", help="leave out these slice indices")
    add_node_commands(sub)
    measure = sub.add_parser("measure", help="grow a bleed from a seed and print its volume (mL) and ABC/2")
    measure.add_argument("path")
    measure.add_argument("--seed", metavar="SLICE,ROW,COL", action="append",
                         help="seed voxel: slice in display order (foot to head, from 0), row, column in pixels; "
                              "repeat it to add separate pieces of the same bleed (as Shift+click in the window)")
    measure.add_argument("--seed-mm", metavar="X,Y,Z", action="append",
                         help="seed in patient coordinates (mm); repeatable like --seed")
    measure.add_argument("--hu", metavar="LOW,HIGH", help="blood HU range (default 45,90)")
    measure.add_argument("--series", type=int, default=None, metavar="N", help="image series index (default 0)")
    measure.add_argument("--json", dest="json_out", metavar="F", help="also write the result as JSON to F")
    measure.add_argument("--overwrite", action="store_true", help="replace an existing JSON file")
    return parser


def add_node_commands(sub: argparse._SubParsersAction) -> None:
    """``serve``, ``worklist``, ``query``, ``retrieve``, ``send``: the DICOM node (issue 12)."""
    serve = sub.add_parser("serve", help="run the DICOM node: receive, analyse, keep the worklist")
    serve.add_argument("--port", type=int, default=11112)
    serve.add_argument("--ae-title", default="ICHVIEWER")
    serve.add_argument("--allow", nargs="*", default=None, metavar="AE@HOST",
                       help="peers allowed to send (AE@HOST, AE, *@HOST); default: any AE from this machine only")
    serve.add_argument("--data", metavar="DIR", help="data folder (default: the per-user one)")
    serve.add_argument("--bind", default="", help="address to listen on (default: all)")
    serve.add_argument("--quiet", type=float, default=5.0, help="seconds without instances before a study is analysed")
    serve.add_argument("--refuse-non-image", action="store_true", help="refuse SR, KOS and other non-image objects")
    serve.add_argument("--send-to", metavar="AE@HOST:PORT", help="send SR and key images here after each analysis")
    serve.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N, mps")
    serve.add_argument("--model-dir", default=None)

    worklist = sub.add_parser("worklist", help="print the node's worklist")
    worklist.add_argument("--json", action="store_true")
    worklist.add_argument("--data", metavar="DIR")

    query = sub.add_parser("query", help="C-FIND studies on a PACS")
    query.add_argument("peer", metavar="AE@HOST:PORT")
    query.add_argument("--patient-name")
    query.add_argument("--patient-id")
    query.add_argument("--date", help="YYYYMMDD or YYYYMMDD-YYYYMMDD")
    query.add_argument("--description")
    query.add_argument("--modality", default="CT")
    query.add_argument("--json", action="store_true")
    query.add_argument("--ae-title", default="ICHVIEWER", help="our (calling) AE title")

    retrieve = sub.add_parser("retrieve", help="C-GET studies from a PACS into the node's store and analyse them")
    retrieve.add_argument("peer", metavar="AE@HOST:PORT")
    retrieve.add_argument("study_uid", nargs="+")
    retrieve.add_argument("--data", metavar="DIR")
    retrieve.add_argument("--ae-title", default="ICHVIEWER")
    retrieve.add_argument("--no-analysis", action="store_true")
    retrieve.add_argument("--device", default=None)
    retrieve.add_argument("--model-dir", default=None)
    retrieve.add_argument("--move-to", metavar="AE",
                          help="C-MOVE to this AE title (e.g. a running `serve` the PACS knows) instead of C-GET")

    send = sub.add_parser("send", help="C-STORE files (e.g. the SR from analyze --sr) to a PACS")
    send.add_argument("peer", metavar="AE@HOST:PORT")
    send.add_argument("files", nargs="+")
    send.add_argument("--ae-title", default="ICHVIEWER")


LIST_OPTIONS = ("--seed", "--seed-mm", "--hu")
"""Options whose value is a comma-separated list that may start with a minus sign: patient
coordinates (``--seed-mm -12.5,40,30``) and HU bounds. argparse reads such a value as an option."""


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``--seed-mm -12.5,40,30`` as ``--seed-mm=-12.5,40,30``, which argparse reads as a value."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in LIST_OPTIONS and arg.startswith("-") and "," in arg:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "view")
    args = build_parser().parse_args(_attach_negative_values(argv))
    options = from_namespace(OPTIONS[args.command], args)
    try:
        code = _run(args.command, options)
        if sys.stdout is not None:  # None in a windowed launch
            sys.stdout.flush()  # a reader that has gone shows here, not as a traceback in the interpreter's exit
    except BrokenPipeError:  # `ich-viewer inspect STUDY --json | head`: the reader stopped, nothing went wrong here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush has nowhere to fail
        return CLOSED_PIPE_EXIT
    return code


def _run(command: str, options: Any) -> int:
    if command == "view":
        if options.smoke_test:  # the install self-check drives the window itself
            from ich_viewer.ui.smoke import run_smoke_test

            return run_smoke_test(options)
        from ich_viewer.ui.app import run_viewer

        return run_viewer(options)
    if command == "inspect":
        from ich_viewer.dicom.inspect import run_inspect

        return run_inspect(options)
    if command == "analyze":
        from ich_viewer.commands.analyze import run_analyze

        return run_analyze(options)
    if command == "phantom":
        from ich_viewer.phantom.command import run_phantom

        return run_phantom(options)
    if command in ("serve", "worklist", "query", "retrieve", "send"):
        from ich_viewer.commands import node

        runners: dict[str, Callable[[Any], int]] = {
            "serve": node.run_serve, "worklist": node.run_worklist, "query": node.run_query,
            "retrieve": node.run_retrieve, "send": node.run_send}
        runner = runners[command]
        return int(runner(options))
    if command == "measure":
        from ich_viewer.commands.measure import run_measure

        return run_measure(options)
    raise AssertionError(command)


if __name__ == "__main__":
    sys.exit(main())
