"""Genotypes in: VCF (plain, gzip), 23andMe, AncestryDNA and the web tool's CSVs read as the same HIrisPlex dosages;
missing calls kept missing; strands; bad alleles, garbage and several samples refused by name."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from facegen.data.synthetic.genotypes import (
    ancestry_text,
    random_dosages,
    twenty_three_and_me_text,
    vcf_text,
    webtool_counts_text,
    webtool_output_text,
)
from facegen.io.genotypes import detect_format, read_genotypes, read_webtool_skin
from facegen.io.genotypes.calls import NO_CALL, NOT_IN_FILE

TEMPLATE_HEADER = (
    "sampleid,rs312262906_A,rs11547464_A,rs885479_T,rs1805008_T,rs1805005_T,rs1805006_A,rs1805007_T,rs1805009_C,"
    "rs201326893_A,rs2228479_A,rs1110400_C,rs28777_C,rs16891982_C,rs12821256_G,rs4959270_A,rs12203592_T,"
    "rs1042602_T,rs1800407_A,rs2402130_G,rs12913832_T,rs2378249_C,rs12896399_T,rs1393350_T,rs683_G"
)
"""The web tool's input template (its first 25 columns; 17 skin-SNP columns follow), as public scripts that fill
it spell it."""
VCF_HEAD = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\n"


def _person() -> dict[str, int | None]:
    dosages = random_dosages(11)
    dosages.update({"rs312262906": 1, "rs12896399": 2, "rs12913832": 0, "rs1805009": 2, "rs16891982": 1})
    return dosages


def _write(path: Path, text: str, *, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def test_one_person_reads_the_same_from_every_format(tmp_path):
    person = _person()
    vcf = vcf_text({"P1": person}, chr_prefix={"rs12913832", "rs1805007", "rs683"}, by_position={"rs312262906"})
    assert "16\t89919344\t.\tC\tCA\t" in vcf and "chr15\t28120472\trs12913832\t" in vcf
    files = {  # names that do not tell the format: it is told from the content
        "VCF": _write(tmp_path / "a.dat", vcf, gz=True),
        "23andMe": _write(tmp_path / "b.dat", twenty_three_and_me_text(person)),
        "AncestryDNA": _write(tmp_path / "c.dat", ancestry_text(person)),
        "HIrisPlex-S web-tool CSV": _write(tmp_path / "d.dat", webtool_counts_text({"P1": person})),
    }
    for kind, path in files.items():
        assert detect_format(path) == kind
        genotypes = read_genotypes(path)
        assert genotypes.dosages == person, kind
        assert genotypes.file_format == kind and genotypes.missing == []


def test_the_mc1r_insertion_is_counted_as_an_indel_by_rsid_and_by_position(tmp_path):
    rows = ["16\t89919344\trs312262906\tC\tCA\t.\tPASS\t.\tGT\t1/1",  # two copies of the inserted A
            "chr16\t89919344\t.\tC\tCA,T\t.\tPASS\t.\tGT\t0|1"]  # fmt: skip
    assert read_genotypes(_write(tmp_path / "a.vcf", VCF_HEAD + rows[0])).dosages["rs312262906"] == 2
    assert read_genotypes(_write(tmp_path / "b.vcf", VCF_HEAD + rows[1])).dosages["rs312262906"] == 1
    with pytest.raises(ValueError, match=r"rs312262906.*I or D"):  # the other ALT, a C>T SNV, is not the insertion
        read_genotypes(_write(tmp_path / "c.vcf", VCF_HEAD + rows[1].replace("0|1", "2/2")))
    indel = twenty_three_and_me_text({"rs312262906": 2})  # 23andMe writes indels as I (inserted) and D
    assert "rs312262906\t16\t89919344\tII" in indel
    assert read_genotypes(_write(tmp_path / "d.txt", indel)).dosages["rs312262906"] == 2
    assert read_genotypes(_write(tmp_path / "e.txt", indel.replace("\tII", "\tDI"))).dosages["rs312262906"] == 1


def test_missing_calls_stay_missing_in_every_format(tmp_path):
    person = _person() | {"rs12913832": None, "rs885479": None}
    vcf = vcf_text({"P1": person}).replace("0/0\n", ".|0\n", 1)  # a half call is no call either
    half = [line.split("\t")[2] for line in vcf.splitlines() if line.endswith(".|0")]
    assert len(half) == 1
    for text in (vcf, twenty_three_and_me_text(person), ancestry_text(person), webtool_counts_text({"P1": person})):
        genotypes = read_genotypes(_write(tmp_path / "g.txt", text))
        expected = {"rs12913832", "rs885479", *(half if text is vcf else [])}
        assert set(genotypes.missing) == expected
        assert all(genotypes.dosages[r] is None and genotypes.missing_reasons[r] == NO_CALL for r in expected)
    lacking = "\n".join(line for line in twenty_three_and_me_text(_person()).splitlines() if "rs683\t" not in line)
    genotypes = read_genotypes(_write(tmp_path / "h.txt", lacking))
    assert genotypes.dosages["rs683"] is None and genotypes.missing_reasons["rs683"] == NOT_IN_FILE


def test_a_minus_strand_call_is_flipped_but_a_palindromic_one_is_not(tmp_path):
    person = _person()
    minus = twenty_three_and_me_text(person, minus={"rs12913832", "rs683"})
    assert f"rs12913832\t15\t28120472\t{'C' * (2 - person['rs12913832'])}{'T' * person['rs12913832']}" in minus
    flipped = read_genotypes(_write(tmp_path / "m.txt", minus))
    assert flipped.dosages == person
    text = twenty_three_and_me_text(person).replace("rs1805009\t16\t89920138\tCC", "rs1805009\t16\t89920138\tGG")
    assert read_genotypes(_write(tmp_path / "p.txt", text)).dosages["rs1805009"] == 0  # C/G: read on the plus strand


@pytest.mark.parametrize("old, new", [("rs12913832\t15\t28120472\tGG", "rs12913832\t15\t28120472\tGC"),  # mixed
                                      ("rs1805009\t16\t89920138\tCC", "rs1805009\t16\t89920138\tAA")])  # fmt: skip
def test_an_allele_of_neither_strand_is_refused_naming_marker_and_file(tmp_path, old, new):
    text = twenty_three_and_me_text(_person())
    assert old in text
    path = _write(tmp_path / "odd-alleles.txt", text.replace(old, new))
    with pytest.raises(ValueError, match=rf"odd-alleles\.txt, line \d+: {old.split()[0]} is called"):
        read_genotypes(path)


def test_garbage_and_unknown_files_are_refused_by_name(tmp_path):
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"junk\.bin: not a text file"):
        read_genotypes(tmp_path / "junk.bin")
    with pytest.raises(ValueError, match=r"notes\.txt: not a genotype file facegen reads"):
        read_genotypes(_write(tmp_path / "notes.txt", "dear diary\nnothing genetic here\n"))
    (tmp_path / "cut.vcf.gz").write_bytes(gzip.compress(vcf_text({"P1": _person()}).encode())[:120])
    with pytest.raises(ValueError, match=r"cut\.vcf\.gz: the compressed file is damaged"):
        read_genotypes(tmp_path / "cut.vcf.gz")
    with pytest.raises(ValueError, match=r"absent\.vcf: no such genotype file"):
        read_genotypes(tmp_path / "absent.vcf")
    with pytest.raises(ValueError, match=r"out\.csv: this is the web tool's output"):
        read_genotypes(_write(tmp_path / "out.csv", webtool_output_text({"P1": None})))
    header, row = webtool_counts_text({"P1": _person()}).splitlines()
    cells = row.split(",")
    cells[header.split(",").index("rs683_G")] = "x"
    with pytest.raises(ValueError, match=r"bad\.csv, sample 'P1', column rs683_G: 'x' is not an allele count"):
        read_genotypes(_write(tmp_path / "bad.csv", f"{header}\n{','.join(cells)}\n"))


def test_several_samples_need_a_choice(tmp_path):
    a, b = _person(), random_dosages(5)
    for path in (_write(tmp_path / "two.vcf", vcf_text({"alice": a, "bob": b})),
                 _write(tmp_path / "two.csv", webtool_counts_text({"alice": a, "bob": b}))):  # fmt: skip
        with pytest.raises(ValueError, match=r"2 samples \('alice', 'bob'\); choose one"):
            read_genotypes(path)
        with pytest.raises(ValueError, match=r"no sample 'carol'"):
            read_genotypes(path, sample="carol")
        assert read_genotypes(path, sample="bob").dosages == b and read_genotypes(path, sample="alice").dosages == a
    with pytest.raises(ValueError, match=r"23andMe raw file holds one person"):
        read_genotypes(_write(tmp_path / "one.txt", twenty_three_and_me_text(a)), sample="alice")


def test_the_web_tool_template_and_its_rs12896399_column(tmp_path):
    person = _person()  # rs12896399: 2 copies of G, the model's counted allele
    text = webtool_counts_text({"P1": person})
    assert text.startswith(TEMPLATE_HEADER + ",rs3114908_T,")
    row = dict(zip(text.splitlines()[0].split(","), text.splitlines()[1].split(","), strict=True))
    assert row["rs12896399_T"] == "0"  # the template's column counts T: 2 - copies of G
    assert row["rs12913832_T"] == str(person["rs12913832"])  # minus-strand label: T counts the plus strand's A
    assert read_genotypes(_write(tmp_path / "w.csv", text)).dosages["rs12896399"] == 2
    relabelled = read_genotypes(_write(tmp_path / "c.csv", text.replace("rs12913832_T", "rs12913832_C")))
    assert relabelled.dosages["rs12913832"] == 2 - person["rs12913832"]  # C (minus strand of G) counts the other
    with pytest.raises(ValueError, match=r"column rs1805009_A names an allele rs1805009 does not have"):
        read_genotypes(_write(tmp_path / "x.csv", text.replace("rs1805009_C", "rs1805009_A")))


def test_positions_of_a_grch37_vcf_are_not_matched(tmp_path):
    text = vcf_text({"P1": _person()}, by_position={"rs28777"}).replace("##reference=GRCh38", "##reference=hg19")
    genotypes = read_genotypes(_write(tmp_path / "old.vcf", text))
    assert genotypes.missing == ["rs28777"] and "GRCh37" in genotypes.notes[0]
    row = "5\t33958854\trs99999\tC\tA\t.\tPASS\t.\tGT\t1/1"  # another variant's rsID at a marker's place
    assert read_genotypes(_write(tmp_path / "rs.vcf", VCF_HEAD + row)).missing_reasons["rs28777"] == NOT_IN_FILE
    twice = VCF_HEAD + row.replace("rs99999", "rs28777") + "\n" + row.replace("rs99999", ".")
    with pytest.raises(ValueError, match=r"rs28777 is on lines 3 and 4"):
        read_genotypes(_write(tmp_path / "twice.vcf", twice))


def test_skin_probabilities_from_the_web_tools_output(tmp_path):
    skin = {"very_pale": 0.1, "pale": 0.6, "intermediate": 0.2, "dark": 0.07, "dark_black": 0.03}
    path = _write(tmp_path / "out.csv", webtool_output_text({"P1": skin, "P2": None}))
    assert read_webtool_skin(path, sample="P1") == pytest.approx(skin)
    assert read_webtool_skin(path, sample="P2") is None
    with pytest.raises(ValueError, match=r"2 samples"):
        read_webtool_skin(path)
    bad = webtool_output_text({"P1": skin | {"pale": 0.9}})
    with pytest.raises(ValueError, match=r"bad\.csv: the skin probabilities must .* sum 1\.300"):
        read_webtool_skin(_write(tmp_path / "bad.csv", bad))
    with pytest.raises(ValueError, match=r"no PVeryPaleSkin"):
        read_webtool_skin(_write(tmp_path / "counts.csv", webtool_counts_text({"P1": _person()})))
