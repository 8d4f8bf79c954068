"""The skulls a model was trained on, summarised so that a case can say how far its skull lies from them.

In the model's frontal view each training skull is a depth map. A PCA of those maps (probabilistic PCA: the
kept modes plus an isotropic rest) gives every skull a distance. The training skulls' own distances are
measured by K-fold (each skull while the space is fitted without it), so a new skull's percentile among them
is honest, and distances are stated in units of their median: 1 is a typical training skull seen anew. Per
pixel, the share of training skulls with bone there and their depth SD tell where a case's skull lacks bone
that the training skulls have (a lost mandible, teeth).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegen.io.atomic import write_bytes_atomic

SKULL_SPACE_FILE = "skull_space.npz"
"""Written beside the model's weights, so that the weights hash covers it."""
COMPONENTS = 20
"""Kept modes of the skull depth maps (the rest is one isotropic variance)."""
FOLDS = 5
"""Folds of the honest reference distances."""
MIN_SKULLS = 2 * FOLDS
"""Fewer training skulls than this give no skull space (a toy run): a case then says the distance is unknown."""
BONE_EXPECTED_SHARE = 0.9
"""A pixel where at least this share of training skulls have bone is one where a skull should have bone."""
RECESSED_SD = 4.0
"""Bone this many training SDs behind the training skulls' mean depth counts as missing (bone seen behind a gap)."""
MIN_RECESS_MM = 8.0
"""...and at least this far behind, so that a pixel with little spread in training is not flagged by a mm."""


@dataclass(frozen=True)
class SkullSpace:
    """PCA of training skull depth maps, their per-pixel bone share and depth spread, and reference distances."""

    fill: np.ndarray
    mean: np.ndarray
    modes: np.ndarray
    variances: np.ndarray
    rest_variance: float
    bone_share: np.ndarray
    depth_mean: np.ndarray
    depth_sd: np.ndarray
    reference: np.ndarray
    """Sorted distances of the training skulls, each measured with the space fitted without it (median 1)."""
    unit: float = 1.0
    """The median raw distance of the training skulls: distances are stated in this unit."""

    def distance(self, skull_depth: np.ndarray, skull_mask: np.ndarray) -> float:
        """Distance of one skull depth map (H, W) from the training skulls (1: as typical as a training skull),
        over the pixels it can be read at: bone it lacks where training skulls have it (a field-of-view cut, a lost
        mandible) is left out, not read as the training mean."""
        x = self._vectors(skull_depth[None], skull_mask[None])
        read = ~self.missing_bone(skull_depth, skull_mask).reshape(1, -1)
        return float(_distances(x, self, read)[0] / self.unit)

    def _vectors(self, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
        n = len(depth)
        if depth.shape[1:] != self.bone_share.shape:
            raise ValueError(f"skull depth map {depth.shape[1:]} does not match the skull space "
                             f"{self.bone_share.shape}")  # fmt: skip
        return np.where(mask.reshape(n, -1), depth.reshape(n, -1), self.fill)

    def percentile(self, distance: float) -> float:
        """Share of the training skulls (in %) that lie nearer than `distance`."""
        return float(100.0 * np.searchsorted(self.reference, distance, side="left") / len(self.reference))

    def missing_bone(self, skull_depth: np.ndarray, skull_mask: np.ndarray) -> np.ndarray:
        """(..., H, W) pixels where training skulls have bone and this one has none, or has it far behind theirs."""
        image = skull_mask.shape[-2:]
        expected = self.bone_share.reshape(image) >= BONE_EXPECTED_SHARE
        mean = self.depth_mean.reshape(image)
        recess = np.maximum(RECESSED_SD * self.depth_sd.reshape(image), MIN_RECESS_MM)
        recessed = skull_mask & (skull_depth < mean - recess)
        return expected & (~skull_mask | recessed)

    def save(self, folder: Path) -> None:
        """Write SKULL_SPACE_FILE into `folder` atomically."""
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: np.asarray(v) for k, v in self.__dict__.items()})
        write_bytes_atomic(Path(folder) / SKULL_SPACE_FILE, buf.getvalue())

    @staticmethod
    def load(folder: Path) -> SkullSpace | None:
        """The skull space saved in a model folder, or None for a model trained before it was written."""
        path = Path(folder) / SKULL_SPACE_FILE
        if not path.exists():
            return None
        with np.load(path) as f:
            values = {k: f[k] for k in f.files}
        values["rest_variance"], values["unit"] = float(values["rest_variance"]), float(values["unit"])
        return SkullSpace(**values)


