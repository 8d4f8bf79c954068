"""Surface distances between a reconstructed face and the true face, in 3D, over the facial area.

A 3D model answers with a surface, not only a depth map: it is scored against the true face mesh as CFR
validation studies score sculpted faces (Lee et al. 2012, Miranda et al. 2018: share of the surface within
2.5 mm). Points are drawn evenly over each surface's facial area (the face region ellipse in the canonical
frame, in front of the porions) and their closest distance to the other surface is exact (trimesh with an
R-tree), so the figures do not depend on how finely either mesh is tessellated.
"""

from __future__ import annotations

import numpy as np
import trimesh

from facegen.data.representations.build import in_face_region

SURFACE_POINTS = 4000
"""Points drawn on each facial surface: the mean to ~0.02 mm, the 95th percentile to ~0.1 mm."""
WITHIN_MM = 2.5
"""The tolerance of the forensic literature's surface accuracy (cfr-facts: 54-77% for expert sculpting)."""
SURFACE_KEYS = ("surface_mean_mm", "surface_hd95_mm", "surface_within_2_5mm")


def in_facial_area(points: np.ndarray) -> np.ndarray:
    """Which canonical-frame points (N, 3) lie in the facial area: inside the face region ellipse seen from
    the front and in front of the coronal plane through the porions (z > 0), which cuts off the back of the head."""
    x, y, z = np.asarray(points, np.float64).T
    return in_face_region(x, y) & (z > 0.0)


def facial_surface_points(mesh: trimesh.Trimesh, count: int = SURFACE_POINTS, *, seed: int = 0) -> np.ndarray:
    """`count` points drawn uniformly by area over the triangles whose centre lies in the facial area."""
    facial = in_facial_area(mesh.triangles_center)
    if not facial.any():
        raise ValueError("the surface has no triangle in the facial area (is it in the canonical frame?)")
    points, _ = trimesh.sample.sample_surface(mesh, count, face_weight=mesh.area_faces * facial, seed=seed)
    return np.asarray(points, np.float64)


def distance_to_surface(points: np.ndarray, mesh: trimesh.Trimesh) -> np.ndarray:
    """Exact distance (mm) from each point to the closest point of the mesh."""
    _, distance, _ = trimesh.proximity.closest_point(mesh, points)
    return np.asarray(distance, np.float64)


def surface_distances(
    reconstruction: trimesh.Trimesh, truth: trimesh.Trimesh, *, count: int = SURFACE_POINTS, seed: int = 0
) -> dict[str, float]:
    """Symmetric distances over the facial area: the mean of both directions' mean distance, the 95th-percentile
    Hausdorff distance (the larger directed 95th percentile, as MONAI computes it), and the share of the
    reconstructed surface within 2.5 mm of the true face (the forensic literature's surface accuracy)."""
    to_truth = distance_to_surface(facial_surface_points(reconstruction, count, seed=seed), truth)
    to_reconstruction = distance_to_surface(facial_surface_points(truth, count, seed=seed + 1), reconstruction)
    return {
        "surface_mean_mm": float(0.5 * (to_truth.mean() + to_reconstruction.mean())),
        "surface_hd95_mm": float(max(np.percentile(to_truth, 95), np.percentile(to_reconstruction, 95))),
        "surface_within_2_5mm": float((to_truth <= WITHIN_MM).mean()),
    }


def score_surfaces(
    reconstructions: list[trimesh.Trimesh | None], truths: list[trimesh.Trimesh], *, seed: int = 0
) -> dict[str, np.ndarray]:
    """Per-subject surface distances (arrays of N); a missing surface scores NaN and is counted, not hidden."""
    if len(reconstructions) != len(truths):
        raise ValueError(f"{len(reconstructions)} reconstructed surfaces for {len(truths)} true faces")
    out = {key: np.full(len(truths), np.nan) for key in SURFACE_KEYS}
    for i, (mesh, truth) in enumerate(zip(reconstructions, truths, strict=True)):
        if mesh is None or not in_facial_area(mesh.triangles_center).any():
            continue
        for key, value in surface_distances(mesh, truth, seed=seed + 2 * i).items():
            out[key][i] = value
    return out
