"""The fast morphology and block sums of the segmentation against scipy's morphology and plain block sums."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from facegen.data.scans.blocks import block_mean, block_share, tissue_shares
from facegen.data.scans.morphology import (
    ball_dilated,
    ball_element,
    ball_eroded,
    cube_dilated,
    cube_eroded,
    eroded_by_steps,
)


def test_fast_morphology_is_ndimage_morphology() -> None:
    # the separable cube, the ball by rows and the slab-wise block sums give exactly what scipy's morphology and
    # plain block sums give, for any shape (slabs and short edge blocks included) and any spacing
    rng = np.random.default_rng(3)
    cube = ndimage.generate_binary_structure(3, 3)
    shapes = [(61, 17, 13), (1, 9, 30)] + [tuple(int(n) for n in rng.integers(1, 40, 3)) for _ in range(20)]
    for shape in shapes:
        mask = ndimage.uniform_filter(rng.random(shape), 3) > rng.uniform(0.3, 0.7)
        for reach in (1, 2):
            assert np.array_equal(cube_dilated(mask, reach), ndimage.binary_dilation(mask, cube, iterations=reach))
            eroded = ndimage.binary_erosion(mask, cube, iterations=reach, border_value=1)
            assert np.array_equal(cube_eroded(mask, reach), eroded)
        spacing = rng.choice([0.5, 0.6, 0.9, 1.0, 1.25, 1.5, 2.0], 3)
        radius = float(rng.choice([1.0, 2.5, 4.0]))
        ball = ball_element(radius, spacing)
        assert np.array_equal(ball_eroded(mask, radius, spacing), ndimage.binary_erosion(mask, ball, border_value=1))
        assert np.array_equal(ball_dilated(mask, radius, spacing), ndimage.binary_dilation(mask, ball))
        factors = rng.integers(1, 4, 3)
        raw, eroded, counts = tissue_shares(mask, factors)
        assert np.array_equal(raw, block_share(mask, factors)[0])
        assert np.array_equal(eroded, block_share(eroded_by_steps(mask, np.maximum(factors - 1, 1)), factors)[0])
        values = rng.integers(-1000, 3000, shape).astype(np.int16)
        sums = values.astype(np.float64)
        for axis in range(3):
            sums = np.add.reduceat(sums, np.arange(0, shape[axis], factors[axis]), axis=axis)
        assert np.allclose(block_mean(values, factors), sums / counts, rtol=0, atol=1e-3)
