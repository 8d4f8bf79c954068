"""The canonical pose of a scanned head: automatic (model fit, then Frankfurt) or from a landmark file.

Either way the result is the Frankfurt frame of `facegen.data.pose`, built from porions and orbitale, so
synthetic heads and real scans end up in the same frame. The alignment carries what a person needs to
check it: landmarks, how well the model fitted, and a drawing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from facegen.data.alignment.register import fit_skull
from facegen.data.pose import RigidTransform, frankfurt_frame

MIN_INLIER_SHARE = 0.15
"""Below this share of the model's visible bone matched, the automatic alignment is not trusted."""
LANDMARK_SPACES = {
    "RAS": np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
    "LPS": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    "patient": np.eye(3),
}
"""Landmark files give points in 3D Slicer's RAS (the default), DICOM's LPS, or facegen's patient axes
(x left, y superior, z anterior); each maps to facegen's patient axes by this rotation."""
REQUIRED_LANDMARKS = ("porion_l", "porion_r", "orbitale_l")


class AlignmentError(ValueError):
    """The head could not be put in the canonical frame; the message says why and what to do."""


@dataclass(frozen=True)
class Alignment:
    """scan (patient mm) -> canonical transform, the landmarks used (scan coordinates) and how it was found."""

    to_canonical: RigidTransform
    landmarks: dict[str, np.ndarray]
    method: str
    inlier_share: float | None = None
    residual_mm: float | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain values for the case record."""
        return {
            "method": self.method,
            "scan_to_canonical": np.round(self.to_canonical.as_matrix(), 6).tolist(),
            "landmarks_scan_mm": {k: np.round(v, 3).tolist() for k, v in sorted(self.landmarks.items())},
            "landmarks_canonical_mm": {
                k: np.round(self.to_canonical.apply(v), 3).tolist() for k, v in sorted(self.landmarks.items())
            },
            "model_bone_matched_share": None if self.inlier_share is None else round(self.inlier_share, 4),
            "model_residual_mm": None if self.residual_mm is None else round(self.residual_mm, 4),
        }


def _frame(landmarks: dict[str, np.ndarray]) -> RigidTransform:
    return frankfurt_frame(
        porion_left=landmarks["porion_l"], porion_right=landmarks["porion_r"], orbitale_left=landmarks["orbitale_l"]
    )


def read_landmark_file(path: Path) -> dict[str, np.ndarray]:
    """Porions and left orbitale (scan coordinates) from a JSON file: {"space": "RAS", "porion_l": [x, y, z], ...}."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AlignmentError(f"{path}: unreadable landmark file ({exc})") from exc
    space = data.get("space", "RAS")
    if space not in LANDMARK_SPACES:
        raise AlignmentError(f"{path}: unknown space {space!r}; use one of {', '.join(LANDMARK_SPACES)}")
    missing = [k for k in REQUIRED_LANDMARKS if k not in data]
    if missing:
        raise AlignmentError(f"{path}: landmarks {', '.join(missing)} are missing; the file needs {REQUIRED_LANDMARKS}")
    out = {}
    for name, value in data.items():
        if name == "space":
            continue
        point = np.asarray(value, float)
        if point.shape != (3,) or not np.all(np.isfinite(point)):
            raise AlignmentError(f"{path}: landmark {name} must be three numbers (mm), got {value!r}")
        out[name] = LANDMARK_SPACES[space] @ point
    return out


def align_head(
    skull: trimesh.Trimesh,
    face: trimesh.Trimesh | None = None,
    *,
    orientation_known: bool = True,
    field_of_view: Callable[[np.ndarray], np.ndarray] | None = None,
    landmark_file: Path | None = None,
) -> Alignment:
    """Find the scan-to-canonical transform: from the landmark file when given, else by fitting the model."""
    if landmark_file is not None:
        landmarks = read_landmark_file(landmark_file)
        try:
            return Alignment(_frame(landmarks), landmarks, f"landmark file {Path(landmark_file).name}")
        except ValueError as exc:
            raise AlignmentError(f"{landmark_file}: {exc}") from exc
    fit = fit_skull(skull, face=face, orientation_known=orientation_known, field_of_view=field_of_view)
    if fit.inlier_share < MIN_INLIER_SHARE:
        raise AlignmentError(
            f"automatic alignment failed: only {fit.inlier_share:.0%} of the skull model found matching bone. "
            "Check that the bone threshold suits the scan, or give porions and orbitale with --landmarks FILE"
        )
    return Alignment(
        _frame(fit.landmarks), fit.landmarks, "automatic: skull model fit", fit.inlier_share, fit.residual_mm
    )
