"""Core metrics: hand-computed depth errors, the sign convention, and PSNR / SSIM matching scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from facegen.evaluation.metrics import DEPTH_DATA_RANGE_MM, depth_errors, psnr, ssim, ssim_map, summarise

WIN = 7


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, scale: float) -> np.ndarray:
    """A smooth random float64 image (or batch, smoothed within each image), about `scale` mm in amplitude."""
    sigmas = (0.0,) * (len(shape) - 2) + (sigma, sigma)
    field = gaussian_filter(rng.standard_normal(shape), sigmas)
    return scale * field / field.std()


@pytest.fixture
def face_pair() -> tuple[np.ndarray, np.ndarray]:
    """A smooth 'truth' face-like map (40 x 48, mm) and a prediction off it by smooth noise."""
    rng = np.random.default_rng(7)
    truth = 80.0 + smooth_field(rng, (40, 48), 3.0, 15.0)
    pred = truth + smooth_field(rng, (40, 48), 2.0, 3.0)
    return pred, truth


def test_depth_errors_hand_computed_ignores_outside_mask() -> None:
    truth = np.zeros((3, 3))
    pred = np.full((3, 3), np.nan)
    pred[:2, :2] = [[1.0, -2.0], [3.0, 6.0]]
    mask = np.zeros((3, 3), np.uint8)
    mask[:2, :2] = 1
    e = depth_errors(pred, truth, mask)
    assert e["mae_mm"] == pytest.approx([3.0])
    assert e["rmse_mm"] == pytest.approx([np.sqrt(12.5)])
    assert e["signed_mm"] == pytest.approx([2.0])
    assert e["within_2_5mm"] == pytest.approx([0.5])
    assert e["within_5mm"] == pytest.approx([0.75])
    assert e["p95_mm"] == pytest.approx([5.55])  # linear interpolation between 3 and 6 at 0.85
    assert {k: v.shape for k, v in e.items()} == {k: (1,) for k in e}


def test_signed_error_is_positive_when_prediction_is_in_front() -> None:
    truth = np.full((4, 4), 90.0)
    mask = np.ones((4, 4), bool)
    thick = depth_errors(truth + 3.0, truth, mask)
    thin = depth_errors(truth - 3.0, truth, mask)
    assert thick["signed_mm"] == pytest.approx([3.0])
    assert thin["signed_mm"] == pytest.approx([-3.0])
    assert thick["mae_mm"] == pytest.approx([3.0])
    assert thin["mae_mm"] == pytest.approx([3.0])


def test_within_thresholds_include_the_threshold_itself() -> None:
    truth = np.full((2, 2), 10.0)
    pred = truth + np.array([[2.5, -2.5], [5.0, 5.5]])
    e = depth_errors(pred, truth, np.ones((2, 2), bool))
    assert e["within_2_5mm"] == pytest.approx([0.5])
    assert e["within_5mm"] == pytest.approx([0.75])


def test_empty_mask_names_the_subject() -> None:
    mask = np.ones((3, 4, 4), bool)
    mask[2] = False
    with pytest.raises(ValueError, match="subject 2"):
        depth_errors(np.zeros((3, 4, 4)), np.zeros((3, 4, 4)), mask)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inside_mask_is_refused(bad: float) -> None:
    pred = np.zeros((2, 4, 4))
    pred[1, 2, 2] = bad
    with pytest.raises(ValueError, match="non-finite pred inside the mask for subject 1"):
        depth_errors(pred, np.zeros((2, 4, 4)), np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="non-finite truth"):
        psnr(np.zeros((2, 4, 4)), pred, np.ones((4, 4), bool), data_range=DEPTH_DATA_RANGE_MM)


def test_psnr_hand_computed_with_declared_range() -> None:
    truth = np.full((5, 5), 70.0)
    # 2 mm everywhere in the mask: 20 log10(200 / 2) = 40 dB; the 50 mm error outside is not seen
    pred = truth + 2.0
    pred[0, 0] += 50.0
    mask = np.ones((5, 5), bool)
    mask[0, 0] = False
    assert psnr(pred, truth, mask, data_range=DEPTH_DATA_RANGE_MM) == pytest.approx([40.0])
    assert psnr(truth, truth, mask, data_range=DEPTH_DATA_RANGE_MM)[0] == np.inf


def test_psnr_matches_skimage(face_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = face_pair
    expected = peak_signal_noise_ratio(truth, pred, data_range=DEPTH_DATA_RANGE_MM)
    got = psnr(pred, truth, np.ones(truth.shape, bool), data_range=DEPTH_DATA_RANGE_MM)
    assert got == pytest.approx([expected], rel=1e-12)
    mask = np.zeros(truth.shape, bool)
    mask[5:30, 10:40] = True
    masked = peak_signal_noise_ratio(truth[mask], pred[mask], data_range=DEPTH_DATA_RANGE_MM)
    assert psnr(pred, truth, mask, data_range=DEPTH_DATA_RANGE_MM) == pytest.approx([masked], rel=1e-12)


def test_ssim_map_and_mean_match_skimage_full_map(face_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = face_pair
    everywhere = np.ones(truth.shape, bool)
    _, full = structural_similarity(truth, pred, data_range=DEPTH_DATA_RANGE_MM, win_size=WIN, full=True)
    ours = ssim_map(pred, truth, everywhere, data_range=DEPTH_DATA_RANGE_MM, win_size=WIN)
    np.testing.assert_allclose(ours[0], full, rtol=0, atol=1e-6)
    # our scalar averages the whole map over the mask (here every pixel)
    got = ssim(pred, truth, everywhere, data_range=DEPTH_DATA_RANGE_MM, win_size=WIN)
    assert got == pytest.approx([full.mean()], abs=1e-6)
    assert full.min() < 0.95  # the comparison is not between two maps of ones


def test_ssim_cropped_like_skimage_matches_its_scalar(face_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = face_pair
    expected = structural_similarity(truth, pred, data_range=DEPTH_DATA_RANGE_MM, win_size=WIN)
    ours = ssim_map(pred, truth, np.ones(truth.shape, bool), data_range=DEPTH_DATA_RANGE_MM, win_size=WIN)[0]
    pad = (WIN - 1) // 2
    assert ours[pad:-pad, pad:-pad].mean() == pytest.approx(expected, abs=1e-6)
    # skimage's scalar drops the border strip, ours keeps it: the two differ on the same map
    assert ours.mean() != pytest.approx(expected, abs=1e-6)


def test_ssim_of_identical_images_is_one_whatever_the_background() -> None:
    rng = np.random.default_rng(1)
    truth = 80.0 + smooth_field(rng, (32, 32), 3.0, 15.0)
    mask = np.zeros(truth.shape, bool)
    mask[4:28, 6:26] = True
    pred = np.where(mask, truth, np.nan)
    assert ssim(pred, truth, mask, data_range=DEPTH_DATA_RANGE_MM) == pytest.approx([1.0], abs=1e-12)


def test_ssim_ignores_background_values(face_pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, truth = face_pair
    mask = np.zeros(truth.shape, bool)
    mask[6:34, 8:40] = True
    zeros = ssim(np.where(mask, pred, 0.0), truth, mask, data_range=DEPTH_DATA_RANGE_MM)
    junk = ssim(np.where(mask, pred, 1e6), np.where(mask, truth, np.nan), mask, data_range=DEPTH_DATA_RANGE_MM)
    assert zeros == pytest.approx(junk, abs=1e-12)
    assert 0.0 < zeros[0] < 1.0


def test_ssim_decreases_as_noise_grows() -> None:
    rng = np.random.default_rng(3)
    truth = 80.0 + smooth_field(rng, (40, 40), 3.0, 15.0)
    noise = rng.standard_normal(truth.shape)
    mask = np.ones(truth.shape, bool)
    scores = [ssim(truth + s * noise, truth, mask, data_range=DEPTH_DATA_RANGE_MM)[0] for s in (0.5, 2.0, 8.0, 32.0)]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    assert scores[-1] < 0.5


def test_batch_equals_single_images() -> None:
    rng = np.random.default_rng(5)
    truth = 80.0 + smooth_field(rng, (3, 24, 28), 2.5, 12.0)
    pred = truth + smooth_field(rng, (3, 24, 28), 1.5, 2.0 + rng.uniform(0, 3))
    mask = np.zeros(truth.shape, bool)
    mask[0, 2:20, 3:25] = True
    mask[1, 5:22, 1:27] = True
    mask[2, :, 10:] = True
    batch = {
        **depth_errors(pred, truth, mask),
        "psnr": psnr(pred, truth, mask, data_range=DEPTH_DATA_RANGE_MM),
        "ssim": ssim(pred, truth, mask, data_range=DEPTH_DATA_RANGE_MM),
    }
    for i in range(3):
        single = {
            **depth_errors(pred[i], truth[i], mask[i]),
            "psnr": psnr(pred[i], truth[i], mask[i], data_range=DEPTH_DATA_RANGE_MM),
            "ssim": ssim(pred[i], truth[i], mask[i], data_range=DEPTH_DATA_RANGE_MM),
        }
        for name, values in single.items():
            assert values.shape == (1,)
            assert batch[name][i] == pytest.approx(values[0], rel=1e-12, abs=1e-12), name
    assert len(set(np.round(batch["ssim"], 9))) == 3  # the subjects really differ


def test_two_dimensional_mask_applies_to_every_subject() -> None:
    truth = np.zeros((2, 3, 3))
    pred = np.stack([np.full((3, 3), 1.0), np.full((3, 3), -4.0)])
    pred[:, 0, 0] = 100.0
    mask = np.ones((3, 3), bool)
    mask[0, 0] = False
    assert depth_errors(pred, truth, mask)["signed_mm"] == pytest.approx([1.0, -4.0])


def test_bad_arguments_are_refused() -> None:
    a = np.zeros((16, 16))
    mask = np.ones((16, 16), bool)
    with pytest.raises(ValueError, match="differ in shape"):
        depth_errors(a, np.zeros((16, 15)), mask)
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, a, mask, data_range=0.0)
    with pytest.raises(ValueError, match="win_size"):
        ssim(a, a, mask, data_range=DEPTH_DATA_RANGE_MM, win_size=6)
    with pytest.raises(ValueError, match="exceeds"):
        ssim(a, a, mask, data_range=DEPTH_DATA_RANGE_MM, win_size=17)


def test_summarise_gives_table_statistics() -> None:
    table = summarise({"mae_mm": np.array([1.0, 2.0, 3.0, 6.0]), "psnr": np.array([40.0])})
    assert table["mae_mm"] == pytest.approx({"mean": 3.0, "sd": np.sqrt(14.0 / 3.0), "median": 2.5, "n": 4})
    assert table["psnr"]["mean"] == 40.0 and table["psnr"]["n"] == 1
    assert np.isnan(table["psnr"]["sd"])
    with pytest.raises(ValueError, match="no values"):
        summarise({"ssim": np.array([])})
