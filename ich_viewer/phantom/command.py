"""`ich-viewer phantom OUT ...`: write a synthetic study with its ground truth."""
from __future__ import annotations

import sys

from ich_viewer.options import PhantomOptions
from ich_viewer.phantom.syntaxes import SYNTAXES, encoder_available
from ich_viewer.phantom.volume import SUBTYPES


def run_phantom(args: PhantomOptions) -> int:
    """``ich-viewer phantom OUT``: write a synthetic study and its ground truth.

    Parameters
    ----------
    args
        ``PhantomOptions`` (see ``write_phantom_study`` for what each one does).

    Returns
    -------
    int
        0 written; 2 refused (unknown subtype or syntax, no encoder, an output folder
        that is not empty), with the reason on stderr.

    Example
    -------
    >>> run_phantom(PhantomOptions(out="/tmp/ph", subtypes=["subdural"], slices=24))  # doctest: +SKIP
    0
    """
    from ich_viewer.phantom.study import write_phantom_study

    subtypes = args.subtypes
    if subtypes is not None:
        if subtypes in (["none"], ["normal"]):
            subtypes = []
        unknown = [s for s in subtypes if s not in SUBTYPES]
        if unknown:
            print(f"unknown subtype(s): {', '.join(unknown)}; choose from {', '.join(SUBTYPES)} or none", file=sys.stderr)
            return 2
    if args.syntax not in SYNTAXES:
        print(f"unknown syntax {args.syntax!r}; choose from {', '.join(SYNTAXES)}", file=sys.stderr)
        return 2
    if not encoder_available(args.syntax):
        print(f"no encoder for {args.syntax} is installed here", file=sys.stderr)
        return 2
    try:
        folder = write_phantom_study(
            args.out, seed=args.seed, subtypes=subtypes, n_slices=args.slices, thickness_mm=args.thickness,
            matrix=args.matrix, syntax=args.syntax, tilt_deg=args.tilt, messy=args.messy, dicomdir=args.dicomdir,
            signed=not args.unsigned, drop_slices=args.drop or (),
        )
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"phantom: {exc}", file=sys.stderr)
        return 2
    print(f"SYNTHETIC PHANTOM written: {folder} (ground truth in {folder.parent / 'ground_truth'})")
    return 0
