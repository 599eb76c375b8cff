"""Synthetic hemorrhages inserted into real-looking slices (trainer/insert.py).

A small analytic head (skull ring, scalp, brain with noise, a grey-matter rim with sulci,
two lateral ventricles) stands in for a cached CT-ICH stack; where ../shared/data/ct-ich
exists, a few real slices are checked too.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ich_viewer import LABELS
from ich_viewer.phantom.lesions import THIN_BLOOD_BOOST_HU
from trainer.insert import (LESION_HU, SUBTYPES, InsertConfig, LesionInserter, SliceAnatomy,
                            pixel_mm)

SIZE = 160
CTICH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ct-ich"


def _head(scale: float, rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, dict]:
    """One slice in HU and its true compartments."""
    rows, cols = np.indices((size, size), dtype=np.float32)
    c = size / 2.0
    def ellipse(a, b):  # rows semi-axis a, cols semi-axis b
        return ((rows - c) / a) ** 2 + ((cols - c) / b) ** 2
    outer_skull = ellipse(70 * scale, 58 * scale) <= 1.0
    inner_skull = ellipse(64 * scale, 52 * scale) <= 1.0
    scalp = ellipse(73 * scale, 61 * scale) <= 1.0
    hu = np.full((size, size), -1000.0, np.float32)
    hu[scalp] = 30.0
    hu[outer_skull] = 1200.0
    brain = inner_skull.copy()
    hu[brain] = 28.0  # white matter
    e = ellipse(64 * scale, 52 * scale)
    cortex = brain & (e > 0.72)
    hu[cortex] = 38.0  # grey matter
    # sulci: short radial CSF lines from the surface into the cortex
    angle = np.arctan2(rows - c, cols - c)
    sulci = cortex & (np.abs(np.sin(9 * angle)) < 0.12) & (e > 0.8)
    hu[sulci] = 8.0
    vent = (((rows - (c + 4)) / 18) ** 2 + ((cols - (c - 8)) / 4.5) ** 2 <= 1.0) | \
           (((rows - (c + 4)) / 18) ** 2 + ((cols - (c + 8)) / 4.5) ** 2 <= 1.0)
    hu[vent] = 6.0
    lacune = ((rows - (c - 20)) ** 2 + (cols - (c + 12)) ** 2) <= 2.0 ** 2  # deep, isolated CSF (a lacune)
    hu[lacune] = 8.0
    hu[brain] += rng.normal(0.0, 2.5, int(brain.sum())).astype(np.float32)
    truth = dict(cavity=inner_skull, ventricles=vent, sulci=sulci, lacune=lacune,
                 brain=brain & ~vent & ~sulci & ~lacune, bone=outer_skull & ~inner_skull)
    return hu, truth


def _stack(seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, dict]:
    """(3, S, S) HU and the centre slice's compartments (``truth["slices"]``: all three)."""
    rng = np.random.default_rng(seed)
    slices = [_head(s, rng, size) for s in (1.02, 1.0, 0.97)]  # foot to head: the head narrows
    truth = dict(slices[1][1], slices=[s[1] for s in slices])
    return np.stack([s[0] for s in slices]), truth


