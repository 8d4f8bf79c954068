"""What every reader hands on: a volume in patient coordinates and the few facts about it that may be kept.

Three frames, one name each. The *scan* frame is the input's own world frame, as its file states it (DICOM
patient LPS, NIfTI RAS, MHA/NRRD LPS, a skull mesh's own coordinates): case files are written in it, so they
overlay the scan in a viewer. *Patient* coordinates are the scan frame's points on facegen's axis names (+x
the subject's left, +y superior, +z anterior, mm): the same origin and tilt, a fixed rotation away; readers
hand them on. The *canonical* frame (`facegen.data.pose`) is the Frankfurt pose. Nothing identifying travels
in a `Scan`: readers copy pixel data, geometry, modality and, only when asked, sex and age.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from facegen.data.subject import Sex
from facegen.io.volume import PATIENT_TO_RAS, Volume

LPS_TO_PATIENT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Rows give patient (x, y, z) from DICOM LPS: x = L, y = S, z = A = -P."""
Space = Literal["LPS", "RAS"]
"""Anatomical axes a file's coordinates run along, as DICOM/ITK (LPS) and NIfTI (RAS) name them."""
UNITS = "mm"


@dataclass(frozen=True)
class ScanFrame:
    """The scan frame of an input: its name for people, how patient coordinates turn into it, how viewers read it.

    `axes` is the anatomical axes the frame's coordinates run along (patient coordinates are rotated onto
    them); None keeps patient coordinates as they are (a skull mesh, read in its own coordinates). `space`
    is what 3D Slicer should take the coordinates as (the `SPACE=` tag of mesh files, a markups file's
    coordinateSystem): for a mesh without a tag Slicer assumes LPS, so its files and ours overlay.
    """

    name: str
    axes: Space | None
    space: Space

    def from_patient(self) -> np.ndarray:
        """The rotation taking patient coordinates (x left, y superior, z anterior) to this frame's (mm)."""
        if self.axes == "LPS":
            return LPS_TO_PATIENT.T.copy()
        if self.axes == "RAS":
            return PATIENT_TO_RAS.copy()
        return np.eye(3)

    def to_dict(self) -> dict[str, str]:
        """Plain values for case files: name, axes, units and the space viewers read it as."""
        return {"name": self.name, "axes": self.axes or "as in the file", "units": UNITS, "slicer_space": self.space}


DICOM_FRAME = ScanFrame("DICOM patient (LPS)", "LPS", "LPS")
NIFTI_FRAME = ScanFrame("NIfTI world (RAS)", "RAS", "RAS")


def itk_frame(kind: str, *, anatomical: bool = True) -> ScanFrame:
    """The world frame of an MHA/MHD/NRRD file (LPS, as ITK reads it); `kind` names the format."""
    if anatomical:
        return ScanFrame(f"{kind} world (LPS)", "LPS", "LPS")
    return ScanFrame(f"{kind} world as read by ITK (LPS; the file names no anatomical space)", "LPS", "LPS")


def mesh_frame(units: str, space: Space | None) -> ScanFrame:
    """A skull mesh's own frame, in mm after scaling from `units`; `space` is the SPACE tag its file carries."""
    scaled = "" if units == UNITS else f", scaled from {units} to mm"
    tag = f"tagged SPACE={space}" if space else "untagged (3D Slicer reads it as LPS)"
    return ScanFrame(f"the skull mesh's own coordinates ({tag}{scaled})", None, space or "LPS")


class ScanError(ValueError):
    """A scan or mesh facegen cannot use. The message names the file, the problem and the fix."""

    def __init__(self, path: Path | str, problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}" + (f". {fix[:1].upper()}{fix[1:]}" if fix else ""))


@dataclass(frozen=True)
class Scan:
    """A head scan as read: the volume, its modality when the format says, and a description safe to log.

    `sex` and `age_years` are filled only when the user asked to keep them from the file header.
    `notes` record choices the reader made (which series, a resampled gantry tilt), again without personal
    data.
    """

    volume: Volume
    modality: str | None
    description: str
    sex: Sex | None = None
    age_years: float | None = None
    notes: tuple[str, ...] = field(default=())
    orientation_known: bool = True
    """False when the file does not say which way the patient lies (a NRRD in a non-anatomical space)."""
    frame: ScanFrame = DICOM_FRAME
    """The file's own world frame: DICOM's patient frame unless the reader says otherwise."""
