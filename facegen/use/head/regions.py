"""Where things lie on the complete head: the face region that is fitted, the irises, the eyebrows, the lashes.

Every region is picked once, by geometry, on the model's mean head, so it is the same vertex set (or weight)
for every fitted head. Positions are read in the ICT model's own frame (+x the head's left, +y up, +z out of
the face, mm), where the mean's eyes sit at y ~ 36 and the brow ridge (supraorbital landmark) at y ~ 52.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from facegen.data.raycast import first_hits
from facegen.data.representations.build import in_face_region
from facegen.data.synthetic.fields import smoothstep
from facegen.use.head.model import EYE_PARTS, HeadModel, Part

FRONT_FACING_MIN = 0.3
"""A face-region vertex is fitted when its normal (on the mean) points forward this much (cos of at most
~73 degrees from the view): a frontal depth map shows such surface faithfully; steeper sides it only skims."""
SEEN_TOLERANCE_MM = 0.5
"""A vertex is seen from the front when the first surface a frontal ray meets lies within this of it."""
EYE_MARGIN_MM = 4.0
"""Skin this close to the eye openings is not fitted: the reconstructed face closes the eyes with a lid-like
cap, the head has open eyes with eyeballs; the lids follow the smooth fit around them instead."""
PUPIL_RADIUS_MM = 1.9
IRIS_RADIUS_MM = 6.0
LIMBUS_WIDTH_MM = 0.7
"""Iris disc about 12 mm across (the ICT iris ball's flat front reaches ~6 mm from the eye's axis), a 3.8 mm
pupil, and a darker limbal ring at its edge. Radii are measured from each eye's axis (eyeball centre to the
iris disc's centre)."""
BROW_MEDIAL_MM, BROW_LATERAL_MM = 14.0, 53.0
"""The eyebrow runs from 14 mm beside the midline (above the inner canthus, x ~ 18) to 53 mm (past the outer
canthus, x ~ 44)."""
BROW_HEIGHT_MM = (16.5, 21.0, 15.0)
"""Height of the brow's centre line above the eyeball centre at its medial end, its peak (at 60% of its
length, over the outer iris as in most brows) and its tail."""
BROW_HALF_WIDTH_MM = (4.5, 2.2)
"""Half the brow's height at its medial end and at its tail (brows taper laterally)."""
BROW_EDGE_MM = 2.5
"""Width of the soft edge over which the brow fades into the skin."""


class EyeZone(Enum):
    """The colour zones of an eye's surface, from its axis outward."""

    PUPIL = 0
    IRIS = 1
    LIMBUS = 2
    SCLERA = 3


def _ict(model: HeadModel, points: np.ndarray) -> np.ndarray:
    """Canonical points back in the ICT model's own frame."""
    return model.to_canonical.inverse().apply(points)


def seen_from_front(mesh: trimesh.Trimesh) -> np.ndarray:
    """(V,) whether each vertex of a mesh in the canonical frame is the first surface seen from the front."""
    start = mesh.bounds[1, 2] + 10.0
    origins = np.column_stack([mesh.vertices[:, :2], np.full(len(mesh.vertices), start)])
    distance, _ = first_hits(mesh, origins, np.array([0.0, 0.0, -1.0]))
    first_z = np.nan_to_num(start - distance, nan=-np.inf)  # a ray that meets nothing: nothing hides the vertex
    return first_z <= mesh.vertices[:, 2] + SEEN_TOLERANCE_MM


def fit_region(model: HeadModel) -> np.ndarray:
    """(V,) skin vertices fitted to a reconstructed face: inside facegen's face region (the frontal ellipse that
    faces are compared over), seen from the front (not inside the nostrils or under the chin), facing forward,
    away from the eye openings."""
    mean = model.mean
    skin = model.skin
    skin_mesh = model.skin_mesh(mean)
    forward = np.zeros(len(mean), bool)
    forward[: len(skin_mesh.vertices)] = (skin_mesh.vertex_normals[:, 2] >= FRONT_FACING_MIN) & seen_from_front(
        skin_mesh
    )
    rims = np.concatenate(model.eye_rims)
    to_rim, _ = cKDTree(mean[rims]).query(mean)
    away_from_eyes = to_rim > EYE_MARGIN_MM
    return skin & forward & away_from_eyes & in_face_region(mean[:, 0], mean[:, 1])


