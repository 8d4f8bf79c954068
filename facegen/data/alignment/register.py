"""Fit the statistical head model to a skull (and face) surface: rigid pose and shape, robust to missing bone.

A coarse rigid search (`facegen.data.alignment.coarse`: several starting orientations, trimmed point-to-point
ICP on the mean shape) picks the basin; a Gauss-Newton fit then solves pose and shape together on
point-to-plane distances, with the shape's prior as a penalty. Point-to-plane lets the model slide along the
bone, so landmarks land where the whole shape puts them, not where the nearest bone happens to be. Bone the
model lacks (skull base, vertebrae, hyoid) never attracts it: correspondences go from model to scan, and far or
facing-away matches are dropped. The face, when given, pins the head's pitch where the scan shows little skull.

Without a face (a dry skull, a skull mesh) the search leans on the bone alone: the scan's own plane of mirror
symmetry (`facegen.data.alignment.symmetry`) gives the starts of a mesh in any orientation and a soft prior on
the model's mid-sagittal plane (pose and the model's asymmetric modes otherwise trade off along a shallow valley
on a skull unlike the model's shapes); the coarse ICP may scale the mean shape; and the best coarse poses, nodded
by up to 20 degrees, get a quick fit of pose and shape before the fine one (the rigid mean shape can sit 10-20
degrees nodded on a skull of another shape), and the fine fit runs a second time from where the first ended.
The damping of the fit is the same along every axis, so a mesh gets the same pose whichever way round it lies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from facegen.data.alignment.coarse import Candidate, coarse_poses, distinct, share, start_rotations
from facegen.data.alignment.scan_surface import ScanSurfaces
from facegen.data.alignment.skull_model import SkullShapeModel, skull_model
from facegen.data.alignment.symmetry import SymmetryPlane, symmetry_plane
from facegen.data.pose import RigidTransform

FINE_ITERATIONS = 30
PRIOR_START = 1000.0
"""The shape prior starts this much stronger and relaxes to 1: pose settles before shape may explain it away."""
INLIER_MM = 2.5
"""A fine-fit bone match counts when closer than max(this, 3 x the median distance) ..."""
FACE_INLIER_MM = 6.0
FACE_WEIGHT = 0.1
"""Skin varies beyond the bone (tissue depth, soft shape): its matches count less and may lie further. The weight
is the inverse variance against bone's: soft-tissue depths vary by about 3 mm (SD) between people at most
landmarks, bone matches by about 1 mm, so (1/3)^2. A heavier weight let the person's own soft tissue move the pose:
on the real headsq CT, 0.3 put the porions 3-4 mm behind where its bone alone puts them (synthetic CTs: no change)."""
NORMAL_AGREEMENT = 0.5
"""... and when the model and scan normals agree (cosine above this): inner and outer tables stay apart."""
FINE_REACH_MM = 25.0
"""Nearest-surface searches stop this far out: the tree search is fast, and nothing further is a match."""
DAMPING = 0.1
FINE_CANDIDATES = 3
"""The best coarse poses (at least 5 degrees apart) each get a fine fit; the one matching most bone wins ..."""
CONVINCING_SHARE = 0.8
"""... unless one already matches this much of the bone in view: no other pose could beat it by much."""
PITCH_CANDIDATES = 3
PITCH_OFFSETS_DEG = (-20.0, -10.0, 0.0, 10.0, 20.0)
QUICK_POINTS = 500
QUICK_ITERATIONS = 12
"""Bone only: the 3 best coarse poses, each nodded by these angles, get a quick fit (500 model points, 12 steps) ..."""
QUICK_MARGIN = 0.05
"""... and only those matching within this share of the best go on to the fine fit."""
SYMMETRIC_SHARE = 0.5
"""A scan whose mirror image matches itself over at least this share has a symmetry plane to trust (skulls:
0.7-0.98, real and synthetic, holed, noisy, without mandible or vault)."""
SYMMETRY_SD_DEG = 1.0
SYMMETRY_SD_MM = 1.0
"""The soft prior: the model's mid-sagittal plane lies within about this angle and distance of the scan's
(in units of one bone match's squared mm: weak beside the thousands of matches, firm where they say nothing)."""


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
    symmetry: SymmetryPlane | None = None
    """The scan's plane of mirror symmetry (a bone-only fit of a symmetric scan), or None."""

    @property
    def shape_distance(self) -> float:
        """How far the fitted shape lies from the mean skull: the norm of its standardised coefficients (~8 for a
        skull the model describes; 63 modes at one SD each)."""
        return float(np.linalg.norm(self.coefficients))


def _skew(v: np.ndarray) -> np.ndarray:
    """The matrix of the cross product with v (skew(v) @ w == v x w)."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def _symmetry_rows(plane: SymmetryPlane, rotation: np.ndarray, translation: np.ndarray, centre: np.ndarray):
    """Prior residuals and their pose Jacobian (turn about `centre`, then shift): the model's left axis against
    the plane's normal (3 rows, radians), the model's origin (mid-porion, on its mid-plane) off the plane (mm)."""
    left = rotation[:, 0]
    sign = 1.0 if float(plane.normal @ left) >= 0.0 else -1.0
    normal, offset = sign * plane.normal, sign * plane.offset
    jac = np.zeros((4, 6))
    jac[:3, :3] = -_skew(left)  # a turn w moves the left axis by w x left
    jac[3, :3] = np.cross(translation - centre, normal)
    jac[3, 3:] = normal
    residual = np.concatenate([left - normal, [float(normal @ translation) - offset]])
    weights = np.array([*[np.radians(SYMMETRY_SD_DEG) ** -2] * 3, SYMMETRY_SD_MM**-2])
    return residual, jac, weights


@dataclass(frozen=True)
class _Fine:
    """A fine fit: share of the model's bone in view that matched, their median distance, pose and shape."""

    share: float
    residual_mm: float
    rotation: np.ndarray
    translation: np.ndarray
    coefficients: np.ndarray


def _fine(
    model: SkullShapeModel,
    use: np.ndarray,
    surfaces: ScanSurfaces,
    rotation: np.ndarray,
    translation: np.ndarray,
    symmetry: SymmetryPlane | None = None,
    iterations: int = FINE_ITERATIONS,
) -> _Fine:
    """Gauss-Newton on pose and shape together (with the symmetry prior when a plane is given)."""
    mean, normals, is_face = model.mean[use], model.normals[use], model.is_face[use]
    scaled_modes = model.modes[:, use] * model.sd[:, None, None]
    flat_modes = scaled_modes.reshape(len(model.sd), -1)
    coefficients = np.zeros(len(model.sd))
    n_pose = 6
    limit = np.where(is_face, FACE_INLIER_MM, INLIER_MM)
    weight = np.where(is_face, FACE_WEIGHT, 1.0)
    for prior in np.geomspace(PRIOR_START, 1.0, iterations):
        moved = (mean + (coefficients @ flat_modes).reshape(mean.shape)) @ rotation.T + translation
        d, target, target_normals = surfaces.query(moved, is_face, FINE_REACH_MM)
        agree = np.einsum("ij,ij->i", normals @ rotation.T, target_normals) > NORMAL_AGREEMENT
        visible = np.isfinite(d)
        spread = float(np.median(d[~is_face & visible])) if (~is_face & visible).any() else INLIER_MM
        inlier = agree & (d < np.maximum(limit, 3.0 * spread))
        root_w = np.sqrt(inlier * weight)
        r = np.einsum("ij,ij->i", moved - target, target_normals)
        centre = moved[inlier].mean(axis=0) if inlier.any() else moved.mean(axis=0)
        jac_rot = np.cross(moved - centre, target_normals)
        # d(residual)/d(coefficient k) = (rotation @ mode_k) . normal = mode_k . (rotation.T @ normal)
        jac_shape = np.einsum("mij,ij->im", scaled_modes, target_normals @ rotation)
        jac = np.hstack([jac_rot, target_normals, jac_shape]) * root_w[:, None]
        lhs = jac.T @ jac
        rhs = jac.T @ (r * root_w)
        lhs[n_pose:, n_pose:] += prior * np.eye(len(coefficients))
        rhs[n_pose:] += prior * coefficients
        if symmetry is not None:
            residual, jac_prior, weights = _symmetry_rows(symmetry, rotation, translation, centre)
            lhs[:n_pose, :n_pose] += jac_prior.T @ (weights[:, None] * jac_prior)
            rhs[:n_pose] += jac_prior.T @ (weights * residual)
        # Levenberg-Marquardt damping, the same on every axis of the turn and of the shift: a fit that does not
        # depend on which way round the scan's axes happen to lie
        damping = np.diag(lhs).copy()
        damping[:3], damping[3:6] = damping[:3].mean(), damping[3:6].mean()
        lhs += DAMPING * np.diag(damping) + 1e-9 * np.eye(len(lhs))
        step = -np.linalg.solve(lhs, rhs)
        turn = Rotation.from_rotvec(step[:3]).as_matrix()
        rotation = turn @ rotation
        translation = turn @ (translation - centre) + centre + step[3:6]
        coefficients = coefficients + step[n_pose:]
    moved = (mean + (coefficients @ flat_modes).reshape(mean.shape)) @ rotation.T + translation
    d, _, target_normals = surfaces.query(moved, is_face, FINE_REACH_MM)
    bone = ~is_face
    agree = np.einsum("ij,ij->i", normals @ rotation.T, target_normals) > NORMAL_AGREEMENT
    inlier = (agree & (d < INLIER_MM))[bone]
    residual = float(np.median(d[bone][inlier])) if inlier.any() else float("inf")
    return _Fine(share(inlier, np.isfinite(d[bone])), residual, rotation, translation, coefficients)


def _nodded(model: SkullShapeModel, use: np.ndarray, rotation: np.ndarray, translation: np.ndarray, degrees: float):
    """The pose turned about the model's left axis (a nod) through the centre of the model points in use."""
    pivot = rotation @ model.mean[use].mean(axis=0) + translation
    turn = Rotation.from_rotvec(np.radians(degrees) * rotation[:, 0]).as_matrix()
    return turn @ rotation, turn @ (translation - pivot) + pivot


def _pitch_search(
    model: SkullShapeModel,
    use: np.ndarray,
    surfaces: ScanSurfaces,
    candidates: list[Candidate],
    plane: SymmetryPlane | None,
    seed: int,
) -> list[Candidate]:
    """The best coarse poses turned about the model's left axis (nodding) by PITCH_OFFSETS_DEG, each given a
    quick fit of pose and shape on a few points; returned best first (by share matched), near-duplicates dropped.

    The mean shape, fitted rigidly, can sit 15-20 degrees nodded on a skull whose shape differs from it (a long
    face, a missing mandible), outside the fine fit's basin; a fit that may change the shape finds it."""
    rng = np.random.default_rng(seed)
    quick = np.zeros(len(use), bool)
    quick[rng.choice(np.flatnonzero(use), min(QUICK_POINTS, int(use.sum())), replace=False)] = True
    out: list[Candidate] = []
    for _, rotation, translation in candidates[:PITCH_CANDIDATES]:
        for offset in PITCH_OFFSETS_DEG:
            nodded = _nodded(model, use, rotation, translation, offset)
            fitted = _fine(model, quick, surfaces, *nodded, plane, iterations=QUICK_ITERATIONS)
            out.append((fitted.share, fitted.rotation, fitted.translation))
    return distinct(out)


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
    a surface scanner may lie any way round, and then starts on its symmetry plane (or spread over all
    orientations) are tried. `start` (model-to-scan) skips the search. `field_of_view(points) -> bool` says
    which scan points the scan could show: model parts outside it (a vault above a CT's top slice) are not
    looked for; a mesh's open border says the same.
    """
    model = model or skull_model()
    surfaces = ScanSurfaces(skull, face, seed, field_of_view, smooth_normals=face is None)
    use = np.ones(len(model.mean), bool) if face is not None else ~model.is_face
    plane = None
    if face is None:
        found = symmetry_plane(surfaces, seed=seed)
        plane = found if found.matched_share >= SYMMETRIC_SHARE else None
    if start is not None:
        candidates = [(0.0, start.rotation, start.translation)]
    else:
        candidates = coarse_poses(model, use, surfaces, start_rotations(orientation_known, plane), face is None)
        if face is None:
            candidates = _pitch_search(model, use, surfaces, candidates, plane, seed)
            candidates = [c for c in candidates if c[0] >= candidates[0][0] - QUICK_MARGIN]
    best = None
    for _, rotation, translation in candidates[:FINE_CANDIDATES]:
        fitted = _fine(model, use, surfaces, rotation, translation, plane)
        if best is None or fitted.share > best.share:
            best = fitted
        if best.share >= CONVINCING_SHARE:
            break
    if face is None and best.share < CONVINCING_SHARE:  # once more from where it ended, the prior relaxed anew:
        # on a skull unlike the model's shapes, the first fit's shape takes a side valley (headsq dry CT: 42% of
        # the bone matched, 6 mm from its mesh's pose; once more: 44%, 1 mm from it)
        again = _fine(model, use, surfaces, best.rotation, best.translation, plane)
        best = again if again.share > best.share else best
    moved = model.vertices(best.coefficients) @ best.rotation.T + best.translation
    return SkullFit(
        RigidTransform(best.rotation, best.translation),
        best.coefficients,
        model.landmarks(moved),
        best.residual_mm,
        best.share,
        symmetry=plane,
    )