def _distances(x: np.ndarray, space: SkullSpace, read: np.ndarray) -> np.ndarray:
    """Probabilistic-PCA distance per row, per pixel read: the Mahalanobis distance under the model's covariance
    (the modes' variances along them, the rest's elsewhere) marginalised to the pixels `read` (N, P). With every
    pixel read it is the modes' Mahalanobis plus the rest over its variance; with some left out it is what the same
    model says of the pixels there are (filling them with the training mean instead counts the modes' guess there
    as misfit, and dilutes the per-pixel figure with pixels never seen)."""
    centred = x - space.mean
    sigma2 = space.rest_variance
    signal = np.maximum(space.variances - sigma2, 1e-12)  # covariance = W' diag(signal) W + sigma2 I
    out = np.empty(len(x))
    for i, (row, seen) in enumerate(zip(centred, np.asarray(read, bool), strict=True)):
        a = space.modes[:, seen]  # (k, n_read)
        r = row[seen]
        ar = a @ r  # Woodbury: C^-1 = (I - A' (sigma2 / signal + A A')^-1 A) / sigma2
        inner = np.diag(sigma2 / signal) + a @ a.T
        d2 = (r @ r - ar @ np.linalg.solve(inner, ar)) / sigma2
        out[i] = np.sqrt(max(d2, 0.0) / max(int(seen.sum()), 1))
    return out


def _fit_pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Mean, k modes, their variances and the mean variance of the rest (per pixel) of rows x (N, P)."""
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    variance = s**2 / max(len(x) - 1, 1)
    rest = float(variance[k:].sum() / max(x.shape[1] - k, 1))
    return mean, vt[:k], np.maximum(variance[:k], 1e-9), max(rest, 1e-9)


def fit_skull_space(skull_depth: np.ndarray, skull_mask: np.ndarray, *, seed: int = 0) -> SkullSpace:
    """The skull space of training skulls (N, H, W), with K-fold reference distances (folds drawn from `seed`)."""
    n = len(skull_depth)
    if n < MIN_SKULLS:
        raise ValueError(f"a skull space needs at least {MIN_SKULLS} training skulls, got {n}")
    flat_mask = skull_mask.reshape(n, -1)
    count = flat_mask.sum(axis=0)
    depth = skull_depth.reshape(n, -1).astype(np.float64)
    fill = np.where(count > 0, (depth * flat_mask).sum(axis=0) / np.maximum(count, 1), 0.0)
    x = np.where(flat_mask, depth, fill)
    spread = np.sqrt(((x - fill) ** 2 * flat_mask).sum(axis=0) / np.maximum(count - 1, 1))
    folds = np.random.default_rng(seed).permutation(n) % FOLDS
    k = min(COMPONENTS, max(1, (n - n // FOLDS - 1) // 2))  # half the smallest fold's rank: the rest keeps its say
    reference = np.empty(n)
    for fold in range(FOLDS):
        mean, modes, variances, rest = _fit_pca(x[folds != fold], k)
        held = SkullSpace(fill, mean, modes, variances, rest, (count / n).reshape(skull_mask.shape[1:]),
                          fill, spread, np.zeros(1))  # fmt: skip
        rows = folds == fold
        read = ~held.missing_bone(skull_depth[rows], skull_mask[rows]).reshape(int(rows.sum()), -1)
        reference[rows] = _distances(x[rows], held, read)  # as a case's skull is read
    unit = float(np.median(reference))
    mean, modes, variances, rest = _fit_pca(x, k)
    return SkullSpace(fill, mean, modes, variances, rest, (count / n).reshape(skull_mask.shape[1:]),
                      fill, spread, np.sort(reference / unit), unit)  # fmt: skip
