"""Surface distances over the facial area, against shapes whose distances are known in closed form."""

import numpy as np
import pytest
import trimesh

from facegen.evaluation.surfaces import (
    facial_surface_points,
    in_facial_area,
    score_surfaces,
    surface_distances,
)

CENTRE = (0.0, -5.0, 60.0)
"""In front of the porions, at the middle of the face region: every sphere below lies in the facial area."""


def sphere(radius: float) -> trimesh.Trimesh:
    """A fine sphere (edges ~1.5 mm at r 40: its facets stray < 0.01 mm from the true sphere)."""
    return trimesh.creation.icosphere(subdivisions=5, radius=radius).apply_translation(CENTRE)


def plate(z: float, x_range: tuple[float, float]) -> trimesh.Trimesh:
    """A flat rectangle facing forward at depth z, 100 mm tall, spanning x_range."""
    (x0, x1), (y0, y1) = x_range, (-50.0, 50.0)
    vertices = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])
    return trimesh.Trimesh(vertices, [[0, 1, 2], [0, 2, 3]], process=False)


def test_concentric_spheres_are_everywhere_their_radius_difference_apart():
    near = surface_distances(sphere(42.0), sphere(40.0))
    assert near["surface_mean_mm"] == pytest.approx(2.0, abs=0.02)
    assert near["surface_hd95_mm"] == pytest.approx(2.0, abs=0.02)
    assert near["surface_within_2_5mm"] == 1.0
    far = surface_distances(sphere(43.0), sphere(40.0))
    assert far["surface_mean_mm"] == pytest.approx(3.0, abs=0.02)
    assert far["surface_within_2_5mm"] == 0.0


def test_a_face_is_zero_from_itself():
    face = sphere(40.0)
    d = surface_distances(face, face)
    assert d["surface_mean_mm"] < 1e-9 and d["surface_hd95_mm"] < 1e-9 and d["surface_within_2_5mm"] == 1.0


def test_the_share_within_tolerance_is_weighted_by_area():
    """Half the reconstructed area 2 mm in front of a flat face, half 4 mm: half of it lies within 2.5 mm."""
    truth = plate(80.0, (-40.0, 40.0))
    reconstruction = trimesh.util.concatenate([plate(82.0, (-40.0, 0.0)), plate(84.0, (0.0, 40.0))])
    d = surface_distances(reconstruction, truth)
    assert d["surface_within_2_5mm"] == pytest.approx(0.5, abs=0.03)  # 4000 points: binomial SD 0.008
    assert d["surface_hd95_mm"] == pytest.approx(4.0, abs=1e-6)


def test_only_the_facial_area_is_compared():
    """A surface behind the porions (the back of a head) is never sampled, however large."""
    back = trimesh.creation.icosphere(subdivisions=3, radius=60.0).apply_translation((0.0, 0.0, -100.0))
    head = trimesh.util.concatenate([sphere(40.0), back])
    points = facial_surface_points(head, 2000)
    assert in_facial_area(points).all()
    x, y, _ = points.T
    assert (np.abs(x) <= 68.0).all() and (y >= -93.0).all() and (y <= 83.0).all()
    with pytest.raises(ValueError, match="facial area"):
        facial_surface_points(back)


def test_the_same_seed_gives_the_same_figures_and_a_missing_surface_is_counted():
    truths = [sphere(40.0), sphere(41.0)]
    a = score_surfaces([sphere(42.0), None], truths, seed=3)
    b = score_surfaces([sphere(42.0), None], truths, seed=3)
    assert a["surface_mean_mm"][0] == b["surface_mean_mm"][0] == pytest.approx(2.0, abs=0.02)
    assert np.isnan(a["surface_mean_mm"][1]) and np.isnan(a["surface_within_2_5mm"][1])
    with pytest.raises(ValueError, match="2 true faces"):
        score_surfaces([sphere(42.0)], truths)
