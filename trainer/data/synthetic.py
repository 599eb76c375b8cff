"""Synthetic studies from ``ich_viewer.phantom``: volume and rare subtypes, never evidence.

Phantoms are generated one at a time from their seeds (only the preprocessed cache is
kept), with a subtype plan that cycles through normal heads, every single subtype and
pairs, so the rare real subtypes (intraventricular, subarachnoid, subdural) get as many
synthetic examples as the common ones.
"""
from __future__ import annotations

import hashlib
from itertools import combinations
from pathlib import Path
from typing import Iterator

import numpy as np

from ich_viewer import LABELS
from trainer.data.volume import Volume

SUBTYPES = LABELS[:-1]
PLAN: tuple[tuple[str, ...], ...] = (
    (),
    *((name,) for name in SUBTYPES),
    (),
    *combinations(SUBTYPES, 2),
)
"""Subtypes of phantom ``i`` are ``PLAN[i % len(PLAN)]``: 2 normal, 5 single, 10 pairs."""


def phantom_subtypes(index: int) -> list[str]:
    return list(PLAN[index % len(PLAN)])


def phantom_code_digest() -> str:
    """Changes when the phantom generator's code changes (so its cache is rebuilt)."""
    import ich_viewer.phantom as package

    digest = hashlib.sha256()
    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def synthetic_volumes(count: int, seed: int = 1000, matrix: int = 128,
                      thickness_mm: float | None = 5.0) -> Iterator[Volume]:
    """``count`` phantom volumes with seeds ``seed .. seed + count - 1``, made one by one."""
    from ich_viewer.phantom import generate_phantom

    for i in range(count):
        subtypes = phantom_subtypes(i)
        phantom = generate_phantom(seed=seed + i, subtypes=subtypes, matrix=matrix, thickness_mm=thickness_mm)
        slices = list(np.asarray(phantom.volume_hu, dtype=np.float32))
        yield Volume(
            group=f"synthetic:{seed + i}",
            source="synthetic",
            names=[f"phantom-{seed + i}/{k}" for k in range(len(slices))],
            labels=np.asarray(phantom.labels, dtype=np.uint8),
            load_hu=lambda slices=slices: slices,
            spacing_mm=float(phantom.spacing_mm) if phantom.spacing_mm else None,
            notes=[f"subtypes {','.join(subtypes) or 'none'}, matrix {matrix}"],
        )
