"""What every reader hands on: a volume in patient coordinates and the few facts about it that may be kept.

Patient coordinates use the canonical axis names (+x the subject's left, +y superior, +z anterior, mm) but
not yet the canonical pose: origin and tilt are the scanner's. DICOM's LPS and NIfTI's RAS both map onto
them by a fixed rotation. Nothing identifying travels in a `Scan`: readers copy pixel data, geometry,
modality and, only when asked, sex and age.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facegen.data.subject import Sex
from facegen.io.volume import Volume

LPS_TO_CANONICAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Rows give canonical (x, y, z) from DICOM LPS: x = L, y = S, z = A = -P."""


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
