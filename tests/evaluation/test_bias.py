"""Bias by group: bootstrap coverage in simulation, tests that see a real
difference and not a chance one, small and unknown groups, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom, ttest_ind

from facegen.data.groups import GROUPINGS
from facegen.data.subject import Subject
from facegen.evaluation.bias import bias_table, bootstrap_interval, group_report


def test_bootstrap_interval_covers_the_true_mean_at_the_nominal_rate() -> None:
    # the percentile interval of a mean at n = 40 covers about 94% (it uses z and the plug-in SD), well inside
    # the binomial interval of 200 trials at 95%; a wrong percentile or scale would fall far outside it
    rng = np.random.default_rng(1)
    true_mean, trials = 3.0, 200
    samples = rng.normal(true_mean, 1.0, (trials, 40))
    hits = 0
    for i, sample in enumerate(samples):
        low, high = bootstrap_interval(sample, n_boot=1000, seed=i)
        hits += low <= true_mean <= high
    lo, hi = binom.interval(0.99, trials, 0.95)
    assert lo <= hits <= hi, f"covered the true mean in {hits} of {trials}"


def test_bootstrap_interval_is_seeded_and_checks_input() -> None:
    values = np.random.default_rng(0).normal(size=30)
    assert bootstrap_interval(values, seed=4) == bootstrap_interval(values, seed=4)
    assert bootstrap_interval(values, seed=4) != bootstrap_interval(values, seed=5)
    low, high = bootstrap_interval(values, statistic=np.median, level=0.5)
    assert low < np.median(values) < high
    with pytest.raises(ValueError, match="all finite"):
        bootstrap_interval(np.array([1.0, np.nan]))


def _three_groups(shift: float, seed: int = 2) -> tuple[np.ndarray, list[str]]:
    """30 MAE-like values per group A, B, C; group B shifted by `shift` mm."""
    rng = np.random.default_rng(seed)
    labels = ["A"] * 30 + ["B"] * 30 + ["C"] * 30
    values = rng.normal(3.0, 0.6, 90) + shift * (np.asarray(labels) == "B")
    return values, labels


def test_identical_groups_show_no_difference() -> None:
    values, labels = _three_groups(0.0)
    report = group_report(values, labels, n_boot=500, n_perm=1000)
    assert report["kruskal_p"] > 0.05 and report["permutation_p"] > 0.05
    assert 1.0 <= report["worst_to_best_ratio"] < 1.15
    assert [g["n"] for g in report["groups"].values()] == [30, 30, 30]


def test_a_real_difference_is_found_with_the_right_worst_group() -> None:
    values, labels = _three_groups(3.0)
    report = group_report(values, labels, n_boot=500, n_perm=1000)
    assert report["worst"] == "B" and report["best"] in ("A", "C")
    assert report["kruskal_p"] < 0.01 and report["permutation_p"] < 0.01
    assert report["worst_to_best_ratio"] > 1.8 and report["gap"] == pytest.approx(3.0, abs=0.5)
    b = report["groups"]["B"]
    assert b["ci_low"] < b["mean"] < b["ci_high"] and b["ci_low"] > report["groups"]["A"]["ci_high"]
    flipped = group_report(10.0 - values, labels, n_boot=200, n_perm=200, lower_is_better=False)
    assert flipped["worst"] == "B" and flipped["worst_to_best_ratio"] < 1.0  # the lowest mean is worst


def test_the_permutation_test_allows_for_picking_the_extremes() -> None:
    # eight groups of 6 drawn alike: a two-sample test of the worst against the best group, picked after
    # looking, calls the gap real; the range test over relabellings of all groups does not
    rng = np.random.default_rng(16)
    labels = [f"G{i}" for i in range(8) for _ in range(6)]
    values = rng.normal(3.0, 1.0, 48)
    report = group_report(values, labels, n_boot=200, n_perm=2000, seed=1)
    picked = [values[np.asarray(labels) == report[k]] for k in ("worst", "best")]
    assert ttest_ind(*picked).pvalue < 0.01
    assert report["permutation_p"] > 0.05 and report["kruskal_p"] > 0.05


def test_unknown_and_small_groups_are_listed_but_not_compared() -> None:
    values, labels = _three_groups(0.0)
    values = np.concatenate([values, [50.0, 60.0, 70.0], [90.0] * 10, [np.nan]])
    labels = labels + ["D"] * 3 + ["unknown"] * 10 + ["A"]
    report = group_report(values, labels, n_boot=200, n_perm=200)
    assert list(report["groups"]) == ["A", "B", "C", "D", "unknown"]  # unknown last
    assert report["groups"]["A"]["n"] == 30  # the NaN value is left out
    assert report["n"] == 103
    assert not report["groups"]["D"]["compared"] and not report["groups"]["unknown"]["compared"]
    assert report["groups"]["D"]["mean"] == pytest.approx(60.0)
    assert report["worst"] in ("A", "B", "C") and report["worst_to_best_ratio"] < 1.15

    single = group_report(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 9.0]), ["A"] * 5 + ["B"])
    assert single["worst"] is None and np.isnan(single["permutation_p"]) and np.isnan(single["kruskal_p"])
    assert np.isnan(single["groups"]["B"]["ci_low"])  # one subject has no interval


def test_same_seed_same_report_and_json_ready() -> None:
    values, labels = _three_groups(1.0)
    a = group_report(values, labels, seed=7, n_boot=300, n_perm=300)
    assert a == group_report(values, labels, seed=7, n_boot=300, n_perm=300)
    other = group_report(values, labels, seed=8, n_boot=300, n_perm=300)
    assert other["groups"]["A"]["ci_low"] != a["groups"]["A"]["ci_low"]
    assert json.loads(json.dumps(a)) == a


def test_all_equal_values_give_no_evidence() -> None:
    report = group_report(np.full(20, 2.0), ["A"] * 10 + ["B"] * 10, n_boot=100, n_perm=100)
    assert report["kruskal_p"] == 1.0 and report["permutation_p"] == 1.0 and report["worst_to_best_ratio"] == 1.0


def test_bias_table_covers_every_metric_and_grouping() -> None:
    rng = np.random.default_rng(5)
    subjects = [Subject(f"S{i}", "FM"[i % 2], 20.0 + i, 20.0 + i % 15, "ABC"[i % 3]) for i in range(30)]
    subjects.append(Subject("X", None, None, None, None))
    per_subject = {"mae_mm": rng.normal(3.0, 0.5, 31), "within_2_5mm": rng.uniform(0.3, 0.7, 31)}
    table = bias_table(per_subject, subjects, n_boot=100, n_perm=100)
    assert set(table) == set(per_subject) and all(set(t) == set(GROUPINGS) for t in table.values())
    assert table["mae_mm"]["sex"]["lower_is_better"] and not table["within_2_5mm"]["sex"]["lower_is_better"]
    assert table["mae_mm"]["sex"]["groups"]["unknown"]["n"] == 1
    json.dumps(table)
    with pytest.raises(ValueError, match="has 3 values for 31 subjects"):
        bias_table({"mae_mm": np.ones(3)}, subjects)
