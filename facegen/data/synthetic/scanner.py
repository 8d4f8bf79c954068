"""A skull as a CT scanner and a bone threshold leave it: resampled at a scan's voxel size, blurred, noisy.

The skull mesh is turned into the share of each voxel inside bone (exact along the slice axis, superior-
inferior as in an axial head CT; averaged over rays about 1 mm apart in-plane), blurred by the scanner's point
spread, given correlated image noise, thresholded where a bone threshold of 300 HU (`IngestOptions`' default)
falls between soft tissue and bone, and meshed again by marching cubes. Thin bone (orbit walls) and the gaps
between teeth come and go with the voxel size, edges move by up to a voxel, and noise adds holes and specks, as
in a real scan's bone surface. Bone the head has not (the space beside the dental arches) is cleared first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import fast_simplification
import numpy as np
import trimesh
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure

from facegen.data.raycast import inside_intervals, interval_coverage

IN_PLANE_MM = (1.0, 3.5)
SLICE_MM = (1.0, 5.0)
"""Voxel sizes are drawn log-uniformly in these ranges: 1 mm to thick-slice clinical head CT
reconstructions (the shared real CT has 3.2 mm pixels and 1.5 mm slices)."""
NOISE_SD = (0.0, 0.03)
"""Image noise SD as a share of the bone-to-soft-tissue contrast, drawn uniformly: up to ~50 HU."""
THRESHOLD_SHARE = ((300.0 - 40.0) / (1600.0 - 40.0), (300.0 - 40.0) / (800.0 - 40.0))
"""Where 300 HU lies between soft tissue (40 HU) and bone, as a share of the contrast: for cortical (1600 HU) to
cancellous (800 HU) bone (the values of `facegen.data.synthetic.ct`); drawn uniformly."""
PSF_SIGMA_VOXELS = 0.5
RAY_SPACING_MM = 1.0
"""In-plane partial volume: each voxel's share is averaged over rays about this far apart."""
MAX_FACES = 120_000
MIN_PIECE_VOXELS = 8
"""Specks of bone smaller than this (noise above the threshold) are dropped, as a segmentation's cleanup does.
Marching cubes gives closed surfaces wound toward the bone: their faces are flipped to face out of it."""


@dataclass(frozen=True)
class ScanDraw:
    """Voxel size (x, y = slice axis, z; mm), noise SD and bone threshold (shares of the contrast), noise seed."""

    voxel_mm: np.ndarray
    noise_sd: float
    threshold: float
    seed: int

    @staticmethod
    def draw(rng: np.random.Generator) -> ScanDraw:
        """A scan drawn from the ranges above."""
        in_plane = float(np.exp(rng.uniform(*np.log(IN_PLANE_MM))))
        slice_mm = float(np.exp(rng.uniform(*np.log(SLICE_MM))))
        voxel = np.array([in_plane, slice_mm, in_plane])
        noise, threshold = float(rng.uniform(*NOISE_SD)), float(rng.uniform(*THRESHOLD_SHARE))
        return ScanDraw(voxel, noise, threshold, int(rng.integers(2**31)))


def _bone_share(skull: trimesh.Trimesh, voxel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of each voxel inside the skull on a grid around it (x, y, z order) and the first voxel's centre:
    exact along the slice axis, averaged over rays about `RAY_SPACING_MM` apart in-plane."""
    sub = np.maximum(1, np.round(voxel[[0, 2]] / RAY_SPACING_MM)).astype(int)
    lo = skull.bounds[0] - 2 * voxel
    n = np.ceil((skull.bounds[1] + 2 * voxel - lo) / voxel).astype(int)
    xs = lo[0] + (np.arange(n[0] * sub[0]) + 0.5) * voxel[0] / sub[0] - voxel[0] / 2
    zs = lo[2] + (np.arange(n[2] * sub[1]) + 0.5) * voxel[2] / sub[1] - voxel[2] / 2
    x, z = np.meshgrid(xs, zs, indexing="ij")
    start = lo[1] - voxel[1]
    origins = np.column_stack([x.ravel(), np.full(x.size, start), z.ravel()])
    intervals = inside_intervals(skull, origins, np.array([0.0, 1.0, 0.0]))
    share = interval_coverage(intervals, first_mm=voxel[1] / 2, step_mm=float(voxel[1]), cells=int(n[1]))
    share = share.reshape(n[0], sub[0], n[2], sub[1], n[1]).mean(axis=(1, 3)).transpose(0, 2, 1)
    return share, lo


def rescan_skull(
    skull: trimesh.Trimesh,
    is_teeth: np.ndarray,
    scan: ScanDraw,
    *,
    empty: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[trimesh.Trimesh, np.ndarray]:
    """The skull's bone surface as this scan shows it, and which of its vertices are teeth (nearest old vertex).
    `empty`: where (points (N, 3) -> bool) the skull mesh has bone that the head has not; cleared before the scan."""
    share, first = _bone_share(skull, scan.voxel_mm)
    if empty is not None:
        axes = [first[a] + np.arange(share.shape[a]) * scan.voxel_mm[a] for a in range(3)]
        centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        share[empty(centres).reshape(share.shape)] = 0.0
    sigma = (PSF_SIGMA_VOXELS, 0.0, PSF_SIGMA_VOXELS)  # in-plane point spread; the slice axis is exact
    image = ndimage.gaussian_filter(share.astype(np.float32), sigma)
    if scan.noise_sd > 0:
        noise = np.random.default_rng(scan.seed).standard_normal(image.shape).astype(np.float32)
        noise = ndimage.gaussian_filter(noise, sigma)
        image += scan.noise_sd * noise / max(float(noise.std()), 1e-6)
    labels, count = ndimage.label(image > scan.threshold)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    image[(sizes < MIN_PIECE_VOXELS)[labels] & (labels > 0)] = 0.0
    vertices, faces, _, _ = measure.marching_cubes(np.pad(image, 1), scan.threshold, spacing=tuple(scan.voxel_mm))
    vertices = vertices + first - scan.voxel_mm
    if len(faces) > MAX_FACES:
        vertices, faces = fast_simplification.simplify(
            vertices.astype(np.float32), faces.astype(np.int32), 1.0 - MAX_FACES / len(faces)
        )
    mesh = trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, np.int64)[:, ::-1], process=False)
    used = np.unique(skull.faces)  # a lost tooth's vertices stay in the array, unused
    _, nearest = cKDTree(skull.vertices[used]).query(mesh.vertices, workers=-1)
    return mesh, np.asarray(is_teeth)[used][nearest]
