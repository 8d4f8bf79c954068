"""Both representations of one head, from its skull and face meshes in the canonical frame.

The one path that synthetic heads and real scans share: whatever produced the meshes, the models see the
same depth maps, masks and grids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh

from facegen.data.representations.depth_map import DepthMap, DepthView, render_depth_map
from facegen.data.representations.mandibular_plane import without_neck_bones
from facegen.data.representations.voxel_grid import GridSpec, VoxelGrid, voxelize

FACE_REGION_CENTRE_MM = (0.0, -5.0)
FACE_REGION_RADII_MM = (68.0, 88.0)
"""The facial area where faces are compared (canonical frame, frontal view): an ellipse from above the
brow (supraglabella ~ +71 mm) to below the chin (menton ~ -85 mm) and out to the zygomatic arches."""


@dataclass(frozen=True)
class RepresentationSpec:
    """How heads are represented: the depth-map view and the voxel grid."""

    view: DepthView = field(default_factory=DepthView)
    grid: GridSpec = field(default_factory=GridSpec)

    def to_dict(self) -> dict[str, object]:
        """Plain values for the dataset card."""
        return {
            "depth_map": self.view.to_dict(),
            "grid": {
                "shape": list(self.grid.shape),
                "extent_mm": list(self.grid.extent_mm),
                "centre_mm": list(self.grid.centre_mm),
            },
        }

    @staticmethod
    def from_dict(d: dict) -> RepresentationSpec:
        """Inverse of `to_dict`."""
        dm, g = d["depth_map"], d["grid"]
        return RepresentationSpec(
            DepthView.from_dict(dm),
            GridSpec(tuple(g["shape"]), tuple(g["extent_mm"]), tuple(g["centre_mm"])),
        )


FIELD_OF_VIEW_MM = 256.0
"""Depth maps and grids cover the same 256 mm square/cube whatever their size (2 mm pixels at 128^2)."""


def square_spec(size: int, grid_shape: tuple[int, int, int]) -> RepresentationSpec:
    """Square depth maps of `size` pixels over the 256 mm field of view, and grids of `grid_shape`."""
    return RepresentationSpec(DepthView(shape=(size, size), pixel_mm=FIELD_OF_VIEW_MM / size), GridSpec(grid_shape))


@dataclass(frozen=True)
class HeadRepresentations:
    """Depth maps (skull, face, and the noise-free face where known), the face region and the grids."""

    skull_depth: DepthMap
    face_depth: DepthMap
    face_region: np.ndarray
    skull_grid: VoxelGrid | None
    face_grid: VoxelGrid | None
    noise_free_face_depth: DepthMap | None = None


def in_face_region(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether canonical (x, y) in mm lie inside the face region ellipse, seen from the front."""
    (cx, cy), (rx, ry) = FACE_REGION_CENTRE_MM, FACE_REGION_RADII_MM
    return ((np.asarray(x) - cx) / rx) ** 2 + ((np.asarray(y) - cy) / ry) ** 2 <= 1.0


def face_region_mask(view: DepthView) -> np.ndarray:
    """Pixels of the facial area (bool, H x W) in a frontal view."""
    x, y = view.pixel_centres()
    return in_face_region(*np.meshgrid(x, y))


def represent(
    skull: trimesh.Trimesh,
    face: trimesh.Trimesh,
    *,
    spec: RepresentationSpec | None = None,
    noise_free_face: trimesh.Trimesh | None = None,
    grids: bool = True,
    skull_landmarks: dict[str, np.ndarray] | None = None,
) -> HeadRepresentations:
    """Render depth maps and voxel grids of a head already in the canonical frame; with the skull's landmarks, the
    skull as the models read it, without the neck's bones below the mandible (`mandibular_plane`)."""
    spec = spec or RepresentationSpec()
    if skull_landmarks is not None:
        skull, _ = without_neck_bones(skull, skull_landmarks)
    face_depth = render_depth_map(face, spec.view)
    return HeadRepresentations(
        skull_depth=render_depth_map(skull, spec.view),
        face_depth=face_depth,
        face_region=face_region_mask(spec.view) & face_depth.mask,
        skull_grid=voxelize(skull, spec.grid) if grids else None,
        face_grid=voxelize(face, spec.grid) if grids else None,
        noise_free_face_depth=render_depth_map(noise_free_face, spec.view) if noise_free_face is not None else None,
    )
