"""Head and bone masks from a head CT: the head's soft tissue with its air cavities filled, and the bone in it.

Tissue is everything above `skin_hu`, with dental metal streaks voted out of the slices that hold metal
(`metal_streaks`). The head is cut from the scanner table, headrest, pillow and cables on blocks of about
COARSE_MM and refined to full resolution (`head_mask`); air cavities are filled slice by slice in coronal and
axial planes, on both grids (`cavities`). Bone is the bone threshold within the head, without specks and with
its small pores filled (`bone`), so that its surface is the skull's outline. Structuring elements are in
millimetres, so anisotropic spacing works; axis directions come from the volume, so any orientation does.
Morphology runs as plain array logic (`morphology`) and full-resolution steps run through slabs (`blocks`).

When only the skull matters (a case), `segment_skull` stops at the head on blocks and finds the bone on the CT
averaged to the grid its surface is meshed on: none of the full-resolution work, for the same skull.

A dry skull (bone and air, no skin: `dry_skull`) has no head to find: both segmentations then take the skull as
the largest bony body, cut from what it lies on, and give no head mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegen.data.scans.blocks import block_factors, blocks_on_grid, coarse_factors, grid_within, upsample
from facegen.data.scans.bone import bone_mask
from facegen.data.scans.cavities import fill_cavities
from facegen.data.scans.dry_skull import SkullRegion, is_dry_skull, skin_around_bone, skull_region
from facegen.data.scans.head_mask import CoarseHead, coarse_head, no_head_message, refined_head, rough_head
from facegen.data.scans.metal_streaks import STREAK_WINDOW_MM, MetalRun, metal_runs, thresholded
from facegen.data.scans.morphology import bounding_box
from facegen.io.volume import Volume

SKIN_HU = -300.0
AIR_HU = -1000.0
BONE_HU = 300.0


@dataclass(frozen=True)
class HeadMasks:
    """Voxel masks on the volume's grid: the head (soft tissue, air cavities filled) and the bone inside it.

    `head` is None for a dry skull (no skin found); `skin_around_bone` is the share of voxels near dense bone that
    hold tissue (None without dense bone), which tells the two apart.
    """

    head: np.ndarray | None
    bone: np.ndarray
    skin_around_bone: float | None = None

    @property
    def dry_skull(self) -> bool:
        """True when the scan holds bone without skin: no head, no face."""
        return self.head is None


@dataclass(frozen=True)
class SkullMasks:
    """What a skull and a rough skin need of a CT, on grids coarser than the scan's (see `segment_skull`).

    `grid` is the CT around the head averaged to voxels within `grid_mm` (the grid the skull is meshed on) and
    `bone` the bone on it; `skin` holds the share of tissue in each block of about COARSE_MM as HU (air -1000,
    half tissue at the skin threshold) and `head` the head on those blocks, cavities filled: both None for a dry
    skull (no skin found; see `HeadMasks.skin_around_bone`).
    """

    grid: Volume
    bone: np.ndarray
    skin: Volume | None
    head: np.ndarray | None
    skin_around_bone: float | None = None

    @property
    def dry_skull(self) -> bool:
        """True when the scan holds bone without skin: no head, no face."""
        return self.head is None


def segment_head(volume: Volume, *, skin_hu: float = SKIN_HU, bone_hu: float = BONE_HU) -> HeadMasks:
    """The head and its bone in a CT (HU), without table, headrest, pillow or cables; cavities filled.

    Raises ValueError when no body of tissue reaches MIN_HEAD_ML after cutting what touches it. A dry skull gives
    no head, and its bone cut from what it lies on (ValueError when no skull-sized body of bone is found).
    """
    _check_thresholds(skin_hu, bone_hu)
    skin_share = skin_around_bone(volume, skin_hu, bone_hu)
    if is_dry_skull(skin_share):
        region = skull_region(volume, bone_hu)
        within = _dry_within(volume, region)
        return HeadMasks(None, bone_mask(volume, within, metal_runs(volume, skin_hu), bone_hu), skin_share)
    blocks = _head_blocks(volume, skin_hu, bone_hu)
    inner_box, refined = refined_head(blocks.tissue, blocks.coarse, blocks.factors)
    refined = fill_cavities(refined, volume.direction)  # again at full resolution: walls thinner than a block
    region = tuple(slice(b.start + i.start, b.start + i.stop) for b, i in zip(blocks.box, inner_box, strict=True))
    head = np.zeros(volume.shape, bool)
    head[region] = refined
    return HeadMasks(head, bone_mask(volume, head, blocks.metal, bone_hu), skin_share)


def segment_skull(
    volume: Volume, *, skin_hu: float = SKIN_HU, bone_hu: float = BONE_HU, grid_mm: float | None = 1.0
) -> SkullMasks:
    """The bone on the CT averaged to voxels within `grid_mm`, and the head on blocks of about COARSE_MM.

    For when only the skull matters (a case): the head is cut from what touches it as in `segment_head` but not
    refined to full resolution (its skin is good for pinning the pose, not for a face), and the bone is found on
    the grid the skull is meshed on anyway, within that head: none of the full-resolution work, which is most of
    it for a fine scan. Raises ValueError when no body of tissue reaches MIN_HEAD_ML. A dry skull gives no skin and
    no head, and its bone cut from what it lies on.
    """
    _check_thresholds(skin_hu, bone_hu)
    skin_share = skin_around_bone(volume, skin_hu, bone_hu)
    if is_dry_skull(skin_share):
        return _dry_skull_masks(volume, skin_hu, bone_hu, grid_mm, skin_share)
    blocks = _head_blocks(volume, skin_hu, bone_hu)
    coarse, factors = blocks.coarse, blocks.factors
    start = np.array([b.start for b in blocks.box])
    tissue_hu = AIR_HU + coarse.share.astype(np.float32) / coarse.counts * np.float32(2.0 * (skin_hu - AIR_HU))
    skin = Volume(
        tissue_hu.astype(np.float32, copy=False),
        volume.spacing_mm * factors,
        volume.index_to_world(start + (factors - 1) / 2.0),
        volume.direction,
    )
    grid, within = grid_within(volume, coarse.filled, start, factors, block_factors(volume.spacing_mm, grid_mm))
    bone = bone_mask(grid, within, metal_runs(grid, skin_hu), bone_hu)
    return SkullMasks(grid, bone, skin, rough_head(coarse, volume.direction), skin_share)


def _dry_skull_masks(
    volume: Volume, skin_hu: float, bone_hu: float, grid_mm: float | None, skin_share: float | None
) -> SkullMasks:
    """A dry skull's bone on the grid its surface is meshed on: within its region, off the support it touches."""
    region = skull_region(volume, bone_hu)
    grid_factors = block_factors(volume.spacing_mm, grid_mm)
    grid, within = grid_within(volume, region.region, region.start, region.factors, grid_factors)
    if region.near_support.any():
        lo = np.round(volume.world_to_index(grid.origin_mm) - (grid_factors - 1) / 2.0).astype(int)
        support = blocks_on_grid(region.near_support, region.start, region.factors, lo, grid_factors, grid.shape)
        within &= ~(support & (grid.array < region.dense_hu))
    bone = bone_mask(grid, within, metal_runs(grid, skin_hu), bone_hu)
    return SkullMasks(grid, bone, None, None, skin_share)


