"""Enhanced multi-frame CT: one file whose frames carry their geometry and rescale in functional groups reads
into the same volume as the classic series it was made from; missing per-frame geometry is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, EnhancedCTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid

from facegen.data.scans.dicom import read_dicom
from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.scans.scan import ScanError
from facegen.data.synthetic.ct import SCAN_DIRECTION, render_ct
from facegen.io.volume import Volume

_COPIED = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality", "SeriesNumber", "Rows",
           "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit",
           "PixelRepresentation")  # fmt: skip
_INTERCEPTS = (-1024.0, -1100.0)
"""Frames alternate between two rescale intercepts, so reading needs each frame's own."""


@pytest.fixture(scope="module")
def ct(one_head) -> Volume:
    """A synthetic head CT at 4 x 4 x 8 mm, tilted 20 degrees about the left-right axis (oblique planes)."""
    head = render_ct(one_head, spacing_mm=(4.0, 4.0, 8.0), seed=4)
    a = np.radians(20.0)
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])
    return Volume(head.array, head.spacing_mm, head.origin_mm, tilt @ SCAN_DIRECTION)


@pytest.fixture(scope="module")
def classic(ct, tmp_path_factory) -> list[Path]:
    return write_dicom_series(ct, tmp_path_factory.mktemp("classic") / "series", seed=6)


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _frame_group(slice_ds: Dataset, n: int, intercept: float) -> Dataset:
    """The per-frame functional groups of one slice: plane position, frame content, pixel value transformation."""
    return _item(
        PlanePositionSequence=Sequence([_item(ImagePositionPatient=slice_ds.ImagePositionPatient)]),
        FrameContentSequence=Sequence([_item(InStackPositionNumber=n + 1)]),
        PixelValueTransformationSequence=Sequence(
            [_item(RescaleSlope="1", RescaleIntercept=f"{intercept:g}", RescaleType="HU")]
        ),
    )


def _enhanced(files: list[Path], path: Path, syntax: UID = ExplicitVRLittleEndian) -> Path:
    """The classic slices as one Enhanced CT file: frames in reverse order, orientation and spacing shared."""
    slices = [pydicom.dcmread(f) for f in reversed(files)]
    ds = Dataset()
    for keyword in _COPIED:
        setattr(ds, keyword, slices[0][keyword].value)
    ds.SOPClassUID, ds.SOPInstanceUID = EnhancedCTImageStorage, generate_uid(entropy_srcs=[str(path)])
    ds.ImageType = ["DERIVED", "PRIMARY", "AXIAL", "NONE"]
    ds.NumberOfFrames = len(slices)
    ds.SharedFunctionalGroupsSequence = Sequence([_item(
        PixelMeasuresSequence=Sequence([_item(PixelSpacing=slices[0].PixelSpacing,
                                              SliceThickness=slices[0].SliceThickness)]),
        PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=slices[0].ImageOrientationPatient)]),
    )])  # fmt: skip
    groups, frames = [], []
    for n, s in enumerate(slices):
        intercept = _INTERCEPTS[n % 2]
        hu = s.pixel_array.astype(np.int32) * float(s.RescaleSlope) + float(s.RescaleIntercept)
        frames.append(np.rint(hu - intercept).astype(s.pixel_array.dtype))
        groups.append(_frame_group(s, n, intercept))
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.PixelData = np.ascontiguousarray(np.stack(frames)).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless], ids=["uncompressed", "rle"])
def test_enhanced_ct_reads_equal_to_the_classic_series(classic, ct, syntax, tmp_path) -> None:
    path = _enhanced(classic, tmp_path / "enhanced" / "ct.dcm", syntax)
    assert pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames == len(classic)
    expected = read_dicom(classic[0].parent)
    for scan in (read_dicom(path), read_dicom(path.parent)):  # the file itself, or its folder
        assert scan.volume.array.dtype == np.int16 and scan.modality == "CT"
        np.testing.assert_array_equal(scan.volume.array, expected.volume.array)
        np.testing.assert_allclose(scan.volume.affine, expected.volume.affine, atol=1e-6)
        assert scan.description.startswith(f"DICOM series 1 (CT, {len(classic)} slices)") and scan.notes == ()
    np.testing.assert_array_equal(expected.volume.array, ct.array)
    np.testing.assert_allclose(expected.volume.affine, ct.affine, atol=1e-3)


def test_frame_without_position_is_named(classic, tmp_path) -> None:
    path = _enhanced(classic[:4], tmp_path / "ct.dcm")
    ds = pydicom.dcmread(path)
    del ds.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ScanError, match=r"frame 3 has no ImagePositionPatient in its functional groups") as error:
        read_dicom(path)
    assert str(path) in str(error.value)


def test_multi_frame_without_functional_groups_is_refused(classic, tmp_path) -> None:
    path = _enhanced(classic[:4], tmp_path / "ct.dcm")
    ds = pydicom.dcmread(path)
    del ds.PerFrameFunctionalGroupsSequence, ds.SharedFunctionalGroupsSequence
    first = pydicom.dcmread(classic[0])  # classic geometry at the top level, as old multi-frame files have
    ds.ImagePositionPatient, ds.ImageOrientationPatient = first.ImagePositionPatient, first.ImageOrientationPatient
    ds.PixelSpacing = first.PixelSpacing
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ScanError, match="multi-frame image without per-frame geometry"):
        read_dicom(path)
