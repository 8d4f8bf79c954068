"""Fit the statistical head model to a skull (and face) surface: rigid pose and shape, robust to missing bone.

A coarse rigid search (several starting orientations, trimmed point-to-point ICP on the mean shape) picks
the basin; a Gauss-Newton fit then solves pose and shape together on point-to-plane distances, with the
shape's prior as a penalty. Point-to-plane lets the model slide along the bone, so landmarks land where the
whole shape puts them, not where the nearest bone happens to be. Bone the model lacks (skull base,
vertebrae, hyoid) never attracts it: correspondences go from model to scan, and far or facing-away matches
are dropped. The face, when given, pins the head's pitch where the scan shows little skull.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from facegen.data.alignment.skull_model import SkullShapeModel, skull_model
from facegen.data.pose import RigidTransform

TARGET_POINTS = 60_000
COARSE_POINTS = 1000
COARSE_ITERATIONS = 25
SCREEN_POINTS = 300
SCREEN_ITERATIONS = 12
SCREEN_KEEP = 6
FINE_ITERATIONS = 30
PRIOR_START = 1000.0
"""The shape prior starts this much stronger and relaxes to 1: pose settles before shape may explain it away."""
TRIM_SHARE = 0.8
"""Coarse ICP solves on the closest 80 % of matches (the scan may lack or add bone) ..."""
COARSE_MATCH_MM = 4.0
"""... and scores a pose by the share of model points with a scan surface this close, facing the same way."""
INLIER_MM = 2.5
"""A fine-fit bone match counts when closer than max(this, 3 x the median distance) ..."""
FACE_INLIER_MM = 6.0
FACE_WEIGHT = 0.3
"""Skin varies beyond the bone (tissue depth, soft shape): its matches count less and may lie further."""
NORMAL_AGREEMENT = 0.5
"""... and when the model and scan normals agree (cosine above this): inner and outer tables stay apart."""
SCREEN_REACH_MM = 80.0
COARSE_REACH_MM = 40.0
FINE_REACH_MM = 25.0
"""Nearest-surface searches stop this far out: the tree search is fast, and nothing further is a match."""
DAMPING = 0.1
MIN_MATCHES = 10
MIN_VISIBLE_SHARE = 0.4
KNOWN_ORIENTATION_TILT_DEG = 20.0
"""Starts for scans whose axes are known: the identity and turns of once and twice this about each axis."""
DISTINCT_DEG = 5.0
FINE_CANDIDATES = 3
"""The best coarse poses (at least 5 degrees apart) each get a fine fit; the one matching most bone wins ..."""
CONVINCING_SHARE = 0.8
"""... unless one already matches this much of the bone in view: no other pose could beat it by much."""


@dataclass(frozen=True)
class SkullFit:
    """The fitted model: its pose in the scan, shape coefficients, landmarks in scan coordinates, and quality.

    `inlier_share`: share of the model's bone points that found matching bone; `residual_mm`: their median
    distance."""

    model_to_scan: RigidTransform
    coefficients: np.ndarray
    landmarks: dict[str, np.ndarray]
    residual_mm: float
    inlier_share: float


class _Surfaces:
    """Sampled scan surfaces (bone, and skin when given) answering nearest-point queries for model points."""

    def __init__(
        self, skull: trimesh.Trimesh, face: trimesh.Trimesh | None, seed: int, field_of_view: Callable | None = None
    ) -> None:
        self.field_of_view = field_of_view
        self.parts = []
        for mesh in (skull, face):
            if mesh is None:
                self.parts.append(None)
                continue
            points, faces = trimesh.sample.sample_surface(mesh, TARGET_POINTS, seed=seed)
            self.parts.append((cKDTree(points), np.asarray(mesh.face_normals)[faces]))
        self.centroid = self.parts[0][0].data.mean(axis=0)

    def query(self, points: np.ndarray, is_face: np.ndarray, reach_mm: float = np.inf):
        """Distance, nearest point and its normal per model point (skin points look on the skin).

        Points outside the scan's field of view, or with no surface within `reach_mm` (a bound that makes
        the tree search fast), get an infinite distance: nothing there can match them."""
        d = np.full(len(points), np.inf)
        nearest = np.zeros_like(points)
        normals = np.zeros_like(points)
        for part, select in zip(self.parts, (~is_face, is_face), strict=True):
            if part is None or not select.any():
                continue
            tree, part_normals = part
            dist, j = tree.query(points[select], distance_upper_bound=reach_mm)
            found = j < len(tree.data)
            j = np.where(found, j, 0)
            # beyond reach: in view but unmatched (a zero normal never agrees, so it is never used)
            d[select] = np.where(found, dist, reach_mm)
            nearest[select] = np.where(found[:, None], tree.data[j], points[select])
            normals[select] = np.where(found[:, None], part_normals[j], 0.0)
        if self.field_of_view is not None:
            d[~self.field_of_view(points)] = np.inf
        return d, nearest, normals


def _procrustes(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation and translation taking source points onto target points."""
    ms, mt = source.mean(axis=0), target.mean(axis=0)
    u, _, vt = np.linalg.svd((target - mt).T @ (source - ms))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    return rotation, mt - rotation @ ms


