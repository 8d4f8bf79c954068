"""The HIrisPlex markers from a consumer raw-data file: 23andMe (`rsid chromosome position genotype`) or
AncestryDNA (`rsid chromosome position allele1 allele2`).

Both report the plus strand on GRCh37, so markers are matched by rsID alone. Indels are written I (inserted) and
D (not); `--`, `00`, `0`, `-` are missing calls and stay missing. A file holds one person and no sample names.
"""

from __future__ import annotations

from pathlib import Path

from facegen.io.genotypes.calls import Genotypes, GenotypeStream, as_source, genotypes_from, open_text
from facegen.io.genotypes.markers import BY_RSID, dosage

TWENTY_THREE_AND_ME = "23andMe"
ANCESTRY_DNA = "AncestryDNA"
COLUMNS = {
    TWENTY_THREE_AND_ME: ("rsid", "chromosome", "position", "genotype"),
    ANCESTRY_DNA: ("rsid", "chromosome", "position", "allele1", "allele2"),
}
NO_CALL_ALLELES = {"-", "0", "."}


def read_consumer(path: Path | GenotypeStream, *, kind: str, sample: str | None = None) -> Genotypes:
    """One person's HIrisPlex dosages from a 23andMe or AncestryDNA raw file (`kind`)."""
    path = as_source(path)
    if kind not in COLUMNS:
        raise ValueError(f"unknown consumer file kind {kind!r}; known: {', '.join(COLUMNS)}")
    if sample is not None:
        raise ValueError(f"{path}: a {kind} raw file holds one person and no sample names; leave out the sample "
                         f"(got {sample!r})")  # fmt: skip
    columns = COLUMNS[kind]
    found: dict[str, int | None] = {}
    with open_text(path) as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            if fields[0].lower() == "rsid":
                continue  # AncestryDNA's header line
            if len(fields) != len(columns):
                raise ValueError(f"{path}: line {line_no} has {len(fields)} columns; a {kind} raw file has "
                                 f"{len(columns)} ({' '.join(columns)}). Is it another format?")  # fmt: skip
            marker = BY_RSID.get(fields[0])
            if marker is None:
                continue
            where = f"{path}, line {line_no}"
            if marker.rsid in found:
                raise ValueError(f"{where}: {marker.rsid} appears twice; keep one of its lines")
            alleles = list(fields[3]) if kind == TWENTY_THREE_AND_ME else fields[3:5]
            unreadable = len(alleles) != 2 or any(a in NO_CALL_ALLELES for a in alleles)
            found[marker.rsid] = None if unreadable else dosage(marker, alleles, where=where)
    return genotypes_from(found, kind)