def eye_axes(model: HeadModel, vertices: np.ndarray) -> np.ndarray:
    """(2, 3) unit forward axis of the left and right eye: from the eyeball's centre to its iris disc."""
    axes = []
    for side, ball in enumerate((Part.IRIS_BALL_LEFT, Part.IRIS_BALL_RIGHT)):
        pts = vertices[model.mask(ball)]
        centre = vertices[model.mask(*EYE_PARTS[2 * side : 2 * side + 2])].mean(axis=0)
        front = pts[(pts - centre)[:, 2] > np.percentile((pts - centre)[:, 2], 80)].mean(axis=0)
        axes.append((front - centre) / np.linalg.norm(front - centre))
    return np.stack(axes)


def eye_zones(model: HeadModel) -> np.ndarray:
    """(V,) `EyeZone` value of each eye vertex on the mean (-1 elsewhere): the cornea over the iris takes the
    iris's zones, as the iris is what is seen through it."""
    zones = np.full(len(model.mean), -1)
    axes = eye_axes(model, model.mean)
    for side in (0, 1):
        on_eye = model.mask(*EYE_PARTS[2 * side : 2 * side + 2])
        rel = model.mean[on_eye] - model.mean[on_eye].mean(axis=0)
        along = rel @ axes[side]
        radius = np.linalg.norm(rel - along[:, None] * axes[side], axis=1)
        front = along > 0
        zone = np.full(len(rel), EyeZone.SCLERA.value)
        zone[front & (radius < IRIS_RADIUS_MM)] = EyeZone.LIMBUS.value
        zone[front & (radius < IRIS_RADIUS_MM - LIMBUS_WIDTH_MM)] = EyeZone.IRIS.value
        zone[front & (radius < PUPIL_RADIUS_MM)] = EyeZone.PUPIL.value
        zones[on_eye] = zone
    return zones


def eyebrow_weight(model: HeadModel) -> np.ndarray:
    """(V,) how much of each skin vertex is eyebrow (0-1) on the mean: a tapering arc over each eye."""
    ict = _ict(model, model.mean)
    eye_y = _ict(model, model.eye_centres)[:, 1].mean()
    span = (np.abs(ict[:, 0]) - BROW_MEDIAL_MM) / (BROW_LATERAL_MM - BROW_MEDIAL_MM)
    u = np.clip(span, 0.0, 1.0)
    medial, peak, tail = BROW_HEIGHT_MM
    centre = np.where(u < 0.6, medial + (peak - medial) * np.sin(0.5 * np.pi * u / 0.6),
                      tail + (peak - tail) * np.cos(0.5 * np.pi * (u - 0.6) / 0.4))  # fmt: skip
    half = BROW_HALF_WIDTH_MM[0] + (BROW_HALF_WIDTH_MM[1] - BROW_HALF_WIDTH_MM[0]) * u
    across = np.abs(ict[:, 1] - eye_y - centre)
    along = smoothstep(span, -0.06, 0.04) * (1.0 - smoothstep(span, 0.94, 1.02))
    weight = along * (1.0 - smoothstep(across, half - BROW_EDGE_MM, half))
    return np.where(model.skin & (ict[:, 2] > 60.0), weight, 0.0)


def lash_length_fraction(model: HeadModel) -> np.ndarray:
    """(L,) how far along its lash each eyelash vertex lies, 0 at the lid to 1 at the tip (on the mean)."""
    lashes = model.mean[model.mask(Part.EYELASHES)]
    reach = np.linalg.norm(lashes - model.mean[model.lash_anchor], axis=1)
    return np.clip(reach / max(float(reach.max()), 1e-9), 0.0, 1.0)
