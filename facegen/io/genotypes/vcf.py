"""The HIrisPlex markers from a VCF (plain, gzip or bgzip): by rsID in the ID column, else by GRCh38 CHROM:POS.

Only the rows of HIrisPlex markers are parsed; every other row is passed over unread beyond its first columns.
A row is matched by position only when its ID column names no rsID (an rsID names the variant), and never in a
file whose header names GRCh37/hg19 (its positions are another assembly's). The MC1R insertion rs312262906 is an
indel (e.g. REF C, ALT CA at 16:89919344): each allele that is the reference with one A inserted counts.
"""

from __future__ import annotations

import re
from pathlib import Path

from facegen.io.genotypes.calls import (
    Genotypes,
    GenotypeSource,
    GenotypeStream,
    as_source,
    choose_sample,
    genotypes_from,
    open_text,
)
from facegen.io.genotypes.markers import BY_POSITION, BY_RSID, INSERTED, NOT_INSERTED, Marker, dosage, normal_chrom

VCF_MAGIC = "##fileformat=VCF"
OTHER_ASSEMBLIES = ("grch37", "hg19", "hs37d5", "human_g1k_v37", "assembly=b37", "ncbi37")
"""Header words that mark a VCF on GRCh37: its positions are not matched (GRCh38 only), its rsIDs are."""
FIXED_COLUMNS = 9


def read_vcf(path: Path | GenotypeStream, *, sample: str | None = None) -> Genotypes:
    """One sample's HIrisPlex dosages from a VCF; `sample` picks a column when the file holds several."""
    path = as_source(path)
    with open_text(path) as fh:
        if not fh.readline().startswith(VCF_MAGIC):
            raise ValueError(f"{path}: not a VCF (its first line must be {VCF_MAGIC}...)")
        column, name, by_position, line_no = _header(fh, path, sample)
        notes = [] if by_position else ["the VCF header names GRCh37/hg19: markers were matched by rsID only"]
        found: dict[str, int | None] = {}
        rows: dict[str, int] = {}
        for line in fh:
            line_no += 1
            marker = _match(line, by_position, where=f"{path}, line {line_no}")
            if marker is None:
                continue
            if marker.rsid in rows:
                raise ValueError(f"{path}: {marker.rsid} is on lines {rows[marker.rsid]} and {line_no}; join the "
                                 "rows of one site into one (bcftools norm -m +any) or remove one")  # fmt: skip
            rows[marker.rsid] = line_no
            found[marker.rsid] = _call(line, marker, column, where=f"{path}, line {line_no}")
    return genotypes_from(found, "VCF", sample=name, notes=notes)


def _header(fh, path: GenotypeSource, sample: str | None) -> tuple[int, str, bool, int]:
    """Read the meta lines and the #CHROM line: the chosen sample's column and name, whether positions may be
    matched, and the number of lines read."""
    by_position, line_no = True, 1
    for line in fh:
        line_no += 1
        if line.startswith("##"):
            if any(word in line.lower() for word in OTHER_ASSEMBLIES):
                by_position = False
            continue
        if line.startswith("#CHROM"):
            names = line.rstrip("\r\n").split("\t")[FIXED_COLUMNS:]
            index = choose_sample(names, sample, path=path)
            return FIXED_COLUMNS + index, names[index], by_position, line_no
        break
    raise ValueError(f"{path}: no #CHROM header line before line {line_no}; the VCF is cut or damaged")


def _match(line: str, by_position: bool, *, where: str) -> Marker | None:
    """The HIrisPlex marker a record line is, by rsID, else by GRCh38 position when its ID names no rsID."""
    parts = line.split("\t", 3)
    if len(parts) < 4:
        if line.strip():
            raise ValueError(f"{where}: a VCF record needs tab-separated columns; the file is damaged")
        return None
    chrom, pos, ids = parts[0], parts[1], parts[2].split(";")
    for rsid in ids:
        if rsid in BY_RSID:
            return BY_RSID[rsid]
    if not by_position or any(i.startswith("rs") for i in ids):
        return None
    try:
        return BY_POSITION.get((normal_chrom(chrom), int(pos)))
    except ValueError:
        raise ValueError(f"{where}: POS {pos!r} is not a whole number; the file is damaged") from None


def _call(line: str, marker: Marker, column: int, *, where: str) -> int | None:
    """The dosage in one record's sample column; a missing call (./., .|1, .) is None."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) <= column:
        raise ValueError(f"{where}: {len(fields)} columns, fewer than the header's samples; the file is damaged")
    ref, alts, keys = fields[3], fields[4].split(","), fields[8].split(":")
    if "GT" not in keys:
        raise ValueError(f"{where}: {marker.rsid} has no GT in FORMAT ({fields[8]}); export genotypes (GT)")
    values = fields[column].split(":")
    gt = values[keys.index("GT")] if keys.index("GT") < len(values) else "."
    parts = re.split(r"[/|]", gt)
    if any(p in (".", "") for p in parts) or len(parts) != 2:
        return None  # missing, or not a diploid call on these autosomes: unreadable, kept missing
    alleles = [ref, *alts]
    try:
        calls = [alleles[int(p)] for p in parts]
    except (ValueError, IndexError):
        raise ValueError(f"{where}: genotype {gt!r} names no allele of REF {ref} / ALT {fields[4]}") from None
    if marker.insertion:
        calls = [_insertion_allele(a, ref, marker) for a in calls]
    return dosage(marker, calls, where=where)


def _insertion_allele(allele: str, ref: str, marker: Marker) -> str:
    """I for the reference with one counted base inserted after the anchor, D for the reference; else as is."""
    allele, ref = allele.upper(), ref.upper()
    if allele == ref:
        return NOT_INSERTED
    inserted = len(allele) == len(ref) + 1 and any(
        allele[i] == marker.counted and allele[:i] + allele[i + 1 :] == ref for i in range(1, len(allele))
    )
    return INSERTED if inserted else allele
