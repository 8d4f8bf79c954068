"""Genotypes in: a VCF, a 23andMe or AncestryDNA raw file, or the HIrisPlex-S web tool's CSV, as HIrisPlex dosages.

The format is told from the file's content (its suffix may lie or be missing). Only the HIrisPlex markers are
read; a genotype file is personal data, and nothing else of it leaves the reader. A file is given by its path or,
open (an upload, never copied to disk), as a GenotypeStream.
"""

from __future__ import annotations

from pathlib import Path

from facegen.io.genotypes.calls import Genotypes, GenotypeStream, as_source, open_text
from facegen.io.genotypes.consumer import ANCESTRY_DNA, TWENTY_THREE_AND_ME, read_consumer
from facegen.io.genotypes.markers import HIRISPLEX_MARKERS, Marker
from facegen.io.genotypes.vcf import VCF_MAGIC, read_vcf
from facegen.io.genotypes.webtool import SKIN_COLUMNS, WEBTOOL_INPUT, read_webtool_counts, read_webtool_skin

__all__ = ["HIRISPLEX_MARKERS", "SKIN_COLUMNS", "GenotypeStream", "Genotypes", "Marker", "detect_format",
           "read_genotypes", "read_webtool_skin"]  # fmt: skip

VCF = "VCF"
FORMATS = (VCF, TWENTY_THREE_AND_ME, ANCESTRY_DNA, WEBTOOL_INPUT)
SNIFF_LINES = 200
"""Lines read to tell the format."""


def detect_format(path: Path | str | GenotypeStream) -> str:
    """Which of FORMATS a file is, from its first lines; a ValueError names the file when it is none of them."""
    path = as_source(path)
    if isinstance(path, Path) and not path.is_file():
        raise ValueError(f"{path}: no such genotype file")
    lines = []
    with open_text(path) as fh:
        for line in fh:
            lines.append(line.lstrip("\ufeff").rstrip("\r\n"))
            if len(lines) >= SNIFF_LINES:
                break
    if "\0" in "".join(lines):
        raise ValueError(f"{path}: not a text file; give a VCF, a 23andMe/AncestryDNA raw file or a web-tool CSV")
    first = next((line for line in lines if line.strip()), "")
    if first.startswith(VCF_MAGIC):
        return VCF
    if first.lower().startswith("sampleid,"):
        if "pblueeye" in first.lower() or "pverypaleskin" in first.lower():
            raise ValueError(f"{path}: this is the web tool's output (probabilities), not genotypes; give it as "
                             "the skin probabilities (--skin-probabilities) and the genotypes separately")  # fmt: skip
        return WEBTOOL_INPUT
    comments = " ".join(line for line in lines if line.startswith("#")).lower()
    data = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    if "ancestrydna" in comments or (data and [f.lower() for f in data[0]] == ["rsid", "chromosome", "position",
                                                                            "allele1", "allele2"]):  # fmt: skip
        return ANCESTRY_DNA
    if "23andme" in comments or (data and all(len(f) == 4 and f[0].startswith(("rs", "i")) for f in data[:20])):
        return TWENTY_THREE_AND_ME
    raise ValueError(
        f"{path}: not a genotype file facegen reads; give a VCF (##fileformat=VCF), a 23andMe or "
        "AncestryDNA raw-data file, or the HIrisPlex-S web tool's input CSV (sampleid,rs312262906_A,...)"
    )


def read_genotypes(path: Path | str | GenotypeStream, *, sample: str | None = None) -> Genotypes:
    """The HIrisPlex dosages of one person in a genotype file of any supported format; `sample` picks one where
    the file holds several (VCF, web-tool CSV)."""
    path = as_source(path)
    kind = detect_format(path)
    if kind == VCF:
        return read_vcf(path, sample=sample)
    if kind == WEBTOOL_INPUT:
        return read_webtool_counts(path, sample=sample)
    return read_consumer(path, kind=kind, sample=sample)
