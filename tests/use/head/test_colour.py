"""Colouring: iris vertices carry their class's colour, one head per shown class, never a blend of classes."""

from __future__ import annotations

import numpy as np
import pytest

from facegen.use.head.appearance import Appearance
from facegen.use.head.colour import HAIR, IRIS, LIMBUS_DARKENING, PUPIL, SCLERA, SKIN, colour_head
from facegen.use.head.model import EYE_PARTS, Part
from facegen.use.head.regions import EyeZone, eye_zones, eyebrow_weight

LOOK = Appearance(
    eye={"blue": 0.62, "intermediate": 0.1, "brown": 0.28},
    hair_colour={"blond": 0.1, "brown": 0.6, "red": 0.05, "black": 0.25},
    hair_shade={"light": 0.15, "dark": 0.85},
)


@pytest.fixture(scope="module")
def variants(fit_a):
    return colour_head(fit_a, LOOK)


def test_one_head_per_shown_class_labelled_with_its_probability(variants):
    names = [v.name for v in variants]
    assert names == ["eye-blue_hair-brown-dark", "eye-brown_hair-brown-dark", "eye-blue_hair-black-dark",
                     "eye-brown_hair-black-dark"]  # fmt: skip
    assert not any("intermediate" in n or "blond" in n or "red" in n or "light" in n for n in names)
    assert (
        variants[0].label == "eyes blue (p = 0.62); hair brown (p = 0.60), dark (p = 0.85); skin unknown (neutral tone)"
    )
    assert variants[1].probabilities == {"eye": 0.28, "hair_colour": 0.6, "hair_shade": 0.85, "skin": None}


def test_iris_vertices_carry_the_eye_colour_and_eyes_hold_no_blend(fit_a, variants):
    model = fit_a.model
    zones = eye_zones(model)
    iris_ball = model.mask(Part.IRIS_BALL_LEFT, Part.IRIS_BALL_RIGHT)
    eyes = model.mask(*EYE_PARTS)
    assert (iris_ball & (zones == EyeZone.IRIS.value)).sum() > 100
    for v in variants:
        iris = np.asarray(IRIS[v.classes["eye"]])
        assert (v.colours[zones == EyeZone.IRIS.value] == iris).all()
        allowed = {tuple(iris), tuple(np.rint(LIMBUS_DARKENING * iris).astype(int)), PUPIL, SCLERA}
        assert {tuple(c) for c in v.colours[eyes].tolist()} <= allowed
    blue, brown = variants[0].colours, variants[1].colours
    assert (blue[zones == EyeZone.IRIS.value] != brown[zones == EyeZone.IRIS.value]).any(axis=1).all()


def test_brows_and_lashes_take_the_hair_colour_and_the_skin_its_tone(fit_a, variants):
    model = fit_a.model
    brow = eyebrow_weight(model) > 0.99
    assert 20 < brow.sum() < 600
    for v in variants:
        hair = np.asarray(HAIR[(v.classes["hair_colour"], v.classes["hair_shade"])], float)
        skin = np.asarray(SKIN[None], float)
        # brow core: 85 % hair over the skin tone; the back of the head: the skin tone alone
        assert np.abs(v.colours[brow] - (0.85 * hair + 0.15 * skin)).max() <= 1.0
        assert (v.colours[model.skin & (np.asarray(v.mesh.vertices)[:, 2] < -60)] == SKIN[None]).all()
        lashes = v.colours[model.mask(Part.EYELASHES)].astype(float)
        assert np.linalg.norm(lashes.mean(axis=0) - skin) > 60  # lashes stand out from the skin


def test_no_appearance_gives_one_neutral_head(fit_a):
    (only,) = colour_head(fit_a, None)
    assert only.name == "eye-unknown_hair-unknown"
    assert "eyes colour unknown" in only.label and "skin unknown" in only.label
    zones = eye_zones(fit_a.model)
    assert (only.colours[zones == EyeZone.IRIS.value] == IRIS[None]).all()
    with pytest.raises(ValueError, match="max_variants"):
        colour_head(fit_a, LOOK, max_variants=0)
