"""`facegen reconstruct --genotypes`: the case records the HIrisPlex phenotype and its report shows it, while nothing
of the genotype file but the HIrisPlex dosages reaches any file of the case (genetic privacy)."""

from __future__ import annotations

import contextlib
import json
import re
import zlib
from pathlib import Path

from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.synthetic.genotypes import random_dosages, vcf_text
from facegen.models.appearance.hirisplex import HAIR_COLOUR_MODEL
from tests.conftest import pose_cases_from_landmarks

PLANTED_MARKER = "rs4988235"  # LCT, lactase persistence: not an HIrisPlex marker
PLANTED_SAMPLE = "Quillon-Marbury-7731"
PLANTED_FILE = "Quillon-Marbury-genome.vcf"
PLANTED_GENOTYPE = "GGGATTACAGGG"  # a distinctive (made-up) ALT allele carried by the planted marker


def _readable_bytes(path: Path) -> bytes:
    """A file's bytes; for a PDF also its text: each stream inflated and its strings joined (matplotlib writes
    monospace text one character per string)."""
    data = path.read_bytes()
    if path.suffix != ".pdf":
        return data
    texts = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        with contextlib.suppress(zlib.error):
            stream = zlib.decompress(stream)
        strings = re.findall(rb"\(((?:\\.|[^\\)])*)\)", stream)
        texts.append(re.sub(rb"\\(.)", rb"\1", b"".join(strings)))
    return data + b"\n".join(texts)


def test_a_case_with_genotypes_reports_the_phenotype_and_keeps_nothing_else_of_the_file(
    case_model_run, tiny_dataset, tmp_path, monkeypatch
):
    subject = sorted((tiny_dataset / "subjects").iterdir())[0]
    pose_cases_from_landmarks(subject, tmp_path, monkeypatch)
    person = random_dosages(21, missing={"rs312262906"}, rare=False)
    planted = f"2\t135851076\t{PLANTED_MARKER}\tC\t{PLANTED_GENOTYPE}\t.\tPASS\t.\tGT\t1/1"
    genotypes = tmp_path / PLANTED_FILE
    genotypes.write_text(vcf_text({PLANTED_SAMPLE: person}, extra_records=[planted]))
    out = tmp_path / "case"
    args = [str(subject / "skull.ply"), "--out", str(out), "--model", str(case_model_run), "--sex", "F", "--age",
            "40", "--bmi", "25", "--genotypes", str(genotypes)]  # fmt: skip
    result = CliRunner().invoke(app, ["reconstruct", *args])
    assert result.exit_code == 0, result.output

    record = json.loads((out / "case.json").read_text())["phenotype"]
    assert record["dosages"] == person and record["missing"] == ["rs312262906"] and record["input_format"] == "VCF"
    assert record["predictions"]["hair_colour"] == HAIR_COLOUR_MODEL.probabilities(person)
    assert set(record["ranges"]) == {"hair_colour"} and record["predictions"]["skin"] is None
    assert record["accuracy"]["hair_colour"]["values"]["black"] == 0.875 and "hirisplex_2013" in record["sources"]
    report = (out / "report.html").read_text()
    for text in ("Appearance from DNA (HIrisPlex)", "admixed populations", "US20110312534", "EP2195448",
                 "status was not checked", "facegen has no skin model", "10.1016/j.fsigen.2012.07.005",
                 "individual-based accuracy", "rs312262906: no call"):  # fmt: skip
        assert text in report, text

    # genetic privacy: the planted marker, its allele, the sample's and the file's names are in no file of the case
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20
    searched = {p: _readable_bytes(p) for p in files}
    assert b"rs12913832" in searched[out / "report.pdf"]  # the search can read the PDF's text
    for needle in (PLANTED_MARKER, PLANTED_GENOTYPE, PLANTED_SAMPLE, "Quillon", PLANTED_FILE):
        leaks = [p.relative_to(out).as_posix() for p, data in searched.items() if needle.encode() in data]
        assert not leaks, (needle, leaks)
    assert genotypes.read_bytes() not in b"".join(searched.values())
