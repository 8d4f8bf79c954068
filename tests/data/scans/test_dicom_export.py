"""The DICOM writer builds every header from nothing: without `tags` it writes no value that could name anyone."""

from __future__ import annotations

import numpy as np
import pydicom

from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.synthetic.ct import SCAN_DIRECTION
from facegen.io.volume import Volume

WRITTEN = {
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality",
    "SeriesNumber", "InstanceNumber", "ImageType", "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
    "PixelSpacing", "SliceThickness", "ImageOrientationPatient", "ImagePositionPatient", "SliceLocation",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "RescaleIntercept", "RescaleSlope",
    "RescaleType", "PixelData",
}  # fmt: skip
"""Every attribute the writer gives a value: identifiers are UIDs made from the seed, the rest is the image."""


def test_writer_fills_only_image_attributes(tmp_path) -> None:
    volume = Volume(np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2), (0.5, 0.5, 1.0), (0, 0, 0), SCAN_DIRECTION)
    for path in write_dicom_series(volume, tmp_path / "series", seed=1):
        ds = pydicom.dcmread(path)
        filled = {element.keyword for element in ds if element.value not in (None, "", b"")}
        assert filled == WRITTEN, f"new header values to review for personal data: {filled ^ WRITTEN}"
        assert not any(element.tag.is_private for element in ds)
        assert "PatientName" in ds and ds.PatientName == ""  # type 2: present and empty
