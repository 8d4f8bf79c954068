"""Is a model's uncertainty honest? Its per-pixel spread over K samples checked against the real error.

Two questions, the ones a forensic expert asks of an uncertainty map: does a larger predicted SD mean a
larger error (Spearman rank correlation over all face pixels), and does the stated 95% band hold the true
depth 95% of the time (coverage). The band is the prediction interval of a new draw from K samples,
mean +- t(K-1, 0.975) * s * sqrt(1 + 1/K) with s the sample SD (ddof 1): with 8 samples, a plain
+-1.96 SD band would be too narrow by a quarter. A model that states its predictive SD in closed form (one
answer and its SD per pixel) is checked the same way with the normal band, mean +- 1.96 SD.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

LEVEL = 0.95
SD_BINS = 5
"""Reliability: pixels split into quintiles of predicted SD, each with its observed error."""
MAX_PIXELS = 2_000_000
"""Spearman over at most this many pixels (an evenly spaced subset; the statistic is stable long before)."""


def band_factor(n_samples: int, level: float = LEVEL) -> float:
    """Half-width of the prediction band in sample SDs (ddof 1) for K samples."""
    if n_samples < 2:
        raise ValueError("calibration needs at least 2 samples per face")
    return float(stats.t.ppf(0.5 + level / 2, n_samples - 1) * np.sqrt(1 + 1 / n_samples))


def calibration(samples: np.ndarray, truth: np.ndarray, mask: np.ndarray, level: float = LEVEL) -> dict[str, object]:
    """Calibration figures of K face samples (N, K, H, W) against true depths (N, H, W) over mask (N, H, W)."""
    if samples.ndim != 4 or samples.shape[0] != truth.shape[0] or samples.shape[2:] != truth.shape[1:]:
        raise ValueError(f"samples {samples.shape} must be (N, K, H, W) for truth {truth.shape}")
    n_samples = samples.shape[1]
    factor = band_factor(n_samples, level)
    figures = _figures(samples.mean(axis=1), samples.std(axis=1, ddof=1), truth, mask, factor, level)
    return {"samples": int(n_samples), **figures,
            "expected_mae_mm": float(figures["mean_sd_mm"] * np.sqrt(2 / np.pi * (1 + 1 / n_samples)))}  # fmt: skip


def calibration_of_spread(
    mean: np.ndarray, sd: np.ndarray, truth: np.ndarray, mask: np.ndarray, level: float = LEVEL
) -> dict[str, object]:
    """Calibration figures of faces (N, H, W) with a stated predictive SD (N, H, W) against true depths."""
    if mean.shape != truth.shape or sd.shape != truth.shape:
        raise ValueError(f"faces {mean.shape} and SDs {sd.shape} must match the truth {truth.shape}")
    figures = _figures(mean, sd, truth, mask, float(stats.norm.ppf(0.5 + level / 2)), level)
    return {"samples": None, "spread": "predictive SD stated by the model", **figures,
            "expected_mae_mm": float(figures["mean_sd_mm"] * np.sqrt(2 / np.pi))}  # fmt: skip


def _figures(
    mean: np.ndarray, sd: np.ndarray, truth: np.ndarray, mask: np.ndarray, factor: float, level: float
) -> dict[str, object]:
    """Rank correlation of spread and error, coverage of the band mean +- factor * SD, reliability bins."""
    if not mask.any():
        raise ValueError("calibration needs at least one masked pixel")
    error, spread = np.abs(mean - truth)[mask].astype(np.float64), sd[mask].astype(np.float64)
    step = max(1, error.size // MAX_PIXELS)
    rho = stats.spearmanr(spread[::step], error[::step]).statistic
    inside = error <= factor * spread
    edges = np.quantile(spread, np.linspace(0, 1, SD_BINS + 1))
    which = np.clip(np.searchsorted(edges, spread, side="right") - 1, 0, SD_BINS - 1)
    bins = [
        {"sd_mm": float(spread[which == b].mean()), "mae_mm": float(error[which == b].mean()),
         "coverage": float(inside[which == b].mean()), "pixels": int((which == b).sum())}
        for b in range(SD_BINS) if (which == b).any()
    ]  # fmt: skip
    within = np.abs(mean - truth) <= factor * sd
    per_subject = [float(within[i][mask[i]].mean()) for i in range(len(truth)) if mask[i].any()]
    return {
        "level": level,
        "spearman_sd_error": float(rho),
        "coverage": float(inside.mean()),
        "coverage_per_subject": {"min": float(np.min(per_subject)), "median": float(np.median(per_subject))},
        "mean_sd_mm": float(spread.mean()),
        "mae_mm": float(error.mean()),
        "reliability": bins,
    }