def _batch(n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    hu = np.stack([_stack(i)[0] for i in range(n)])
    labels = np.zeros((n, 6), np.uint8)
    labels[1, [0, 5]] = 1  # an epidural already labelled
    if n > 4:
        labels[4, [3, 5]] = 1
    return hu, labels


def _insert(subtype: str, seed: int, stack: np.ndarray | None = None):
    stack = _stack(seed)[0] if stack is None else stack
    inserter = LesionInserter(InsertConfig(), np.random.default_rng(seed))
    result = inserter.insert(stack, subtype)
    assert result is not None, f"no {subtype} could be inserted"
    return stack, result[0], result[1]


# ------------------------------------------------------------------ batch behaviour

def test_batch_inputs_untouched_and_positives_only_where_inserted():
    hu, labels = _batch()
    hu_before, labels_before = hu.copy(), labels.copy()
    inserter = LesionInserter(InsertConfig(probability=1.0), np.random.default_rng(3))
    out_hu, out_labels = inserter(hu, labels)
    assert np.array_equal(hu, hu_before) and np.array_equal(labels, labels_before)
    assert out_hu.shape == hu.shape and out_hu.dtype == np.float32
    assert out_labels.shape == labels.shape and out_labels.dtype == labels.dtype
    inserted = {i for i, _ in inserter.last}
    assert inserted == {0, 2, 3, 5, 6, 7}  # every negative (probability 1), no positive
    for i in (1, 4):  # already positive: untouched
        assert np.array_equal(out_hu[i], hu[i]) and np.array_equal(out_labels[i], labels[i])
    for i, insertion in inserter.last:
        code = SUBTYPES.index(insertion.lesion.subtype)
        expected = np.zeros(6, np.uint8)
        if insertion.visible:
            expected[[code, 5]] = 1
        assert np.array_equal(out_labels[i], expected)
        assert not np.array_equal(out_hu[i], hu[i])
    assert sum(ins.visible for _, ins in inserter.last) >= 4


def test_probability_zero_and_share():
    hu, labels = _batch()
    out_hu, out_labels = LesionInserter(InsertConfig(probability=0.0), np.random.default_rng(0))(hu, labels)
    assert np.array_equal(out_hu, hu) and np.array_equal(out_labels, labels)
    hu = np.repeat(_stack(0)[0][None], 40, axis=0)
    labels = np.zeros((40, 6), np.uint8)
    inserter = LesionInserter(InsertConfig(probability=0.5), np.random.default_rng(1))
    inserter(hu, labels)
    assert 10 <= len(inserter.last) <= 30


def test_deterministic_for_a_seeded_rng():
    hu, labels = _batch(4)
    a = LesionInserter(InsertConfig(probability=1.0), np.random.default_rng(7))(hu, labels)
    b = LesionInserter(InsertConfig(probability=1.0), np.random.default_rng(7))(hu, labels)
    c = LesionInserter(InsertConfig(probability=1.0), np.random.default_rng(8))(hu, labels)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_no_insertion_without_brain():
    rows, cols = np.indices((SIZE, SIZE))
    air = np.full((3, SIZE, SIZE), -1000.0, np.float32)
    cap = air.copy()  # vertex: a skull cap with a sliver of brain
    disc = ((rows - 80) / 40.0) ** 2 + ((cols - 80) / 34.0) ** 2 <= 1
    cap[:, disc] = 1200.0
    cap[:, ((rows - 80) / 8.0) ** 2 + ((cols - 80) / 6.0) ** 2 <= 1] = 30.0
    fat = air.copy()  # soft tissue but no skull (e.g. below the head)
    fat[:, disc] = -80.0
    labels = np.zeros((3, 6), np.uint8)
    hu = np.stack([air, cap, fat])
    inserter = LesionInserter(InsertConfig(probability=1.0), np.random.default_rng(0))
    out_hu, out_labels = inserter(hu, labels)
    assert np.array_equal(out_hu, hu) and not out_labels.any() and inserter.last == []
    assert not SliceAnatomy(cap[1], 1.0).valid and SliceAnatomy(_stack(0)[0][1], 1.2).valid


def test_config_round_trip_and_validation():
    config = InsertConfig(probability=0.3)
    data = config.to_dict()
    assert data["probability"] == 0.3 and data["subtype_weights"] == [1.0, 1.0, 1.5, 1.5, 1.0]
    assert InsertConfig(**{**data, "subtype_weights": tuple(data["subtype_weights"])}) == config
    assert SUBTYPES == tuple(LABELS[:5])
    with pytest.raises(ValueError):
        LesionInserter(InsertConfig(subtype_weights=(1, 1)), np.random.default_rng(0))


def test_pixel_size_from_head_width():
    hu = _stack(0)[0][1]
    width = 2 * 58 + 1  # outer skull, columns
    assert pixel_mm(hu, 150.0) == pytest.approx(150.0 / width, rel=0.03)


# ------------------------------------------------------------------ anatomy of each subtype

def _lesion_pixels(insertion, k=1, level=0.5):
    return insertion.alpha[k] >= level


def _touches_table(mask, cavity):
    ring = cavity & ~_erode(cavity)
    return bool((mask & ring).any())


def _erode(mask):
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_epidural_lens_on_inner_table_short_arc(seed):
    stack, new, ins = _insert("epidural", seed)
    truth = _stack(seed)[1]
    any_blood = ins.alpha.max(axis=0) > 0.05
    for j in range(3):  # inside each slice's own cavity (never on bone or scalp)
        assert not (ins.alpha[j] > 0.05)[stack[j] > 300].any()
    mask = _lesion_pixels(ins, level=0.3) if ins.visible else ins.alpha.max(axis=0) >= 0.3
    assert mask.any()
    assert _touches_table(mask | (any_blood & truth["cavity"]), truth["cavity"])
    rows, cols = np.nonzero(any_blood)
    angles = np.arctan2(rows - 80.0, cols - 80.0)
    centre = math.atan2(np.sin(angles).mean(), np.cos(angles).mean())
    spread = np.abs((angles - centre + np.pi) % (2 * np.pi) - np.pi)
    assert np.degrees(2 * spread.max()) <= 80.0  # a short arc: it stops at the sutures
    assert ins.lesion.params["thickness_mm"] <= 30.0


@pytest.mark.parametrize("seed", range(6))
def test_subdural_along_table_or_falx_not_across_midline(seed):
    stack, new, ins = _insert("subdural", seed)
    truth = _stack(seed)[1]
    for j in range(3):
        assert not (ins.alpha[j] > 0.05)[~truth["slices"][j]["cavity"]].any()
    blood = ins.alpha.max(axis=0) > 0.05
    side = ins.lesion.params["side"]
    cols = np.nonzero(blood)[1]
    # the frame's lateral axis points to larger columns: a subdural stays on its side
    assert np.all((cols - 80.0) * side >= -0.5)
    if not ins.lesion.params["along_falx"]:
        assert any(_touches_table(ins.alpha[j] > 0.05, truth["slices"][j]["cavity"]) for j in range(3))
        assert ins.lesion.params["half_angle"] >= math.radians(40)
        assert 2.0 <= ins.lesion.params["thickness_mm"] <= 15.0


@pytest.mark.parametrize("seed", range(6))
def test_intraparenchymal_in_parenchyma_away_from_table(seed):
    stack, new, ins = _insert("intraparenchymal", seed)
    truth = _stack(seed)[1]
    assert (ins.alpha.max(axis=0) >= 0.5).any()
    anat = SliceAnatomy(stack[1], ins.px_mm)
    blood = ins.alpha.max(axis=0) > 0.05
    assert anat.depth[blood].min() * ins.px_mm >= 3.0  # never against the inner table
    assert not (blood & truth["ventricles"]).sum() > 0.1 * blood.sum()


@pytest.mark.parametrize("seed", range(6))
def test_intraventricular_inside_ventricles(seed):
    stack, new, ins = _insert("intraventricular", seed)
    truth = _stack(seed)[1]
    assert ins.lesion.filling
    for j in range(3):
        vent = truth["slices"][j]["ventricles"]
        grown = ~_erode(_erode(~vent))  # two pixels of partial volume around
        blood = ins.alpha[j] > 0.05
        assert not blood[~grown].any()
        assert ins.alpha[j][~vent].sum() <= 0.5 * max(ins.alpha[j].sum(), 1e-6)
    if ins.lesion.params["pattern"] == "layer":  # dependent: the posterior (lower) rows
        rows = np.nonzero(ins.alpha.max(axis=0) > 0.05)[0]
        assert rows.min() >= ins.lesion.params["level_row"] - 1


@pytest.mark.parametrize("seed", range(6))
def test_subarachnoid_on_csf_spaces(seed):
    stack, new, ins = _insert("subarachnoid", seed)
    truth = _stack(seed)[1]
    share = ins.alpha[1] if ins.alpha[1].any() else ins.alpha.max(axis=0)
    sulci = truth["sulci"]
    near = sulci | ~_erode(~sulci)
    assert share[near].sum() >= 0.8 * share.sum()  # on the sulci, not a blob in the brain
    assert not (share > 0.05)[truth["ventricles"]].any()
    anat = SliceAnatomy(stack[1], ins.px_mm)
    assert anat.sulcal_weight[truth["lacune"]].max() == 0.0  # a deep CSF spot is no sulcus
    assert anat.sulcal_weight[truth["sulci"]].max() > 0.5


@pytest.mark.parametrize("subtype", SUBTYPES)
def test_lesion_hu_and_host_texture(subtype):
    values = []
    for seed in range(8):
        stack, new, ins = _insert(subtype, seed)
        values.append(ins.lesion.hu)
        median, p10, p90 = LESION_HU[subtype]
        painted = ins.lesion.hu + (THIN_BLOOD_BOOST_HU if subtype == "subarachnoid" else 0.0)
        assert p10 - 8.0 <= ins.lesion.hu <= p90 + 8.0
        for j in range(3):
            core = (ins.alpha[j] >= 0.97) & (stack[j] < 80)  # not the bone's partial volume
            if core.sum() >= 30:
                mean = float(new[j][core].mean())
                assert abs(mean - painted) <= 6.0, (subtype, mean, painted)
                if subtype not in ("subarachnoid", "intraventricular"):
                    # the host's fine noise stays: not a flat fill
                    assert float(new[j][core].std()) > 0.5
        outside = ins.alpha.max(axis=0) == 0
        if subtype != "intraparenchymal":  # IPH changes the rim (edema) and pushes tissue
            assert np.array_equal(new[:, outside], stack[:, outside])
    assert np.median(values) == pytest.approx(LESION_HU[subtype][0], abs=8.0)


def test_intraparenchymal_edema_rim_is_darker():
    for seed in range(40):
        stack, new, ins = _insert("intraparenchymal", seed)
        if ins.lesion.params["edema_mm"] >= 3.0 and ins.alpha[1].max() >= 0.9:
            break
    else:
        pytest.fail("no large hematoma drawn")
    core = ins.alpha[1] >= 0.5
    from scipy import ndimage
    rim = ndimage.binary_dilation(core, iterations=2) & (ins.alpha[1] == 0)
    assert rim.any()
    assert float((new[1] - stack[1])[rim].mean()) < -2.0


def test_partial_volume_on_neighbours(monkeypatch):
    """A lesion centred on the centre slice is fainter and smaller on its neighbours."""
    checked = 0
    for seed in range(40):
        stack = _stack(seed)[0]
        inserter = LesionInserter(InsertConfig(), np.random.default_rng(seed))
        monkeypatch.setattr(inserter, "_z_place", lambda half_height: 0.0)
        new, ins = inserter.insert(stack, "intraparenchymal")
        if not 3.5 < ins.lesion.half_height_mm < 6.5:
            continue
        centre, below, above = ins.alpha[1], ins.alpha[0], ins.alpha[2]
        assert centre.max() >= 0.9 and ins.visible
        for nb in (below, above):
            assert 0 < nb.sum() < centre.sum()
            assert nb.max() <= 0.76  # at most 3 of the 4 depths sampled in its slab
            assert (nb >= 0.05).sum() < (centre >= 0.05).sum()  # the outline shrinks
        checked += 1
    assert checked >= 2


def test_lesion_only_on_a_neighbour_does_not_label_the_centre(monkeypatch):
    stack = _stack(2)[0]
    config = InsertConfig(probability=1.0, subtype_weights=(1, 0, 0, 0, 0))
    inserter = LesionInserter(config, np.random.default_rng(2))
    monkeypatch.setattr(inserter, "_z_place", lambda half_height: 2.6 + half_height)  # above the centre slab
    hu, labels = stack[None].copy(), np.zeros((1, 6), np.uint8)
    out_hu, out_labels = inserter(hu, labels)
    assert len(inserter.last) == 1
    _, ins = inserter.last[0]
    assert not ins.alpha[1].any() and ins.alpha[2].any()
    assert not out_labels.any()
    assert np.array_equal(out_hu[0, 1], stack[1]) and not np.array_equal(out_hu[0, 2], stack[2])


def test_subtype_weights_steer_the_mix():
    hu = np.repeat(_stack(0)[0][None], 30, axis=0)
    labels = np.zeros((30, 6), np.uint8)
    inserter = LesionInserter(InsertConfig(probability=1.0, subtype_weights=(0, 0, 0, 0, 1)),
                              np.random.default_rng(0))
    out_hu, out_labels = inserter(hu, labels)
    assert {ins.lesion.subtype for _, ins in inserter.last} == {"subdural"}
    assert out_labels[:, [0, 1, 2, 3]].sum() == 0 and out_labels[:, 4].sum() >= 20


# ------------------------------------------------------------------ real CT-ICH slices

@pytest.fixture(scope="module")
def real_normal_stacks():
    if not (CTICH / "hemorrhage_diagnosis.csv").is_file():
        pytest.skip("CT-ICH data not available")
    from ich_viewer.inference.preprocess import InputSpec, neighbour_indices
    from trainer.cache import slice_stack_hu
    from trainer.data.ctich import read_ctich

    spec = InputSpec(size=SIZE)
    volume = next(v for v in read_ctich(CTICH) if v.group == "ct-ich:101")
    slices = volume.load_hu()
    out = []
    for i in (14, 17, 20, 23):  # from the level of the basal ganglia to the centrum semiovale
        around = [slices[j] if j is not None else None for j in neighbour_indices(i, len(volume), spec)]
        out.append(slice_stack_hu(around, spec))
    vertex = [slices[j] if j is not None else None for j in neighbour_indices(len(volume) - 1, len(volume), spec)]
    return np.stack(out), slice_stack_hu(vertex, spec)


@pytest.mark.parametrize("subtype", SUBTYPES)
def test_real_slices_each_subtype_in_its_compartment(real_normal_stacks, subtype):
    stacks, _ = real_normal_stacks
    done = 0
    for i, stack in enumerate(stacks):
        inserter = LesionInserter(InsertConfig(), np.random.default_rng(i))
        result = inserter.insert(stack, subtype)
        if result is None:
            continue
        new, ins = result
        for j in range(3):
            anat = SliceAnatomy(stack[j], ins.px_mm)
            blood = ins.alpha[j] > 0.05
            if not blood.any():
                continue
            assert not blood[~anat.cavity].any()
            assert not blood[stack[j] > 300].any()
            if subtype in ("epidural", "subdural") and not ins.lesion.params.get("along_falx"):
                assert anat.depth[blood].min() <= 1.0  # against the inner table
            if subtype == "intraparenchymal":
                assert anat.depth[blood].min() * ins.px_mm >= 3.0
            if subtype == "intraventricular":
                assert anat.csf_fraction[ins.alpha[j] > 0.3].min() > 0.0
        core = (ins.alpha[1] >= 0.97) & (stack[1] < 80)
        if subtype in ("epidural", "subdural", "intraparenchymal") and core.sum() >= 6:
            assert abs(float(new[1][core].mean()) - ins.lesion.hu) <= 6.0
        done += 1
    assert done >= 2


def test_real_vertex_slice_is_left_alone(real_normal_stacks):
    _, vertex = real_normal_stacks
    inserter = LesionInserter(InsertConfig(probability=1.0), np.random.default_rng(0))
    out_hu, out_labels = inserter(vertex[None], np.zeros((1, 6), np.uint8))
    assert np.array_equal(out_hu[0], vertex) and not out_labels.any()


def test_real_figure_is_written(tmp_path):
    if not (CTICH / "hemorrhage_diagnosis.csv").is_file():
        pytest.skip("CT-ICH data not available")
    from trainer.insert_figure import plot_insertion

    out = plot_insertion(CTICH, tmp_path / "insertion.png", size=128, seed=1)
    assert out.is_file() and out.stat().st_size > 50_000
