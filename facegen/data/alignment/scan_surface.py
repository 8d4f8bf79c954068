"""A scan's surfaces (bone, and skin when known) as dense samples that answer nearest-point queries.

What the fits need from a scan: for a model point, the nearest scan surface, its normal, and whether the scan
could have shown bone there. Normals are averaged over a few millimetres, so a noisy or very fine mesh (a
surface scanner at 0.5 mm) gives the same normals as a smooth CT surface. A skull mesh has no field of view,
but its open border (the edge of a hole, a CT cut, a scanner's blind spot) says where the scan saw nothing:
a point whose nearest surface is that border is out of view, not unmatched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh
from scipy.spatial import cKDTree

TARGET_POINTS = 60_000
"""Samples per surface: about one per 1.5 mm^2 of a skull."""
NORMAL_RADIUS_MM = 2.5
NORMAL_NEIGHBOURS = 16
"""A sample's normal is the mean of its facing neighbours' within this radius (at most this many)."""
BORDER_SPACINGS = 1.5
"""A sample this many sample spacings from an open edge of the mesh counts as its border."""


def smoothed_normals(points: np.ndarray, normals: np.ndarray, tree: cKDTree) -> np.ndarray:
    """Unit normals averaged over the facing samples within NORMAL_RADIUS_MM: scanner noise and fine triangles
    tilt single faces, not their mean (neighbours facing away, across a thin bone, are left out)."""
    _, j = tree.query(points, k=NORMAL_NEIGHBOURS, distance_upper_bound=NORMAL_RADIUS_MM)
    found = j < len(points)
    neighbours = normals[np.where(found, j, 0)]
    facing = found & (np.einsum("nkj,nj->nk", neighbours, normals) > 0.0)
    total = np.einsum("nk,nkj->nj", facing.astype(float), neighbours)
    length = np.linalg.norm(total, axis=1, keepdims=True)
    return np.where(length > 1e-9, total / np.maximum(length, 1e-9), normals)


def near_border(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Which surface samples lie at the mesh's open border (edges with one triangle: holes, cuts), within
    BORDER_SPACINGS sample spacings of it."""
    edges = trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1)
    if len(edges) == 0:
        return np.zeros(len(points), bool)
    spacing = float(np.sqrt(mesh.area / len(points)))
    ends = np.asarray(mesh.vertices)[mesh.edges_sorted[edges]]
    longest = float(np.max(np.linalg.norm(ends[:, 1] - ends[:, 0], axis=1)))
    steps = np.linspace(0.0, 1.0, max(2, int(np.ceil(longest / spacing)) + 1))[None, :, None]
    along = (ends[:, :1] * (1.0 - steps) + ends[:, 1:] * steps).reshape(-1, 3)
    return cKDTree(along).query(points, distance_upper_bound=BORDER_SPACINGS * spacing)[0] < np.inf


class ScanSurfaces:
    """Sampled scan surfaces (bone, and skin when given) answering nearest-point queries for model points.

    `field_of_view(points) -> bool` says which points the scan could show (a CT's box); without it, and for
    every mesh, points whose nearest surface is the mesh's open border are out of view. `smooth_normals` off
    keeps each sample's own triangle's normal (a CT's smoothed surface needs no more)."""

    def __init__(
        self,
        skull: trimesh.Trimesh,
        face: trimesh.Trimesh | None = None,
        seed: int = 0,
        field_of_view: Callable[[np.ndarray], np.ndarray] | None = None,
        smooth_normals: bool = True,
    ) -> None:
        self.field_of_view = field_of_view
        self.parts: list[tuple[cKDTree, np.ndarray, np.ndarray] | None] = []
        for mesh in (skull, face):
            if mesh is None:
                self.parts.append(None)
                continue
            points, faces = trimesh.sample.sample_surface(mesh, TARGET_POINTS, seed=seed)
            tree = cKDTree(points)
            normals = np.asarray(mesh.face_normals)[faces]
            normals = smoothed_normals(points, normals, tree) if smooth_normals else normals
            self.parts.append((tree, normals, near_border(mesh, points)))
        bone_tree, bone_normals, bone_border = self.parts[0]
        self.points, self.normals, self.border = bone_tree.data, bone_normals, bone_border
        self.centroid = self.points.mean(axis=0)

    def query(
        self, points: np.ndarray, is_face: np.ndarray | None = None, reach_mm: float = np.inf
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distance, nearest point and its normal per point (skin points, `is_face`, look on the skin).

        Out of view (outside the field of view, or nearest to the mesh's open border): infinite distance,
        nothing there can match. No surface within `reach_mm` (a bound that makes the tree search fast): in view
        but unmatched, distance `reach_mm` and a zero normal, which never agrees, so the point is never used."""
        is_face = np.zeros(len(points), bool) if is_face is None else is_face
        d = np.full(len(points), np.inf)
        nearest = np.zeros_like(points)
        normals = np.zeros_like(points)
        for part, select in zip(self.parts, (~is_face, is_face), strict=True):
            if part is None or not select.any():
                continue
            tree, part_normals, border = part
            dist, j = tree.query(points[select], distance_upper_bound=reach_mm)
            found = j < len(tree.data)
            j = np.where(found, j, 0)
            beyond = np.zeros_like(found)
            if border.any() and not found.all():  # nothing within reach: is the nearest surface, further out, a border?
                beyond[~found] = border[tree.query(points[select][~found])[1]]
            d[select] = np.where(found, np.where(border[j], np.inf, dist), np.where(beyond, np.inf, reach_mm))
            nearest[select] = np.where(found[:, None], tree.data[j], points[select])
            normals[select] = np.where(found[:, None], part_normals[j], 0.0)
        if self.field_of_view is not None:
            d[~self.field_of_view(points)] = np.inf
        return d, nearest, normals
