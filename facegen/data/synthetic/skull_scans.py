"""Skull surface scans of synthetic heads, degraded as a laboratory scanner or photogrammetry leaves them.

A real skull mesh comes in any orientation, position and units, at 0.5-3 mm resolution, with holes where the
scanner saw nothing, vertex noise, and often without its mandible. These meshes carry the true pose (the
synthetic head's canonical frame), so the bone-only alignment can be measured against it. Every random step
draws from one seeded generator: the same head, spec and seed give the same mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

import fast_simplification
import numpy as np
import trimesh
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from facegen.data.pose import RigidTransform
from facegen.data.scans.meshes import UNIT_SCALES
from facegen.data.synthetic.generator import SyntheticHead

SHIFT_MM = 300.0
"""A scan's origin lies anywhere within this distance of the skull (per axis): scanners put it where they like."""
SUBDIVIDE_FACTOR = 1.2
"""Triangles are split while their mean edge is longer than the resolution times this (then decimated to it)."""


@dataclass(frozen=True)
class SkullScanSpec:
    """How a skull scan is degraded: mesh resolution (mean edge, mm), vertex noise (SD along the normal, mm),
    holes (count and radius, mm), whether the mandible is there, whether it is turned and moved, and its units."""

    resolution_mm: float = 1.0
    noise_mm: float = 0.0
    holes: int = 0
    hole_radius_mm: float = 12.0
    mandible: bool = True
    posed: bool = True
    units: str = "mm"


@dataclass(frozen=True)
class SkullScan:
    """A degraded skull mesh in its scan's coordinates and units, and the true canonical-to-scan transform (mm)."""

    mesh: trimesh.Trimesh
    canonical_to_scan: RigidTransform
    spec: SkullScanSpec

    @property
    def scan_to_canonical(self) -> RigidTransform:
        """The true pose an alignment of this mesh (read in mm) should find."""
        return self.canonical_to_scan.inverse()


def without_mandible(head: SyntheticHead) -> trimesh.Trimesh:
    """The skull less its mandible (its own piece, the one at pogonion) and the teeth nearer it than the cranium."""
    pieces = head.skull.split(only_watertight=False)
    pogonion = head.skull_landmarks["pogonion"]
    mandible = min(pieces, key=lambda p: np.linalg.norm(p.nearest.on_surface(pogonion[None])[0] - pogonion))
    cranium = max(pieces, key=lambda p: len(p.vertices))
    kept = []
    for piece in pieces:
        if piece is mandible:
            continue
        centre = piece.vertices.mean(axis=0)[None]
        to_cranium = trimesh.proximity.closest_point(cranium, centre)[1][0]
        if piece is cranium or to_cranium < trimesh.proximity.closest_point(mandible, centre)[1][0]:
            kept.append(piece)
    return trimesh.util.concatenate(kept)


def resample(mesh: trimesh.Trimesh, resolution_mm: float) -> trimesh.Trimesh:
    """The surface re-triangulated to a mean edge near `resolution_mm`: split in four (each edge halved) until
    fine enough, then decimated (quadric) to the triangle count of that edge length."""
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    mean_edge = float(mesh.edges_unique_length.mean())
    while mean_edge > resolution_mm * SUBDIVIDE_FACTOR:
        vertices, faces = trimesh.remesh.subdivide(vertices, faces)
        mean_edge /= 2.0
    keep = (mean_edge / resolution_mm) ** 2
    if keep < 0.95:
        vertices, faces = fast_simplification.simplify(
            np.asarray(vertices, np.float32), np.asarray(faces, np.int32), target_reduction=1.0 - keep
        )
    return trimesh.Trimesh(np.asarray(vertices, float), faces)


def punch_holes(mesh: trimesh.Trimesh, count: int, radius_mm: float, rng: np.random.Generator) -> trimesh.Trimesh:
    """The mesh with `count` round holes (triangles near random surface points removed): what a scanner missed."""
    if count == 0:
        return mesh
    centres, _ = trimesh.sample.sample_surface(mesh, count, seed=int(rng.integers(2**31)))
    near = cKDTree(centres).query(mesh.vertices, distance_upper_bound=radius_mm)[0] < radius_mm
    out = mesh.copy()
    out.update_faces(~near[mesh.faces].any(axis=1))
    out.remove_unreferenced_vertices()
    return out


def add_noise(mesh: trimesh.Trimesh, sd_mm: float, rng: np.random.Generator) -> trimesh.Trimesh:
    """The mesh with every vertex moved along its normal by independent Gaussian noise (scanner noise)."""
    if sd_mm == 0.0:
        return mesh
    out = mesh.copy()
    out.vertices = mesh.vertices + mesh.vertex_normals * rng.normal(0.0, sd_mm, len(mesh.vertices))[:, None]
    return out


def random_pose(rng: np.random.Generator) -> RigidTransform:
    """A uniformly random rotation and a shift of up to SHIFT_MM per axis."""
    rotation = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
    return RigidTransform(rotation, rng.uniform(-SHIFT_MM, SHIFT_MM, 3))


def pose_error(found: RigidTransform, truth: RigidTransform, at: list[np.ndarray]) -> tuple[float, float]:
    """(degrees, mm) between two scan-to-canonical transforms: the angle of the rotation between them, and the
    furthest that the canonical points `at` (e.g. mid-porion, the origin, and nasion) move from one to the other."""
    difference = found.as_matrix() @ truth.inverse().as_matrix()
    degrees = float(np.degrees(np.linalg.norm(Rotation.from_matrix(difference[:3, :3]).as_rotvec())))
    moved = [float(np.linalg.norm(difference[:3, :3] @ p + difference[:3, 3] - p)) for p in at]
    return degrees, max(moved)


def skull_scan(head: SyntheticHead, spec: SkullScanSpec, seed: int) -> SkullScan:
    """A synthetic head's skull as a degraded scan: mandible kept or not, resampled, holed, noisy, posed, in units."""
    if spec.units not in UNIT_SCALES:
        raise ValueError(f"unknown units {spec.units!r}; use one of {', '.join(UNIT_SCALES)}")
    rng = np.random.default_rng(seed)
    mesh = head.skull if spec.mandible else without_mandible(head)
    mesh = resample(mesh, spec.resolution_mm)
    mesh = punch_holes(mesh, spec.holes, spec.hole_radius_mm, rng)
    mesh = add_noise(mesh, spec.noise_mm, rng)
    pose = random_pose(rng) if spec.posed else RigidTransform(np.eye(3), np.zeros(3))
    vertices = pose.apply(np.asarray(mesh.vertices)) / UNIT_SCALES[spec.units]
    return SkullScan(trimesh.Trimesh(vertices, mesh.faces, process=False), pose, spec)
