"""Group labels of subjects: band labels at their edges, unknown values, an unknown grouping."""

from __future__ import annotations

import pytest

from facegen.data.groups import age_band, group_labels
from facegen.data.subject import Subject


def test_labels_at_band_edges_and_unknown() -> None:
    subjects = [
        Subject("a", "F", 18.0, 18.5, "A"),
        Subject("b", "M", 30.0, 25.0, "B"),
        Subject("c", "F", 29.99, 24.99, "C"),
        Subject("d", "M", 75.0, 35.0, "A"),
        Subject("e", None, None, None, None),
        Subject("f", "F", 60.0, 18.4, "A"),
    ]
    assert group_labels(subjects, "sex") == ["F", "M", "F", "M", "unknown", "F"]
    assert group_labels(subjects, "age") == ["18-30", "30-45", "18-30", "75+", "unknown", "60-75"]
    assert group_labels(subjects, "bmi") == ["18.5-25", "25-30", "18.5-25", "35+", "unknown", "0-18.5"]
    assert group_labels(subjects, "group") == ["A", "B", "C", "A", "unknown", "A"]
    assert age_band(45.0) == "45-60" and age_band(44.9) == "30-45"
    with pytest.raises(ValueError, match="grouping 'height'; choose one of sex, age, bmi, group"):
        group_labels(subjects, "height")
