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
        ({"sex": "X"}, "'X' is not a valid Sex"),
    ],
)
def test_absurd_metadata_is_refused_with_a_clear_message(kwargs, message):
    values = {"subject_id": "S1", "sex": "F", "age_years": 30.0, "bmi": 22.0, "group": "A", **kwargs}
    with pytest.raises(ValueError, match=message):
        Subject(**values)
