"""The HIrisPlex markers as a genotype file names them, and one call turned into a dosage of the counted allele.

A dosage is the number of copies (0, 1, 2) of the allele the HIrisPlex model counts. Genotype files (VCF,
23andMe, AncestryDNA) report the plus strand of the reference genome; several of the web tool's labels sit on
the minus strand, so each marker carries both. Positions are GRCh38 (1-based); 23andMe and AncestryDNA files
give GRCh37 positions and are matched by rsID only. Source: ../shared/reference/hirisplex.md, from Walsh et al.
2013 (FSI:Genetics 7:98-115) and the HIrisPlex-S web tool's input template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}
INSERTED, NOT_INSERTED = "I", "D"
"""How an indel's two alleles are written for the MC1R insertion (23andMe and AncestryDNA use I and D)."""


@dataclass(frozen=True)
class Marker:
    """One HIrisPlex SNP: rsID, GRCh38 place, plus-strand counted and other allele, and the web tool's label.

    For the MC1R insertion rs312262906 `counted` is the inserted base and `other` the anchor base without it.
    """

    rsid: str
    chrom: str
    pos: int
    counted: str
    other: str
    webtool_label: str
    insertion: bool = False

    @property
    def palindromic(self) -> bool:
        """A/T or C/G: the minus strand reads the same pair, so a strand flip cannot be told apart."""
        return not self.insertion and COMPLEMENT[self.counted] == self.other

    def plus_strand(self) -> str:
        """The counted and other plus-strand allele as text, e.g. 'A (other G)'."""
        if self.insertion:
            return f"insertion of {self.counted} (other: no insertion)"
        return f"{self.counted} (other {self.other})"


HIRISPLEX_MARKERS: tuple[Marker, ...] = (
    # rsID, GRCh38 chromosome and position, plus-strand counted, other, web-tool label (the template's order)
    Marker("rs312262906", "16", 89919344, "A", "C", "A", insertion=True),  # MC1R N29insA
    Marker("rs11547464", "16", 89919683, "A", "G", "A"),
    Marker("rs885479", "16", 89919746, "A", "G", "T"),
    Marker("rs1805008", "16", 89919736, "T", "C", "T"),
    Marker("rs1805005", "16", 89919436, "T", "G", "T"),
    Marker("rs1805006", "16", 89919510, "A", "C", "A"),
    Marker("rs1805007", "16", 89919709, "T", "C", "T"),
    Marker("rs1805009", "16", 89920138, "C", "G", "C"),
    Marker("rs201326893", "16", 89919714, "A", "C", "A"),
    Marker("rs2228479", "16", 89919532, "A", "G", "A"),
    Marker("rs1110400", "16", 89919722, "C", "T", "C"),
    Marker("rs28777", "5", 33958854, "C", "A", "C"),
    Marker("rs16891982", "5", 33951588, "C", "G", "C"),
    Marker("rs12821256", "12", 88934558, "C", "T", "G"),
    Marker("rs4959270", "6", 457748, "A", "C", "A"),
    Marker("rs12203592", "6", 396321, "T", "C", "T"),
    Marker("rs1042602", "11", 89178528, "A", "C", "T"),
    Marker("rs1800407", "15", 27985172, "T", "C", "A"),
    Marker("rs2402130", "14", 92334859, "G", "A", "G"),
    Marker("rs12913832", "15", 28120472, "A", "G", "T"),
    Marker("rs2378249", "20", 34630286, "G", "A", "C"),
    # rs12896399: the 2013 spreadsheet counts G; the web tool's template labels the column T, which is not G's
    # complement. The model's negative blue coefficient says the counted allele is the dark one, and G (plus
    # strand) is; so G is counted here, and a web-tool column of T counts is read as 2 - copies of G.
    Marker("rs12896399", "14", 92307319, "G", "T", "T"),
    Marker("rs1393350", "11", 89277878, "A", "G", "T"),
    Marker("rs683", "9", 12709305, "C", "A", "G"),
)
BY_RSID = {m.rsid: m for m in HIRISPLEX_MARKERS}
BY_POSITION = {(m.chrom, m.pos): m for m in HIRISPLEX_MARKERS}

HIRISPLEX_S_SKIN_COLUMNS = (
    "rs3114908_T", "rs1800414_C", "rs10756819_G", "rs2238289_C", "rs17128291_C", "rs6497292_C", "rs1129038_G",
    "rs1667394_C", "rs1126809_A", "rs1470608_A", "rs1426654_G", "rs6119471_C", "rs1545397_T", "rs6059655_T",
    "rs12441727_A", "rs3212355_A", "rs8051733_C",
)  # fmt: skip
"""The web tool's 17 further skin-SNP columns (HIrisPlex-S): accepted in its CSV, not used by the eye/hair model."""


def normal_chrom(chrom: str) -> str:
    """'chr16', 'Chr16' and '16' as '16'."""
    return chrom[3:] if chrom[:3].lower() == "chr" else chrom


def dosage(marker: Marker, alleles: Sequence[str], *, where: str) -> int:
    """Copies of the counted allele among a call's two alleles, read on the plus strand or, where the pair is not
    palindromic, wholly on the minus strand. `where` names the file for the error of an allele that fits neither."""
    calls = [a.upper() for a in alleles]
    if marker.insertion:
        strands = [{INSERTED: 1, NOT_INSERTED: 0}]
    else:
        strands = [{marker.counted: 1, marker.other: 0}]
        if not marker.palindromic:
            strands.append({COMPLEMENT[marker.counted]: 1, COMPLEMENT[marker.other]: 0})
    for copies in strands:
        if all(a in copies for a in calls):
            return sum(copies[a] for a in calls)
    if marker.insertion:
        expected = f"I or D (the anchor base with or without an inserted {marker.counted})"
    else:
        expected = f"{marker.counted}/{marker.other} (plus strand)"
    if not marker.insertion and not marker.palindromic:
        expected += f" or {COMPLEMENT[marker.counted]}/{COMPLEMENT[marker.other]} (minus strand)"
    raise ValueError(
        f"{where}: {marker.rsid} is called {'/'.join(alleles)}, but its alleles are {expected}; is this the right "
        "marker, or a file on another strand or assembly? Correct or remove that call."
    )
