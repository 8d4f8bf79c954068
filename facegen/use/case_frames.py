"""Which frame each file of a case is in, and the case's landmarks as a 3D Slicer markups file.

Two frames, one name each. The *scan* frame is the input's own world frame in mm (DICOM patient LPS, NIfTI
RAS, MHA/NRRD LPS, a skull mesh's own coordinates; see `facegen.data.scans.scan`): the case's meshes,
landmarks and the geometry of its depth maps are given in it, so they overlay the scan in 3D Slicer. The
*canonical* frame is the Frankfurt pose the model works in: the `*_canonical.*` meshes and the depth-map
arrays are in it. `case.json` records both, with the exact transform between them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from facegen.data.pose import CANONICAL_FRAME_NAME, RigidTransform
from facegen.data.representations.depth_map import DepthView
from facegen.data.scans.scan import UNITS, ScanFrame
from facegen.use.face_mesh import GLB_UNITS

if TYPE_CHECKING:
    from facegen.data.scans.ingest import IngestedHead

LANDMARKS_FILE = "landmarks.mrk.json"
MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
    "markups-schema-v1.0.3.json#"
)
"""The 3D Slicer markups JSON schema the landmarks file follows."""
SCAN_FILES = (
    "skull.*", "VARIANT/face.*", "VARIANT/head_surface.*", LANDMARKS_FILE,
    "case.json: alignment.landmarks_scan_mm, frames.canonical_to_scan, frames.depth_pixel_to_scan",
)  # fmt: skip
CANONICAL_FILES = (
    "skull_canonical.*", "VARIANT/face_canonical.*", "VARIANT/head_surface_canonical.*", "skull_depth_mm.npy",
    "VARIANT/face_depth_mm.npy", "VARIANT/face_sd_mm.npy", "viewer.html",
    "case.json: alignment.landmarks_canonical_mm",
)  # fmt: skip
_DECIMALS = 6


@dataclass(frozen=True)
class CaseFrames:
    """A case's scan frame, how its patient coordinates turn into it, and the canonical -> scan transform."""

    scan: ScanFrame
    patient_to_scan: np.ndarray
    canonical_to_scan: RigidTransform

    @staticmethod
    def of(head: IngestedHead) -> CaseFrames:
        """The frames of an ingested head: its scan frame and the inverse of its alignment, composed."""
        patient_to_scan = head.frame.from_patient()
        to_scan = head.alignment.scan_to_canonical(patient_to_scan).inverse()
        return CaseFrames(head.frame, patient_to_scan, to_scan)

    def landmarks_scan_mm(self, landmarks_patient: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Landmarks from patient coordinates (as an `Alignment` holds them) to the scan frame, by name."""
        return {name: self.patient_to_scan @ np.asarray(p, float) for name, p in sorted(landmarks_patient.items())}

    def record(self, view: DepthView) -> dict[str, Any]:
        """The case.json section naming each file family's frame and units, with the transforms between them.

        `depth_pixel_to_scan` takes (column, row, depth mm, 1) of a depth map (arrays are [row, column]) to
        scan mm: the depth maps' geometry in the scan frame.
        """
        canonical_to_scan = self.canonical_to_scan.as_matrix()
        return {
            "scan": {**self.scan.to_dict(), "files": list(SCAN_FILES)},
            "canonical": {"name": CANONICAL_FRAME_NAME, "units": UNITS, "files": list(CANONICAL_FILES)},
            "glb_units": f"{GLB_UNITS} (glTF's unit; PLY, OBJ and STL hold {UNITS})",
            "canonical_to_scan": np.round(canonical_to_scan, _DECIMALS).tolist(),
            "depth_pixel_to_scan": np.round(canonical_to_scan @ depth_pixel_to_canonical(view), _DECIMALS).tolist(),
        }

    def markups_bytes(self, landmarks_patient: dict[str, np.ndarray], description: str) -> bytes:
        """The landmarks as a 3D Slicer markups file (point list), in the scan frame; the same points, same bytes."""
        points = [
            {
                "id": str(i),
                "label": name,
                "description": description,
                "associatedNodeID": "",
                "position": [round(float(v), 3) for v in point],
                "selected": True,
                "locked": True,
                "visibility": True,
                "positionStatus": "defined",
            }
            for i, (name, point) in enumerate(self.landmarks_scan_mm(landmarks_patient).items(), start=1)
        ]
        markups = {"type": "Fiducial", "coordinateSystem": self.scan.space, "coordinateUnits": UNITS,
                   "locked": True, "labelFormat": "%N-%d", "controlPoints": points, "measurements": []}  # fmt: skip
        return (json.dumps({"@schema": MARKUPS_SCHEMA, "markups": [markups]}, indent=2) + "\n").encode()


def depth_pixel_to_canonical(view: DepthView) -> np.ndarray:
    """4 x 4 matrix from (column, row, depth mm, 1) of a depth map in `view` to canonical mm."""
    rows, cols = view.shape
    m = np.eye(4)
    m[0, 0], m[0, 3] = view.pixel_mm, view.centre_mm[0] - (cols - 1) / 2 * view.pixel_mm
    m[1, 1], m[1, 3] = -view.pixel_mm, view.centre_mm[1] + (rows - 1) / 2 * view.pixel_mm
    return m


def frames_summary(frames: dict[str, Any]) -> str:
    """One line for the report: the frame and units of the scan-frame files and of the canonical copies."""
    scan, canonical = frames["scan"], frames["canonical"]
    return (f"meshes (skull.*, face.*), {LANDMARKS_FILE} and depth-map geometry in the scan's frame: "
            f"{scan['name']}, {scan['units']} (GLB in {GLB_UNITS}); *_canonical copies and the depth maps in "
            f"{canonical['name']}, {canonical['units']}")  # fmt: skip
