"""Left-right asymmetry: a smooth random displacement field that is not mirrored across the midline.

Real skulls show a few millimetres of asymmetry (cfr-facts section 5; side differences of orbit height, width
and rim position of 0.4-1 mm on average, J Craniofac Surg 2020, 31(4):1082, doi 10.1097/SCS.0000000000006311).
The field is a sum of Gaussian bumps at random points of the skull, each with its own random displacement: no
bump has a mirror twin, so the two sides differ. It is read at the bone beneath each skin vertex as well, so the
face follows its own bone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegen.data.synthetic.fields import gaussian_bump

BUMPS = 8
RADIUS_MM = (25.0, 45.0)
"""Bump radii are drawn uniformly from this range: features of the size of an orbit to a cheek."""
DISPLACEMENT_SD_MM = 1.5
"""SD of each bump's displacement per axis; bilateral landmarks then differ by 1-2 mm between sides."""


@dataclass(frozen=True)
class Asymmetry:
    """Bump centres (K, 3), radii (K,) and displacement vectors (K, 3), mm."""

    centres: np.ndarray
    radii: np.ndarray
    vectors: np.ndarray

    @staticmethod
    def draw(sites: np.ndarray, rng: np.random.Generator) -> Asymmetry:
        """Bumps centred on randomly chosen `sites` (N, 3): points of the skull's surface."""
        centres = sites[rng.integers(len(sites), size=BUMPS)]
        radii = rng.uniform(*RADIUS_MM, size=BUMPS)
        return Asymmetry(centres, radii, rng.normal(0.0, DISPLACEMENT_SD_MM, size=(BUMPS, 3)))

    def displacement(self, points: np.ndarray) -> np.ndarray:
        """Displacement (N, 3) in mm at the points."""
        out = np.zeros_like(points)
        for centre, radius, vector in zip(self.centres, self.radii, self.vectors, strict=True):
            out += gaussian_bump(points, centre, radius)[:, None] * vector
        return out
