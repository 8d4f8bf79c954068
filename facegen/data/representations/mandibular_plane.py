"""Below the mandible: the neck's bones left out of the skull the models see, the neck left out of a case's face.

A head CT holds the upper cervical vertebrae (and often the hyoid) below the mandible. Seen from the front they
fill the gap under the chin with bone 50-70 mm behind it, where a skull (a synthetic one, a dry skull, a skull
mesh) shows nothing; the bone envelope then drops from the chin straight onto the spine and the face follows it
(headsq: the submental skin fell 18 mm within one 2 mm pixel below the chin, where the person's own falls 3-4 mm).
Every ray that passes below the mandible runs below the mandibular plane (through menton and both gonions, the
lowest points of its border) behind it, so the bone more than a margin below that plane, and below the jaw's
angles, is left out of the depth maps and grids; nothing in front of or above the mandible's border is touched.

Below the chin no bone tells the face's shape: a model continues it as the training heads' necks, and where the
jaw's underside turns steep the frontal surface tears from the neck. A case's face ends SUBMENTAL_MM below the
plane: the chin and the line under it, not a guessed neck.
"""

from __future__ import annotations

import numpy as np
import trimesh

from facegen.data.representations.depth_map import DepthView

MANDIBULAR_PLANE = ("menton", "gonion_l", "gonion_r")
"""Landmarks through which the mandibular plane passes (the lowest points of the mandible's border)."""
MARGIN_MM = 5.0
"""Bone within this distance below the plane is kept: the landmarks come from a skull-model fit (a few mm off)."""
SUBMENTAL_MM = 12.0
"""A case's face reaches this far below the mandibular plane: the submental tissue (gnathion 8 +- 2 mm, menton
7 +- 2 mm, cfr-facts) and the start of the skin's turn under the chin. On headsq, 18 and 25 mm hang a torn flap of
the steep underside below the chin in profile; 12 mm ends the face cleanly at the chin."""


def mandibular_plane(landmarks_canonical: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """(point, unit normal pointing up toward the cranium) of the mandibular plane, or None without its landmarks."""
    if not all(name in landmarks_canonical for name in MANDIBULAR_PLANE):
        return None
    menton, left, right = (np.asarray(landmarks_canonical[name], float) for name in MANDIBULAR_PLANE)
    normal = np.cross(left - menton, right - menton)
    length = float(np.linalg.norm(normal))
    if length < 1e-6:
        return None
    normal /= length
    if normal[1] < 0:  # canonical +y is up: the cranium lies on the normal's side
        normal = -normal
    return menton, normal


def without_neck_bones(
    skull: trimesh.Trimesh, landmarks_canonical: dict[str, np.ndarray], margin_mm: float = MARGIN_MM
) -> tuple[trimesh.Trimesh, float]:
    """The skull (canonical frame) without the faces lying wholly more than `margin_mm` below the mandibular plane and
    below the angles of the jaw (gonions; the plane rises behind them under the occiput, which stays), and the share
    of its faces left out (0 and the skull itself without the plane's landmarks)."""
    plane = mandibular_plane(landmarks_canonical)
    if plane is None or len(skull.faces) == 0:
        return skull, 0.0
    point, normal = plane
    vertices = np.asarray(skull.vertices)
    angles = min(float(landmarks_canonical[name][1]) for name in MANDIBULAR_PLANE[1:])
    neck = ((vertices - point) @ normal < -margin_mm) & (vertices[:, 1] < angles)  # not the occiput's underside
    below = neck[np.asarray(skull.faces)].all(axis=1)
    if not below.any():
        return skull, 0.0
    kept = skull.copy()
    kept.update_faces(~below)
    kept.remove_unreferenced_vertices()
    return kept, float(below.mean())


def above_plane(
    depth_mm: np.ndarray, view: DepthView, landmarks_canonical: dict[str, np.ndarray], below_mm: float = SUBMENTAL_MM
) -> np.ndarray:
    """(H, W) the pixels of a frontal depth map whose surface point lies at most `below_mm` below the mandibular
    plane (all of them without the plane's landmarks)."""
    plane = mandibular_plane(landmarks_canonical)
    if plane is None:
        return np.ones(depth_mm.shape, bool)
    point, normal = plane
    x, y = view.pixel_centres()
    surface = np.stack([*np.broadcast_arrays(x[None, :], y[:, None]), np.asarray(depth_mm, np.float64)], axis=-1)
    height = (surface - point) @ normal
    return ~(height < -below_mm)  # NaN depth (no surface) is kept: the face's own mask decides there
