"""The smooth residual displacement: what moves the fitted skin the rest of the way onto the face.

The identity modes span real faces but not every face a model reconstructs. What they leave is closed by a
displacement field over the skin that matches the offsets to the face where the skin is fitted and is smooth
everywhere (a Laplacian-regularized least-squares field, solved on the skin's own mesh), fading out away from
the fitted region so that ears, the back of the head and the neck keep the model's shape.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from facegen.data.synthetic.fields import smoothstep

FADE_MM = (10.0, 40.0)
"""The field keeps its full size up to 10 mm from the fitted region and fades to nothing at 40 mm."""


def graph_laplacian(triangles: np.ndarray, n_vertices: int) -> sparse.csc_matrix:
    """The uniform graph Laplacian (degree - adjacency) of a triangle mesh, (V, V)."""
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    ones = np.ones(len(edges))
    adjacency = sparse.coo_matrix((ones, (edges[:, 0], edges[:, 1])), shape=(n_vertices, n_vertices))
    adjacency = (adjacency + adjacency.T).tocsc()
    degree = sparse.diags(np.asarray(adjacency.sum(axis=1)).ravel())
    return (degree - adjacency).tocsc()


def fade_weights(distance_to_region_mm: np.ndarray) -> np.ndarray:
    """(V,) how much of the field each vertex takes, from its distance (mm) to the fitted region."""
    return 1.0 - smoothstep(np.asarray(distance_to_region_mm, np.float64), *FADE_MM)


def smooth_field(
    laplacian: sparse.csc_matrix, offsets: np.ndarray, weights: np.ndarray, *, stiffness: float
) -> np.ndarray:
    """The displacement (V, 3) closest to `offsets` (V, 3) where `weights` (V,) are positive, in least squares,
    plus `stiffness` times its squared Laplacian energy: larger stiffness, smoother and less exact."""
    if not stiffness > 0:
        raise ValueError(f"stiffness must be positive, got {stiffness}")
    if offsets.shape != (laplacian.shape[0], 3) or weights.shape != (laplacian.shape[0],):
        raise ValueError(
            f"offsets {offsets.shape} and weights {weights.shape} must cover {laplacian.shape[0]} vertices"
        )
    if not (weights > 0).any():
        raise ValueError("no vertex carries an offset: the skin matched no part of the face")
    system = (sparse.diags(weights) + stiffness * laplacian + 1e-9 * sparse.identity(len(weights))).tocsc()
    return splu(system).solve(weights[:, None] * offsets)
