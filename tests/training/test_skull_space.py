"""The skull space: typical skulls lie near 1 and inside the training range, an outsized one far outside it, and
bone a skull lacks (mandible, teeth) is found where the training skulls have it."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from facegen.data.representations.depth_map import render_depth_map
from facegen.data.synthetic.population import sample_subject
from facegen.evaluation.regions import region_masks
from facegen.models.base import DepthData
from facegen.training.skull_space import BONE_EXPECTED_SHARE, SkullSpace, fit_skull_space
from tests.conftest import TINY_SPEC


@pytest.fixture(scope="module")
def space(tiny_dataset) -> SkullSpace:
    train = DepthData.load(tiny_dataset, "train")
    return fit_skull_space(train.skull_depth, train.skull_mask, seed=0)


@pytest.fixture(scope="module")
def new_heads(generator):
    rng = np.random.default_rng(99)
    return [generator.generate(sample_subject(rng, f"N{i}"), rng) for i in range(6)]


def _depth(skull: trimesh.Trimesh):
    d = render_depth_map(skull, TINY_SPEC.view)
    return d.depth_mm, d.mask


def test_typical_skulls_lie_inside_the_training_range_and_an_outsized_one_far_outside(space, new_heads, tmp_path):
    assert 0.5 < np.median(space.reference) < 2.0
    held_out = [space.distance(*_depth(h.skull)) for h in new_heads]
    assert max(held_out) <= space.reference.max(), (held_out, space.reference.max())
    assert all(space.percentile(d) < 100 for d in held_out)
    big = new_heads[0].skull.copy()
    big.apply_scale(1.4)
    outsized = space.distance(*_depth(big))
    assert outsized > 2 * space.reference.max() and space.percentile(outsized) == 100.0
    space.save(tmp_path)
    again = SkullSpace.load(tmp_path)
    assert again.distance(*_depth(big)) == pytest.approx(outsized)
    assert SkullSpace.load(tmp_path / "elsewhere") is None


def _without(skull: trimesh.Trimesh, drop_vertex: np.ndarray) -> trimesh.Trimesh:
    keep = ~drop_vertex[skull.faces].any(axis=1)
    return trimesh.Trimesh(skull.vertices, skull.faces[keep], process=False)


def test_missing_mandible_and_teeth_are_found_where_training_skulls_have_bone(space, new_heads, generator):
    head = new_heads[1]
    regions = region_masks(TINY_SPEC.view)
    whole = space.missing_bone(*_depth(head.skull))
    assert whole.sum() <= 0.02 * whole.size

    def missing_share(skull: trimesh.Trimesh, region: str) -> float:
        """Share of the region's pixels where training skulls have bone that this skull lacks."""
        expected = regions[region] & (space.bone_share >= BONE_EXPECTED_SHARE)
        return float(space.missing_bone(*_depth(skull))[expected].mean())

    mandible = head.skull.vertices[:, 1] < head.skull_landmarks["pogonion"][1] + 22.0  # below the tooth row
    no_mandible = _without(head.skull, mandible & ~np.asarray(head.skull_is_teeth, bool))
    assert missing_share(no_mandible, "chin") > 0.8 and missing_share(head.skull, "chin") < 0.05
    no_teeth = _without(head.skull, np.asarray(head.skull_is_teeth, bool))
    assert missing_share(no_teeth, "mouth") > missing_share(head.skull, "mouth") + 0.2
    with pytest.raises(ValueError, match="at least 10 training skulls"):
        fit_skull_space(np.zeros((4, 64, 64)), np.ones((4, 64, 64), bool))


def test_a_skull_cut_above_the_brow_is_measured_over_the_bone_it_has(space, new_heads):
    """A field-of-view cut leaves the skull about as far from the training skulls as it was whole: the bone it lacks
    is left out of the distance, not read as the training mean; an outsized skull cut the same way stays far out."""
    _, y = TINY_SPEC.view.pixel_centres()
    above_brow = (y > 45.0)[:, None]
    for head in new_heads[:4]:
        depth, mask = _depth(head.skull)
        cut = space.distance(depth, mask & ~above_brow)
        assert cut == pytest.approx(space.distance(depth, mask), rel=0.35)
        assert cut <= space.reference.max()
    big = new_heads[0].skull.copy()
    big.apply_scale(1.4)
    depth, mask = _depth(big)
    assert space.distance(depth, mask & ~above_brow) > 2 * space.reference.max()


def test_with_every_pixel_read_the_marginal_distance_is_the_closed_form(space, new_heads):
    from facegen.training.skull_space import _distances

    x = np.stack([space._vectors(*(a[None] for a in _depth(h.skull)))[0] for h in new_heads])
    centred = x - space.mean
    scores = centred @ space.modes.T
    rest = centred - scores @ space.modes
    d2 = (scores**2 / space.variances).sum(axis=1) + (rest**2).sum(axis=1) / space.rest_variance
    closed_form = np.sqrt(d2 / x.shape[1])  # the modes' Mahalanobis plus the rest over its variance, per pixel
    np.testing.assert_allclose(_distances(x, space, np.ones_like(x, bool)), closed_form, rtol=1e-6)
