"""The canonical head frame: Frankfurt horizontal, midsagittal plane and the porion midpoint as origin.

Axes in mm: +x to the subject's left, +y up (superior), +z forward (anterior, out of the face). The
Frankfurt horizontal plane (left and right porion, left orbitale) is y = 0, the midsagittal plane is x = 0
and the origin is the midpoint of the two porions. The same function serves synthetic heads and real scans:
whatever finds the three landmarks, this puts the head in the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANONICAL_FRAME_NAME = "facegen canonical (Frankfurt: origin mid-porion, +x left, +y up, +z forward)"
"""How files and reports name this frame."""


@dataclass(frozen=True)
class RigidTransform:
    """x_canonical = rotation @ x + translation (mm)."""

    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points (..., 3)."""
        return points @ self.rotation.T + self.translation

    def apply_to_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate directions (..., 3) without translating them."""
        return vectors @ self.rotation.T

    def inverse(self) -> RigidTransform:
        """The transform back to the original frame."""
        return RigidTransform(self.rotation.T, -self.rotation.T @ self.translation)

    def as_matrix(self) -> np.ndarray:
        """4 x 4 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.rotation, self.translation
        return m


def frankfurt_frame(*, porion_left: np.ndarray, porion_right: np.ndarray, orbitale_left: np.ndarray) -> RigidTransform:
    """The rigid transform that takes a head to the canonical frame, from three skull landmarks (mm)."""
    porion_left, porion_right, orbitale_left = (
        np.asarray(p, float) for p in (porion_left, porion_right, orbitale_left)
    )
    origin = 0.5 * (porion_left + porion_right)
    x_axis = porion_left - porion_right
    if np.linalg.norm(x_axis) < 50.0:
        raise ValueError(
            f"porions are {np.linalg.norm(x_axis):.1f} mm apart; a head needs about 100-140 mm: check the landmarks"
        )
    x_axis /= np.linalg.norm(x_axis)
    forward = orbitale_left - origin
    z_axis = forward - x_axis * (forward @ x_axis)
    if np.linalg.norm(z_axis) < 30.0:
        raise ValueError("orbitale lies on the porion axis; the Frankfurt plane is undefined: check the landmarks")
    z_axis /= np.linalg.norm(z_axis)
    y_axis = np.cross(z_axis, x_axis)
    rotation = np.stack([x_axis, y_axis, z_axis])
    return RigidTransform(rotation, -rotation @ origin)
