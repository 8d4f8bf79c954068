"""The linear step of the head fit: pose and identity weights solved together on matched points.

Each round linearizes the posed model around its current state and solves, in one regularized least-squares
problem, for a small rotation, a translation (optionally a scale) and the identity weights, so that the model's
points move onto the face's tangent planes at their matches (point-to-plane). The weights keep the model's prior
(w ~ N(0, 1)), so a face region the modes cannot explain pulls them no further than the data warrant. Solving
pose and shape together matters: the modes can mimic a small turn or shift of the head, and solving them in turn
would trade one against the other for many rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Similarity:
    """y = scale * rotation @ x + translation (mm)."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: float = 1.0

    @staticmethod
    def identity() -> Similarity:
        """The similarity that leaves points where they are."""
        return Similarity(np.eye(3), np.zeros(3), 1.0)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points (..., 3)."""
        return self.scale * points @ self.rotation.T + self.translation


def rotation_vector(omega: np.ndarray) -> np.ndarray:
    """The rotation matrix of a rotation vector (axis times angle in radians), by Rodrigues' formula."""
    angle = float(np.linalg.norm(omega))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(omega) / angle
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


def pose_and_identity_step(
    pose: Similarity, identity: np.ndarray, mean: np.ndarray, modes: np.ndarray, target: np.ndarray,
    normals: np.ndarray, *, noise_mm: float, with_scale: bool,
) -> tuple[Similarity, np.ndarray]:  # fmt: skip
    """One Gauss-Newton step of pose and identity weights (K,) for model points `mean + modes` ((N, 3), (K, N, 3))
    matched to target points (N, 3) with unit normals (N, 3), point-to-plane, matches trusted to `noise_mm`."""
    if not noise_mm > 0:
        raise ValueError(f"noise_mm must be positive, got {noise_mm}")
    if len(mean) < 6 + with_scale:
        raise ValueError(f"{len(mean)} matched points cannot fix a pose")
    shape = mean + np.tensordot(identity, modes, axes=1)
    posed = pose.apply(shape)
    centre = posed.mean(axis=0)
    arm = posed - centre
    columns = [np.cross(arm, normals), normals]  # d/d(rotation vector) and d/d(translation) of n . p
    if with_scale:
        columns.append(np.einsum("nj,nj->n", arm, normals)[:, None])
    moved_modes = pose.scale * modes @ pose.rotation.T  # (K, N, 3): each mode as the posed model moves
    columns.append((moved_modes * normals[None]).sum(axis=2).T)
    design = np.concatenate(columns, axis=1) / noise_mm
    gap = np.einsum("nj,nj->n", target - posed, normals) / noise_mm
    n_pose = design.shape[1] - len(identity)
    prior = np.zeros(design.shape[1])
    prior[n_pose:] = 1.0  # w ~ N(0, 1); the pose is free
    lhs = design.T @ design + np.diag(prior)
    rhs = design.T @ gap - np.r_[np.zeros(n_pose), identity]
    step = np.linalg.solve(lhs, rhs)
    turn = rotation_vector(step[:3])
    scale = 1.0 + (step[6] if with_scale else 0.0)
    new_pose = Similarity(
        rotation=turn @ pose.rotation,
        translation=scale * turn @ (pose.translation - centre) + centre + step[3:6],
        scale=pose.scale * scale,
    )
    return new_pose, identity + step[n_pose:]
