"""Every reader names the scan frame its file gives coordinates in, and its patient coordinates turn into exactly
that frame: checked on an oblique, shifted volume against the file's own geometry read without facegen."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk  # noqa: N813 - the name its authors use

from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.scans.scan import DICOM_FRAME, NIFTI_FRAME, itk_frame, mesh_frame
from facegen.data.scans.volumes import read_scan
from facegen.io.volume import Volume, write_nifti

SHAPE = (12, 10, 9)
SPACING_MM = (0.8, 0.9, 1.3)
ORIGIN_MM = (-120.0, 35.0, 210.0)


def _oblique() -> Volume:
    """A small volume whose axes are turned about two axes and whose first voxel is far from the origin."""
    a, b = np.radians(20.0), np.radians(-35.0)
    turn_x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    turn_y = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    values = np.random.default_rng(3).integers(-1000, 2000, SHAPE).astype(np.int16)
    return Volume(values, np.array(SPACING_MM), np.array(ORIGIN_MM), turn_x @ turn_y)


def _nifti(volume: Volume, folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    path = write_nifti(volume, folder / "ct.nii.gz")
    image = nib.load(path)
    ijk = np.indices(SHAPE).reshape(3, -1).T
    return path, np.asanyarray(image.dataobj), nib.affines.apply_affine(image.affine, ijk)


def _itk(volume: Volume, folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    image = sitk.GetImageFromArray(volume.array.transpose(2, 1, 0))
    image.SetSpacing(SPACING_MM)
    image.SetOrigin(ORIGIN_MM)
    image.SetDirection(tuple(volume.direction.ravel()))
    path = folder / "ct.mha"
    sitk.WriteImage(image, str(path))
    ijk = np.indices(SHAPE).reshape(3, -1).T
    world = np.array([image.TransformContinuousIndexToPhysicalPoint(tuple(map(float, p))) for p in ijk])
    return path, sitk.GetArrayFromImage(image).transpose(2, 1, 0), world


def _dicom(volume: Volume, folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    write_dicom_series(volume, folder / "dicom", seed=2)
    slices = [pydicom.dcmread(p) for p in sorted((folder / "dicom").glob("*.dcm"))]
    orientation = np.array(slices[0].ImageOrientationPatient, float)
    normal = np.cross(orientation[:3], orientation[3:])
    slices.sort(key=lambda ds: float(np.array(ds.ImagePositionPatient, float) @ normal))
    row_spacing, column_spacing = (float(v) for v in slices[0].PixelSpacing)
    values = np.stack([ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices], -1)
    i, j, k = np.indices(values.shape).reshape(3, -1)
    positions = np.array([ds.ImagePositionPatient for ds in slices], float)
    world = (positions[k] + i[:, None] * column_spacing * orientation[:3]
             + j[:, None] * row_spacing * orientation[3:])  # fmt: skip
    return folder / "dicom", values, world


@pytest.mark.parametrize(
    ("write", "frame"),
    [(_nifti, NIFTI_FRAME), (_itk, itk_frame("MHA")), (_dicom, DICOM_FRAME)],
    ids=["nifti", "mha", "dicom"],
)
def test_each_reader_names_its_frame_and_its_patient_points_map_onto_the_files_world(tmp_path, write, frame):
    # the volume's axes read as patient axes for the NIfTI/MHA writers, as LPS for SimpleITK: any oblique will do
    path, values, world = write(_oblique(), tmp_path)
    scan = read_scan(path)
    assert scan.frame == frame
    np.testing.assert_array_equal(scan.volume.array, values)  # the same voxel order as the file
    ijk = np.indices(scan.volume.shape).reshape(3, -1).T
    mapped = scan.volume.index_to_world(ijk) @ frame.from_patient().T
    np.testing.assert_allclose(mapped, world, atol=1e-3)
    assert np.isclose(np.linalg.det(frame.from_patient()), 1.0)  # a rotation: surfaces keep their outside


def test_frame_names_and_records():
    assert DICOM_FRAME.to_dict() == {"name": "DICOM patient (LPS)", "axes": "LPS", "units": "mm",
                                     "slicer_space": "LPS"}  # fmt: skip
    assert NIFTI_FRAME.from_patient() @ np.array([1.0, 2.0, 3.0]) == pytest.approx([-1.0, 3.0, 2.0])
    assert "no anatomical space" in itk_frame("NRRD", anatomical=False).name
    own = mesh_frame("cm", None)
    assert own.axes is None and own.space == "LPS" and "scaled from cm to mm" in own.name
    np.testing.assert_array_equal(own.from_patient(), np.eye(3))
    assert mesh_frame("mm", "RAS").space == "RAS" and "SPACE=RAS" in mesh_frame("mm", "RAS").name
