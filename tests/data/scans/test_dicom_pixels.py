"""Compressed DICOM: a synthetic CT series re-encoded in each lossless transfer syntax archives use reads back
equal to the uncompressed series, and a syntax that cannot be decoded is named with the package to install."""

from __future__ import annotations

from pathlib import Path

import gdcm
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import UID, JPEG2000Lossless, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, RLELossless

from facegen.data.scans.dicom import read_dicom
from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.scans.scan import ScanError
from facegen.data.synthetic.ct import render_ct
from facegen.io.volume import Volume

_GDCM_SYNTAXES = {
    JPEGLossless: gdcm.TransferSyntax.JPEGLosslessProcess14,
    JPEGLosslessSV1: gdcm.TransferSyntax.JPEGLosslessProcess14_1,
}
"""pydicom has no JPEG Lossless encoder: GDCM writes those files."""
SYNTAXES = [JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, JPEG2000Lossless, RLELossless]


@pytest.fixture(scope="module")
def ct(one_head) -> Volume:
    """A synthetic head CT at 4 x 4 x 8 mm: small, but with air, soft tissue, bone and noise."""
    return render_ct(one_head, spacing_mm=(4.0, 4.0, 8.0), seed=3)


@pytest.fixture(scope="module", params=[-1024.0, 0.0], ids=["unsigned", "signed"])
def classic(request, ct, tmp_path_factory) -> list[Path]:
    """The CT as an uncompressed series: stored as uint16 (intercept -1024) or as int16 (intercept 0)."""
    folder = tmp_path_factory.mktemp("classic") / "series"
    return write_dicom_series(ct, folder, rescale_intercept=request.param, seed=2)


def _encode(source: Path, target: Path, syntax: UID) -> None:
    """`source` re-encoded in `syntax`: by GDCM for JPEG Lossless, by pydicom's encoder plugins otherwise."""
    if syntax in _GDCM_SYNTAXES:
        reader = gdcm.ImageReader()
        reader.SetFileName(str(source))
        assert reader.Read()
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(_GDCM_SYNTAXES[syntax]))
        change.SetInput(reader.GetImage())
        assert change.Change()
        writer = gdcm.ImageWriter()
        writer.SetFileName(str(target))
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        assert writer.Write()
    else:
        ds = pydicom.dcmread(source)
        ds.compress(syntax)
        ds.save_as(target, enforce_file_format=True)


def _compressed(files: list[Path], folder: Path, syntax: UID) -> Path:
    """Every file of a series re-encoded in `syntax` into `folder`, checked to be stored so."""
    folder.mkdir(parents=True)
    for path in files:
        _encode(path, folder / path.name, syntax)
        assert pydicom.dcmread(folder / path.name, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    return folder


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.keyword)
def test_compressed_series_reads_equal_to_uncompressed(classic, syntax, tmp_path) -> None:
    expected = read_dicom(classic[0].parent)
    scan = read_dicom(_compressed(classic, tmp_path / "series", syntax))
    assert scan.volume.array.dtype == expected.volume.array.dtype == np.int16
    np.testing.assert_array_equal(scan.volume.array, expected.volume.array)  # lossless, voxel for voxel
    np.testing.assert_array_equal(scan.volume.affine, expected.volume.affine)
    assert scan.description == expected.description  # both folders are named "series"


def test_missing_decoder_names_the_syntax_and_the_package(classic, tmp_path, monkeypatch) -> None:
    folder = _compressed(classic[:2], tmp_path / "jpegls", JPEGLSLossless)
    monkeypatch.setattr(get_decoder(JPEGLSLossless), "_available", {})  # as if no plugin were installed
    with pytest.raises(ScanError, match="no decoder for it is installed") as error:
        read_dicom(folder)
    message = str(error.value)
    assert "JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)" in message
    assert "pip install pyjpegls" in message and str(folder) in message


def _rewritten(path: Path, change) -> None:
    """Read a file, let `change` edit the dataset, write it back."""
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


def test_undecodable_syntax_and_corrupt_data_are_named(classic, tmp_path) -> None:
    folder = _compressed(classic[:2], tmp_path / "rle", RLELossless)
    target = folder / classic[0].name

    def as_video(ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2: nothing decodes it to slices

    _rewritten(target, as_video)
    with pytest.raises(ScanError, match=r"compressed as MPEG2 Main Profile / Main Level \(1\.2\.840") as error:
        read_dicom(folder)
    assert "gdcmconv --raw" in str(error.value) and str(target) in str(error.value)

    def garbled(ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = RLELossless
        ds.PixelData = encapsulate([bytes(range(64)) * 2])

    _rewritten(target, garbled)
    with pytest.raises(ScanError, match=r"compressed as RLE Lossless .* could not be decoded \(it may be truncated"):
        read_dicom(folder)
