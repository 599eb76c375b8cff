"""Render docs/phantom.png: a normal synthetic head and one head per hemorrhage subtype.

Each row shows four axial levels in the brain window (40/80) and, beside each, the
ground-truth mask. Run:  .venv/bin/python scripts/make_phantom_figure.py [--out PATH]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ich_viewer.imaging.palette import label_colour  # noqa: E402
from ich_viewer.phantom import SUBTYPES, generate_phantom  # noqa: E402

ROWS = (("normal", 21, []),) + tuple((name, seed, [name]) for name, seed in zip(SUBTYPES, (5, 11, 2, 7, 3)))
NORMAL_LEVELS_MM = (-25.0, 12.0, 32.0, 60.0)
"""Posterior fossa, third ventricle / basal ganglia, ventricle bodies, high convexity."""


def brain_window(hu: np.ndarray) -> np.ndarray:
    return np.clip((hu - 0.0) / 80.0, 0.0, 1.0)


def pick_levels(phantom, name: str) -> list[int]:
    """Four slices: for a lesion the largest-area slice, its neighbours and one more level."""
    n = phantom.n_slices
    if name == "normal":
        return [int(np.argmin(np.abs(phantom.z_mm - z))) for z in NORMAL_LEVELS_MM]
    area = (phantom.masks > 0).sum(axis=(1, 2))
    hit = np.nonzero(area >= 0.15 * area.max())[0]  # slices where the lesion is readable
    best = int(np.argmax(area))
    picks = {best}
    for candidate in (hit[0], hit[-1], hit[len(hit) // 3], hit[2 * len(hit) // 3], best - 2, best + 2):
        if len(picks) < 4 and 0 <= candidate < n:
            picks.add(int(candidate))
    return sorted(picks)


def mask_rgb(mask: np.ndarray) -> np.ndarray:
    rgb = np.zeros((*mask.shape, 3), np.float32)
    for k, name in enumerate(SUBTYPES, start=1):
        rgb[mask == k] = np.array(label_colour(name), np.float32) / 255.0
    return rgb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "phantom.png"))
    parser.add_argument("--matrix", type=int, default=512)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(ROWS), 8, figsize=(16, 2.1 * len(ROWS)), facecolor="black")
    for r, (name, seed, subtypes) in enumerate(ROWS):
        phantom = generate_phantom(seed=seed, subtypes=subtypes, matrix=args.matrix, thickness_mm=5.0)
        crop = slice(args.matrix // 10, args.matrix - args.matrix // 10)
        for c, index in enumerate(pick_levels(phantom, name)):
            image = brain_window(phantom.volume_hu[index])[crop, crop]
            ax_img, ax_mask = axes[r, 2 * c], axes[r, 2 * c + 1]
            ax_img.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
            ax_mask.imshow(image * 0.35, cmap="gray", vmin=0, vmax=1)
            ax_mask.imshow(mask_rgb(phantom.masks[index][crop, crop]),
                           alpha=(phantom.masks[index][crop, crop] > 0).astype(float))
            ax_img.set_title(f"{name}  z={phantom.z_mm[index]:.0f} mm", color="white", fontsize=8)
            ax_mask.set_title("mask", color="white", fontsize=8)
            for ax in (ax_img, ax_mask):
                ax.set_axis_off()
    fig.suptitle("SYNTHETIC PHANTOM - brain window 40/80, 5 mm slices; masks = ground truth (not patient data)",
                 color="white", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90, facecolor="black")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
