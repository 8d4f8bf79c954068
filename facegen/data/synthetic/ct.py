"""Synthetic CT of a generated head: Hounsfield units from its face and skull meshes, as a scanner sees them.

Array axes (i, j, k) run toward the subject's left, posterior and superior (DICOM's LPS order with axial
slices stacked upward), so k is the slice axis. Tissues: air outside; inside the face a 2 mm skin layer,
subcutaneous fat whose thickness grows with BMI, then muscle/brain; an airway and nasal cavity filled with
air; bone (cortical near its surface, cancellous deeper) and brighter teeth. Partial volume is exact along
the slice axis (ray/surface crossings per voxel column), and in-plane comes from a Gaussian PSF that also
correlates the Gaussian noise. Layer depths come from distance transforms on a ~2 mm grid with sub-voxel
correction. Same head and seed give the same array.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import trimesh
from scipy import ndimage

from facegen.data.raycast import coverage_along_rays, inside_intervals
from facegen.io.volume import Volume

if TYPE_CHECKING:
    from facegen.data.synthetic.generator import SyntheticHead

AIR_HU = -1000.0
SKIN_HU = 40.0
FAT_HU = -100.0
SOFT_HU = 40.0
"""Muscle, brain and other deep soft tissue."""
CORTICAL_HU = 1600.0
CANCELLOUS_HU = 800.0
TEETH_HU = 2500.0
HU_LIMITS = (-1024.0, 3071.0)
"""The 12-bit range CT scanners store."""
SKIN_MM = 2.0
CORTEX_MM = (1.0, 2.5)
"""Depth in bone where cortical starts blending into cancellous, and where the blend ends."""
LAYER_BLEND_MM = 0.5
AIR_MIN_DEPTH_MM = 3.0
"""Internal air stays this far below the skin, so the face surface stays closed."""
SCAN_DIRECTION = np.column_stack([(1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)])
"""Canonical directions of the array axes: i to the left (+x), j posterior (-z), k superior (+y)."""
_COARSE_MM = 2.0
_PSF_SIGMA_VOXELS = 0.5
_RAY_CHUNK = 8192
_RAY_LEAD_MM = 1.0


def fat_thickness_mm(bmi: float) -> float:
    """Subcutaneous fat layer thickness (mm) for a BMI: 2 mm at BMI 22, 0.25 mm more per unit, 1-10 mm."""
    return float(np.clip(2.0 + 0.25 * (bmi - 22.0), 1.0, 10.0))


@dataclass(frozen=True)
class _Grid:
    """Scanner grid: voxel centres origin + direction @ (spacing * index); `factors` voxels per coarse block."""

    shape: tuple[int, int, int]
    spacing: np.ndarray
    origin: np.ndarray
    direction: np.ndarray
    factors: tuple[int, int, int]

    def box(self, bounds: np.ndarray) -> tuple[slice, slice, slice]:
        """Index box around canonical `bounds` (2, 3), a coarse block of margin, aligned to the blocks."""
        corners = np.array(np.meshgrid(*bounds.T, indexing="ij")).reshape(3, -1).T
        index = (corners - self.origin) @ self.direction / self.spacing
        f = np.asarray(self.factors)
        lo = (np.floor(index.min(axis=0)).astype(int) - f - 1) // f * f
        hi = -((-(np.ceil(index.max(axis=0)).astype(int) + f + 2)) // f) * f
        lo, hi = np.maximum(lo, 0), np.minimum(hi, self.shape)
        return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

    def centres(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """Canonical mm of the voxel centres in `box`, shape box + (3,)."""
        axes = [np.arange(s.start, s.stop) * h for s, h in zip(box, self.spacing, strict=True)]
        return self.origin + sum(
            a.reshape([-1 if d == n else 1 for d in range(3)] + [1]) * self.direction[:, n] for n, a in enumerate(axes)
        )


def _scan_grid(bounds: np.ndarray, spacing: np.ndarray, margin_mm: float) -> _Grid:
    """The grid covering `bounds` plus a margin, its sizes rounded up to whole coarse blocks, centred."""
    factors = np.maximum(1, np.round(_COARSE_MM / spacing)).astype(int)
    extent = np.abs(SCAN_DIRECTION.T) @ (bounds[1] - bounds[0] + 2 * margin_mm)
    shape = -(-(np.ceil(extent / spacing).astype(int) + 1) // factors) * factors
    centre = bounds.mean(axis=0)
    origin = centre - SCAN_DIRECTION @ ((shape - 1) / 2 * spacing)
    return _Grid(tuple(int(n) for n in shape), spacing, origin, SCAN_DIRECTION, tuple(int(f) for f in factors))


def _components(mesh: trimesh.Trimesh, is_teeth: np.ndarray) -> tuple[list[trimesh.Trimesh], list[trimesh.Trimesh]]:
    """Split the skull into its bone and teeth components: each is cast alone, so overlaps cannot cancel."""
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    bone, teeth = [], []
    for label in range(labels.max() + 1):
        faces = np.flatnonzero(labels == label)
        part = mesh.submesh([faces], append=True)
        (teeth if is_teeth[mesh.faces[faces]].mean() > 0.5 else bone).append(part)
    return bone, teeth


def _bounds(meshes: list[trimesh.Trimesh]) -> np.ndarray:
    """Joint bounding box (2, 3) of meshes."""
    return np.array([np.min([m.bounds[0] for m in meshes], axis=0), np.max([m.bounds[1] for m in meshes], axis=0)])


def _mesh_coverage(mesh: trimesh.Trimesh, grid: _Grid, box: tuple[slice, slice, slice]) -> np.ndarray:
    """Share of each voxel of `box` inside `mesh`: exact along k (slice axis), at voxel centres in-plane."""
    (i, j, k), h = box, grid.spacing
    ii, jj = np.meshgrid(np.arange(i.start, i.stop) * h[0], np.arange(j.start, j.stop) * h[1], indexing="ij")
    start = (k.start - 0.5) * h[2] - _RAY_LEAD_MM
    origins = grid.origin + np.outer(ii.ravel(), grid.direction[:, 0]) + np.outer(jj.ravel(), grid.direction[:, 1])
    origins += start * grid.direction[:, 2]
    intervals = inside_intervals(mesh, origins, grid.direction[:, 2])
    boundaries = (np.arange(k.start, k.stop + 1) - 0.5) * h[2] - start
    coverage = np.zeros((len(origins), k.stop - k.start), np.float32)
    pairs = np.isfinite(intervals[:, :, 0]).sum(axis=1)
    for count in np.unique(pairs[pairs > 0]):  # rays grouped by crossings: no work on padding
        rays = np.flatnonzero(pairs == count)
        for chunk in np.array_split(rays, -(-len(rays) // _RAY_CHUNK)):
            coverage[chunk] = coverage_along_rays(intervals[chunk, :count], boundaries)
    return coverage.reshape(ii.shape + (k.stop - k.start,))


def _union_coverage(meshes: list[trimesh.Trimesh], grid: _Grid, box: tuple[slice, slice, slice]) -> np.ndarray:
    """Inside share of each voxel of `box` for a set of closed meshes, summed per mesh and capped at 1."""
    out = np.zeros(tuple(s.stop - s.start for s in box), np.float32)
    for mesh in meshes:
        own = grid.box(mesh.bounds)
        local = tuple(slice(o.start - b.start, o.stop - b.start) for o, b in zip(own, box, strict=True))
        out[local] += _mesh_coverage(mesh, grid, own)
    return np.minimum(out, 1.0, out=out)


def _block_mean(array: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Mean over blocks of `factors` voxels (the array's sizes are whole blocks)."""
    (a, b, c), (f, g, h) = array.shape, factors
    return array.reshape(a // f, f, b // g, g, c // h, h).mean(axis=(1, 3, 5), dtype=np.float32)


def _inside_depth(fraction: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Depth (mm) of block centres below the surface, 0 outside; the inside share places it within a block.

    The distance to the nearest outside block is shortened by how far that block's centre lies beyond the
    surface, (0.5 - its inside share) x the block size along the line between them.
    """
    inside = fraction >= 0.5
    depth = np.zeros(fraction.shape, np.float32)
    if not inside.any() or inside.all():
        return depth
    distance, nearest = ndimage.distance_transform_edt(inside, sampling=spacing, return_indices=True)
    where = np.nonzero(inside)
    steps = np.sqrt(sum((w - nearest[a][where]).astype(np.float32) ** 2 for a, w in enumerate(where)))
    block_along = distance[where] / steps
    beyond = (0.5 - fraction[tuple(n[where] for n in nearest)]) * block_along
    depth[where] = np.maximum(distance[where] - beyond, 0.0)
    return depth


def _upsample_axis(array: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """Linear interpolation from block centres to voxel centres along one axis (edges held)."""
    lower = np.concatenate([np.take(array, [0], axis), np.take(array, range(array.shape[axis] - 1), axis)], axis)
    upper = np.concatenate([np.take(array, range(1, array.shape[axis]), axis), np.take(array, [-1], axis)], axis)
    phases = []
    for r in range(factor):
        d = (r + 0.5) / factor - 0.5
        phases.append((1 - abs(d)) * array + abs(d) * (lower if d < 0 else upper))
    stacked = np.stack(phases, axis=axis + 1)
    shape = list(array.shape)
    shape[axis] *= factor
    return stacked.reshape(shape)


def _upsample(array: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Block values to voxel values by separable linear interpolation."""
    for axis in np.argsort(factors):
        if factors[axis] > 1:
            array = _upsample_axis(array, int(axis), int(factors[axis]))
    return array


def _ramp(values: np.ndarray, start: float, stop: float) -> np.ndarray:
    """0 below `start`, 1 above `stop`, linear between (float32)."""
    out = (values - np.float32(start)) * np.float32(1.0 / (stop - start))
    return np.clip(out, 0.0, 1.0, out=out)


def _soft_tissue_hu(depth: np.ndarray, fat_mm: float) -> np.ndarray:
    """Skin, then fat, then muscle/brain by depth below the skin (mm)."""
    half = LAYER_BLEND_MM / 2
    hu = np.full(depth.shape, SKIN_HU, np.float32)
    hu += np.float32(FAT_HU - SKIN_HU) * _ramp(depth, SKIN_MM - half, SKIN_MM + half)
    hu += np.float32(SOFT_HU - FAT_HU) * _ramp(depth, SKIN_MM + fat_mm - half, SKIN_MM + fat_mm + half)
    return hu


def _bone_hu(depth: np.ndarray) -> np.ndarray:
    """Cortical bone at the surface blending into cancellous bone deeper inside (mm below the surface)."""
    hu = np.full(depth.shape, CORTICAL_HU, np.float32)
    hu += np.float32(CANCELLOUS_HU - CORTICAL_HU) * _ramp(depth, *CORTEX_MM)
    return hu


@dataclass(frozen=True)
class _InternalAir:
    """Airway (elliptic cylinder, vertical) and nasal cavity (ellipsoid), placed from skull landmarks."""

    nasal_centre: np.ndarray
    nasal_radii: np.ndarray
    airway_xz: np.ndarray
    airway_radii: np.ndarray
    airway_y: tuple[float, float]

    @classmethod
    def from_head(cls, head: SyntheticHead) -> _InternalAir:
        """Shapes scaled by the skull: porion width, porion-to-subnasale depth, subnasale-to-nasion height."""
        lm = head.skull_landmarks
        porion = 0.5 * (lm["porion_l"] + lm["porion_r"])
        width = float(np.linalg.norm(lm["porion_l"] - lm["porion_r"]))
        nasion, subnasale = lm["nasion"], lm["subnasale"]
        depth, height = float(subnasale[2] - porion[2]), float(nasion[1] - subnasale[1])
        mid_x = 0.5 * (nasion[0] + subnasale[0])
        return cls(
            nasal_centre=np.array([mid_x, subnasale[1] + 0.45 * height, porion[2] + 0.68 * depth]),
            nasal_radii=np.array([0.1 * width, 0.45 * height, 0.28 * depth]),
            airway_xz=np.array([mid_x, porion[2] + 0.33 * depth]),
            airway_radii=np.array([0.08 * width, 0.07 * depth]),
            airway_y=(float(head.face.bounds[0, 1]) + 25.0, float(subnasale[1] + 0.25 * height)),
        )

    @property
    def bounds(self) -> np.ndarray:
        """Canonical bounding box (2, 3) of both shapes."""
        nasal = np.array([self.nasal_centre - self.nasal_radii, self.nasal_centre + self.nasal_radii])
        x, z = self.airway_xz
        rx, rz = self.airway_radii
        airway = np.array([[x - rx, self.airway_y[0], z - rz], [x + rx, self.airway_y[1], z + rz]])
        return np.array([np.minimum(nasal[0], airway[0]), np.maximum(nasal[1], airway[1])])

    def fraction(self, points: np.ndarray, voxel_mm: float) -> np.ndarray:
        """Share of air at points (..., 3): 1 inside, 0 outside, a one-voxel ramp across the walls."""
        q = np.linalg.norm((points - self.nasal_centre) / self.nasal_radii, axis=-1)
        nasal = (q - 1.0) * self.nasal_radii.min()
        q = np.linalg.norm((points[..., [0, 2]] - self.airway_xz) / self.airway_radii, axis=-1)
        y = points[..., 1]
        airway = np.maximum((q - 1.0) * self.airway_radii.min(), np.maximum(self.airway_y[0] - y, y - self.airway_y[1]))
        return np.clip(0.5 - np.minimum(nasal, airway) / voxel_mm, 0.0, 1.0).astype(np.float32)


def _add_internal_air(soft: np.ndarray, depth: np.ndarray, grid: _Grid, head: SyntheticHead) -> None:
    """Replace soft tissue by air in the airway and nasal cavity, only deeper than AIR_MIN_DEPTH_MM."""
    air = _InternalAir.from_head(head)
    box = grid.box(air.bounds)
    share = air.fraction(grid.centres(box), float(grid.spacing.mean()))
    share *= _ramp(depth[box], AIR_MIN_DEPTH_MM, AIR_MIN_DEPTH_MM + 1.0)
    soft[box] += share * (np.float32(AIR_HU) - soft[box])


def _noise_gain(sigma: tuple[float, float, float]) -> float:
    """Factor that restores unit standard deviation to white noise after Gaussian filtering with `sigma`."""
    energy = 1.0
    for s in sigma:
        if s > 0:
            impulse = np.zeros(33)
            impulse[16] = 1.0
            energy *= float(np.sum(ndimage.gaussian_filter1d(impulse, s) ** 2))
    return 1.0 / np.sqrt(energy)


def _validated_spacing(spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Spacing as a positive float vector of 3, or ValueError."""
    spacing = np.asarray(spacing_mm, dtype=float).reshape(-1)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise ValueError(f"spacing_mm {spacing_mm!r} must be three positive sizes (mm)")
    return spacing


def render_ct(
    head: SyntheticHead,
    *,
    spacing_mm: tuple[float, float, float] = (0.5, 0.5, 1.25),
    seed: int,
    noise_hu: float = 20.0,
    margin_mm: float = 10.0,
) -> Volume:
    """CT of a head in Hounsfield units (int16), over the face's bounding box plus `margin_mm`.

    `spacing_mm` is per array axis (i left, j posterior, k superior = slice axis); `noise_hu` is the standard
    deviation of the (PSF-correlated) noise; `seed` drives the noise and nothing else.
    """
    spacing = _validated_spacing(spacing_mm)
    if not np.isfinite(noise_hu) or noise_hu < 0:
        raise ValueError(f"noise_hu {noise_hu} must be a non-negative number")
    if not np.isfinite(margin_mm) or margin_mm < 0:
        raise ValueError(f"margin_mm {margin_mm} must be a non-negative number")
    grid = _scan_grid(np.asarray(head.face.bounds, float), spacing, margin_mm)
    array = _scan(_tissue_hu(head, grid), seed=seed, noise_hu=noise_hu)
    return Volume(array, grid.spacing, grid.origin, grid.direction)


def _tissue_hu(head: SyntheticHead, grid: _Grid) -> np.ndarray:
    """Noise-free HU (float32) with partial volume along the slice axis."""
    full = tuple(slice(0, n) for n in grid.shape)
    coarse_spacing = grid.spacing * grid.factors
    face = _union_coverage([head.face], grid, full)
    depth = _upsample(_inside_depth(_block_mean(face, grid.factors), coarse_spacing), grid.factors)
    soft = _soft_tissue_hu(depth, fat_thickness_mm(head.subject.bmi))
    _add_internal_air(soft, depth, grid, head)
    del depth
    hu = soft - np.float32(AIR_HU)
    hu *= face
    hu += np.float32(AIR_HU)
    bone_parts, teeth_parts = _components(head.skull, np.asarray(head.skull_is_teeth, bool))
    box = grid.box(_bounds(bone_parts + teeth_parts))
    bone = _union_coverage(bone_parts, grid, box)
    teeth = _union_coverage(teeth_parts, grid, box) if teeth_parts else np.zeros_like(bone)
    bone_depth = _upsample(_inside_depth(_block_mean(bone, grid.factors), coarse_spacing), grid.factors)
    hard = bone + teeth
    over = hard > 1.0  # a voxel shared by bone and a tooth: keep their proportions
    bone[over] /= hard[over]
    teeth[over] /= hard[over]
    hard = np.minimum(hard, 1.0)
    soft_box = soft[box]
    hu[box] += (
        np.maximum(hard - face[box], 0.0) * (soft_box - np.float32(AIR_HU))
        + bone * (_bone_hu(bone_depth) - soft_box)
        + teeth * (np.float32(TEETH_HU) - soft_box)
    )
    return hu


def _scan(hu: np.ndarray, *, seed: int, noise_hu: float) -> np.ndarray:
    """Add noise, blur in-plane with the PSF (which also correlates the noise), round to int16 HU."""
    sigma = (_PSF_SIGMA_VOXELS, _PSF_SIGMA_VOXELS, 0.0)
    image = np.empty(hu.shape, np.float32)
    np.random.default_rng(seed).standard_normal(dtype=np.float32, out=image)
    image *= np.float32(noise_hu * _noise_gain(sigma))
    image += hu
    blurred = ndimage.gaussian_filter(image, sigma, output=np.float32, mode="nearest")
    np.rint(blurred, out=blurred)
    np.clip(blurred, *HU_LIMITS, out=blurred)
    return blurred.astype(np.int16)
