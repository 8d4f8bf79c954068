"""Volumes carry their geometry; NIfTI files store it in RAS and refuse broken input by name."""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pytest

from facegen.io.volume import PATIENT_TO_RAS, Volume, read_nifti, write_nifti


def _small_volume(dtype: type) -> Volume:
    array = np.random.default_rng(1).normal(0.0, 300.0, size=(7, 6, 5)).astype(dtype)
    rotation = np.column_stack([(1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)])
    return Volume(array, (0.5, 0.75, 1.25), (-12.3, 4.5, 101.7), rotation)


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_nifti_round_trip(tmp_path, dtype: type) -> None:
    volume = _small_volume(dtype)
    path = write_nifti(volume, tmp_path / "scan.nii.gz")
    back = read_nifti(path)
    assert back.array.dtype == volume.array.dtype
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.spacing_mm, volume.spacing_mm, atol=1e-6)
    np.testing.assert_allclose(back.origin_mm, volume.origin_mm, atol=1e-4)
    np.testing.assert_allclose(back.direction, volume.direction, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nii.gz"]  # no temporary file left behind


def test_nifti_world_is_ras(tmp_path) -> None:
    volume = _small_volume(np.int16)
    image = nib.load(write_nifti(volume, tmp_path / "scan.nii.gz"))
    assert nib.aff2axcodes(image.affine) == ("L", "P", "S")  # axial slices stacked upward, as scanners store
    corner = np.array([6.0, 5.0, 4.0])
    ras = image.affine[:3, :3] @ corner + image.affine[:3, 3]
    np.testing.assert_allclose(ras, PATIENT_TO_RAS @ volume.index_to_world(corner), atol=1e-4)
    np.testing.assert_allclose(PATIENT_TO_RAS @ [1.0, 2.0, 3.0], [-1.0, 3.0, 2.0])  # R = -x, A = z, S = y


@pytest.mark.parametrize("content", [b"not a nifti file at all", b""])
def test_corrupt_nifti_raises_value_error_naming_the_file(tmp_path, content: bytes) -> None:
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        read_nifti(path)


def test_truncated_nifti_raises_value_error(tmp_path) -> None:
    path = write_nifti(_small_volume(np.float32), tmp_path / "scan.nii.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        read_nifti(path)


def test_volume_refuses_bad_geometry() -> None:
    with pytest.raises(ValueError, match="orthonormal"):
        Volume(np.zeros((2, 2, 2), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.ones((3, 3)))
    with pytest.raises(ValueError, match="int16 or float32"):
        Volume(np.zeros((2, 2, 2), np.float64), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    with pytest.raises(ValueError, match="spacing_mm"):
        Volume(np.zeros((2, 2, 2), np.int16), (1.0, -1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
