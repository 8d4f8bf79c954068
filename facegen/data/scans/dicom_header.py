"""Numbers from DICOM headers: attributes, rescale, and the frames of an enhanced multi-frame image.

An enhanced image (Enhanced CT, Enhanced MR, Legacy Converted Enhanced CT...) holds a whole stack in one file.
Each frame's plane position, plane orientation, pixel spacing and rescale are read from its item of the
Per-Frame Functional Groups Sequence, else from the Shared Functional Groups Sequence (PS3.3 C.7.6.16). Only
numbers are copied out; callers read headers inside the reader's quiet context (pydicom may warn, quoting
values, while converting them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from facegen.data.scans.dicom_pixels import REEXPORT
from facegen.data.scans.scan import ScanError
from facegen.data.subject import Sex

MODALITIES = frozenset((
    "AR", "ASMT", "AU", "BDUS", "BI", "BMD", "CR", "CT", "CTPROTOCOL", "DG", "DOC", "DX", "ECG", "EEG", "EMG",
    "EOG", "EPS", "ES", "FID", "GM", "HC", "HD", "IO", "IOL", "IVOCT", "IVUS", "KER", "KO", "LEN", "LS", "MG", "MR",
    "M3D", "NM", "OAM", "OCT", "OP", "OPM", "OPT", "OPTBSV", "OPTENF", "OPV", "OSS", "OT", "PLAN", "POS", "PR",
    "PT", "PX", "REG", "RESP", "RF", "RG", "RTDOSE", "RTIMAGE", "RTPLAN", "RTRECORD", "RTSTRUCT", "RWV", "SEG",
    "SM", "SMR", "SR", "SRF", "STAIN", "TEXTUREMAP", "TG", "US", "VA", "XA", "XC",
))  # fmt: skip
"""Defined terms of Modality (PS3.3 C.7.3.1.1.1): any other text is not shown, in case it is personal."""
_AGE_UNITS_YEARS = {"D": 1.0 / 365.25, "W": 7.0 / 365.25, "M": 1.0 / 12.0, "Y": 1.0}
_FRAMES_FIX = "Re-export the series from the scanner or PACS (enhanced or classic single-frame DICOM)"
_GEOMETRY = (
    ("PlanePositionSequence", "ImagePositionPatient", 3),
    ("PlaneOrientationSequence", "ImageOrientationPatient", 6),
    ("PixelMeasuresSequence", "PixelSpacing", 2),
)
"""Functional-group macro, attribute and value count of the geometry every frame needs."""


@dataclass(frozen=True)
class Frame:
    """One frame of an enhanced image: its index in the file, plane, pixel spacing and (slope, intercept)."""

    index: int
    position: np.ndarray
    orientation: np.ndarray
    pixel_spacing: np.ndarray
    rescale: tuple[float, float]


def floats(ds: Dataset, keyword: str, count: int, label: Path) -> np.ndarray | None:
    """A numeric multi-value attribute as floats, None when absent; ScanError (naming it) when malformed."""
    if keyword not in ds or ds[keyword].value in (None, ""):
        return None
    raw = ds[keyword].value
    try:
        values = np.array([float(v) for v in (raw if isinstance(raw, MultiValue | list | tuple) else [raw])])
    except (TypeError, ValueError):
        values = np.array([])
    if values.shape != (count,) or not np.all(np.isfinite(values)):
        raise ScanError(label, f"{keyword} is not {count} numbers", REEXPORT)
    return values


def rescale(ds: Dataset, label: Path) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) of a dataset or functional-group item, (1, 0) when absent."""
    try:
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    except (TypeError, ValueError):
        slope = intercept = float("nan")
    if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
        raise ScanError(label, "RescaleSlope or RescaleIntercept is not usable", REEXPORT)
    return slope, intercept


def integer(ds: Dataset, keyword: str) -> int | None:
    """An integer attribute, None when absent or malformed."""
    value = ds.get(keyword)
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def modality(ds: Dataset) -> str | None:
    """Modality when it is a defined term."""
    value = str(ds.get("Modality", "") or "").strip().upper()
    return value if value in MODALITIES else None


def sex(ds: Dataset) -> Sex | None:
    """PatientSex F or M; anything else is unknown."""
    value = str(ds.get("PatientSex", "") or "").strip().upper()
    return Sex(value) if value in ("F", "M") else None


def age_years(ds: Dataset) -> float | None:
    """PatientAge ("045Y", "006M", "010W", "020D") in years."""
    match = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY])\s*", str(ds.get("PatientAge", "") or "").upper())
    return None if match is None else int(match[1]) * _AGE_UNITS_YEARS[match[2]]


def is_enhanced(ds: Dataset) -> bool:
    """Whether a header carries per-frame functional groups (the enhanced multi-frame image IODs)."""
    return "PerFrameFunctionalGroupsSequence" in ds


def frames(ds: Dataset, count: int, label: Path) -> list[Frame]:
    """The `count` frames of an enhanced image, in file order, each with its own geometry and rescale."""
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    if len(per_frame) != count:
        problem = f"has {count} frames but {len(per_frame)} items of per-frame geometry (Per-Frame Functional Groups)"
        raise ScanError(label, problem, _FRAMES_FIX)
    shared = (ds.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    return [_frame(n, (item, shared), ds, label) for n, item in enumerate(per_frame)]


def _macro(groups: tuple[Dataset, Dataset], sequence: str) -> Dataset:
    """A functional-group macro's item for one frame: its own, else the shared one; empty when neither has it."""
    for group in groups:
        items = group.get(sequence)
        if items:
            return items[0]
    return Dataset()


def _frame(n: int, groups: tuple[Dataset, Dataset], top: Dataset, label: Path) -> Frame:
    """Frame `n` from its per-frame and the shared functional groups; rescale falls back to the top level."""
    geometry = []
    for sequence, keyword, count in _GEOMETRY:
        value = floats(_macro(groups, sequence), keyword, count, label)
        if value is None:
            problem = f"frame {n + 1} has no {keyword} in its functional groups ({sequence})"
            raise ScanError(label, problem, _FRAMES_FIX)
        geometry.append(value)
    transformation = _macro(groups, "PixelValueTransformationSequence")
    has_rescale = "RescaleSlope" in transformation or "RescaleIntercept" in transformation
    return Frame(n, *geometry, rescale=rescale(transformation if has_rescale else top, label))
