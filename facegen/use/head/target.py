"""The reconstructed face as a surface to fit to: nearest points, their normals, and where the surface ends.

The face is facegen's reconstructed face mesh in the canonical frame (a frontal height field or another open
surface facing +z, or a 3D model's closed head surface). Matches are found by the nearest face vertex and
moved onto its tangent plane, which follows the surface between vertices as closely as an exact closest-point
query at a fraction of its cost; a match on the face's open border (where the reconstruction stops) or on
surface facing away is no match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class Matches:
    """Per queried point: `valid`, the matched point on the face (`point`, on its tangent plane), the face's
    unit normal there and the index of the face vertex matched."""

    valid: np.ndarray
    point: np.ndarray
    normal: np.ndarray
    vertex: np.ndarray


class TargetFace:
    """The reconstructed face mesh, indexed for nearest-point matches."""

    def __init__(self, face: trimesh.Trimesh) -> None:
        if not isinstance(face, trimesh.Trimesh):
            raise ValueError(f"the face must be a trimesh.Trimesh, got {type(face).__name__}")
        if len(face.faces) == 0:
            raise ValueError("the face mesh has no triangles: there is no surface to fit the head to")
        vertices = np.asarray(face.vertices, np.float64)
        if not np.isfinite(vertices).all():
            raise ValueError("the face mesh has non-finite vertices")
        self.mesh = trimesh.Trimesh(vertices, np.asarray(face.faces, np.int64), process=False)
        normals = np.asarray(self.mesh.vertex_normals, np.float64)
        # a whole head (a 3D model's surface) must have its normals point out of it; an open face must face +z
        closed = self.mesh.is_watertight
        inside_out = self.mesh.volume < 0 if closed else np.median(normals[:, 2]) < 0
        if inside_out:  # the winding was reversed
            normals = -normals
        self.normals = normals
        self.on_border = self._border_vertices(np.asarray(self.mesh.faces))
        self.tree = cKDTree(vertices)

    def _border_vertices(self, faces: np.ndarray) -> np.ndarray:
        """(N,) whether each vertex lies on an open edge of the surface (used by one triangle only)."""
        edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
        unique, counts = np.unique(edges, axis=0, return_counts=True)
        border = np.zeros(len(self.mesh.vertices), bool)
        border[unique[counts == 1].ravel()] = True
        return border

    def match(self, points: np.ndarray, normals: np.ndarray, *, max_distance_mm: float,
              min_normal_agreement: float = 0.3) -> Matches:  # fmt: skip
        """Matches for points (N, 3) whose surface normals (N, 3) are given: the nearest face vertex within
        `max_distance_mm`, not on the face's border, its normal within ~73 degrees of the point's, moved onto the
        face's tangent plane there."""
        distance, vertex = self.tree.query(points)
        normal = self.normals[vertex]
        agree = np.einsum("ij,ij->i", normal, normals) >= min_normal_agreement
        valid = (distance <= max_distance_mm) & ~self.on_border[vertex] & agree
        along = np.einsum("ij,ij->i", self.mesh.vertices[vertex] - points, normal)
        return Matches(valid, points + along[:, None] * normal, normal, vertex)

    def surface_distance(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact distance (mm) from each point to the face surface, and whether its closest point lies inside the
        surface rather than on its border (where the reconstruction stops and the distance says nothing)."""
        closest, distance, _ = trimesh.proximity.closest_point(self.mesh, points)
        _, vertex = self.tree.query(closest)
        return np.asarray(distance, np.float64), ~self.on_border[vertex]

    def nearest_vertex(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance to and index of the nearest face vertex for each point."""
        distance, vertex = self.tree.query(points)
        return distance, vertex
