"""Does a model work equally well for every group? Per-group means with bootstrap intervals, and tests.

Subjects are grouped by sex, age band, BMI band or population group; for each per-subject metric a report
gives each group's mean with a percentile-bootstrap 95% interval, the worst-to-best ratio of group means,
and two tests of whether the groups really differ: Kruskal-Wallis across all groups, and a permutation test
of the spread between the best and worst group means that allows for having picked those two after looking.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
from scipy.stats import kruskal

from facegen.data.groups import GROUPINGS, UNKNOWN_GROUP, group_labels
from facegen.data.subject import Subject

MIN_GROUP_N = 5
"""Groups smaller than this are listed with their mean but left out of the ratio and the tests: with a
handful of subjects a group mean is too noisy to call the worst or the best."""
HIGHER_IS_BETTER = frozenset({"within_2_5mm", "within_5mm", "ssim", "psnr_db"})
"""Metrics where a higher value is better (the worst group has the lowest mean); all others: lower is better."""


def bootstrap_interval(
    values: np.ndarray,
    *,
    statistic: Callable[..., np.ndarray] = np.mean,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of a statistic of 1-D values: all resamples drawn at once, seeded.

    `statistic` is called as statistic(resamples, axis=1) on an (n_boot, n) array (np.mean, np.median, ...)."""
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"bootstrap needs at least one value, all finite; got {values.size} values")
    if not 0.0 < level < 1.0 or n_boot < 1:
        raise ValueError(f"level must lie in (0, 1) and n_boot be at least 1, got {level} and {n_boot}")
    rng = np.random.default_rng(seed)
    resamples = values[rng.integers(0, values.size, (n_boot, values.size))]
    stats = np.asarray(statistic(resamples, axis=1), np.float64)
    low, high = np.percentile(stats, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(low), float(high)


def _sort_key(label: str) -> tuple[bool, str]:
    """Groups in label order (bands sort by their lower edge), "unknown" last."""
    return label == UNKNOWN_GROUP, label


def _range_permutation_p(values: np.ndarray, codes: np.ndarray, n_perm: int, seed: int) -> tuple[float, float]:
    """Observed max - min of group means and the permutation p of a spread at least that large (seeded).

    p = (1 + k) / (1 + n_perm) with k the permuted labellings at least as extreme: counting the observed
    labelling keeps p above 0, as an exact permutation p must be."""
    onehot = np.eye(codes.max() + 1)[codes]
    counts = onehot.sum(axis=0)

    def spread(rows: np.ndarray) -> np.ndarray:
        means = rows @ onehot / counts
        return means.max(axis=-1) - means.min(axis=-1)

    observed = float(spread(values[None])[0])
    tolerance = 1e-9 * float(np.abs(values).max())  # a relabelling with the same spread counts despite rounding
    rng = np.random.default_rng((seed, 1))
    chunk = max(1, 2**22 // values.size)
    exceed = 0
    for start in range(0, n_perm, chunk):
        rows = rng.permuted(np.tile(values, (min(chunk, n_perm - start), 1)), axis=1)
        exceed += int(np.count_nonzero(spread(rows) >= observed - tolerance))
    return observed, (1 + exceed) / (1 + n_perm)


def _kruskal(samples: list[np.ndarray]) -> tuple[float, float]:
    """Kruskal-Wallis H and p across samples; (0, 1) when all values tie (no evidence of a difference)."""
    if np.ptp(np.concatenate(samples)) == 0:
        return 0.0, 1.0
    result = kruskal(*samples)
    return float(result.statistic), float(result.pvalue)


def group_report(
    values: np.ndarray,
    labels: Sequence[str],
    *,
    seed: int = 0,
    n_boot: int = 2000,
    n_perm: int = 2000,
    lower_is_better: bool = True,
    min_n: int = MIN_GROUP_N,
) -> dict[str, Any]:
    """Per group n, mean and 95% bootstrap interval; worst and best group, their ratio and the tests (plain values).

    Non-finite values (a subject without pixels in a region) are left out. Groups named "unknown" or with
    fewer than `min_n` subjects are listed (`compared` false) but take no part in worst, best, ratio or tests.
    `worst_to_best_ratio` is worst / best mean (>= 1 when lower is better); it, the gap and the p-values are
    NaN and worst/best None with fewer than two compared groups. Every group's interval uses the same seed,
    so it depends only on that group's values; intervals of single-subject groups are NaN.
    """
    values = np.asarray(values, np.float64).ravel()
    if values.size != len(labels):
        raise ValueError(f"{values.size} values but {len(labels)} labels")
    keep = np.isfinite(values)
    values, labels = values[keep], [label for label, k in zip(labels, keep, strict=True) if k]
    names = sorted(set(labels), key=_sort_key)
    label_arr = np.asarray(labels, dtype=object)
    groups: dict[str, dict[str, Any]] = {}
    for name in names:
        v = values[label_arr == name]
        low, high = bootstrap_interval(v, n_boot=n_boot, seed=seed) if v.size > 1 else (np.nan, np.nan)
        compared = name != UNKNOWN_GROUP and v.size >= min_n
        groups[name] = {"n": int(v.size), "mean": float(v.mean()), "ci_low": low, "ci_high": high, "compared": compared}
    report: dict[str, Any] = {
        "groups": groups, "n": int(values.size), "min_n": int(min_n), "level": 0.95,
        "lower_is_better": bool(lower_is_better), "n_boot": int(n_boot), "n_perm": int(n_perm), "seed": int(seed),
        "worst": None, "best": None, "worst_to_best_ratio": np.nan, "gap": np.nan,
        "kruskal_h": np.nan, "kruskal_p": np.nan, "spread": np.nan, "permutation_p": np.nan,
    }  # fmt: skip
    compared = [name for name in names if groups[name]["compared"]]
    if len(compared) < 2:
        return report
    by_mean = sorted(compared, key=lambda name: groups[name]["mean"], reverse=lower_is_better)
    worst, best = by_mean[0], by_mean[-1]
    w, b = groups[worst]["mean"], groups[best]["mean"]
    in_test = np.isin(label_arr, compared)
    index = {name: i for i, name in enumerate(compared)}
    codes = np.array([index[label] for label in label_arr[in_test]])
    spread, p_perm = _range_permutation_p(values[in_test], codes, n_perm, seed)
    h, p_kw = _kruskal([values[label_arr == name] for name in compared])
    report.update(
        worst=worst, best=best, worst_to_best_ratio=float(w / b) if w * b > 0 else np.nan, gap=float(abs(w - b)),
        kruskal_h=h, kruskal_p=p_kw, spread=spread, permutation_p=float(p_perm),
    )  # fmt: skip
    return report


def bias_table(
    per_subject: dict[str, np.ndarray],
    subjects: Sequence[Subject],
    *,
    by: Sequence[str] = GROUPINGS,
    seed: int = 0,
    n_boot: int = 2000,
    n_perm: int = 2000,
    min_n: int = MIN_GROUP_N,
    higher_is_better: Collection[str] = HIGHER_IS_BETTER,
) -> dict[str, dict[str, dict[str, Any]]]:
    """`group_report` of every metric (N,) under every grouping: table[metric][grouping].

    A metric named in `higher_is_better` has its worst group at the lowest mean, any other at the highest."""
    labels = {grouping: group_labels(subjects, grouping) for grouping in by}
    options = {"seed": seed, "n_boot": n_boot, "n_perm": n_perm, "min_n": min_n}
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for metric, raw in per_subject.items():
        values = np.asarray(raw, np.float64).ravel()
        if values.size != len(subjects):
            raise ValueError(f"metric {metric!r} has {values.size} values for {len(subjects)} subjects")
        lower = metric not in higher_is_better
        table[metric] = {g: group_report(values, labels[g], lower_is_better=lower, **options) for g in by}
    return table