def _start_rotations(orientation_known: bool) -> list[np.ndarray]:
    """Model-to-scan rotations to start from: small tilts of the identity, or turns spread over all of them."""
    if orientation_known:
        out = [np.eye(3)]
        for axis in np.eye(3):
            for angle in (-2.0, -1.0, 1.0, 2.0):
                out.append(Rotation.from_rotvec(axis * angle * np.radians(KNOWN_ORIENTATION_TILT_DEG)).as_matrix())
        return out
    # the 24 axis-aligned turns and the 60 of the icosahedron: no orientation is more than ~25 degrees away
    return [*Rotation.create_group("O").as_matrix(), *Rotation.create_group("I").as_matrix()]


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation between two rotation matrices."""
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0))))


def _icp(source, source_normals, is_face, surfaces: _Surfaces, rotation, translation, iterations: int, reach: float):
    """Trimmed rigid ICP of model points onto the scan, matches with opposing normals dropped.

    Returns (score, rotation, translation); the score is the share of points with a close, agreeing match
    (higher is better): a pose matching the bone that is there beats one matching much bone loosely."""
    for _ in range(iterations):
        d, nearest, normals = surfaces.query(source @ rotation.T + translation, is_face, reach)
        agree = np.einsum("ij,ij->i", source_normals @ rotation.T, normals) > NORMAL_AGREEMENT
        agree &= np.isfinite(d)
        if agree.sum() < MIN_MATCHES:
            break
        keep = agree & (d <= np.quantile(d[agree], TRIM_SHARE))
        rotation, translation = _procrustes(source[keep], nearest[keep])
    d, _, normals = surfaces.query(source @ rotation.T + translation, is_face, reach)
    agree = np.einsum("ij,ij->i", source_normals @ rotation.T, normals) > NORMAL_AGREEMENT
    return _share(agree & (d < COARSE_MATCH_MM), np.isfinite(d)), rotation, translation


def _share(matched: np.ndarray, visible: np.ndarray) -> float:
    """Share of the model points in view that matched; a pose that hides most of the model scores low."""
    return float(matched.sum() / max(visible.sum(), MIN_VISIBLE_SHARE * len(visible), 1))


def _distinct(results: list) -> list:
    """Results best (highest score) first, dropping any within DISTINCT_DEG of a better one."""
    out: list = []
    for item in sorted(results, key=lambda r: -r[0]):
        if all(_angle_deg(item[1], other[1]) > DISTINCT_DEG for other in out):
            out.append(item)
    return out


def _coarse(model: SkullShapeModel, use: np.ndarray, surfaces: _Surfaces, starts: list[np.ndarray]):
    """Rigid poses of the mean shape reached by ICP from each start, best first, near-duplicates dropped.

    Every start gets a short ICP on a few points; the best few go on with more points. Returns a list of
    (score, rotation, translation)."""
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
        )
        for r in starts
    ]
    refined = [
        _icp(source, normals, is_face, surfaces, r, t, COARSE_ITERATIONS, COARSE_REACH_MM)
        for _, r, t in _distinct(screened)[:SCREEN_KEEP]
    ]
    return _distinct(refined)


def _fine(model: SkullShapeModel, use: np.ndarray, surfaces: _Surfaces, rotation: np.ndarray, translation):
    """Gauss-Newton on pose and shape together; returns ((bone inlier share, residual), rotation, translation,
    coefficients)."""
    mean, normals, is_face = model.mean[use], model.normals[use], model.is_face[use]
    scaled_modes = model.modes[:, use] * model.sd[:, None, None]
    coefficients = np.zeros(len(model.sd))
    n_pose = 6
    limit = np.where(is_face, FACE_INLIER_MM, INLIER_MM)
    weight = np.where(is_face, FACE_WEIGHT, 1.0)
    priors = np.geomspace(PRIOR_START, 1.0, FINE_ITERATIONS)
    for prior in priors:
        moved = mean + np.tensordot(coefficients, scaled_modes, axes=1)
        moved = moved @ rotation.T + translation
        d, target, target_normals = surfaces.query(moved, is_face, FINE_REACH_MM)
        agree = np.einsum("ij,ij->i", normals @ rotation.T, target_normals) > NORMAL_AGREEMENT
        visible = np.isfinite(d)
        spread = float(np.median(d[~is_face & visible])) if (~is_face & visible).any() else INLIER_MM
        inlier = agree & (d < np.maximum(limit, 3.0 * spread))
        w = inlier * weight
        r = np.einsum("ij,ij->i", moved - target, target_normals)
        centre = moved[inlier].mean(axis=0) if inlier.any() else moved.mean(axis=0)
        jac_rot = np.cross(moved - centre, target_normals)
        jac_shape = np.einsum("mij,ij->im", np.einsum("ab,mib->mia", rotation, scaled_modes), target_normals)
        jac = np.hstack([jac_rot, target_normals, jac_shape]) * np.sqrt(w)[:, None]
        lhs = jac.T @ jac
        rhs = jac.T @ (r * np.sqrt(w))
        lhs[n_pose:, n_pose:] += prior * np.eye(len(coefficients))
        rhs[n_pose:] += prior * coefficients
        lhs += DAMPING * np.diag(np.diag(lhs)) + 1e-9 * np.eye(len(lhs))
        step = -np.linalg.solve(lhs, rhs)
        turn = Rotation.from_rotvec(step[:3]).as_matrix()
        rotation = turn @ rotation
        translation = turn @ (translation - centre) + centre + step[3:6]
        coefficients = coefficients + step[n_pose:]
    moved = (mean + np.tensordot(coefficients, scaled_modes, axes=1)) @ rotation.T + translation
    d, _, target_normals = surfaces.query(moved, is_face, FINE_REACH_MM)
    bone = ~is_face
    agree = np.einsum("ij,ij->i", normals @ rotation.T, target_normals) > NORMAL_AGREEMENT
    inlier = (agree & (d < INLIER_MM))[bone]
    residual = float(np.median(d[bone][inlier])) if inlier.any() else float("inf")
    return (_share(inlier, np.isfinite(d[bone])), residual), rotation, translation, coefficients


def fit_skull(
    skull: trimesh.Trimesh,
    *,
    face: trimesh.Trimesh | None = None,
    model: SkullShapeModel | None = None,
    orientation_known: bool = True,
    start: RigidTransform | None = None,
    field_of_view: Callable[[np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
) -> SkullFit:
    """Fit pose and shape of the head model to a skull mesh (and its face, when known) in scan coordinates.

    `orientation_known`: the scan's axes already name left, up and forward (CT volumes); a bare mesh from
    a surface scanner may lie any way round, and then starts spread over all orientations are tried.
    `start` (model-to-scan) skips the search. `field_of_view(points) -> bool` says which scan points the
    scan could show: model parts outside it (a vault above a CT's top slice) are not looked for.
    """
    model = model or skull_model()
    surfaces = _Surfaces(skull, face, seed, field_of_view)
    use = np.ones(len(model.mean), bool) if face is not None else ~model.is_face
    if start is not None:
        candidates = [(0.0, start.rotation, start.translation)]
    else:
        candidates = _coarse(model, use, surfaces, _start_rotations(orientation_known))
    best = None
    for _, rotation, translation in candidates[:FINE_CANDIDATES]:
        fitted = _fine(model, use, surfaces, rotation, translation)
        if best is None or fitted[0][0] > best[0][0]:
            best = fitted
        if best[0][0] >= CONVINCING_SHARE:
            break
    (share, residual), rotation, translation, coefficients = best
    moved = model.vertices(coefficients) @ rotation.T + translation
    return SkullFit(RigidTransform(rotation, translation), coefficients, model.landmarks(moved), residual, share)
