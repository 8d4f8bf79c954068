"""Synthetic CT of a generated head: Hounsfield units from its face and skull meshes, as a scanner sees them.

Array axes (i, j, k) run toward the subject's left, posterior and superior (DICOM's LPS order with axial
slices stacked upward), so k is the slice axis. Tissues: air outside; inside the face a 2 mm skin layer,
subcutaneous fat whose thickness grows with BMI, then muscle/brain; an airway and nasal cavity filled with
air; bone (cortical near its surface, cancellous deeper) and brighter teeth. Partial volume is exact along
the slice axis (ray/surface crossings per voxel column), and in-plane comes from a Gaussian PSF that also
correlates the Gaussian noise. Layer depths come from distance transforms on a ~2 mm grid with sub-voxel
correction. Same head and seed give the same array. `soft_tissue=False` gives the dry skull: bone in air
(supports and stored offsets: `dry_ct`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import trimesh
from scipy import ndimage

from facegen.data.raycast import inside_intervals, interval_coverage
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
_FULL_SHARE_TOL = 1e-3
_PSF_SIGMA_VOXELS = 0.5
_PSF_TRUNCATE = 2.5
"""In sigmas: a 3-tap kernel at sigma 0.5 voxel (the next tap would weigh 3e-4)."""
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
    lowest = float(((mesh.vertices - grid.origin) @ grid.direction[:, 2]).min())  # rays must start outside
    start = min((k.start - 0.5) * h[2], lowest) - _RAY_LEAD_MM
    origins = grid.origin + np.outer(ii.ravel(), grid.direction[:, 0]) + np.outer(jj.ravel(), grid.direction[:, 1])
    origins += start * grid.direction[:, 2]
    intervals = inside_intervals(mesh, origins, grid.direction[:, 2])
    cells = k.stop - k.start
    offset = (k.start - 0.5) * h[2] - start
    coverage = interval_coverage(intervals, first_mm=offset, step_mm=float(h[2]), cells=cells)
    return coverage.reshape(ii.shape + (cells,))


def _union_coverage(meshes: list[trimesh.Trimesh], grid: _Grid, box: tuple[slice, slice, slice]) -> np.ndarray:
    """Inside share of each voxel of `box` for a set of closed meshes, summed per mesh and capped at 1."""
    out = np.zeros(tuple(s.stop - s.start for s in box), np.float32)
    for mesh in meshes:
        own = grid.box(mesh.bounds)
        local = tuple(slice(o.start - b.start, o.stop - b.start) for o, b in zip(own, box, strict=True))
        out[local] += _mesh_coverage(mesh, grid, own)
    return np.minimum(out, 1.0, out=out)


def _block_mean(array: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Mean over blocks of `factors` voxels (the array's sizes are whole blocks), one axis at a time."""
    for axis, f in enumerate(factors):
        if f > 1:
            phase = [(slice(None),) * axis + (slice(r, None, f),) for r in range(f)]
            total = array[phase[0]].astype(np.float32)
            for view in phase[1:]:
                total += array[view]
            array = total
    return array * np.float32(1.0 / np.prod(factors))


