"""Checks on an upload before anything is stored: format by name and by content, archive limits, safe names; and
the HIrisPlex record an upload keeps of a genotype file (the file itself is read where it is, never stored).

Each refusal is an UploadError carrying the HTTP status and a message that names the problem and the fix.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from facegen.io.genotypes import Genotypes, GenotypeStream, read_genotypes, read_webtool_skin
from facegen.service.settings import Settings

SCAN_SUFFIXES = (".zip", ".nii.gz", ".nii", ".mha", ".nrrd", ".ply", ".stl", ".obj")
"""What `scan` may be: a zip of DICOM, NIfTI, MHA, NRRD (attached data) or a skull mesh."""
LANDMARK_SUFFIXES = (".mrk.json", ".json", ".fcsv", ".csv")
MAX_LANDMARK_BYTES = 1024 * 1024
CONTENT_TYPES = {
    "", "application/octet-stream", "application/zip", "application/x-zip-compressed", "application/gzip",
    "application/x-gzip", "text/plain", "text/csv", "application/json", "application/sla", "application/x-tgif",
    "application/vnd.ms-pki.stl", "application/x-ply",
}  # fmt: skip
"""Declared content types accepted besides model/*; anything else (an image, a web page) is refused."""
GENOTYPE_CONTENT_TYPES = {
    "", "application/octet-stream", "application/gzip", "application/x-gzip", "text/plain", "text/csv",
    "text/tab-separated-values", "text/x-vcf", "text/vcf", "text/x-vcard", "text/vcard", "text/directory",
}  # fmt: skip
"""Declared content types of a genotype or skin-probability file (.vcf is often declared as a vCard by its suffix)."""
MAX_GENOTYPE_LINE_BYTES = 1024 * 1024
"""The longest line a genotype file may have (a VCF line of one person is under 1 kB; of 1000s of samples ~10 kB)."""
MAX_SKIN_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UploadError(ValueError):
    """An upload refused: `status` is the HTTP answer, `message` what is wrong and what to send instead."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def scan_suffix(filename: str | None) -> str:
    """The recognised suffix of an uploaded scan's file name; 415 for anything else."""
    name = (filename or "").lower()
    for suffix in SCAN_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise UploadError(415, f"scan {filename!r}: unsupported file type; send one of {', '.join(SCAN_SUFFIXES)} "
                           "(DICOM as a .zip)")  # fmt: skip


def landmark_suffix(filename: str | None) -> str:
    """The recognised suffix of an uploaded landmark file; 415 for anything else."""
    name = (filename or "").lower()
    for suffix in LANDMARK_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise UploadError(415, f"landmarks {filename!r}: send 3D Slicer markups (.mrk.json, .fcsv), JSON or CSV")


def check_content_type(field: str, content_type: str | None) -> None:
    """Refuse a declared content type that cannot be a scan, mesh or landmark file (415)."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in CONTENT_TYPES or declared.startswith("model/"):
        return
    raise UploadError(415, f"{field}: content type {declared!r} is not a scan, mesh or landmark file; send the file "
                           "as application/octet-stream")  # fmt: skip


def check_genotype_content_type(field: str, content_type: str | None) -> None:
    """Refuse a declared content type that cannot be a genotype or skin-probability file (415)."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in GENOTYPE_CONTENT_TYPES:
        raise UploadError(415, f"{field}: content type {declared!r} is not a genotype file (VCF, raw-data text, "
                               "CSV); send the file as application/octet-stream")  # fmt: skip


def read_hirisplex(genotypes: BinaryIO, *, sample: str | None, skin: BinaryIO | None, settings: Settings) -> bytes:
    """What an upload keeps of a genotype file, as JSON: the HIrisPlex dosages, file format, missing reasons and
    notes (no sample name), and the skin probabilities of the web tool's output CSV `skin`. The files are read where
    they are (the request's own spooled copies), never written anywhere; a refusal (422/413) carries the reader's
    message. Genetic privacy: nothing else of them, not even their names, goes further."""
    _check_genotype_text(genotypes, "genotypes", settings.max_upload_bytes, settings)
    if skin is not None:
        _check_genotype_text(skin, "skin_probabilities", MAX_SKIN_BYTES, settings)
    try:
        calls = read_genotypes(GenotypeStream("genotypes", genotypes), sample=sample)
        probabilities = None if skin is None else read_webtool_skin(GenotypeStream("skin_probabilities", skin),
                                                                    sample=sample)  # fmt: skip
    except ValueError as exc:
        raise UploadError(422, str(exc)) from None
    return json.dumps({"genotypes": calls.record(), "skin": probabilities}, indent=2, sort_keys=True).encode()


def load_hirisplex(path: Path) -> tuple[Genotypes, dict[str, float] | None]:
    """An upload's HIrisPlex record (see `read_hirisplex`) as the reader's genotypes and the skin probabilities."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        skin = record["skin"]
        return Genotypes.from_record(record["genotypes"]), None if skin is None else {
            str(k): float(v) for k, v in skin.items()}  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"the upload's genotype record is damaged ({exc}); submit the case again") from None


def _check_genotype_text(file: BinaryIO, field: str, limit: int, settings: Settings) -> None:
    """Before a reader sees it: the file is not empty, at most `limit` bytes, unpacks (gzip) to at most the unpacked
    limit, is whole, and has no line over MAX_GENOTYPE_LINE_BYTES (a reader holds one line at a time)."""
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    if size == 0:
        raise UploadError(422, f"{field} is empty; send the whole file")
    if size > limit:
        raise UploadError(413, f"{field} is {size} bytes; the limit is {limit}")
    gzipped = file.read(2) == b"\x1f\x8b"
    file.seek(0)
    stream = gzip.GzipFile(fileobj=file, mode="rb") if gzipped else file
    unpacked, line = 0, 0
    try:
        while chunk := stream.read(_CHUNK):
            unpacked += len(chunk)
            if unpacked > settings.max_unpacked_bytes:
                raise UploadError(413, f"{field} unpacks to more than {settings.max_unpacked_bytes} bytes; the "
                                       "limit is FACEGEN_MAX_UNPACKED_MB")  # fmt: skip
            parts = chunk.split(b"\n")
            line += len(parts[0])
            if max([line, *map(len, parts[1:])]) > MAX_GENOTYPE_LINE_BYTES:
                raise UploadError(413, f"{field} has a line longer than {MAX_GENOTYPE_LINE_BYTES} bytes; it is no "
                                       "genotype file facegen reads (a VCF of many people: keep the one, e.g. "
                                       "bcftools view -s NAME)")  # fmt: skip
            line = len(parts[-1]) if len(parts) > 1 else line
    except (OSError, EOFError, zlib.error) as exc:
        raise UploadError(422, f"{field}: the compressed file is damaged ({exc}); send it whole") from None
    finally:
        if stream is not file:
            stream.close()
        file.seek(0)


def check_scan(path: Path, suffix: str, settings: Settings) -> None:
    """Check a stored upload's content against its suffix and the archive limits (422/413 with the reason)."""
    size = path.stat().st_size
    if size == 0:
        raise UploadError(422, "scan is empty; send the whole file")
    head = path.read_bytes()[:4096] if size < 4096 else _head(path, 4096)
    checks = {".zip": _check_zip, ".nii.gz": _check_gzip_nifti, ".nii": _check_nifti, ".mha": _check_mha,
              ".nrrd": _check_nrrd, ".ply": _check_ply, ".stl": _check_stl, ".obj": _check_obj}  # fmt: skip
    checks[suffix](path, head, settings)


def check_landmarks(data: bytes, suffix: str) -> None:
    """A landmark file must be small UTF-8 text (and JSON for .json)."""
    if len(data) > MAX_LANDMARK_BYTES:
        raise UploadError(413, f"landmarks file is {len(data)} bytes; the limit is {MAX_LANDMARK_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError(422, "landmarks file is not UTF-8 text") from None
    if suffix.endswith(".json"):
        import json

        try:
            json.loads(text)
        except ValueError as exc:
            raise UploadError(422, f"landmarks file is not valid JSON: {exc}") from None


def _head(path: Path, n: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(n)


def _bad(kind: str, why: str) -> UploadError:
    return UploadError(422, f"scan is not a valid {kind} file: {why}")


def _check_zip(path: Path, head: bytes, settings: Settings) -> None:
    if not head.startswith(b"PK\x03\x04"):
        raise _bad("zip", "it does not start with a zip header (an empty or non-zip file)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _bad("zip", f"{exc}; send the archive again, whole") from None
    if len(members) > settings.max_archive_members:
        raise UploadError(413, f"zip holds {len(members)} members; the limit is {settings.max_archive_members}")
    unpacked = 0
    for member in members:
        _check_member_name(member)
        if member.flag_bits & 0x1:
            raise UploadError(422, f"zip member {member.filename!r} is encrypted; send an unencrypted archive")
        unpacked += member.file_size
        ratio = member.file_size / max(member.compress_size, 1)
        if ratio > settings.max_compression_ratio:
            raise UploadError(413, f"zip member {member.filename!r} unpacks {ratio:.0f}x its packed size; the "
                                   f"limit is {settings.max_compression_ratio:g}x")  # fmt: skip
    if unpacked > settings.max_unpacked_bytes:
        raise UploadError(413, f"zip unpacks to {unpacked} bytes; the limit is {settings.max_unpacked_bytes}")


def _check_member_name(member: zipfile.ZipInfo) -> None:
    """Refuse absolute paths, '..', drive letters, backslashes and links in an archive."""
    name = member.filename
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or "\\" in name or ".." in parts or (len(name) > 1 and name[1] == ":"):
        raise UploadError(422, f"zip member {name!r} has an unsafe path (absolute or '..'); repack the archive with "
                               "plain relative names")  # fmt: skip
    if stat.S_ISLNK(member.external_attr >> 16):
        raise UploadError(422, f"zip member {name!r} is a symbolic link; repack the archive without links")


def _check_gzip_nifti(path: Path, head: bytes, settings: Settings) -> None:
    if not head.startswith(b"\x1f\x8b"):
        raise _bad("NIfTI (.nii.gz)", "it is not gzip-compressed")
    packed, unpacked, first = path.stat().st_size, 0, b""
    try:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                first = first or chunk[:352]
                unpacked += len(chunk)
                if unpacked > settings.max_unpacked_bytes or unpacked / packed > settings.max_compression_ratio:
                    raise UploadError(413, f"scan unpacks to more than {min(unpacked, settings.max_unpacked_bytes)} "
                                           "bytes or beyond the compression-ratio limit")  # fmt: skip
    except (OSError, EOFError) as exc:
        raise _bad("NIfTI (.nii.gz)", f"{exc}; the file is truncated or corrupt") from None
    _check_nifti(path, first, settings)


def _check_nifti(path: Path, head: bytes, settings: Settings) -> None:
    if len(head) < 348:
        raise _bad("NIfTI", "shorter than a NIfTI header")
    sizes = {struct.unpack("<i", head[:4])[0], struct.unpack(">i", head[:4])[0]}
    if not sizes & {348, 540}:
        raise _bad("NIfTI", "its header size field is not 348 (NIfTI-1) or 540 (NIfTI-2)")


def _check_mha(path: Path, head: bytes, settings: Settings) -> None:
    if b"ObjectType" not in head[:1024] and b"NDims" not in head[:1024]:
        raise _bad("MHA", "no MetaImage header (ObjectType, NDims) at its start")


def _check_nrrd(path: Path, head: bytes, settings: Settings) -> None:
    if not head.startswith(b"NRRD"):
        raise _bad("NRRD", "it does not start with the NRRD magic; send an attached-data .nrrd")


def _check_ply(path: Path, head: bytes, settings: Settings) -> None:
    if not head.startswith(b"ply"):
        raise _bad("PLY", "it does not start with 'ply'")


def _check_stl(path: Path, head: bytes, settings: Settings) -> None:
    size = path.stat().st_size
    if size >= 84 and 84 + 50 * struct.unpack("<I", head[80:84])[0] == size:
        return
    if not head.lstrip().lower().startswith(b"solid"):
        raise _bad("STL", "neither a binary STL (size does not match its triangle count) nor ASCII ('solid')")


def _check_obj(path: Path, head: bytes, settings: Settings) -> None:
    try:
        text = head.decode("utf-8", errors="strict") if len(head) < 4096 else head[:4000].decode("utf-8", "ignore")
    except UnicodeDecodeError:
        raise _bad("OBJ", "it is not text") from None
    if not any(line.startswith("v ") for line in text.splitlines()):
        raise _bad("OBJ", "no vertex lines ('v x y z') at its start")
