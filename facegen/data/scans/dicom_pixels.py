"""Decode DICOM pixel data, compressed or not, through pydicom's own pixel-data plugins.

facegen depends on the decoders for the lossless syntaxes archives use (python-gdcm: JPEG Lossless; pyjpegls:
JPEG-LS; pylibjpeg with pylibjpeg-openjpeg: JPEG 2000; pydicom itself: RLE and deflate), all under permissive
licences. When no decoder for a file's transfer syntax is installed, the error names the syntax and the package
that decodes it; a syntax pydicom has no decoder for at all is named with a way to convert it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import get_decoder

from facegen.data.scans.scan import ScanError

_JPEG = "python-gdcm"
_JPEG_LS = "pyjpegls"
_JPEG_2000 = "pylibjpeg pylibjpeg-openjpeg"
DECODER_PACKAGES: dict[str, str] = {
    uid.JPEGBaseline8Bit: _JPEG,
    uid.JPEGExtended12Bit: _JPEG,
    uid.JPEGLossless: _JPEG,
    uid.JPEGLosslessSV1: _JPEG,
    uid.JPEGLSLossless: _JPEG_LS,
    uid.JPEGLSNearLossless: _JPEG_LS,
    uid.JPEG2000Lossless: _JPEG_2000,
    uid.JPEG2000: _JPEG_2000,
    uid.HTJ2KLossless: _JPEG_2000,
    uid.HTJ2KLosslessRPCL: _JPEG_2000,
    uid.HTJ2K: _JPEG_2000,
}
"""The pip packages (facegen dependencies) that decode each compressed transfer syntax through pydicom."""
_CONVERT = "Convert the series to uncompressed DICOM first (e.g. gdcmconv --raw, or DCMTK's dcmdjpeg/dcmdjpls)"
REEXPORT = "Copy or export that file again, or remove it if it does not belong to the series"


def transfer_syntax(ds: Dataset) -> uid.UID:
    """The transfer syntax, recorded in the file meta from the encoding read when a raw dataset has none."""
    if not hasattr(ds, "file_meta") or ds.file_meta is None:
        ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = getattr(ds, "original_encoding", (False, True))
        explicit = uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian
        ds.file_meta.TransferSyntaxUID = uid.ImplicitVRLittleEndian if implicit else explicit
    return ds.file_meta.TransferSyntaxUID


def syntax_label(syntax: uid.UID) -> str:
    """A transfer syntax as users see it: "RLE Lossless (1.2.840.10008.1.2.5)"; a private one is not quoted."""
    value = uid.UID(str(syntax).strip())
    return f"{value.name} ({value})" if value.name != str(value) else "a transfer syntax DICOM does not define"


def decode(ds: Dataset, label: Path) -> np.ndarray:
    """The stored pixel values of a dataset read with its pixel data (all frames), or ScanError naming the fix.

    pydicom warns and logs while decoding; call this inside the reader's quiet context.
    """
    syntax = transfer_syntax(ds)
    try:
        return ds.pixel_array
    except Exception as error:  # decoders raise many kinds
        raise ScanError(label, *_failure(syntax)) from error


def _failure(syntax: uid.UID) -> tuple[str, str]:
    """Problem and fix when pixel data of `syntax` did not decode: no decoder at all, none installed, or bad data."""
    if not syntax.is_compressed:
        return "has incomplete or corrupt pixel data (the file may be truncated)", REEXPORT
    name = syntax_label(syntax)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        return f"holds pixel data compressed as {name}, which facegen cannot decode", _CONVERT
    if not decoder.is_available:
        packages = DECODER_PACKAGES.get(str(syntax), "python-gdcm")
        problem = f"holds pixel data compressed as {name}, and no decoder for it is installed"
        fix = f"Install {packages} (pip install {packages}): facegen depends on it, so reinstall facegen"
        return problem, fix
    problem = f"holds pixel data compressed as {name} that could not be decoded (it may be truncated or corrupt)"
    return problem, REEXPORT
