"""The canonical pose of a scanned head: automatic (model fit, then Frankfurt) or from a landmark file.

Either way the result is the Frankfurt frame of `facegen.data.pose`, built from porions and orbitale, so
synthetic heads and real scans end up in the same frame. The alignment carries what a person needs to
check it: landmarks, how well the model fitted, and a drawing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from facegen.data.alignment.landmark_files import LandmarkFileError, ToPatient, ct_to_patient, read_landmark_file
from facegen.data.alignment.register import fit_skull
from facegen.data.pose import RigidTransform, frankfurt_frame

MIN_INLIER_SHARE = 0.15
"""Below this share of the model's visible bone matched, the automatic alignment has failed: it is refused."""
WEAK_FIT_SHARE = 0.30
"""Below this share of the model's visible bone matched, an automatic pose is weak: a case is refused unless the
examiner accepts it. Measured on skull-only ingests (as a case runs them): well-segmented synthetic CTs match
92-96 % (1-3.2 mm voxels, heads tilted up to 12 degrees and shifted), poses within 0.8 degrees of the truth;
the real headsq CT matches 38 % (3.2 mm voxels, a real skull unlike the model's), 36-46 % over bone thresholds
of 150-900 HU, poses within 3 degrees of each other. Raising a synthetic CT's bone threshold until bone is
lost: 1.6 degrees off at 51 % matched, 3 at 28-42 %, 11 at 27 %. 30 % passes the real CT with margin and
stops the fits that went several degrees wrong. The residual cannot tell them apart (0.95-1.45 mm for right
and wrong poses alike: the median distance of matches that all lie within 2.5 mm), so the share decides."""

MAX_SHAPE_DISTANCE = 27.0
"""Bone only: a fit whose shape lies further than this from the mean skull (the norm of its standardised shape
coefficients, a Mahalanobis distance) did not find a skull. Measured: synthetic skull meshes 6-7 (holed, noisy,
without mandible, 0.5-3 mm), the real headsq skull 19.5-20 (a real skull, unlike the synthetic ones, cut above the
orbits), a sphere 34, an ellipsoid 32, a cylinder 35, a bumpy blob 42, a box 74. The share matched cannot tell
them apart: the model's shape modes bend far enough to match 27-41 % of any rounded surface (headsq: 38 %)."""


class AlignmentError(ValueError):
    """The head could not be put in the canonical frame; the message says why and what to do."""


@dataclass(frozen=True)
class Alignment:
    """patient (mm) -> canonical transform, the landmarks used (patient coordinates) and how it was found.

    Patient coordinates are the scan's own points on facegen's axes (see `facegen.data.scans.scan`).
    """

    to_canonical: RigidTransform
    landmarks: dict[str, np.ndarray]
    method: str
    inlier_share: float | None = None
    residual_mm: float | None = None
    symmetry_share: float | None = None
    """A bone-only fit: the share of the scan its mirror image across the bone's own symmetry plane matched."""
    midline_tilt_deg: float | None = None
    """A bone-only fit: the angle between the pose's midsagittal plane (x = 0) and the bone's symmetry plane."""

    @property
    def weak(self) -> bool:
        """An automatic fit that matched less than WEAK_FIT_SHARE of the model's bone (landmarks are never weak)."""
        return self.inlier_share is not None and self.inlier_share < WEAK_FIT_SHARE

    def canonical_landmarks(self) -> dict[str, np.ndarray]:
        """The landmarks in the canonical frame (mm), by name."""
        return {k: self.to_canonical.apply(v) for k, v in sorted(self.landmarks.items())}

    def scan_to_canonical(self, patient_to_scan: np.ndarray) -> RigidTransform:
        """The transform from the scan frame (the input's own world frame, `patient_to_scan` @ patient) to canonical."""
        rotation = np.asarray(patient_to_scan, float)
        return RigidTransform(self.to_canonical.rotation @ rotation.T, self.to_canonical.translation)

    def to_dict(self, patient_to_scan: np.ndarray | None = None) -> dict[str, object]:
        """Plain values for the case record; with the scan frame's rotation, the transform and landmarks in it."""
        out: dict[str, object] = {"method": self.method}
        if patient_to_scan is not None:
            rotation = np.asarray(patient_to_scan, float)
            out["scan_to_canonical"] = np.round(self.scan_to_canonical(rotation).as_matrix(), 6).tolist()
            out["landmarks_scan_mm"] = {
                k: np.round(rotation @ v, 3).tolist() for k, v in sorted(self.landmarks.items())
            }
        out["landmarks_canonical_mm"] = {k: np.round(v, 3).tolist() for k, v in self.canonical_landmarks().items()}
        out["model_bone_matched_share"] = None if self.inlier_share is None else round(self.inlier_share, 4)
        out["model_residual_mm"] = None if self.residual_mm is None else round(self.residual_mm, 4)
        if self.symmetry_share is not None:
            out["symmetry_matched_share"] = round(self.symmetry_share, 4)
            out["midline_tilt_from_symmetry_deg"] = round(float(self.midline_tilt_deg), 3)
        return out


def _frame(landmarks: dict[str, np.ndarray]) -> RigidTransform:
    return frankfurt_frame(
        porion_left=landmarks["porion_l"], porion_right=landmarks["porion_r"], orbitale_left=landmarks["orbitale_l"]
    )


def align_head(
    skull: trimesh.Trimesh,
    face: trimesh.Trimesh | None = None,
    *,
    orientation_known: bool = True,
    field_of_view: Callable[[np.ndarray], np.ndarray] | None = None,
    landmark_file: Path | None = None,
    landmarks_to_patient: ToPatient = ct_to_patient,
) -> Alignment:
    """Find the patient-to-canonical transform: from the landmark file when given (its points brought to patient
    coordinates by `landmarks_to_patient`), else by fitting the model."""
    if landmark_file is not None:
        try:
            landmarks = read_landmark_file(landmark_file, landmarks_to_patient)
            return Alignment(_frame(landmarks), landmarks, f"landmark file {Path(landmark_file).name}")
        except LandmarkFileError as exc:
            raise AlignmentError(str(exc)) from exc
        except ValueError as exc:
            raise AlignmentError(f"{landmark_file}: {exc}") from exc
    fit = fit_skull(skull, face=face, orientation_known=orientation_known, field_of_view=field_of_view)
    if fit.inlier_share < MIN_INLIER_SHARE:
        raise AlignmentError(
            f"automatic alignment failed: only {fit.inlier_share:.0%} of the skull model found matching bone. "
            "Check that the bone threshold suits the scan, or give porions and orbitale with --landmarks FILE"
        )
    if face is None and fit.shape_distance > MAX_SHAPE_DISTANCE:
        raise AlignmentError(
            f"the surface does not look like a skull: to match it, the skull model has to take a shape "
            f"{fit.shape_distance:.0f} standard units from the mean skull (skulls measured: 6-20; refused above "
            f"{MAX_SHAPE_DISTANCE:g}), matching {fit.inlier_share:.0%} of its bone. Give a scan of a skull with its "
            "face (orbits, nose, upper jaw); if it is one, give porions and orbitale with --landmarks FILE"
        )
    frame = _frame(fit.landmarks)
    tilt = None if fit.symmetry is None else fit.symmetry.angle_deg(frame.rotation[0])
    return Alignment(
        frame, fit.landmarks, "automatic: skull model fit", fit.inlier_share, fit.residual_mm,
        None if fit.symmetry is None else fit.symmetry.matched_share, tilt,
    )  # fmt: skip