def _dry_within(volume: Volume, region: SkullRegion) -> np.ndarray:
    """A dry skull's region on the volume's own grid, without the voxels next to its support less dense than bone."""
    box = tuple(
        slice(int(a), min(n, int(a) + m * int(f)))
        for a, m, f, n in zip(region.start, region.region.shape, region.factors, volume.shape, strict=True)
    )
    shape = tuple(b.stop - b.start for b in box)
    within = np.zeros(volume.shape, bool)
    within[box] = upsample(region.region, region.factors, shape)
    if region.near_support.any():
        within[box] &= ~(upsample(region.near_support, region.factors, shape) & (volume.array[box] < region.dense_hu))
    return within


def _check_thresholds(skin_hu: float, bone_hu: float) -> None:
    """Refuse a skin threshold at or above the bone threshold."""
    if not skin_hu < bone_hu:
        raise ValueError(f"skin_hu {skin_hu} must lie below bone_hu {bone_hu}")


@dataclass(frozen=True)
class _HeadBlocks:
    """What both segmentations start from: metal runs, the tissue's box, the tissue in it, the head on blocks."""

    metal: list[MetalRun]
    box: tuple[slice, slice, slice]
    tissue: np.ndarray
    factors: np.ndarray
    coarse: CoarseHead


def _head_blocks(volume: Volume, skin_hu: float, bone_hu: float) -> _HeadBlocks:
    """Threshold the tissue (metal streaks voted out), box it and find the head on blocks of about COARSE_MM."""
    spacing = volume.spacing_mm
    metal = metal_runs(volume, skin_hu)
    tissue = thresholded(volume.array, skin_hu, volume, metal, STREAK_WINDOW_MM[0])
    factors = coarse_factors(spacing)
    box = bounding_box(tissue, 2 * factors)
    if box is None:
        raise ValueError(no_head_message(0.0, skin_hu))
    local = tissue[box]
    coarse = coarse_head(local, factors, spacing * factors, volume.direction, skin_hu)
    return _HeadBlocks(metal, box, local, factors, coarse)
