"""Pairing scans with the metadata table before a batch ingest."""

from pathlib import Path

import pytest

from facegen.data.dataset.ingest import plan_cases
from facegen.data.subject import Sex


def _table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "subjects.csv"
    path.write_text(text)
    return path


def test_inputs_match_rows_by_input_column_or_file_stem(tmp_path):
    table = _table(
        tmp_path,
        "subject_id,sex,age_years,bmi,group,input,landmarks\n"
        "A1,F,44,31.5,B,scans/study-17.zip,lm/a1.json\n"
        "case7,M,,,,,\n",
    )
    cases = plan_cases([tmp_path / "scans" / "study-17.zip", tmp_path / "case7.nii.gz"], table)
    first, second = cases
    assert first.subject.subject_id == "A1" and first.subject.sex is Sex.FEMALE and first.subject.bmi == 31.5
    assert first.landmark_file == tmp_path / "lm" / "a1.json"
    assert second.subject.subject_id == "case7" and second.subject.age_years is None and second.landmark_file is None


def test_inputs_without_a_table_get_their_stem_and_unknown_metadata(tmp_path):
    (case,) = plan_cases([tmp_path / "head.nii.gz"], None)
    assert case.subject.subject_id == "head" and not case.subject.is_complete


@pytest.mark.parametrize(
    ("text", "inputs", "message"),
    [
        ("subject_id,sex,age_years,bmi\nx,F,300,22\n", ["x.nii.gz"], "subject x: age 300.0 years is outside"),
        ("subject_id,sex,age_years,bmi\nx,F,40,22\nx,M,40,22\n", ["x.nii.gz"], "subject_id 'x' appears twice"),
        ("subject_id,sex,age_years,bmi\nx,F,40,22\ny,M,40,22\n", ["x.nii.gz"], r"no input given for subject\(s\) y"),
        ("name,sex\nx,F\n", ["x.nii.gz"], "needs a header with columns subject_id"),
    ],
)
def test_table_problems_are_named(tmp_path, text, inputs, message):
    with pytest.raises(ValueError, match=message):
        plan_cases([tmp_path / i for i in inputs], _table(tmp_path, text))


def test_two_inputs_with_one_id_are_refused(tmp_path):
    with pytest.raises(ValueError, match="subject id 'x' is given twice"):
        plan_cases([tmp_path / "a" / "x.nii.gz", tmp_path / "b" / "x.nii.gz"], None)
