"""The published HIrisPlex models: the reference's golden vectors, its coefficient tables read independently, the
direction of the two best-known markers, and honest ranges over missing genotypes."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from facegen.data.synthetic.genotypes import random_dosages
from facegen.io.genotypes import HIRISPLEX_MARKERS, Genotypes
from facegen.models.appearance.hirisplex import (
    EXACT_MISSING_LIMIT,
    EYE_MODEL,
    HAIR_COLOUR_MODEL,
    HAIR_SHADE_MODEL,
    MODELS,
    SKIN_CLASSES,
    predict_phenotype,
)
from tests.conftest import SHARED

REFERENCE = SHARED / "reference" / "hirisplex.md"
GOLDEN_EYE = {"blue": 0.9499721894974398, "intermediate": 0.02961357022894674, "brown": 0.020414240273613493}
GOLDEN_HAIR = {"brown": 0.10293551660404357, "red": 0.0013712225851220672, "black": 0.0742993898557622,
               "blond": 0.8213938709550722}  # fmt: skip


def _zeros() -> dict[str, int | None]:
    return {m: 0 for model in MODELS for m in model.markers}


def test_the_golden_vectors_reproduce_to_1e_12():
    eye, hair = EYE_MODEL.probabilities(_zeros()), HAIR_COLOUR_MODEL.probabilities(_zeros())
    assert all(abs(eye[k] - v) < 1e-12 for k, v in GOLDEN_EYE.items()), eye
    assert all(abs(hair[k] - v) < 1e-12 for k, v in GOLDEN_HAIR.items()), hair


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/hirisplex.md is not beside the repository")
def test_the_coefficients_match_the_reference_tables_read_on_their_own():
    text = REFERENCE.read_text()
    eye = {r[0]: [float(v) for v in r[-2:]] for r in _table_rows(text, "## Eye", 3)}
    hair = {r[0].split()[0]: [float(v) for v in r[-3:]] for r in _table_rows(text, "## Hair colour", 4)}
    shade = dict(re.findall(r"(intercept|rs\d+) (-?\d+\.\d+)", text.split("## Hair shade")[1].split("##")[0]))
    for model, table, classes in ((EYE_MODEL, eye, ("blue", "intermediate")),
                                  (HAIR_COLOUR_MODEL, hair, ("brown", "red", "black"))):  # fmt: skip
        assert table.pop("intercept") == [model.intercept[k] for k in classes]
        assert {m: [model.betas[m][k] for k in classes] for m in model.markers} == table
    assert float(shade.pop("intercept")) == HAIR_SHADE_MODEL.intercept["dark"]
    assert {m: HAIR_SHADE_MODEL.betas[m]["dark"] for m in HAIR_SHADE_MODEL.markers} == {
        k: float(v) for k, v in shade.items()}  # fmt: skip


def _table_rows(text: str, heading: str, numbers: int) -> list[list[str]]:
    """The rows of the markdown table under `heading` whose last `numbers` cells hold the figures."""
    section = text.split(heading)[1].split("\n## ")[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("|")]
    return [r for r in rows if re.fullmatch(r"-?[\d.]+", r[-1]) and len(r) >= numbers]


@pytest.mark.parametrize("seed", range(5))
def test_probabilities_sum_to_one_and_the_known_markers_pull_the_right_way(seed):
    mc1r = {m.rsid: 0 for m in HIRISPLEX_MARKERS if m.chrom == "16"}
    person = random_dosages(seed) | mc1r  # no other MC1R variant, so P(red) is not already 1
    for model in MODELS:
        assert sum(model.probabilities(person).values()) == pytest.approx(1.0, abs=1e-12)
    blue = [EYE_MODEL.probabilities(person | {"rs12913832": n})["blue"] for n in (0, 1, 2)]
    red = [HAIR_COLOUR_MODEL.probabilities(person | {"rs1805007": n})["red"] for n in (0, 1, 2)]
    assert blue[0] > blue[1] > blue[2] and red[0] < red[1] < red[2], (blue, red)


def test_eye_is_refused_without_rs12913832_and_the_rest_still_runs():
    person = random_dosages(3, missing={"rs12913832"})
    prediction = predict_phenotype(Genotypes(person, "test"))
    assert prediction.eye.probabilities is None and "rs12913832" in prediction.eye.refused
    assert prediction.hair_colour.probabilities is not None and prediction.hair_shade.probabilities is not None
    assert prediction.missing == ["rs12913832"] and prediction.summary()["eye"] is None
    assert "rs12913832" in prediction.hair_colour.missing  # a hair marker too: its range is given
    assert set(prediction.summary()["ranges"]) == {"hair_colour", "hair_shade"}


@pytest.mark.parametrize("missing", [("rs312262906", "rs1805007"), ("rs1800407", "rs12896399", "rs16891982",
                                                                     "rs683", "rs28777")])  # fmt: skip
def test_ranges_hold_every_completion_and_are_reached(missing):
    person = random_dosages(8, missing=missing)
    prediction = predict_phenotype(Genotypes(person, "test"))
    for model, trait in zip(MODELS, prediction.traits, strict=True):
        gaps = [m for m in missing if m in model.markers]
        assert trait.missing == tuple(m for m in model.markers if m in gaps)
        if not gaps:
            assert trait.ranges is None
            continue
        completions = [model.probabilities(person | dict(zip(gaps, c, strict=True)))
                       for c in itertools.product((0, 1, 2), repeat=len(gaps))]  # fmt: skip
        assert trait.exact_ranges
        for k, (low, high) in trait.ranges.items():
            values = [c[k] for c in completions]
            assert low <= trait.probabilities[k] <= high
            assert min(values) == pytest.approx(low, abs=1e-15) and max(values) == pytest.approx(high, abs=1e-15)


def test_an_interior_maximum_is_found_where_corners_alone_would_miss_it():
    # eye, brown with all else 0: scores blue 3.8402 - 4.8727 x, intermediate 0.372 - 1.99 x; P(brown) peaks at x=1
    person = _zeros() | {"rs12913832": None, "rs1800407": None}
    low, high = EYE_MODEL.ranges(person)[0]["intermediate"]
    grid = [EYE_MODEL.probabilities(person | {"rs12913832": a, "rs1800407": b})["intermediate"]
            for a in (0, 1, 2) for b in (0, 1, 2)]  # fmt: skip
    corners = [EYE_MODEL.probabilities(person | {"rs12913832": a, "rs1800407": b})["intermediate"]
               for a in (0, 2) for b in (0, 2)]  # fmt: skip
    assert high == max(grid) > max(corners)


def test_too_many_missing_markers_give_bounds_and_no_point_prediction():
    rng = np.random.default_rng(0)
    gaps = [m for m in HAIR_COLOUR_MODEL.markers if m != "rs12913832"][: EXACT_MISSING_LIMIT + 3]
    person = random_dosages(4, missing=gaps)
    prediction = predict_phenotype(Genotypes(person, "test"))
    hair = prediction.hair_colour
    assert hair.probabilities is None and not hair.exact_ranges and "no point prediction" in hair.refused
    for _ in range(300):
        completion = person | {m: int(rng.integers(0, 3)) for m in gaps}
        for k, p in HAIR_COLOUR_MODEL.probabilities(completion).items():
            assert hair.ranges[k][0] <= p <= hair.ranges[k][1]
    assert prediction.eye.probabilities is not None  # eye's markers are all there


def test_skin_is_shown_only_as_given_and_the_summary_keys():
    person = random_dosages(1)
    bare = predict_phenotype(Genotypes(person, "test")).summary()
    assert set(bare) == {"eye", "hair_colour", "hair_shade", "skin", "missing", "ranges", "dosages", "notes"}
    assert bare["skin"] is None and any("Skin colour: unavailable" in n for n in bare["notes"])
    assert list(bare["hair_colour"]) == ["blond", "brown", "red", "black"] and list(bare["hair_shade"]) == [
        "light", "dark"]  # fmt: skip
    skin = dict(zip(SKIN_CLASSES, (0.5, 0.3, 0.1, 0.06, 0.04), strict=True))
    assert predict_phenotype(Genotypes(person, "test"), skin=skin).summary()["skin"] == skin
    with pytest.raises(ValueError, match="skin probabilities need exactly very_pale"):
        predict_phenotype(Genotypes(person, "test"), skin={"pale": 1.0})
