"""Blocks of voxels: the coarse grid a head is found on, the grid a skull is meshed on, and moving between them.

A CT is summed or averaged over blocks of a few voxels per axis (blocks of about COARSE_MM for the head, blocks
within a mesh's voxel size for the skull); a short last block along an axis takes the voxels it has. Sums run
through slabs of SLAB_BLOCKS blocks along the first axis, so that temporaries stay small on large scans.
"""

from __future__ import annotations

import numpy as np

from facegen.data.scans.morphology import bounding_box, eroded_by_steps
from facegen.io.volume import Volume

COARSE_MM = 1.5
SLAB_BLOCKS = 8
"""Full-resolution steps run through slabs of this many blocks: small temporaries stay in cache, and memory low."""


def block_factors(spacing_mm: np.ndarray, max_voxel_mm: float | None) -> np.ndarray:
    """Voxels averaged per axis so that averaged voxels stay within `max_voxel_mm` (1 where none is needed)."""
    if max_voxel_mm is None:
        return np.ones(3, int)
    if max_voxel_mm <= 0:
        raise ValueError(f"max_voxel_mm {max_voxel_mm} must be positive")
    return np.maximum(1, np.floor(max_voxel_mm / np.asarray(spacing_mm, float) + 1e-6)).astype(int)


def coarse_factors(spacing_mm: np.ndarray) -> np.ndarray:
    """Voxels per coarse block along each axis, so that blocks are ~COARSE_MM (at least one voxel)."""
    return np.maximum(1, np.floor(COARSE_MM / np.asarray(spacing_mm, float) + 0.5)).astype(int)


def grid_within(
    volume: Volume, filled: np.ndarray, start: np.ndarray, factors: np.ndarray, grid_factors: np.ndarray
) -> tuple[Volume, np.ndarray]:
    """The CT averaged over blocks of `grid_factors` voxels around the head, and the head (`filled`) on that grid.

    `filled` lies on blocks of `factors` voxels starting at voxel `start`; a grid voxel is in the head when the
    block holding its centre is. The grid covers the head's box with a block to spare.
    """
    coarse_box = bounding_box(filled, np.ones(3, int))
    lo = start + np.array([b.start for b in coarse_box]) * factors
    hi = np.minimum(start + np.array([b.stop for b in coarse_box]) * factors, volume.shape)
    grid_hu = block_mean(volume.array[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))], grid_factors)
    grid = Volume(
        grid_hu,
        volume.spacing_mm * grid_factors,
        volume.index_to_world(lo + (grid_factors - 1) / 2.0),
        volume.direction,
    )
    return grid, blocks_on_grid(filled, start, factors, lo, grid_factors, grid.shape)


def blocks_on_grid(
    mask: np.ndarray,
    start: np.ndarray,
    factors: np.ndarray,
    lo: np.ndarray,
    grid_factors: np.ndarray,
    grid_shape: tuple[int, int, int],
) -> np.ndarray:
    """A mask on blocks of `factors` voxels from voxel `start`, read at the centres of a grid of `grid_factors`
    voxels from voxel `lo`: a grid voxel is in when the block holding its centre is (out beyond the blocks)."""
    index, valid = [], []
    for axis in range(3):
        centre = lo[axis] + np.arange(grid_shape[axis]) * grid_factors[axis] + (grid_factors[axis] - 1) // 2
        block = (centre - start[axis]) // factors[axis]
        inside = (block >= 0) & (block < mask.shape[axis])
        index.append(np.where(inside, block, 0))
        valid.append(inside)
    within = mask[np.ix_(*index)]
    for axis, inside in enumerate(valid):
        within &= inside.reshape([-1 if a == axis else 1 for a in range(3)])
    return within


