"""What a genotype reader returns: one person's HIrisPlex dosages, with missing calls kept missing.

Nothing else of the file is kept: no other marker, and the sample's name only to report which one was read.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

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


def genotypes_from(
    found: dict[str, int | None], file_format: str, *, sample: str | None = None, notes: Sequence[str] = ()
) -> Genotypes:
    """Every HIrisPlex marker's dosage from the calls `found` (a None there: no call; absent: not in the file)."""
    dosages = {m.rsid: found.get(m.rsid) for m in HIRISPLEX_MARKERS}
    reasons = {rsid: NO_CALL if rsid in found else NOT_IN_FILE for rsid, value in dosages.items() if value is None}
    return Genotypes(dosages, file_format, sample, reasons, tuple(notes))


@contextmanager
def open_text(path: Path) -> Iterator[TextIO]:
    """A genotype file (plain or gzip/bgzip) as text lines; a file that is not text fails with its name."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            gzipped = fh.read(2) == GZIP_MAGIC
        raw = gzip.open(path, "rt", encoding="utf-8") if gzipped else path.open(encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the genotype file ({exc.strerror or exc})") from None
    try:
        yield raw
    except UnicodeDecodeError:
        raise ValueError(
            f"{path}: not a text file; give a VCF, a 23andMe/AncestryDNA raw file or a web-tool CSV"
        ) from None
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise ValueError(f"{path}: the compressed file is damaged ({exc}); download or compress it again") from None
    finally:
        raw.close()


def choose_sample(names: Sequence[str], sample: str | None, *, path: Path) -> int:
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
