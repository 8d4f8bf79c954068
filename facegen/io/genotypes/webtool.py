"""The HIrisPlex-S web tool's CSV files: its input (allele counts) and its output (probabilities, for skin).

Input template (https://hirisplex.erasmusmc.nl/): `sampleid,rs312262906_A,rs11547464_A,...` with one row per
sample; each column counts copies (0, 1, 2) of the allele after the underscore; `NA` or empty is missing. The 17
skin-SNP columns of HIrisPlex-S are accepted and not used. A label on the minus strand counts the complement; a
label naming the model's other allele (rs12896399_T: the model counts G) is read as 2 - count.
Output: `sampleid,PBlueEye,...,PVeryPaleSkin,PPaleSkin,PIntermediateSkin,PDarkSkin,PDarktoBlackSkin`; only the
five skin probabilities are read (facegen computes eye and hair itself; skin has no published coefficients).
"""

from __future__ import annotations

import csv
import math
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
from facegen.io.genotypes.markers import BY_RSID, COMPLEMENT, HIRISPLEX_S_SKIN_COLUMNS, Marker

WEBTOOL_INPUT = "HIrisPlex-S web-tool CSV"
SAMPLE_COLUMN = "sampleid"
MISSING_VALUES = {"", "NA", "N/A", "NAN"}
SKIN_COLUMNS = {
    "very_pale": "PVeryPaleSkin",
    "pale": "PPaleSkin",
    "intermediate": "PIntermediateSkin",
    "dark": "PDarkSkin",
    "dark_black": "PDarktoBlackSkin",
}
"""facegen's skin classes and the web tool's output columns for them."""
SKIN_SUM_TOLERANCE = 0.02
"""The five skin probabilities must sum to 1 within this (the tool rounds them)."""
_COLUMN = re.compile(r"^(rs\d+)_([A-Za-z])$")


def _rows(path: GenotypeSource, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """The CSV's header and rows; the first column must be sampleid."""
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        try:
            header = [h.strip() for h in (reader.fieldnames or [])]
            if not header or header[0].lstrip("\ufeff").lower() != SAMPLE_COLUMN:
                raise ValueError(f"{path}: not the HIrisPlex-S web tool's {what} (its first column must be sampleid)")
            reader.fieldnames = [SAMPLE_COLUMN, *header[1:]]
            rows = [row for row in reader if any((v or "").strip() for v in row.values() if isinstance(v, str))]
        except csv.Error as exc:  # a NUL byte, a field over the csv module's limit
            raise ValueError(f"{path}: not a readable CSV ({exc}); give the web tool's {what} as exported") from None
    return header, rows


def _pick(path: GenotypeSource, rows: list[dict[str, str]], sample: str | None) -> dict[str, str]:
    names = [(row.get(SAMPLE_COLUMN) or "").strip() for row in rows]
    return rows[choose_sample(names, sample, path=path)]


def _counts_counted(marker: Marker, label: str, *, path: GenotypeSource) -> bool:
    """Whether a web-tool column labelled `label` counts the model's counted allele (else its other allele)."""
    label = label.upper()
    strands = [{marker.counted: True}] if marker.insertion else [{marker.counted: True, marker.other: False}]
    if not marker.insertion and not marker.palindromic:
        strands.append({COMPLEMENT[marker.counted]: True, COMPLEMENT[marker.other]: False})
    for strand in strands:
        if label in strand:
            return strand[label]
    raise ValueError(
        f"{path}: column {marker.rsid}_{label} names an allele {marker.rsid} does not have (its "
        f"alleles are {marker.plus_strand()}); use the template's {marker.rsid}_{marker.webtool_label}"
    )


def read_webtool_counts(path: Path | GenotypeStream, *, sample: str | None = None) -> Genotypes:
    """One sample's HIrisPlex dosages from the web tool's input CSV (allele counts)."""
    path = as_source(path)
    header, rows = _rows(path, "input CSV")
    columns: dict[str, tuple[Marker, bool]] = {}
    for name in header[1:]:
        match = _COLUMN.match(name)
        if name in HIRISPLEX_S_SKIN_COLUMNS:
            continue
        if match is None or match.group(1) not in BY_RSID:
            raise ValueError(f"{path}: column {name!r} is not one of the web tool's template; check its spelling")
        marker = BY_RSID[match.group(1)]
        if marker.rsid in {m.rsid for m, _ in columns.values()}:
            raise ValueError(f"{path}: {marker.rsid} has two columns; keep one")
        columns[name] = (marker, _counts_counted(marker, match.group(2), path=path))
    row = _pick(path, rows, sample)
    found: dict[str, int | None] = {}
    for name, (marker, counted) in columns.items():
        count = _count(row.get(name), where=f"{path}, sample {row[SAMPLE_COLUMN]!r}, column {name}")
        found[marker.rsid] = None if count is None else count if counted else 2 - count
    return genotypes_from(found, WEBTOOL_INPUT, sample=row[SAMPLE_COLUMN].strip())


def _count(text: str | None, *, where: str) -> int | None:
    """'0', '1', '2' (or 1.0 ...) as copies; NA or empty as missing."""
    text = (text or "").strip()
    if text.upper() in MISSING_VALUES:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value not in (0.0, 1.0, 2.0):
        raise ValueError(f"{where}: {text!r} is not an allele count; write 0, 1, 2 or NA")
    return int(value)


def read_webtool_skin(path: Path | str | GenotypeStream, *, sample: str | None = None) -> dict[str, float] | None:
    """The five skin probabilities of one sample from the web tool's output CSV; None when the tool gave NA."""
    path = as_source(path)
    header, rows = _rows(path, "output CSV")
    absent = [c for c in SKIN_COLUMNS.values() if c not in header]
    if absent:
        raise ValueError(f"{path}: no {', '.join(absent)} column; give the CSV the HIrisPlex-S web tool exports "
                         "(its skin probabilities)")  # fmt: skip
    row = _pick(path, rows, sample if sample is None or sample in {r.get(SAMPLE_COLUMN) for r in rows} else None)
    texts = {key: (row.get(column) or "").strip() for key, column in SKIN_COLUMNS.items()}
    if all(t.upper() in MISSING_VALUES for t in texts.values()):
        return None
    try:
        values = {key: float(t) for key, t in texts.items()}
    except ValueError:
        raise ValueError(f"{path}: the skin probabilities {texts} are not all numbers") from None
    total = sum(values.values())
    if any(not 0.0 <= v <= 1.0 for v in values.values()) or abs(total - 1.0) > SKIN_SUM_TOLERANCE:
        raise ValueError(f"{path}: the skin probabilities must each lie in 0-1 and sum to 1, got sum {total:.3f}")
    return {key: v / total for key, v in values.items()}
