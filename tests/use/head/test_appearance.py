"""What is known of the colouring: classes are checked by name, and every class with p >= 0.2 is shown."""

from __future__ import annotations

import pytest

from facegen.use.head.appearance import SHOW_MIN_PROBABILITY, Appearance

EYE = {"blue": 0.55, "intermediate": 0.25, "brown": 0.20}
HAIR = {"blond": 0.19, "brown": 0.5, "red": 0.01, "black": 0.3}
SHADE = {"light": 0.8, "dark": 0.2}


def test_every_class_at_or_above_the_threshold_is_shown_and_none_below():
    look = Appearance(eye=EYE, hair_colour=HAIR, hair_shade=SHADE)
    assert SHOW_MIN_PROBABILITY == 0.2
    assert [c for c, _ in look.shown("eye")] == ["blue", "intermediate", "brown"]  # 0.20 itself is shown
    assert [c for c, _ in look.shown("hair_colour")] == ["brown", "black"]  # blond at 0.19 is not
    assert [c for c, _ in look.shown("hair_shade")] == ["light", "dark"]
    assert look.shown("skin") == [(None, None)]
    combos = look.combinations()
    assert len(combos) == 3 * 2 * 2
    assert combos[0] == {"eye": ("blue", 0.55), "hair_colour": ("brown", 0.5), "hair_shade": ("light", 0.8),
                         "skin": (None, None)}  # fmt: skip


def test_names_are_read_as_the_web_tool_and_phenotype_record_write_them():
    skin = {"Very Pale": 0.1, "Pale": 0.6, "Intermediate": 0.2, "Dark": 0.05, "Dark to Black": 0.05}
    look = Appearance.from_dict({"eye": EYE, "hair_colour": None, "hair_shade": None, "skin": skin, "missing": []})
    assert look.skin == {"very_pale": 0.1, "pale": 0.6, "intermediate": 0.2, "dark": 0.05, "dark_to_black": 0.05}
    assert look.hair_colour is None and look.shown("hair_colour") == [(None, None)]


@pytest.mark.parametrize(
    ("eye", "message"),
    [
        ({"blue": 0.5, "green": 0.3, "brown": 0.2}, "unknown class 'green'"),
        ({"blue": 0.5, "brown": 0.5}, "no probability for intermediate"),
        ({"blue": 0.5, "intermediate": 0.3, "brown": 0.3}, "sum to 1.1000"),
        ({"blue": 1.2, "intermediate": -0.1, "brown": -0.1}, "must be in 0-1"),
    ],
)
def test_bad_probabilities_are_refused_by_name(eye, message):
    with pytest.raises(ValueError, match=message):
        Appearance(eye=eye)


def test_an_unknown_trait_is_refused():
    with pytest.raises(ValueError, match="unknown trait 'beard'"):
        Appearance().shown("beard")
