"""Core metrics between predicted and true face depth maps, per subject over a mask, vectorised over a batch.

Every function takes `pred`, `truth` (N, H, W) or (H, W) in mm and a `mask` (N, H, W) or (H, W), bool or
uint8; a single image is promoted to a batch of one and a 2-D mask applies to every subject. Each returns
one value per subject, shape (N,). Pixels outside the mask may hold anything (0, NaN); inside it every value
must be finite and no subject's mask may be empty, so a broken prediction fails loudly rather than scoring.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

DEPTH_DATA_RANGE_MM = 200.0
"""Declared value range of a face depth map (mm) for PSNR and SSIM.

Canonical face depth spans about -55 to +120 mm over the whole visible face (the cheeks' sides behind the
porion plane to the nose tip; about 45 to 120 mm inside the facial region), so 200 mm covers any face with
margin. PSNR and SSIM depend on the range; inferring it per image would make numbers drift with each
prediction, so every model is scored against this one fixed, declared value.
"""

WITHIN_THRESHOLDS_MM = {"within_2_5mm": 2.5, "within_5mm": 5.0}
"""Absolute-error thresholds (mm) whose share of mask pixels `depth_errors` reports."""

SSIM_K1, SSIM_K2 = 0.01, 0.03


def _as_batch(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float64 (N, H, W) pred and truth, 0 outside the mask, and the bool (N, H, W) mask, checked and promoted."""
    pred, truth, mask = np.asarray(pred), np.asarray(truth), np.asarray(mask)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape")
    if pred.ndim not in (2, 3) or mask.ndim not in (2, 3):
        raise ValueError(f"expected (N, H, W) or (H, W) arrays, got pred {pred.shape} and mask {mask.shape}")
    pred = pred[None] if pred.ndim == 2 else pred
    truth = truth[None] if truth.ndim == 2 else truth
    mask = mask[None] if mask.ndim == 2 else mask
    if mask.shape[1:] != pred.shape[1:] or mask.shape[0] not in (1, pred.shape[0]):
        raise ValueError(f"mask {mask.shape} does not fit images {pred.shape}")
    mask = np.broadcast_to(mask.astype(bool), pred.shape)
    pred, truth = pred.astype(np.float64), truth.astype(np.float64)
    counts = mask.sum(axis=(1, 2))
    if np.any(counts == 0):
        raise ValueError(f"empty mask for subject {int(np.flatnonzero(counts == 0)[0])}")
    for name, values in (("pred", pred), ("truth", truth)):
        bad = (~np.isfinite(values) & mask).any(axis=(1, 2))
        if bad.any():
            raise ValueError(f"non-finite {name} inside the mask for subject {int(np.flatnonzero(bad)[0])}")
    return np.where(mask, pred, 0.0), np.where(mask, truth, 0.0), mask


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) mean of (N, H, W) values over each subject's mask; outside values are ignored, even NaN."""
    return np.where(mask, values, 0.0).sum(axis=(1, 2)) / mask.sum(axis=(1, 2))


def depth_errors(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per-subject depth errors (mm) over the mask: MAE, RMSE, signed mean, within-threshold shares, 95th pct.

    `signed_mm` is the mean of pred - truth: positive means the prediction lies in front of the truth, i.e.
    the predicted soft tissue is too thick. `within_*` are the shares (0..1) of mask pixels with |error| at
    or below the threshold; `p95_mm` is the 95th percentile (linear interpolation) of |error|.
    """
    pred, truth, mask = _as_batch(pred, truth, mask)
    error = np.where(mask, pred - truth, np.nan)
    absolute = np.abs(error)
    out = {
        "mae_mm": _masked_mean(absolute, mask),
        "rmse_mm": np.sqrt(_masked_mean(error**2, mask)),
        "signed_mm": _masked_mean(error, mask),
    }
    for name, threshold in WITHIN_THRESHOLDS_MM.items():
        out[name] = _masked_mean((absolute <= threshold).astype(np.float64), mask)
    out["p95_mm"] = np.nanpercentile(absolute.reshape(len(absolute), -1), 95.0, axis=1)
    return out


def _check_range(data_range: float) -> float:
    """The declared data range as a float, refused unless positive and finite."""
    if not (np.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive finite number, got {data_range}")
    return float(data_range)


def psnr(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, *, data_range: float) -> np.ndarray:
    """(N,) PSNR in dB over the mask, 10 log10(data_range^2 / MSE); inf for a perfect prediction.

    The range is always given (see DEPTH_DATA_RANGE_MM), never inferred from the images."""
    data_range = _check_range(data_range)
    pred, truth, mask = _as_batch(pred, truth, mask)
    mse = _masked_mean((pred - truth) ** 2, mask)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)


def _ssim_map(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, data_range: float, win_size: int) -> np.ndarray:
    """(N, H, W) SSIM map of checked batches (see `ssim_map`)."""
    data_range = _check_range(data_range)
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size}")
    if min(pred.shape[1:]) < win_size:
        raise ValueError(f"win_size {win_size} exceeds the image extent {pred.shape[1:]}")
    fill = _masked_mean(truth, mask)[:, None, None]
    x, y = np.where(mask, pred, fill), np.where(mask, truth, fill)

    def local_mean(a: np.ndarray) -> np.ndarray:
        return uniform_filter(a, size=(1, win_size, win_size))

    n_window = win_size**2
    cov_norm = n_window / (n_window - 1)
    ux, uy = local_mean(x), local_mean(y)
    uxx, uyy, uxy = local_mean(x * x), local_mean(y * y), local_mean(x * y)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    a1, a2 = 2 * ux * uy + c1, 2 * vxy + c2
    b1, b2 = ux**2 + uy**2 + c1, vx + vy + c2
    return (a1 * a2) / (b1 * b2)


def ssim_map(
    pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, *, data_range: float, win_size: int = 7
) -> np.ndarray:
    """(N, H, W) SSIM map as scikit-image's `structural_similarity(..., full=True)` computes it, after a fill.

    Uniform win_size x win_size window (reflecting at the image border), K1 = 0.01, K2 = 0.03 and sample
    covariance (skimage's default use_sample_covariance=True). Outside the mask both images are first set to
    the truth's masked mean: the background (0, NaN or whatever a model writes there) would otherwise form a
    steep edge at the face outline and add structure that has nothing to do with the face. Average the map
    over any sub-mask (a region) to score that region.
    """
    pred, truth, mask = _as_batch(pred, truth, mask)
    return _ssim_map(pred, truth, mask, data_range, win_size)


def ssim(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, *, data_range: float, win_size: int = 7) -> np.ndarray:
    """(N,) mean SSIM over the mask: the full SSIM map (see `ssim_map`) averaged over every mask pixel.

    Unlike skimage's scalar, which drops a (win_size - 1) // 2 strip at the image border, no mask pixel is
    dropped: windows at the face outline see the filled background, which adds no variance, so the metric is
    defined right up to the edge of the area being scored."""
    pred, truth, mask = _as_batch(pred, truth, mask)
    return _masked_mean(_ssim_map(pred, truth, mask, data_range, win_size), mask)


def summarise(values: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean, sample SD (ddof 1; NaN for one subject), median and n of each metric's per-subject values, for tables."""
    out: dict[str, dict[str, float]] = {}
    for name, per_subject in values.items():
        v = np.asarray(per_subject, dtype=np.float64).ravel()
        if v.size == 0:
            raise ValueError(f"no values for metric {name!r}")
        out[name] = {
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
            "median": float(np.median(v)),
            "n": v.size,
        }
    return out
