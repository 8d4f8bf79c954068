"""`facegen phenotype`: the JSON's keys exactly as documented, the table, skin from the web tool, errors by name."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.synthetic.genotypes import random_dosages, vcf_text, webtool_output_text
from facegen.models.appearance.hirisplex import EYE_MODEL, HAIR_COLOUR_MODEL

runner = CliRunner()
KEYS = {"eye", "hair_colour", "hair_shade", "skin", "missing", "ranges", "dosages", "notes"}


def test_json_has_exactly_the_documented_keys_and_the_models_numbers(tmp_path):
    person = random_dosages(6, rare=False)
    path = tmp_path / "person.vcf"
    path.write_text(vcf_text({"P1": person}))
    result = runner.invoke(app, ["phenotype", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == KEYS
    assert set(out["eye"]) == {"blue", "intermediate", "brown"} and out["eye"] == EYE_MODEL.probabilities(person)
    assert list(out["hair_colour"]) == ["blond", "brown", "red", "black"]
    assert out["hair_colour"] == HAIR_COLOUR_MODEL.probabilities(person) and set(out["hair_shade"]) == {"light", "dark"}
    assert out["skin"] is None and out["missing"] == [] and out["ranges"] == {} and out["dosages"] == person


def test_the_table_refuses_eye_without_rs12913832_and_shows_skin_from_the_web_tool(tmp_path):
    path, skin_csv = tmp_path / "two.vcf", tmp_path / "result.csv"
    path.write_text(vcf_text({"A": random_dosages(1, missing={"rs12913832"}), "B": random_dosages(2)}))
    skin = {"very_pale": 0.05, "pale": 0.15, "intermediate": 0.6, "dark": 0.15, "dark_black": 0.05}
    skin_csv.write_text(webtool_output_text({"A": skin, "B": None}))
    result = runner.invoke(app, ["phenotype", str(path), "--sample", "A", "--skin-probabilities", str(skin_csv)])
    assert result.exit_code == 0, result.output
    assert "appearance from DNA (HIrisPlex)" in result.output and "refused" in result.output
    assert "missing: rs12913832" in result.output and "intermediate" in result.output
    as_json = json.loads(runner.invoke(app, ["phenotype", str(path), "--sample", "A", "--json",
                                             "--skin-probabilities", str(skin_csv)]).output)  # fmt: skip
    assert as_json["eye"] is None and as_json["skin"] == skin and as_json["missing"] == ["rs12913832"]
    assert set(as_json["ranges"]) == {"hair_colour", "hair_shade"}


def test_a_bad_file_fails_with_its_name(tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    result = runner.invoke(app, ["phenotype", str(path)])
    assert result.exit_code == 2 and "holiday.jpg: not a text file" in result.output
    several = tmp_path / "two.vcf"
    several.write_text(vcf_text({"A": random_dosages(1), "B": random_dosages(2)}))
    result = runner.invoke(app, ["phenotype", str(several), "--json"])
    assert result.exit_code == 2 and "choose one" in result.output


def test_reconstruct_refuses_a_bad_genotype_file_before_any_work(tmp_path):
    skull, genotypes = tmp_path / "skull.stl", tmp_path / "dna.txt"
    skull.write_bytes(b"solid nothing\nendsolid nothing\n")
    genotypes.write_text("not a genotype file\n")
    result = runner.invoke(app, ["reconstruct", str(skull), "--out", str(tmp_path / "case"), "--genotypes",
                                 str(genotypes), "--model", str(tmp_path / "no-model-needed")])  # fmt: skip
    assert result.exit_code == 2 and "dna.txt: not a genotype file facegen reads" in result.output
    assert not (tmp_path / "case").exists()
