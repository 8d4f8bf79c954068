"""What a genotype reader returns: one person's HIrisPlex dosages, with missing calls kept missing.

Nothing else of the file is kept: no other marker, and the sample's name only to report which one was read.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from facegen.io.genotypes.markers import HIRISPLEX_MARKERS

NOT_IN_FILE = "not in the file"
NO_CALL = "no call"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Genotypes:
    """One person's HIrisPlex dosages (copies 0-2 of each marker's counted allele; None: missing).

    `missing_reasons` says why each missing marker is missing (not in the file, no call, ...); `file_format` is
    e.g. "VCF"; `notes` are things the reader decided that a report should say."""

    dosages: dict[str, int | None]
    file_format: str
    sample: str | None = None
    missing_reasons: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.dosages) - {m.rsid for m in HIRISPLEX_MARKERS}
        if unknown:
            raise ValueError(f"dosages given for markers outside HIrisPlex: {', '.join(sorted(unknown))}")
        for rsid, value in self.dosages.items():
            if value is not None and value not in (0, 1, 2):
                raise ValueError(f"{rsid}: a dosage is 0, 1 or 2 copies (or None when missing), got {value!r}")

    @property
    def missing(self) -> list[str]:
        """The HIrisPlex markers without a dosage, in the panel's order."""
        return [m.rsid for m in HIRISPLEX_MARKERS if self.dosages.get(m.rsid) is None]

    def record(self) -> dict[str, Any]:
        """What a prediction needs, as JSON: dosages, file format, missing reasons and notes; never the sample's name
        (the web service keeps this, not the genotype file)."""
        return {"dosages": dict(self.dosages), "file_format": self.file_format,
                "missing_reasons": dict(self.missing_reasons), "notes": list(self.notes)}  # fmt: skip

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Genotypes:
        """The genotypes of a `record()` (with no sample name); a ValueError says what is wrong with it."""
        try:
            return cls(dict(record["dosages"]), str(record["file_format"]), None,
                       dict(record.get("missing_reasons", {})), tuple(map(str, record.get("notes", ()))))  # fmt: skip
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a genotype record (dosages, file_format, ...): {exc!r}") from None


@dataclass(frozen=True)
class GenotypeStream:
    """A genotype file given as an open binary file (an upload), read where it is: never copied to disk or kept.
    `name` stands for it in messages (e.g. the form field), never the client's file name."""

    name: str
    file: BinaryIO

    def __str__(self) -> str:
        return self.name


GenotypeSource = Path | GenotypeStream
"""A genotype file by its path, or open (see GenotypeStream)."""


def as_source(path: Path | str | GenotypeStream) -> GenotypeSource:
    """A path as a Path; an open file as is."""
    return path if isinstance(path, GenotypeStream) else Path(path)


def genotypes_from(
    found: dict[str, int | None], file_format: str, *, sample: str | None = None, notes: Sequence[str] = ()
) -> Genotypes:
    """Every HIrisPlex marker's dosage from the calls `found` (a None there: no call; absent: not in the file)."""
    dosages = {m.rsid: found.get(m.rsid) for m in HIRISPLEX_MARKERS}
    reasons = {rsid: NO_CALL if rsid in found else NOT_IN_FILE for rsid, value in dosages.items() if value is None}
    return Genotypes(dosages, file_format, sample, reasons, tuple(notes))


@contextmanager
def open_text(path: Path | GenotypeStream) -> Iterator[TextIO]:
    """A genotype file (plain or gzip/bgzip) as text lines, read from its start; a file that is not text fails with
    its name. An open file (GenotypeStream) is left open."""
    path = as_source(path)
    try:
        raw = _stream_text(path.file) if isinstance(path, GenotypeStream) else _path_text(path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the genotype file ({exc.strerror or exc})") from None
    try:
        yield raw
    except UnicodeDecodeError:
        raise ValueError(
            f"{path}: not a text file; give a VCF, a 23andMe/AncestryDNA raw file or a web-tool CSV"
        ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise ValueError(f"{path}: the compressed file is damaged ({exc}); download or compress it again") from None
    finally:
        if isinstance(path, GenotypeStream):
            inner = raw.detach()  # the caller's file stays open
            if inner is not path.file:
                inner.close()  # the gzip reader over it
        else:
            raw.close()


def _path_text(path: Path) -> TextIO:
    with path.open("rb") as fh:
        gzipped = fh.read(2) == GZIP_MAGIC
    return gzip.open(path, "rt", encoding="utf-8") if gzipped else path.open(encoding="utf-8")  # noqa: SIM115


def _stream_text(file: BinaryIO) -> TextIO:
    file.seek(0)
    gzipped = file.read(2) == GZIP_MAGIC
    file.seek(0)
    binary = gzip.GzipFile(fileobj=file, mode="rb") if gzipped else file
    return io.TextIOWrapper(binary, encoding="utf-8")


def choose_sample(names: Sequence[str], sample: str | None, *, path: GenotypeSource) -> int:
    """The index of the chosen sample: `sample` by name, or the only one; an error lists the names otherwise."""
    if not names:
        raise ValueError(f"{path}: the file holds no sample's genotypes")
    if sample is not None:
        if sample not in names:
            raise ValueError(f"{path}: no sample {sample!r}; the file holds {', '.join(map(repr, names))}")
        if list(names).count(sample) > 1:
            raise ValueError(f"{path}: sample {sample!r} appears more than once; rename one of them")
        return list(names).index(sample)
    if len(names) > 1:
        raise ValueError(f"{path}: the file holds {len(names)} samples ({', '.join(map(repr, names))}); "
                         "choose one with sample= (--sample on the command line)")  # fmt: skip
    return 0
