"""3D representation: occupancy grids of skull and face in the canonical frame.

A grid is an axis-aligned box in the canonical frame sampled at `shape` voxel centres (x, y, z order);
voxel (i, j, k) is 1 when its centre lies inside the closed surface. The default is 128^3 over a 256 mm
cube (2 mm voxels) for CPU work; the seeds' 512 x 512 x 102 is the same code with another shape.
Occupancy is computed column by column from ray/surface crossings, so memory grows with the grid only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from facegen.data.raycast import inside_intervals

SEED_GRID_SHAPE = (512, 512, 102)
"""The voxel resolution of the published 3D GAN studies."""


@dataclass(frozen=True)
class GridSpec:
    """A box in the canonical frame: `shape` voxels (x, y, z) spanning `extent_mm` around `centre_mm`."""

    shape: tuple[int, int, int] = (128, 128, 128)
    extent_mm: tuple[float, float, float] = (256.0, 256.0, 256.0)
    centre_mm: tuple[float, float, float] = (0.0, -3.0, -4.0)

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or min(self.shape) < 2:
            raise ValueError(f"grid shape {self.shape} must be three sizes of at least 2")
        if min(self.extent_mm) <= 0:
            raise ValueError(f"grid extent {self.extent_mm} mm must be positive")

    @property
    def spacing_mm(self) -> np.ndarray:
        """Voxel size (x, y, z) in mm."""
        return np.asarray(self.extent_mm) / np.asarray(self.shape)

    @property
    def origin_mm(self) -> np.ndarray:
        """Centre of voxel (0, 0, 0) in mm."""
        return np.asarray(self.centre_mm) - np.asarray(self.extent_mm) / 2 + self.spacing_mm / 2

    def axis_centres(self, axis: int) -> np.ndarray:
        """Voxel centre coordinates (mm) along one axis."""
        return self.origin_mm[axis] + np.arange(self.shape[axis]) * self.spacing_mm[axis]


@dataclass(frozen=True)
class VoxelGrid:
    """Occupancy (uint8, 0 or 1) on a grid spec."""

    occupancy: np.ndarray
    spec: GridSpec


def _column_axis(shape: tuple[int, int, int]) -> int:
    """Cast rays along the longest axis: fewest rays for the same voxels."""
    return int(np.argmax(shape))


def voxelize(mesh: trimesh.Trimesh, spec: GridSpec | None = None) -> VoxelGrid:
    """Occupancy of a closed mesh at the voxel centres of `spec`."""
    spec = spec or GridSpec()
    axis = _column_axis(spec.shape)
    others = [a for a in range(3) if a != axis]
    u, v = np.meshgrid(spec.axis_centres(others[0]), spec.axis_centres(others[1]), indexing="ij")
    start = spec.origin_mm[axis] - spec.spacing_mm[axis] - 1.0
    origins = np.zeros((u.size, 3))
    origins[:, others[0]], origins[:, others[1]], origins[:, axis] = u.ravel(), v.ravel(), start
    direction = np.zeros(3)
    direction[axis] = 1.0
    intervals = inside_intervals(mesh, origins, direction)
    t = spec.axis_centres(axis) - start
    inside = np.zeros((len(origins), len(t)), dtype=bool)
    for p in range(intervals.shape[1]):
        entry, exit_ = intervals[:, p, 0:1], intervals[:, p, 1:2]
        inside |= (t[None, :] >= entry) & (t[None, :] < exit_)
    columns = inside.reshape(spec.shape[others[0]], spec.shape[others[1]], spec.shape[axis])
    occupancy = np.moveaxis(columns, [0, 1, 2], [others[0], others[1], axis])
    return VoxelGrid(np.ascontiguousarray(occupancy, dtype=np.uint8), spec)