def block_mean(values: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mean (float32) over blocks of `factors` voxels; a short last block along an axis averages the voxels it has.

    Slab by slab along the first axis (SLAB_BLOCKS blocks at a time): small temporaries.
    """
    factors = np.asarray(factors, int)
    out = np.empty(tuple(-(-n // int(f)) for n, f in zip(values.shape, factors, strict=True)), np.float32)
    rows = SLAB_BLOCKS * int(factors[0])
    for lo in range(0, values.shape[0], rows):
        total = values[lo : lo + rows]
        for axis, f in enumerate(int(v) for v in factors):
            if f == 1:
                continue
            summed = np.zeros(total.shape[:axis] + (-(-total.shape[axis] // f),) + total.shape[axis + 1 :], np.float32)
            for r in range(f):
                phase = total[(slice(None),) * axis + (slice(r, None, f),)]
                summed[(slice(None),) * axis + (slice(0, phase.shape[axis]),)] += phase
            total = summed
        out[lo // int(factors[0]) : lo // int(factors[0]) + total.shape[0]] = total
    if np.any(factors > 1):
        out /= block_counts(values.shape, factors)
    return out


def tissue_shares(tissue: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tissue voxels per block of `factors` voxels before and after erosion by `factors - 1`, and voxels per block.

    Works through slabs of SLAB_BLOCKS blocks along the first axis, each with the rows the erosion reaches into
    beside it: the same counts as over the whole array, with small temporaries (fast on large scans).
    """
    steps = np.maximum(factors - 1, 1)
    halo, rows, n = int(steps[0]), SLAB_BLOCKS * int(factors[0]), tissue.shape[0]
    raw, eroded = [], []
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        start, stop = max(lo - halo, 0), min(hi + halo, n)
        raw.append(block_share(tissue[lo:hi], factors)[0])
        eroded.append(block_share(eroded_by_steps(tissue[start:stop], steps)[lo - start : hi - start], factors)[0])
    return np.concatenate(raw), np.concatenate(eroded), block_counts(tissue.shape, factors)


def block_share(mask: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True voxels per block of `factors` voxels, and the voxels per block (edge blocks hold fewer)."""
    dtype = np.uint8 if int(np.prod(factors)) < 256 else np.uint16
    total = mask.view(np.uint8)
    for axis, f in enumerate(int(v) for v in factors):
        blocks = -(-total.shape[axis] // f)
        phases = []
        for r in range(f):
            view = total[(slice(None),) * axis + (slice(r, None, f),)]
            if view.shape[axis] < blocks:  # the last block is short: pad that phase with zeros
                pad = [(0, 0)] * 3
                pad[axis] = (0, blocks - view.shape[axis])
                view = np.pad(view, pad)
            phases.append(view)
        summed = phases[0].astype(dtype, copy=True)
        for view in phases[1:]:
            summed += view
        total = summed
    return total, block_counts(mask.shape, factors)


def block_counts(shape: tuple[int, ...], factors: np.ndarray) -> np.ndarray:
    """Voxels in each block of `factors` voxels of an array of `shape` (edge blocks hold fewer), broadcast."""
    dtype = np.uint8 if int(np.prod(factors)) < 256 else np.uint16
    counts = np.ones((1, 1, 1), dtype)
    for axis, (n, f) in enumerate(zip(shape, (int(v) for v in factors), strict=True)):
        blocks = -(-n // f)
        per_axis = np.full(blocks, f, dtype)
        per_axis[-1] = n - (blocks - 1) * f
        counts = counts * per_axis.reshape([-1 if a == axis else 1 for a in range(3)])
    return np.broadcast_to(counts, tuple(-(-n // int(f)) for n, f in zip(shape, factors, strict=True)))


def upsample(coarse: np.ndarray, factors: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Each coarse voxel repeated over its block, cut to `shape`.

    The last axis first, while the array is small: the later repeats copy whole rows.
    """
    out = coarse
    for axis in (2, 1, 0):
        if factors[axis] > 1:
            out = np.repeat(out, int(factors[axis]), axis=axis)
    return out[: shape[0], : shape[1], : shape[2]]
