"""Read a head scan from any supported file: DICOM series (folder or zip), NIfTI, MHA/MHD and NRRD.

NIfTI goes through nibabel (RAS+), MHA/MHD/NRRD through SimpleITK (LPS), DICOM through pydicom with a
whitelist (see `facegen.data.scans.dicom`); every reader ends in the same `Scan` in patient coordinates.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk  # noqa: N813 - the name its authors use

from facegen.data.scans.scan import DICOM_FRAME, LPS_TO_PATIENT, NIFTI_FRAME, Scan, ScanError, itk_frame
from facegen.io.volume import Volume, read_nifti

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
DICOM_SUFFIXES = (".zip", ".dcm")
ANATOMICAL_NRRD_SPACES = ("left-posterior-superior", "right-anterior-superior", "left-anterior-superior", "LPS", "RAS")
SPACING_RANGE_MM = (0.05, 20.0)


def scan_kind(path: Path) -> str:
    """'dicom', 'nifti' or 'itk' for a path, or a ScanError naming what is supported."""
    name = path.name.lower()
    if path.is_dir() or name.endswith(DICOM_SUFFIXES):
        return "dicom"
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(ITK_SUFFIXES):
        return "itk"
    raise ScanError(
        path,
        "not a scan format facegen reads",
        "give a DICOM folder or .zip, a NIfTI (.nii, .nii.gz), MHA/MHD or NRRD (.nrrd, .nhdr) file",
    )


def _nrrd_header(path: Path) -> dict[str, str]:
    """The fields of a NRRD header (text up to the first blank line), lower-case keys."""
    fields = {}
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.decode("latin-1").strip()
            if not line:
                break
            if ":" in line and not line.startswith("#"):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
    return fields


def _read_itk(path: Path) -> tuple[sitk.Image, list[str], bool]:
    """SimpleITK image, notes and whether the orientation is anatomical.

    A NRRD header that pairs 'space' with per-axis 'spacings' breaks the NRRD rules and ITK refuses it; a
    non-anatomical space (3D-left-handed, as in the classic VTK headsq scan) says nothing about which way
    the patient lies. Such a header is re-read without the space line (data files by absolute path)."""
    notes: list[str] = []
    known = True
    header = _nrrd_header(path) if path.suffix.lower() in (".nrrd", ".nhdr") else {}
    space = header.get("space")
    if header and space is not None and space not in ANATOMICAL_NRRD_SPACES:
        known = False
        notes.append(f"the NRRD space '{space}' is not anatomical: orientation found from the anatomy")
        if "spacings" in header and path.suffix.lower() == ".nhdr":
            text = path.read_text(encoding="latin-1")
            text = re.sub(r"(?m)^space:.*\n", "", text)
            text = re.sub(
                r"(?m)^data file:\s*(?!/)(.*)$", lambda m: f"data file: {path.parent.resolve()}/{m.group(1)}", text
            )
            with tempfile.TemporaryDirectory() as tmp:
                fixed = Path(tmp) / path.name
                fixed.write_text(text, encoding="latin-1")
                image = _execute(fixed, path)
            if space.endswith("left-handed"):
                notes.append(
                    "the file declares a left-handed space: its slice axis is mirrored to make it right-handed"
                )
                direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
                image.SetDirection((direction * np.array([1.0, 1.0, -1.0])).ravel().tolist())
            return image, notes, known
    return _execute(path, path), notes, known


def _execute(path: Path, shown: Path) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1][:200]
        raise ScanError(shown, f"unreadable or truncated image ({reason})", "check that the file is complete") from None


def _itk_volume(image: sitk.Image, path: Path) -> Volume:
    """Volume in patient coordinates from an ITK image (LPS world)."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ScanError(
            path,
            f"a head scan must be one 3D grey-value volume, got {image.GetDimension()}D with "
            f"{image.GetNumberOfComponentsPerPixel()} components",
        )
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    array = (
        array.astype(np.int16)
        if array.dtype.kind in "iu" and array.min() >= -32768 and array.max() <= 32767
        else array.astype(np.float32)
    )
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    return Volume(
        array,
        np.asarray(image.GetSpacing(), float),
        LPS_TO_PATIENT @ np.asarray(image.GetOrigin(), float),
        LPS_TO_PATIENT @ direction,
    )


def check_spacing(volume: Volume, path: Path) -> None:
    """Refuse spacings no head CT has (missing spacing often reads as 1 or 0)."""
    lo, hi = SPACING_RANGE_MM
    if np.any(volume.spacing_mm < lo) or np.any(volume.spacing_mm > hi):
        raise ScanError(
            path,
            f"voxel spacing {np.round(volume.spacing_mm, 4).tolist()} mm is outside {lo}-{hi} mm",
            "the header's spacing is missing or wrong; fix it (e.g. in 3D Slicer) and try again",
        )


def read_scan(path: Path | str, *, series: int | None = None, keep_sex_age: bool = False) -> Scan:
    """A scan from a file or folder; every failure is a ScanError naming the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise ScanError(path, "no such file or folder")
    kind = scan_kind(path)
    if kind == "dicom":
        from facegen.data.scans.dicom import read_dicom

        scan = replace(read_dicom(path, series=series, keep_sex_age=keep_sex_age), frame=DICOM_FRAME)
    elif kind == "nifti":
        try:
            volume = read_nifti(path)
        except ValueError as exc:
            raise ScanError(path, f"unreadable NIfTI ({exc})", "check that the file is complete") from None
        scan = Scan(volume, None, f"NIfTI {path.name}", frame=NIFTI_FRAME)
    else:
        image, notes, known = _read_itk(path)
        label = path.suffix.lstrip(".").upper()
        scan = Scan(
            _itk_volume(image, path),
            None,
            f"{label} {path.name}",
            notes=tuple(notes),
            orientation_known=known,
            frame=itk_frame(label, anatomical=known),
        )
    check_spacing(scan.volume, path)
    if min(scan.volume.shape) < 8:
        raise ScanError(
            path, f"volume of {scan.volume.shape} voxels is too small for a head", "give the whole head scan"
        )
    return scan
