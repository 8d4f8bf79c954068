"""The mid-sagittal plane of a skull from the bone alone: the plane whose mirror image of the scan falls on itself.

A skull is close to mirror-symmetric, whatever its shape, size or state: the plane is found without any model,
from a scan in any orientation, with holes, noise, a missing mandible or vault. Candidate planes (through the
centroid, across each principal axis of the surface, and any the caller suggests) are refined by Gauss-Newton on
the point-to-plane distances between mirrored samples and the surface, trimmed, with mirrored normals that must
agree; the plane that mirrors most of the scan onto itself wins. It fixes two of the three rotations of the
canonical pose and one of its translations, the ones a skull model fitted to an unusual skull leaves loosest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegen.data.alignment.scan_surface import ScanSurfaces

SYMMETRY_POINTS = 3000
SYMMETRY_ITERATIONS = 25
SYMMETRY_REACH_MM = 30.0
TRIM_SHARE = 1.0
"""Each step solves on the closest 70 % of mirrored matches: asymmetric damage, holes and cuts drop out."""
MATCH_MM = 2.5
"""A mirrored sample matches when the surface is this close and faces the same way ..."""
NORMAL_AGREEMENT = 0.5
"""... (cosine of mirrored and surface normals above this)."""
DISTINCT_DEG = 10.0
MIN_MATCHES = 30
MIN_IN_VIEW_SHARE = 0.4
"""A plane that mirrors most samples out of view (off the scan) scores as if 40 % were in view."""
SCREEN_DIRECTIONS = 40
SCREEN_POINTS = 600
SCREEN_ITERATIONS = 6
REFINE_KEEP = 3
"""Start normals: the principal axes and 40 directions (none more than ~15 degrees from any plane's normal),
6 steps each on 600 samples; the 3 best distinct ones (10 degrees apart) refine on all samples."""


@dataclass(frozen=True)
class SymmetryPlane:
    """The plane n . x = offset (unit normal n, scan mm); `matched_share` of mirrored samples in view found the
    surface within MATCH_MM, their median distance `residual_mm`."""

    normal: np.ndarray
    offset: float
    matched_share: float
    residual_mm: float

    def reflect(self, points: np.ndarray) -> np.ndarray:
        """Points mirrored across the plane."""
        return points - 2.0 * (points @ self.normal - self.offset)[:, None] * self.normal

    def angle_deg(self, normal: np.ndarray) -> float:
        """Angle between this plane and the plane with the given normal (0-90 degrees)."""
        cosine = abs(float(self.normal @ normal)) / float(np.linalg.norm(normal))
        return float(np.degrees(np.arccos(np.clip(cosine, 0.0, 1.0))))


def _tangent_basis(normal: np.ndarray) -> np.ndarray:
    """Two unit vectors (rows) perpendicular to `normal` and to each other."""
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    first = np.cross(normal, helper)
    first /= np.linalg.norm(first)
    return np.stack([first, np.cross(normal, first)])


def _matches(surfaces: ScanSurfaces, points: np.ndarray, normals: np.ndarray, normal: np.ndarray, offset: float):
    """Mirrored samples, their nearest surface points and normals, and which of them agree (and are in view)."""
    mirrored = points - 2.0 * (points @ normal - offset)[:, None] * normal
    mirrored_normals = normals - 2.0 * (normals @ normal)[:, None] * normal
    d, nearest, target_normals = surfaces.query(mirrored, reach_mm=SYMMETRY_REACH_MM)
    agree = np.isfinite(d) & (np.einsum("ij,ij->i", mirrored_normals, target_normals) > NORMAL_AGREEMENT)
    return d, nearest, target_normals, agree


def refine_plane(
    surfaces: ScanSurfaces,
    points: np.ndarray,
    normals: np.ndarray,
    normal: np.ndarray,
    offset: float,
    iterations: int = SYMMETRY_ITERATIONS,
) -> SymmetryPlane:
    """Gauss-Newton on the plane (two tilts and the offset) from a start, on trimmed point-to-plane distances."""
    normal = np.asarray(normal, float) / np.linalg.norm(normal)
    centre = points.mean(axis=0)
    for _ in range(iterations):
        d, nearest, target_normals, agree = _matches(surfaces, points, normals, normal, offset)
        if agree.sum() < MIN_MATCHES:
            break
        keep = agree & (d <= np.quantile(d[agree], TRIM_SHARE))
        p, q, m = points[keep], nearest[keep], target_normals[keep]
        signed = p @ normal - offset
        residual = np.einsum("ij,ij->i", m, p - 2.0 * signed[:, None] * normal - q)
        basis = _tangent_basis(normal)
        # mirrored point p - 2 (n.p - c) n: tilting n by t (tangent) about the samples' centre moves it by
        # -2 ((t.(p - centre)) n + (n.p - c) t); moving c moves it by 2 n
        along = -2.0 * (((p - centre) @ basis.T) * (m @ normal)[:, None] + signed[:, None] * (m @ basis.T))
        jacobian = np.hstack([along, 2.0 * (m @ normal)[:, None]])
        step = -np.linalg.solve(jacobian.T @ jacobian + 1e-6 * np.eye(3), jacobian.T @ residual)
        at_centre = offset - float(normal @ centre) + float(step[2])
        normal = normal + step[:2] @ basis
        normal /= np.linalg.norm(normal)
        offset = at_centre + float(normal @ centre)
        if np.linalg.norm(step[:2]) < 1e-5 and abs(step[2]) < 1e-3:
            break
    d, _, _, agree = _matches(surfaces, points, normals, normal, offset)
    matched = agree & (d < MATCH_MM)
    share = float(matched.sum() / max(np.isfinite(d).sum(), MIN_IN_VIEW_SHARE * len(d), 1))
    residual_mm = float(np.median(d[matched])) if matched.any() else float("inf")
    return SymmetryPlane(normal, offset, share, residual_mm)


def _directions(count: int) -> np.ndarray:
    """`count` unit vectors spread evenly over a hemisphere (a Fibonacci lattice): plane normals to start from."""
    k = np.arange(count) + 0.5
    z = k / count
    angle = np.pi * (1.0 + np.sqrt(5.0)) * k
    r = np.sqrt(1.0 - z**2)
    return np.stack([r * np.cos(angle), r * np.sin(angle), z], axis=1)


def symmetry_plane(
    surfaces: ScanSurfaces, suggested: list[tuple[np.ndarray, float]] | None = None, seed: int = 0
) -> SymmetryPlane:
    """The scan's plane of mirror symmetry, from any orientation: planes through the centroid across the
    principal axes and across directions spread over the sphere (and any suggested) get a few steps on a few
    samples; the best refine on more; the plane that mirrors most of the scan onto itself wins."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(surfaces.points), min(SYMMETRY_POINTS, len(surfaces.points)), replace=False)
    points, normals = surfaces.points[pick], surfaces.normals[pick]
    centre = surfaces.centroid
    _, axes = np.linalg.eigh(np.cov((surfaces.points - centre).T))
    directions = np.concatenate([axes.T, _directions(SCREEN_DIRECTIONS)])
    starts = [(n, float(n @ centre)) for n in directions] + list(suggested or [])
    few = slice(0, SCREEN_POINTS)
    screened = [refine_plane(surfaces, points[few], normals[few], n, c, SCREEN_ITERATIONS) for n, c in starts]
    distinct: list[SymmetryPlane] = []
    for plane in sorted(screened, key=lambda p: -p.matched_share):
        if all(plane.angle_deg(other.normal) > DISTINCT_DEG for other in distinct):
            distinct.append(plane)
    refined = [refine_plane(surfaces, points, normals, p.normal, p.offset) for p in distinct[:REFINE_KEEP]]
    return max(refined, key=lambda p: p.matched_share)
