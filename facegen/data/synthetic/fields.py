"""Smooth fields over the head: landmark values spread over the skin, and displacements carried from skin to bone."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree


def spread_landmark_values(
    points: np.ndarray, landmark_points: np.ndarray, values: np.ndarray, *, background: float, width_mm: float
) -> np.ndarray:
    """A field equal to `values` at the landmarks that relaxes to `background` some `width_mm` away.

    Gaussian radial basis interpolation of (value - background): exact at the landmarks, smooth between.
    """
    rbf = RBFInterpolator(landmark_points, values - background, kernel="gaussian", epsilon=1.0 / width_mm, degree=-1)
    return background + rbf(points)


def skin_to_points_weights(skin: np.ndarray, points: np.ndarray, *, width_mm: float, k: int = 48) -> sparse.csr_matrix:
    """Row-normalised Gaussian weights (P x V) that carry a skin displacement field to nearby points.

    A smooth extension: a point moves as the skin around it moves on average, fine skin detail averaged out.
    """
    distance, index = cKDTree(skin).query(points, k=k, workers=-1)
    w = np.exp(-0.5 * (distance / width_mm) ** 2) + 1e-12
    w /= w.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(len(points)), k)
    return sparse.csr_matrix((w.ravel(), (rows, index.ravel())), shape=(len(points), len(skin)))


def gaussian_bump(points: np.ndarray, centre: np.ndarray, radii_mm: np.ndarray | float) -> np.ndarray:
    """exp(-|(p - c) / r|^2 / 2) at each point: a smooth local weight in [0, 1]."""
    d = (points - np.asarray(centre)) / np.asarray(radii_mm)
    return np.exp(-0.5 * np.einsum("ij,ij->i", d, d))


def smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below lo, 1 above hi, a smooth cubic between."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def smoothed_normals(vertices: np.ndarray, normals: np.ndarray, *, width_mm: float) -> np.ndarray:
    """Unit normals averaged over `width_mm`: the direction tissue is measured and grows along.

    In folds (lip seal, nostrils, eyelids) local normals face each other; the smoothed ones point out of
    the face, like a caliper held perpendicular to the face rather than to a crease."""
    direction = skin_to_points_weights(vertices, vertices, width_mm=width_mm, k=96) @ normals
    return direction / np.linalg.norm(direction, axis=1, keepdims=True)