def _signed_depth(fraction: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Depth (mm) of block centres below the surface (negative outside), from the blocks' inside shares.

    A block the surface crosses has its centre (share - 0.5) x its size below the surface (exact for a
    plane across it); a full block adds its distance to the nearest such block (distance transform).
    """
    depth = ((fraction - np.float32(0.5)) * np.float32(np.mean(spacing))).astype(np.float32)
    full = fraction > 1.0 - _FULL_SHARE_TOL
    if not full.any() or full.all():
        return depth
    distance, nearest = ndimage.distance_transform_edt(full, sampling=spacing, return_indices=True)
    where = np.nonzero(full)
    steps = np.sqrt(sum((w - nearest[a][where]).astype(np.float32) ** 2 for a, w in enumerate(where)))
    block_along = distance[where] / steps  # block size along the line to the nearest crossed block
    crossed = fraction[tuple(n[where] for n in nearest)]
    depth[where] = distance[where] + (crossed - 0.5) * block_along
    return depth


def _upsample_axis(array: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """Linear interpolation from block centres to voxel centres along one axis (edges held)."""
    shape = list(array.shape)
    shape[axis] *= factor
    out = np.empty(shape, np.float32)
    head, tail, body, shifted = (
        ((slice(None),) * axis + (s,)) for s in (slice(0, 1), slice(-1, None), slice(None, -1), slice(1, None))
    )
    for r in range(factor):
        d = (r + 0.5) / factor - 0.5
        target = out[(slice(None),) * axis + (slice(r, None, factor),)]
        np.multiply(array, np.float32(1 - abs(d)), out=target)
        if d < 0:  # blend with the block before; the first block has none and keeps its own value
            target[shifted] += np.float32(-d) * array[body]
            target[head] += np.float32(-d) * array[head]
        else:
            target[body] += np.float32(d) * array[shifted]
            target[tail] += np.float32(d) * array[tail]
    return out


def _upsample(array: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Block values to voxel values by separable linear interpolation."""
    for axis in np.argsort(factors):
        if factors[axis] > 1:
            array = _upsample_axis(array, int(axis), int(factors[axis]))
    return array


def _ramp(values: np.ndarray, start: float, stop: float, *, out: np.ndarray | None = None) -> np.ndarray:
    """0 below `start`, 1 above `stop`, linear between (float32; into `out` when given)."""
    out = np.subtract(values, np.float32(start), dtype=np.float32, out=out)
    out *= np.float32(1.0 / (stop - start))
    return np.clip(out, 0.0, 1.0, out=out)


def _layers_hu(depth: np.ndarray, surface_hu: float, changes: list[tuple[float, float, float]]) -> np.ndarray:
    """HU by depth (mm): `surface_hu`, then each (from mm, to mm, change) ramps in between those depths."""
    hu = np.full(depth.shape, surface_hu, np.float32)
    ramp = np.empty(depth.shape, np.float32)
    for start, stop, change in changes:
        _ramp(depth, start, stop, out=ramp)
        ramp *= np.float32(change)
        hu += ramp
    return hu


def _soft_tissue_hu(depth: np.ndarray, fat_mm: float) -> np.ndarray:
    """Skin, then fat, then muscle/brain by depth below the skin (mm)."""
    half, fat_end = LAYER_BLEND_MM / 2, SKIN_MM + fat_mm
    return _layers_hu(
        depth,
        SKIN_HU,
        [(SKIN_MM - half, SKIN_MM + half, FAT_HU - SKIN_HU), (fat_end - half, fat_end + half, SOFT_HU - FAT_HU)],
    )


def _bone_hu(depth: np.ndarray) -> np.ndarray:
    """Cortical bone at the surface blending into cancellous bone deeper inside (mm below the surface)."""
    return _layers_hu(depth, CORTICAL_HU, [(*CORTEX_MM, CANCELLOUS_HU - CORTICAL_HU)])


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
            nasal_radii=np.array([0.1 * width, 0.45 * height, 0.3 * depth]),
            airway_xz=np.array([mid_x, porion[2] + 0.33 * depth]),
            airway_radii=np.array([0.08 * width, 0.07 * depth]),
            airway_y=(float(head.face.bounds[0, 1]) + 25.0, float(subnasale[1] + 0.45 * height)),
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


def _internal_air(head: SyntheticHead, grid: _Grid, depth: np.ndarray) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Box and share of air of the airway and nasal cavity, kept deeper than AIR_MIN_DEPTH_MM below the skin."""
    air = _InternalAir.from_head(head)
    box = grid.box(air.bounds)
    share = air.fraction(grid.centres(box), float(grid.spacing.mean()))
    share *= _ramp(depth[box], AIR_MIN_DEPTH_MM, AIR_MIN_DEPTH_MM + 1.0)
    return box, share


def _noise_gain(sigma: tuple[float, float, float]) -> float:
    """Factor that restores unit standard deviation to white noise after Gaussian filtering with `sigma`."""
    energy = 1.0
    for s in sigma:
        if s > 0:
            impulse = np.zeros(33)
            impulse[16] = 1.0
            energy *= float(np.sum(ndimage.gaussian_filter1d(impulse, s, truncate=_PSF_TRUNCATE) ** 2))
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
    soft_tissue: bool = True,
) -> Volume:
    """CT of a head in Hounsfield units (int16), over the face's bounding box plus `margin_mm`.

    `spacing_mm` is per array axis (i left, j posterior, k superior = slice axis); `noise_hu` is the standard
    deviation of the (PSF-correlated) noise; `seed` drives the noise and nothing else. Without `soft_tissue`
    it is the CT of the dry skull: bone and teeth in air, over the skull's bounding box plus `margin_mm`.
    """
    spacing = _validated_spacing(spacing_mm)
    if not np.isfinite(noise_hu) or noise_hu < 0:
        raise ValueError(f"noise_hu {noise_hu} must be a non-negative number")
    if not np.isfinite(margin_mm) or margin_mm < 0:
        raise ValueError(f"margin_mm {margin_mm} must be a non-negative number")
    grid = _scan_grid(np.asarray((head.face if soft_tissue else head.skull).bounds, float), spacing, margin_mm)
    array = _scan(_tissue_hu(head, grid) if soft_tissue else _bone_in_air_hu(head, grid), seed=seed, noise_hu=noise_hu)
    return Volume(array, grid.spacing, grid.origin, grid.direction)


def _bone_in_air_hu(head: SyntheticHead, grid: _Grid) -> np.ndarray:
    """Noise-free HU (float32) of the dry skull: bone and teeth weighted by their voxel shares, air elsewhere."""
    hu = np.full(grid.shape, AIR_HU, np.float32)
    box, extra = _hard_tissue_hu(head, grid, np.broadcast_to(np.float32(0.0), grid.shape), hu)
    hu[box] += extra
    return hu


def _tissue_hu(head: SyntheticHead, grid: _Grid) -> np.ndarray:
    """Noise-free HU (float32): air, soft tissue layers, bone and teeth weighted by their voxel shares."""
    face = _union_coverage([head.face], grid, tuple(slice(0, n) for n in grid.shape))
    depth = _upsample(_signed_depth(_block_mean(face, grid.factors), grid.spacing * grid.factors), grid.factors)
    air_box, air = _internal_air(head, grid, depth)
    soft = _soft_tissue_hu(depth, fat_thickness_mm(head.subject.bmi))
    del depth
    soft[air_box] += air * (np.float32(AIR_HU) - soft[air_box])
    box, extra = _hard_tissue_hu(head, grid, face, soft)
    hu = soft  # air + face share x (soft - air), in place: the volume is large
    hu -= np.float32(AIR_HU)
    hu *= face
    hu += np.float32(AIR_HU)
    hu[box] += extra
    return hu


def _hard_tissue_hu(
    head: SyntheticHead, grid: _Grid, face: np.ndarray, soft: np.ndarray
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Box around the skull and what bone and teeth add there to air + face share x (soft - air).

    With bone share B, teeth share T (B + T <= 1) and face share F' = max(face, B + T), a voxel holds
    air (1 - F') + soft (F' - B - T) + bone B + teeth T.
    """
    bone_parts, teeth_parts = _components(head.skull, np.asarray(head.skull_is_teeth, bool))
    box = grid.box(_bounds(bone_parts + teeth_parts))
    bone = _union_coverage(bone_parts, grid, box)
    teeth = _union_coverage(teeth_parts, grid, box) if teeth_parts else np.zeros_like(bone)
    depth = _upsample(_signed_depth(_block_mean(bone, grid.factors), grid.spacing * grid.factors), grid.factors)
    hard = bone + teeth
    over = hard > 1.0  # a voxel shared by bone and a tooth: keep their proportions
    bone[over] /= hard[over]
    teeth[over] /= hard[over]
    np.minimum(hard, 1.0, out=hard)
    soft_box = soft[box]
    extra = np.maximum(hard - face[box], 0.0) * (soft_box - np.float32(AIR_HU))
    extra += bone * (_bone_hu(depth) - soft_box)
    extra += teeth * (np.float32(TEETH_HU) - soft_box)
    return box, extra


def _scan(hu: np.ndarray, *, seed: int, noise_hu: float) -> np.ndarray:
    """Add noise, blur in-plane with the PSF (which also correlates the noise), round to int16 HU.

    Overwrites `hu` (the volume is large).
    """
    sigma = (_PSF_SIGMA_VOXELS, _PSF_SIGMA_VOXELS, 0.0)
    buffer = np.empty(hu.shape, np.float32)
    np.random.default_rng(seed).standard_normal(dtype=np.float32, out=buffer)
    buffer *= np.float32(noise_hu * _noise_gain(sigma))
    hu += buffer
    ndimage.gaussian_filter(hu, sigma, output=buffer, mode="nearest", truncate=_PSF_TRUNCATE)
    np.rint(buffer, out=buffer)
    np.clip(buffer, *HU_LIMITS, out=buffer)
    return buffer.astype(np.int16)
