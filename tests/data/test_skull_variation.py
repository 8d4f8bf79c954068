"""The wide skull variation against its published figures (craniometry_table), on 26 generated heads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from facegen.data.representations.build import RepresentationSpec, square_spec
from facegen.data.representations.depth_map import render_depth_map
from facegen.data.representations.voxel_grid import GridSpec
from facegen.data.subject import Sex
from facegen.data.synthetic.craniometry import CODES, measure_skull
from facegen.data.synthetic.craniometry_table import (
    CRANIOMETRY_BY_CODE,
    EDENTULOUS_SHARE,
    ORBIT_DEPTH_MM,
    TEETH_COUNTED,
    TEETH_REMAINING,
)
from facegen.data.synthetic.dentition import lost_teeth
from facegen.data.synthetic.scanner import ScanDraw, rescan_skull
from facegen.data.synthetic.tissue_table import FSTT_TABLE

HEADS = 26


@pytest.fixture(scope="module")
def wide_generator():
    from facegen.data.synthetic.generator import HeadGenerator

    return HeadGenerator(skull_variation="wide")


@pytest.fixture(scope="module")
def wide_heads(wide_generator):
    from facegen.data.synthetic.population import sample_subject

    rng = np.random.default_rng(2026)
    return [wide_generator.generate(sample_subject(rng, f"W{i:03d}"), rng) for i in range(HEADS)]


@pytest.fixture(scope="module")
def standardised(wide_heads) -> dict[str, np.ndarray]:
    """Each head's measurements, read off its mesh and landmarks, in SDs from its sex's published mean."""
    out = {code: [] for code in CODES}
    for head in wide_heads:
        measured = measure_skull(head.skull_landmarks)
        for code in CODES:
            mean, sd = CRANIOMETRY_BY_CODE[code].mean_sd(head.subject.sex)
            out[code].append((measured[code] - mean) / sd)
    return {code: np.array(z) for code, z in out.items()}


@pytest.mark.parametrize("code", CODES)
def test_measurement_mean_and_spread_follow_the_published_figures(standardised, code):
    z = standardised[code]
    # 26 heads: the mean of z has an SE of 0.2 SD, the SD an SE of about 14 %
    assert abs(z.mean()) <= 0.5, f"{code}: mean {z.mean():+.2f} SD from the published mean"
    assert 1 / 1.5 <= z.std() <= 1.5, f"{code}: SD {z.std():.2f} x the published SD"


def test_men_are_larger_where_the_published_means_say_so(wide_heads):
    male = np.array([h.subject.sex is Sex.MALE for h in wide_heads])
    for code in ("GOL", "ZYB", "BGB"):
        values = np.array([measure_skull(h.skull_landmarks)[code] for h in wide_heads])
        assert values[male].mean() > values[~male].mean(), code


def test_facial_and_nasal_height_are_correlated_as_published(standardised):
    r = np.corrcoef(standardised["NPH"], standardised["NLH"])[0, 1]
    assert r > 0.5, r  # Howells: within-sex r = 0.83


def test_tissue_depths_stay_as_tabled_because_the_face_moves_with_the_bone(wide_heads):
    for row in FSTT_TABLE:
        name = f"{row.name}_l" if row.bilateral else row.name
        depth = np.array([h.tissue_depth_mm[name] for h in wide_heads])
        tolerance = max(1.0, 3 * row.sd_mm / np.sqrt(len(depth)))  # three standard errors of the sample's mean
        assert abs(depth.mean() - row.mean_mm) <= tolerance, (row.name, depth.mean(), row.mean_mm)


def test_the_two_sides_differ_by_a_few_millimetres(wide_heads):
    pairs = ("zygion", "gonion", "infraorbital", "lateral_orbit", "mid_mandibular_border")
    lm = [h.skull_landmarks for h in wide_heads]
    mirrored = [points[f"{p}_l"] * [-1, 1, 1] - points[f"{p}_r"] for points in lm for p in pairs]
    gap = np.linalg.norm(mirrored, axis=1)
    assert 1.0 <= np.median(gap) <= 5.0, np.median(gap)


def test_openings_show_orbit_walls_and_the_spine_not_the_back_of_the_skull(wide_heads):
    view = square_spec(128, (8, 8, 8)).view
    x, y = np.meshgrid(*view.pixel_centres())
    walls, spine = [], []
    for head in wide_heads[:8]:
        depth = render_depth_map(head.skull, view)
        lm = head.skull_landmarks
        margins = np.stack([lm[k] for k in ("ectoconchion_l", "dacryon_l", "orbit_top_l", "orbit_bottom_l")])
        centre, half = margins.mean(axis=0), 0.5 * np.array([np.ptp(margins[:2, 0]), np.ptp(margins[2:, 1])])
        inner = ((x - centre[0]) / (0.6 * half[0])) ** 2 + ((y - centre[1]) / (0.6 * half[1])) ** 2 < 1.0
        deepest_wall = centre[2] - ORBIT_DEPTH_MM[0] - 4 * ORBIT_DEPTH_MM[1]
        walls.append((depth.mask & (depth.depth_mm > deepest_wall))[inner].mean())
        below_chin = (np.abs(y - (lm["menton"][1] - 15.0)) < 2.0) & (np.abs(x) < 4.0)
        spine.append(depth.mask[below_chin].mean())
    # a coarse scan may lose thin wall here and there (as the optic canal and fissures are open in life)
    assert np.mean(walls) > 0.8, walls
    assert np.mean(spine) > 0.9, spine


def test_tooth_loss_follows_the_nhanes_figures():
    rng = np.random.default_rng(0)
    for age in (27.0, 80.0):
        draws = np.array([lost_teeth(age, TEETH_COUNTED, rng) for _ in range(4000)])
        none_left = draws.all(axis=1)
        edentulous = dict(EDENTULOUS_SHARE)[65.0 if age < 65 else 200.0]
        assert abs(none_left.mean() - edentulous) < 0.02
        remaining = TEETH_COUNTED - draws[~none_left].sum(axis=1)
        assert abs(remaining.mean() - dict(TEETH_REMAINING)[35.0 if age < 35 else 200.0]) < 0.5


def test_a_rescan_keeps_thick_bone_and_loses_bone_thinner_than_its_voxels():
    thick = trimesh.creation.box(extents=(40.0, 40.0, 40.0))
    thin = trimesh.creation.box(extents=(40.0, 0.8, 40.0))  # thin along the slice axis (y)
    thin.apply_translation([0.0, 40.0, 0.0])
    both = trimesh.util.concatenate([thick, thin])
    teeth = np.zeros(len(both.vertices), bool)
    fine, _ = rescan_skull(both, teeth, ScanDraw(np.array([0.4, 0.4, 0.4]), 0.0, 0.5, 0))
    coarse, _ = rescan_skull(both, teeth, ScanDraw(np.array([3.0, 3.0, 3.0]), 0.0, 0.5, 0))
    assert fine.volume > 0 and coarse.volume > 0  # faces wound outward
    assert abs(coarse.volume / thick.volume - 1.0) < 0.1
    assert fine.bounds[1, 1] > 39.0 and coarse.bounds[1, 1] < 25.0


def test_same_seed_same_wide_head(wide_generator):
    from facegen.data.synthetic.population import sample_subject

    heads = []
    for _ in range(2):
        rng = np.random.default_rng(11)
        heads.append(wide_generator.generate(sample_subject(rng, "S"), rng))
    assert np.array_equal(heads[0].skull.vertices, heads[1].skull.vertices)
    assert np.array_equal(heads[0].face.vertices, heads[1].face.vertices)


def test_unknown_skull_variation_names_the_known_ones():
    from facegen.data.synthetic.generator import HeadGenerator

    with pytest.raises(ValueError, match="choose one of standard, wide"):
        HeadGenerator(skull_variation="narrow")


def test_a_wide_dataset_says_so_on_its_card(tmp_path):
    from facegen.data.dataset.writer import write_synthetic_dataset

    spec = RepresentationSpec(square_spec(32, (8, 8, 8)).view, GridSpec(shape=(8, 8, 8)))
    card = write_synthetic_dataset(tmp_path / "wide", n=2, seed=1, spec=spec, skull_variation="wide")
    assert card["skull_variation"] == "wide"
    assert json.loads((tmp_path / "wide" / "dataset.json").read_text())["skull_variation"] == "wide"
