import pytest

from facegen.data.subject import Sex, Subject


def test_subject_normalises_sex_and_serialises():
    s = Subject("S1", "M", 40.0, 24.5, "B")
    assert s.sex is Sex.MALE
    assert s.to_dict() == {"subject_id": "S1", "sex": "M", "age_years": 40.0, "bmi": 24.5, "group": "B"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"age_years": 300.0}, "age 300.0 years is outside"),
        ({"age_years": 5.0}, "outside the adult range"),
        ({"bmi": -5.0}, "BMI -5.0 is outside"),
        ({"bmi": 80.0}, "BMI 80.0 is outside"),
        ({"group": "Z"}, "unknown population group 'Z'"),
        ({"sex": "X"}, "sex 'X' must be F or M"),
        ({"subject_id": "../etc"}, "usable as a folder name"),
    ],
)
def test_absurd_metadata_is_refused_with_a_clear_message(kwargs, message):
    values = {"subject_id": "S1", "sex": "F", "age_years": 30.0, "bmi": 22.0, "group": "A", **kwargs}
    with pytest.raises(ValueError, match=message):
        Subject(**values)


def test_unknown_metadata_round_trips_through_table_cells():
    s = Subject("case-7", None, None, None, None)
    assert not s.is_complete
    assert s.to_row() == ["", "", "", ""]
    assert Subject.from_cells("case-7", *s.to_row()) == s
    assert s.describe() == "sex unknown, age unknown, BMI unknown"
    known = Subject("S2", "F", 41.5, 27.25, "C")
    assert Subject.from_cells("S2", *known.to_row()) == known


def test_bad_table_cell_names_the_field():
    with pytest.raises(ValueError, match="age 'forty' is not a number"):
        Subject.from_cells("S1", "F", "forty", "22", "A")
