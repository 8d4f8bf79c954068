"""Write a volume in Hounsfield units as a DICOM image series, one file per axial slice.

The files are plain single-frame CT Image Storage (explicit VR little endian, uncompressed), so any viewer
or PACS reads them: useful to export synthetic CTs, and to test the reader. Geometry goes from patient
axes to DICOM's LPS patient coordinates. UIDs come from the seed, so the same call writes the same bytes.
A gantry tilt is written the way tilted scanners store it: slice positions step obliquely (sheared along
the j axis) and each slice holds the anatomy at its own, shifted, plane.
"""

from __future__ import annotations

import copy
from io import BytesIO
from pathlib import Path

import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds
from scipy import ndimage

from facegen.data.scans.scan import LPS_TO_PATIENT
from facegen.io.atomic import write_bytes_atomic
from facegen.io.volume import Volume

_SOP_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage}
_MAX_TILT_DEG = 60.0


def _ds(value: float) -> str:
    """A number as a DICOM decimal string (at most 16 characters)."""
    return format_number_as_ds(float(value))


def _uid(seed: int, *parts: object) -> UID:
    """A UID fixed by the seed and what it names (study, series, slice)."""
    return generate_uid(entropy_srcs=["facegen-export", str(seed), *(str(p) for p in parts)])


def _stored_values(hu: np.ndarray, intercept: float) -> tuple[np.ndarray, int]:
    """Stored pixel values (uint16 or int16) for HU with rescale slope 1, and the pixel representation."""
    stored = np.rint(np.asarray(hu, float) - intercept)
    lo, hi = (float(stored.min()), float(stored.max())) if stored.size else (0.0, 0.0)
    if lo >= 0 and hi <= 65535:
        return stored.astype(np.uint16), 0
    if lo >= -32768 and hi <= 32767:
        return stored.astype(np.int16), 1
    raise ValueError(
        f"HU range {lo + intercept:g} to {hi + intercept:g} does not fit 16 bits with intercept {intercept:g}"
    )


def _tilted(array: np.ndarray, first_rows: np.ndarray) -> np.ndarray:
    """Slices resampled along j (linear): row 0 of slice k at j = `first_rows[k]`, rows enough for all anatomy."""
    fill = float(array.min()) if array.size else 0.0
    rows = array.shape[1] + int(np.ceil(first_rows.max() - first_rows.min() - 1e-9))
    out = np.empty((array.shape[0], rows, array.shape[2]), np.float32)
    for k in range(array.shape[2]):
        ndimage.affine_transform(
            array[:, :, k].astype(np.float32),
            np.ones(2),
            offset=(0.0, first_rows[k]),
            output_shape=out.shape[:2],
            output=out[:, :, k],
            order=1,
            mode="constant",
            cval=fill,
        )
    return out


def _base_dataset(volume: Volume, modality: str, series_number: int, seed: int, intercept: float) -> Dataset:
    """Attributes shared by every slice: patient/study/series modules (type 2 left empty) and image pixel."""
    ds = Dataset()
    ds.SOPClassUID = _SOP_CLASSES.get(modality, SecondaryCaptureImageStorage)
    ds.StudyInstanceUID = _uid(seed, "study")
    ds.SeriesInstanceUID = _uid(seed, "series", series_number)
    ds.FrameOfReferenceUID = _uid(seed, "frame")
    for keyword in (
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
        "ReferringPhysicianName", "StudyID", "AccessionNumber", "Manufacturer", "PositionReferenceIndicator",
        "KVP", "AcquisitionNumber",
    ):  # fmt: skip
        setattr(ds, keyword, "")
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(volume.shape[1]), int(volume.shape[0])
    ds.PixelSpacing = [_ds(volume.spacing_mm[1]), _ds(volume.spacing_mm[0])]  # row spacing (along j), column (i)
    ds.SliceThickness = _ds(volume.spacing_mm[2])
    lps = LPS_TO_PATIENT.T @ volume.direction
    ds.ImageOrientationPatient = [_ds(v) for v in (*lps[:, 0], *lps[:, 1])]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.RescaleIntercept = _ds(intercept)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU" if modality == "CT" else "US"
    return ds


def write_dicom_series(
    volume: Volume,
    folder: Path,
    *,
    modality: str = "CT",
    series_number: int = 1,
    tags: dict[str, object] | None = None,
    rescale_intercept: float = -1024.0,
    tilt_deg: float = 0.0,
    seed: int = 0,
) -> list[Path]:
    """Write `volume` (HU) as `folder/slice_0001.dcm`, ... (one file per k slice), atomically; return the paths.

    `tags` sets further attributes by keyword (applied last, so they may override). `tilt_deg` writes a
    gantry-tilted acquisition: slice k sits k * spacing_k * tan(tilt) further along j, with content resampled
    to match and enough extra rows that no anatomy leaves the field of view. Pixel data is stored with rescale
    slope 1 and `rescale_intercept` (HU rounded to integers).
    """
    folder = Path(folder)
    if not abs(tilt_deg) <= _MAX_TILT_DEG:
        raise ValueError(f"tilt_deg {tilt_deg} must be within +-{_MAX_TILT_DEG:g} degrees")
    extra = dict(tags or {})
    unknown = sorted(k for k in extra if tag_for_keyword(k) is None)
    if unknown:
        raise ValueError(f"unknown DICOM keywords in tags: {', '.join(unknown)}")
    base = _base_dataset(volume, modality, series_number, seed, rescale_intercept)
    shift = np.arange(volume.shape[2]) * (volume.spacing_mm[2] * np.tan(np.radians(tilt_deg)) / volume.spacing_mm[1])
    first_rows = shift - np.ceil(shift.max() - 1e-9)  # j of each slice's row 0: <= 0, so the slice covers all rows
    array = volume.array
    if tilt_deg:
        base.GantryDetectorTilt = _ds(tilt_deg)
        array = _tilted(array, first_rows)
        base.Rows = array.shape[1]
    stored, representation = _stored_values(array, rescale_intercept)
    base.PixelRepresentation = representation
    paths = []
    for k in range(volume.shape[2]):
        ds = copy.deepcopy(base)
        ds.SOPInstanceUID = _uid(seed, "slice", series_number, k)
        ds.InstanceNumber = k + 1
        position = volume.index_to_world([0.0, float(first_rows[k]), float(k)])
        ds.ImagePositionPatient = [_ds(v) for v in LPS_TO_PATIENT.T @ position]
        ds.SliceLocation = _ds(float((LPS_TO_PATIENT.T @ position)[2]))
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        for keyword, value in extra.items():
            setattr(ds, keyword, value)
        paths.append(_write(ds, folder / f"slice_{k + 1:04d}.dcm"))
    return paths


def _write(ds: Dataset, path: Path) -> Path:
    """Add the file meta information and write `ds` as a DICOM Part 10 file, atomically."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    write_bytes_atomic(path, buffer.getvalue())
    return path
