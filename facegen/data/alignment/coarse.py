"""The coarse rigid search that finds the basin of a skull model fit: starting orientations and trimmed ICP.

Starts: for a scan whose axes are known (a CT), small tilts of the identity; for a scan in any orientation (a
skull mesh), turns that put the model's mid-sagittal plane on the scan's plane of symmetry, every 15 degrees
about its normal and both ways round, or, when the scan shows no clear symmetry, turns spread over all
orientations. Each start gets a short trimmed point-to-point ICP of the mean shape on a few points; the best
few go on with more points.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from facegen.data.alignment.scan_surface import ScanSurfaces
from facegen.data.alignment.skull_model import SkullShapeModel
from facegen.data.alignment.symmetry import SymmetryPlane

COARSE_POINTS = 1000
COARSE_ITERATIONS = 25
SCREEN_POINTS = 300
SCREEN_ITERATIONS = 12
SCREEN_KEEP = 6
TRIM_SHARE = 0.8
"""Coarse ICP solves on the closest 80 % of matches (the scan may lack or add bone) ..."""
COARSE_MATCH_MM = 4.0
"""... and scores a pose by the share of model points with a scan surface this close, facing the same way."""
NORMAL_AGREEMENT = 0.5
SCREEN_REACH_MM = 80.0
COARSE_REACH_MM = 40.0
MIN_MATCHES = 10
MIN_VISIBLE_SHARE = 0.4
KNOWN_ORIENTATION_TILT_DEG = 20.0
"""Starts for scans whose axes are known: the identity and turns of once and twice this about each axis."""
PLANE_TURN_DEG = 15.0
"""Starts on a symmetry plane: turns about its normal this far apart (none more than 7.5 degrees off)."""
DISTINCT_DEG = 5.0
SCALE_RANGE = (0.85, 1.18)
"""A scaled coarse fit may shrink or grow the mean shape this much (adult skulls: about +-8 %)."""

Candidate = tuple[float, np.ndarray, np.ndarray]
"""(score, model-to-scan rotation, translation) of a coarse pose."""


def start_rotations(orientation_known: bool, plane: SymmetryPlane | None = None) -> list[np.ndarray]:
    """Model-to-scan rotations to start from: small tilts of the identity (axes known), turns on the symmetry
    plane (when one is given), or the 24 axis-aligned turns and the 60 of the icosahedron (none ~25 degrees away)."""
    if orientation_known:
        out = [np.eye(3)]
        for axis in np.eye(3):
            for angle in (-2.0, -1.0, 1.0, 2.0):
                out.append(Rotation.from_rotvec(axis * angle * np.radians(KNOWN_ORIENTATION_TILT_DEG)).as_matrix())
        return out
    if plane is not None:
        return plane_rotations(plane.normal)
    return [*Rotation.create_group("O").as_matrix(), *Rotation.create_group("I").as_matrix()]


def plane_rotations(normal: np.ndarray) -> list[np.ndarray]:
    """Rotations taking the model's left (+x) to +-`normal`, turned about it every PLANE_TURN_DEG."""
    out = []
    for sign in (1.0, -1.0):
        left = sign * np.asarray(normal, float) / np.linalg.norm(normal)
        up = np.cross(left, np.eye(3)[int(np.argmin(np.abs(left)))])
        up /= np.linalg.norm(up)
        base = np.column_stack([left, up, np.cross(left, up)])
        for turn in np.arange(0.0, 360.0, PLANE_TURN_DEG):
            out.append(base @ Rotation.from_rotvec([np.radians(turn), 0.0, 0.0]).as_matrix())
    return out


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation between two rotation matrices."""
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0))))


def procrustes(source: np.ndarray, target: np.ndarray, scaled: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares rotation, translation (and, when `scaled`, scale within SCALE_RANGE) taking source points
    onto target points: target ~ scale * rotation @ source + translation."""
    ms, mt = source.mean(axis=0), target.mean(axis=0)
    a, b = source - ms, target - mt
    u, singular, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float(np.clip(np.trace(np.diag(singular) @ d) / np.sum(a * a), *SCALE_RANGE)) if scaled else 1.0
    return rotation, mt - scale * rotation @ ms, scale


def share(matched: np.ndarray, visible: np.ndarray) -> float:
    """Share of the model points in view that matched; a pose that hides most of the model scores low."""
    return float(matched.sum() / max(visible.sum(), MIN_VISIBLE_SHARE * len(visible), 1))


def _icp(
    source, source_normals, is_face, surfaces: ScanSurfaces, rotation, translation, iterations: int, reach: float,
    scaled: bool, scale: float = 1.0,
):  # fmt: skip
    """Trimmed rigid (or, `scaled`, similarity) ICP of model points onto the scan, opposing normals dropped.

    Returns (score, rotation, translation, scale); the score is the share of points with a close, agreeing
    match (higher is better): a pose matching the bone that is there beats one matching much bone loosely."""
    for _ in range(iterations):
        d, nearest, normals = surfaces.query(scale * source @ rotation.T + translation, is_face, reach)
        agree = np.einsum("ij,ij->i", source_normals @ rotation.T, normals) > NORMAL_AGREEMENT
        agree &= np.isfinite(d)
        if agree.sum() < MIN_MATCHES:
            break
        keep = agree & (d <= np.quantile(d[agree], TRIM_SHARE))
        rotation, translation, scale = procrustes(source[keep], nearest[keep], scaled)
    d, _, normals = surfaces.query(scale * source @ rotation.T + translation, is_face, reach)
    agree = np.einsum("ij,ij->i", source_normals @ rotation.T, normals) > NORMAL_AGREEMENT
    return share(agree & (d < COARSE_MATCH_MM), np.isfinite(d)), rotation, translation, scale


def distinct(results: list) -> list:
    """Results (score, rotation, ...) best first, dropping any within DISTINCT_DEG of a better one."""
    out: list = []
    for item in sorted(results, key=lambda r: -r[0]):
        if all(angle_deg(item[1], other[1]) > DISTINCT_DEG for other in out):
            out.append(item)
    return out


def coarse_poses(
    model: SkullShapeModel, use: np.ndarray, surfaces: ScanSurfaces, starts: list[np.ndarray], scaled: bool = False
) -> list[Candidate]:
    """Rigid poses of the mean shape reached by ICP from each start, best first, near-duplicates dropped.

    `scaled`: the ICP may also scale the mean shape (a bone-only fit: without skin, a skull larger or smaller
    than the mean matches best a few degrees nodded, and a pose is scored on the shape it has); the poses
    returned put the unscaled mean's centre where the scaled one's was."""
    rng = np.random.default_rng(0)
    idx = rng.choice(np.flatnonzero(use), min(COARSE_POINTS, int(use.sum())), replace=False)
    source, normals, is_face = model.mean[idx], model.normals[idx], model.is_face[idx]
    head = slice(0, SCREEN_POINTS)
    bone_centre = source[head][~is_face[head]].mean(axis=0)
    screened = [
        _icp(
            source[head],
            normals[head],
            is_face[head],
            surfaces,
            r,
            surfaces.centroid - r @ bone_centre,
            SCREEN_ITERATIONS,
            SCREEN_REACH_MM,
            scaled,
        )  # fmt: skip
        for r in starts
    ]
    refined = [
        _icp(source, normals, is_face, surfaces, r, t, COARSE_ITERATIONS, COARSE_REACH_MM, scaled, scale)
        for _, r, t, scale in distinct(screened)[:SCREEN_KEEP]
    ]
    centre = source.mean(axis=0)
    return [(score, r, t + (scale - 1.0) * r @ centre) for score, r, t, scale in distinct(refined)]
