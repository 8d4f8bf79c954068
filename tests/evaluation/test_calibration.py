"""Calibration of an uncertainty map: an honest sampler passes, an overconfident or blind one is exposed."""

import numpy as np
import pytest

from facegen.evaluation.calibration import band_factor, calibration, calibration_of_spread


def _faces(rng: np.random.Generator, spread_scale: float = 1.0, shuffle_sd: bool = False, k: int = 8):
    """Truth and K samples drawn around the same per-pixel centres with per-pixel SDs from 0.5 to 6 mm."""
    n, shape = 40, (24, 24)
    centre = rng.normal(0, 20, (n, *shape))
    sd = rng.uniform(0.5, 6.0, (n, *shape))
    truth = centre + rng.normal(0, 1, (n, *shape)) * sd
    model_sd = rng.permutation(sd.ravel()).reshape(sd.shape) if shuffle_sd else sd
    samples = centre[:, None] + rng.normal(0, 1, (n, k, *shape)) * (spread_scale * model_sd)[:, None]
    return samples, truth, np.ones(truth.shape, bool)


def test_an_honest_sampler_holds_95_percent_and_its_sd_tracks_the_error():
    c = calibration(*_faces(np.random.default_rng(0)))
    assert 0.935 <= c["coverage"] <= 0.965
    assert c["spearman_sd_error"] > 0.3
    assert c["expected_mae_mm"] == pytest.approx(c["mae_mm"], rel=0.05)
    sds = [b["sd_mm"] for b in c["reliability"]]
    errors = [b["mae_mm"] for b in c["reliability"]]
    assert sds == sorted(sds) and errors == sorted(errors)


def test_an_overconfident_sampler_misses_the_band():
    c = calibration(*_faces(np.random.default_rng(1), spread_scale=0.3))
    assert c["coverage"] < 0.6
    assert c["mae_mm"] > 2 * c["expected_mae_mm"]


def test_an_sd_unrelated_to_the_error_does_not_correlate():
    c = calibration(*_faces(np.random.default_rng(2), shuffle_sd=True))
    assert abs(c["spearman_sd_error"]) < 0.1


def test_a_stated_sd_is_checked_with_the_normal_band():
    rng = np.random.default_rng(4)
    centre, sd = rng.normal(0, 20, (40, 24, 24)), rng.uniform(0.5, 6.0, (40, 24, 24))
    truth, mask = centre + rng.normal(0, 1, centre.shape) * sd, np.ones(centre.shape, bool)
    honest = calibration_of_spread(centre, sd, truth, mask)
    assert 0.94 <= honest["coverage"] <= 0.96 and honest["samples"] is None
    assert honest["expected_mae_mm"] == pytest.approx(honest["mae_mm"], rel=0.05)
    assert calibration_of_spread(centre, 0.3 * sd, truth, mask)["coverage"] < 0.6
    with pytest.raises(ValueError, match="must match the truth"):
        calibration_of_spread(centre, sd[:, :10], truth, mask)


def test_band_is_the_t_prediction_interval_of_k_samples():
    assert band_factor(8) == pytest.approx(2.3646 * np.sqrt(1 + 1 / 8), rel=1e-4)
    assert band_factor(1000) == pytest.approx(1.96, rel=2e-3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        band_factor(1)


def test_bad_input_is_named():
    samples, truth, mask = _faces(np.random.default_rng(3), k=1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        calibration(samples, truth, mask)
    with pytest.raises(ValueError, match=r"\(N, K, H, W\)"):
        calibration(samples[:, 0], truth, mask)
    with pytest.raises(ValueError, match="masked pixel"):
        calibration(np.repeat(samples, 2, axis=1), truth, np.zeros_like(mask))
