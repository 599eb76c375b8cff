"""Figure: real hemorrhages of CT-ICH beside lesions inserted into real normal slices.

One row per subtype: a real labelled slice (outlined with its hand-drawn mask from
``masks_subset/`` where one exists) and two normal slices of patients without bleeding
with an inserted lesion of the same subtype (outlined where the inserted blood share is
>= 0.5, for SAH and IVH >= 0.3), each shown plain and outlined, in the brain window (40/80). Both go through
the trainer's own reader (``read_ctich``) and the app's preprocessing
(``slice_stack_hu``: crop to the head, resize), so they look exactly like training
inputs. ``python -m trainer.insert_figure [CT-ICH folder] [out.png]``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ich_viewer import LABELS
from ich_viewer.inference.preprocess import InputSpec, crop_square, head_box, resize_square
from trainer.cache import slice_stack_hu, volume_slabs
from trainer.data.ctich import read_ctich
from trainer.insert import SUBTYPES, VOLUME_ML, InsertConfig, LesionInserter

BRAIN_WINDOW = (40.0, 80.0)
REAL_EXAMPLES = {
    # subtype -> (patient, slice) in CT-ICH; a hand-drawn mask exists for all but SAH
    "epidural": ("52", 17),
    "intraparenchymal": ("91", 20),
    "intraventricular": ("80", 16),
    "subarachnoid": None,  # no hand-drawn mask: the first slice labelled SAH only
    "subdural": ("71", 19),
}
HOSTS = ("101", "104", "106", "110", "113", "118", "122", "127")
"""Patients without any bleed whose mid-level slices receive the lesions."""
MIN_SHOWN_MM2 = 40.0
"""An inserted example is shown once its centre-slice blood area reaches this (half of
it for the thin SAH and IVH), its
volume the measured median and the slice passes near the lesion's middle (a lesion too
small to see at figure scale, or only its tip, would tell a reader little); the first
such draw is shown, not a hand-picked one."""
CREDIT = ("CT-ICH (Hssayeni et al. 2020, Data 5(1):14; PhysioNet 2019), CC BY 4.0. "
          "Left: real hemorrhage; right: synthetic lesions inserted into real normal slices (training material only).")


def _stack(volume, slices, index: int, spec: InputSpec) -> np.ndarray:
    return slice_stack_hu(volume_slabs(volume, slices, spec).around(index, spec, volume.spacing_mm), spec)


def _mask_in_network_space(mask_path: Path, centre_hu: np.ndarray, spec: InputSpec) -> np.ndarray | None:
    """The hand-drawn mask cropped and resized exactly like the slice."""
    if not mask_path.is_file():
        return None
    from PIL import Image

    with Image.open(mask_path) as image:
        mask = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    if mask.shape != centre_hu.shape:
        return None
    box = head_box(centre_hu, spec)
    resized = resize_square(crop_square(mask, box, fill=0.0)[None], spec.size)[0].numpy()
    return resized >= 0.5


def _real_examples(ct_ich: Path, volumes: dict, spec: InputSpec) -> dict:
    out = {}
    for subtype in SUBTYPES:
        code = LABELS.index(subtype)
        chosen = REAL_EXAMPLES.get(subtype)
        if chosen is None:  # first slice labelled with this subtype only
            for group, volume in volumes.items():
                hits = np.flatnonzero((volume.labels[:, code] == 1) & (volume.labels[:, :5].sum(axis=1) == 1))
                if len(hits):
                    chosen = (group.split(":")[1], int(volume.names[hits[len(hits) // 2]].split("/")[-1][:-4]))
                    break
        if chosen is None:
            continue
        patient, number = chosen
        volume = volumes[f"ct-ich:{patient}"]
        index = [n.split("/")[-1] for n in volume.names].index(f"{number}.jpg")
        slices = volume.load_hu()
        stack = _stack(volume, slices, index, spec)
        folder = volume.names[index].split("/")[0]
        mask_path = ct_ich / "masks_subset" / "Patients_CT" / folder / "brain" / f"{number}_HGE_Seg.jpg"
        mask = _mask_in_network_space(mask_path, slices[index], spec)
        labels = [LABELS[i] for i in range(5) if volume.labels[index, i]]
        source = "hand-drawn mask" if mask is not None else "no mask available"
        out[subtype] = dict(image=stack[spec.context], mask=mask, title=f"real: patient {patient}, slice {number}",
                            note=f"{source}; labels: {', '.join(labels)}")
    return out


def _inserted_examples(volumes: dict, spec: InputSpec, seed: int, per_subtype: int = 2) -> dict:
    hosts = []
    for patient in HOSTS:
        volume = volumes.get(f"ct-ich:{patient}")
        if volume is None or volume.labels[:, 5].any():
            continue
        slices = volume.load_hu()
        n = len(volume)
        for index in range(int(0.45 * n), int(0.8 * n), 2):  # basal ganglia to centrum semiovale
            hosts.append((patient, volume.names[index].split("/")[-1][:-4], _stack(volume, slices, index, spec)))
    rng = np.random.default_rng(seed)
    inserter = LesionInserter(InsertConfig(), rng)
    out: dict[str, list] = {}
    for subtype in SUBTYPES:
        order = rng.permutation(len(hosts))
        out[subtype] = []
        for h in order:
            if len(out[subtype]) == per_subtype:
                break
            patient, number, stack = hosts[h]
            result = inserter.insert(stack, subtype)
            if result is None:
                continue
            new, insertion = result
            share = insertion.alpha[spec.context]
            area = float(share.sum()) * insertion.px_mm ** 2  # blood-equivalent area
            lesion = insertion.lesion
            shown = MIN_SHOWN_MM2 / (2.0 if lesion.filling else 1.0)
            if (not insertion.visible or area < shown or lesion.volume_ml < VOLUME_ML[subtype][0]
                    or abs(lesion.z_centre_mm) > 0.35 * lesion.half_height_mm):
                continue
            lesion = insertion.lesion
            detail = {"epidural": "lens", "subdural": "falx" if lesion.params.get("along_falx") else "crescent",
                      "intraparenchymal": "with edema rim" if lesion.params.get("edema_mm") else "",
                      "intraventricular": lesion.params.get("pattern", ""),
                      "subarachnoid": "CSF spaces"}[subtype]
            if subtype in ("subdural", "intraventricular") and out[subtype] and detail == out[subtype][0]["detail"]:
                continue  # show both forms (crescent and falx; layer and cast)
            level = 0.3 if lesion.filling else 0.5  # SAH/IVH: mostly partial-volume pixels
            out[subtype].append(dict(image=new[spec.context], mask=share >= level, detail=detail,
                                title=f"inserted: patient {patient}, slice {number}",
                                     note=f"{detail}, {lesion.hu:.0f} HU, {lesion.volume_ml:.1f} mL, "
                                          f"{insertion.px_mm:.2f} mm/px"))
    return out


def plot_insertion(ct_ich: Path, out_png: Path, size: int = 160, seed: int = 0) -> Path:
    """Write the real-versus-inserted grid; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ct_ich, out_png = Path(ct_ich), Path(out_png)
    spec = InputSpec(size=size)
    volumes = {v.group: v for v in read_ctich(ct_ich)}
    real = _real_examples(ct_ich, volumes, spec)
    inserted = _inserted_examples(volumes, spec, seed)
    low, high = BRAIN_WINDOW[0] - BRAIN_WINDOW[1] / 2, BRAIN_WINDOW[0] + BRAIN_WINDOW[1] / 2
    per = max((len(v) for v in inserted.values()), default=1)
    fig, axes = plt.subplots(len(SUBTYPES), 2 + 2 * per, figsize=(6.5 * (1 + per), 3.5 * len(SUBTYPES)))
    for row, subtype in enumerate(SUBTYPES):
        examples = [(real.get(subtype), "#00e0ff")]
        examples += [(e, "#ff3030") for e in inserted.get(subtype, [])]
        examples += [(None, "")] * (1 + per - len(examples))
        for col, (example, colour) in enumerate(examples):
            for k in range(2):
                ax = axes[row, 2 * col + k]
                ax.set_xticks([])
                ax.set_yticks([])
                if example is None:
                    ax.text(0.5, 0.5, "none found", ha="center", va="center", transform=ax.transAxes)
                    continue
                ax.imshow(example["image"], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
                if k == 1 and example["mask"] is not None and example["mask"].any():
                    ax.contour(example["mask"].astype(float), [0.5], colors=colour, linewidths=0.9)
                if k == 0:
                    ax.set_title(f"{subtype}: {example['title']}", fontsize=8.5, loc="left")
                else:
                    ax.set_title(example["note"], fontsize=8, loc="left")
    fig.suptitle(f"Real hemorrhages (left pair, cyan outline) and lesions inserted into real normal slices "
                 f"(other pairs, red outline); brain window 40/80, {size} px network input", fontsize=12)
    fig.text(0.5, 0.005, CREDIT, ha="center", fontsize=7.5)
    fig.tight_layout(rect=(0, 0.015, 1, 0.98))
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parents[1]
    ct_ich = Path(argv[0]) if argv else root.parent / "shared" / "data" / "ct-ich"
    out = Path(argv[1]) if len(argv) > 1 else root / "docs" / "training" / "insertion.png"
    print(plot_insertion(ct_ich, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
