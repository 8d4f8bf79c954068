"""Sex differences in the bone, and head size, as smooth displacement fields read at any point of the head.

Men: larger brow ridges and glabella, a squarer and taller chin, a more everted gonial angle; women: a more
vertical forehead (cfr-facts section 5). A subject's masculinity score m (about +1 for men, -1 for women,
with overlap, as real skulls overlap) scales every feature; size scales the head about the porion midpoint
(men ~4-7% larger, cfr-facts section 5). The same field moves the bone and the skin over it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegen.data.synthetic.fields import gaussian_bump


@dataclass(frozen=True)
class Bump:
    """A displacement `amplitude_mm * direction` per unit masculinity, fading around `centre`."""

    centre: np.ndarray
    radii_mm: np.ndarray
    direction: np.ndarray
    amplitude_mm: float


def dimorphism_bumps(skull_landmarks: dict[str, np.ndarray]) -> list[Bump]:
    """Sexually dimorphic features of the template skull (canonical frame)."""
    lm = skull_landmarks
    fwd, down = np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])
    bumps = [
        Bump(lm["glabella"], np.array([12.0, 7.0, 9.0]), fwd, 1.6),
        Bump(lm["frontal_eminence_l"] * [0, 1, 1], np.array([30.0, 12.0, 12.0]), fwd, -0.9),
        Bump(lm["menton"], np.array([14.0, 8.0, 10.0]), down, 1.5),
    ]
    for side, sign in (("l", 1.0), ("r", -1.0)):
        bumps += [
            Bump(lm[f"supraorbital_{side}"], np.array([10.0, 6.0, 9.0]), fwd, 1.3),
            Bump(lm["pogonion"] + [sign * 14.0, -3.0, -3.0], np.array([7.0, 8.0, 8.0]), fwd, 1.2),
            Bump(lm[f"gonion_{side}"], np.array([10.0, 12.0, 12.0]), np.array([sign, 0.0, 0.0]), 1.8),
        ]
    return bumps


def dimorphism_displacement(points: np.ndarray, bumps: list[Bump], masculinity: float) -> np.ndarray:
    """Displacement (N, 3) in mm of the points for a subject of this masculinity."""
    out = np.zeros_like(points)
    for b in bumps:
        out += (masculinity * b.amplitude_mm * gaussian_bump(points, b.centre, b.radii_mm))[:, None] * b.direction
    return out


def size_displacement(points: np.ndarray, scale: float, lower_face_stretch: float) -> np.ndarray:
    """Isotropic scaling about the origin plus a vertical stretch of the face below the Frankfurt plane."""
    out = (scale - 1.0) * points
    out[:, 1] += lower_face_stretch * np.minimum(points[:, 1], 0.0)
    return out
