"""Head and bone masks from a head CT: the head's soft tissue with its air cavities filled, and the bone in it.

Tissue is everything above `skin_hu`. The scanner table, headrest, pillow and cables are cut off the head by a
morphological opening with a 4 mm ball (it cuts bridges and contacts thinner than 8 mm) and keeping the largest
body. Thin parts of the head that the opening also takes (ears, nostril rims) come back when they hang on that
body and are small and short; large or long pieces (a headrest's shell, a cable over the neck) stay off, and so
do the thin bumps a headrest leaves where it presses on the skull. This heavy work runs on a ~1.5 mm grid of the
tissue eroded by about a block (so that a one-voxel gap between skin and headrest survives the averaging); the
full-resolution threshold then decides the surface within one coarse voxel of the coarse head, so the skin is
not eroded, except next to other objects, where only tissue touching the head's voxels counts. Air cavities
(sinuses, airway, nasal cavity, mouth) are filled slice by slice in coronal and axial planes, on both grids:
that covers cavities enclosed in 3D and closes those open to the outside through the nostrils or parted lips at
the body surface, without filling the concavities in front of the face. Dental metal streaks are voted out of
the slices that hold metal (see `_thresholded`). Bone is the bone threshold within the head, without specks and
with its small pores filled (mastoid air cells, diploic gaps), so that its surface is the skull's outline.
Structuring elements are in millimetres, so anisotropic spacing works; axis directions come from the volume,
so any orientation does. Cube and ball morphology run as lines and rows of plain array logic (the same result as
`scipy.ndimage`'s, many times faster), and full-resolution steps run through slabs.

When only the skull matters (a case), `segment_skull` stops at the head on blocks and finds the bone on the CT
averaged to the grid its surface is meshed on: none of the full-resolution work, for the same skull.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from facegen.io.volume import Volume

SKIN_HU = -300.0
AIR_HU = -1000.0
BONE_HU = 300.0
METAL_HU = 3000.0
"""Above enamel (up to ~2900 HU in real scans), below the 3071 HU at which 12-bit scanners clip metal."""
MIN_HEAD_ML = 500.0
COARSE_MM = 1.5
OPENING_MM = 4.0
"""Radius of the ball that cuts the head from what touches it."""
ATTACHED_MAX_ML = 40.0
ATTACHED_MAX_MM = 100.0
"""Thin parts hanging on the head that come back after the opening: an ear is ~10 ml and ~65 mm long."""
ATTACHED_ROUNDS = 4
"""Rounds of dropping pieces next to dropped ones (bits of one broken shell)."""
SMOOTH_MM = 20.0
"""Radius of the ball whose opening gives the head's smooth outline, beyond which contact bumps stand out."""
CONTACT_MAX_ML = 15.0
"""A bump larger than this that touches a cut-off object is kept: it is more likely the head's own."""
EMBEDDED_MM = 30.0
EMBEDDED_SHARE = 0.65
"""Metal streaks are handled where tissue fills this share of the square around the metal: fillings, not wires."""
STREAK_WINDOW_MM = (6.0, 3.0)
"""In-plane majority-vote windows for skin and bone in the metal slices."""
STREAK_REACH_MM = 60.0
"""How far from the metal, in-plane, the vote runs."""
STREAK_BAND_MM = 1.0
"""How far the voted outline in a metal slice may stray from the one interpolated between its clean neighbours."""
TANGENTIAL_MM = 4.0
"""Half-length of the line across the streaks along which the majority is taken near metal."""
GUIDE_REACH_MM = 30.0
"""In-plane distance from metal within which that band applies: wide streaks are strong only near the metal, and
interpolating across a run of slices would cut shapes that change fast along it (an ear lobe) farther out."""
SLAB_BLOCKS = 8
"""Full-resolution steps run through slabs of this many blocks: small temporaries stay in cache, and memory low."""
MIN_BONE_MM3 = 30.0
MAX_PORE_MM2 = 100.0
"""Holes in bone smaller than this in an axial slice (mastoid air cells, diploic gaps, small foramina) are filled."""


@dataclass(frozen=True)
class HeadMasks:
    """Voxel masks on the volume's grid: the head (soft tissue, air cavities filled) and the bone inside it."""

    head: np.ndarray
    bone: np.ndarray


@dataclass(frozen=True)
class SkullMasks:
    """What a skull and a rough skin need of a CT, on grids coarser than the scan's (see `segment_skull`).

    `grid` is the CT around the head averaged to voxels within `grid_mm` (the grid the skull is meshed on) and
    `bone` the bone on it; `skin` holds the share of tissue in each block of about COARSE_MM as HU (air -1000,
    half tissue at the skin threshold) and `head` the head on those blocks, cavities filled.
    """

    grid: Volume
    bone: np.ndarray
    skin: Volume
    head: np.ndarray


@dataclass(frozen=True)
class _CoarseHead:
    """The head on blocks (cavities filled), the ring of blocks around it, other tissue, and tissue voxels per block."""

    filled: np.ndarray
    ring: np.ndarray
    others: np.ndarray
    share: np.ndarray
    counts: np.ndarray


def segment_head(volume: Volume, *, skin_hu: float = SKIN_HU, bone_hu: float = BONE_HU) -> HeadMasks:
    """The head and its bone in a CT (HU), without table, headrest, pillow or cables; cavities filled.

    Raises ValueError when no body of tissue reaches MIN_HEAD_ML after cutting what touches it.
    """
    blocks = _head_blocks(volume, skin_hu, bone_hu)
    inner_box, refined = _refined(blocks.tissue, blocks.coarse, blocks.factors)
    refined = fill_cavities(refined, volume.direction)  # again at full resolution: walls thinner than a block
    region = tuple(slice(b.start + i.start, b.start + i.stop) for b, i in zip(blocks.box, inner_box, strict=True))
    head = np.zeros(volume.shape, bool)
    head[region] = refined
    return HeadMasks(head=head, bone=_bone(volume, head, blocks.metal, bone_hu))


def segment_skull(
    volume: Volume, *, skin_hu: float = SKIN_HU, bone_hu: float = BONE_HU, grid_mm: float | None = 1.0
) -> SkullMasks:
    """The bone on the CT averaged to voxels within `grid_mm`, and the head on blocks of about COARSE_MM.

    For when only the skull matters (a case): the head is cut from what touches it as in `segment_head` but not
    refined to full resolution (its skin is good for pinning the pose, not for a face), and the bone is found on
    the grid the skull is meshed on anyway, within that head: none of the full-resolution work, which is most of
    it for a fine scan. Raises ValueError when no body of tissue reaches MIN_HEAD_ML.
    """
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
    grid, within = _grid_within(volume, coarse.filled, start, factors, block_factors(volume.spacing_mm, grid_mm))
    bone = _bone(grid, within, _metal_runs(grid, skin_hu), bone_hu)
    return SkullMasks(grid=grid, bone=bone, skin=skin, head=_rough_head(coarse, volume.direction))


@dataclass(frozen=True)
class _HeadBlocks:
    """What both segmentations start from: metal runs, the box around the tissue, the tissue in it, and the head on
    blocks of `factors` voxels."""

    metal: list[_MetalRun]
    box: tuple[slice, slice, slice]
    tissue: np.ndarray
    factors: np.ndarray
    coarse: _CoarseHead


def _head_blocks(volume: Volume, skin_hu: float, bone_hu: float) -> _HeadBlocks:
    """Threshold the tissue (metal streaks voted out), box it and find the head on blocks of about COARSE_MM."""
    if not skin_hu < bone_hu:
        raise ValueError(f"skin_hu {skin_hu} must lie below bone_hu {bone_hu}")
    spacing = volume.spacing_mm
    metal = _metal_runs(volume, skin_hu)
    tissue = _thresholded(volume.array, skin_hu, volume, metal, STREAK_WINDOW_MM[0])
    factors = _coarse_factors(spacing)
    box = _bounding_box(tissue, 2 * factors)
    if box is None:
        raise ValueError(_no_head_message(0.0, skin_hu))
    local = tissue[box]
    coarse = _coarse_head(local, factors, spacing * factors, volume.direction, skin_hu)
    return _HeadBlocks(metal, box, local, factors, coarse)


def _bone(volume: Volume, within: np.ndarray, metal: list[_MetalRun], bone_hu: float) -> np.ndarray:
    """Bone above `bone_hu` within the head, metal streaks voted out, without specks and with its pores filled."""
    bone = _thresholded(volume.array, bone_hu, volume, metal, STREAK_WINDOW_MM[1], within=within)
    return _without_pores(_without_specks(bone, volume.spacing_mm), volume)


def _coarse_head(
    tissue: np.ndarray, factors: np.ndarray, spacing: np.ndarray, direction: np.ndarray, skin_hu: float
) -> _CoarseHead:
    """The head on blocks of `factors` voxels (cavities filled), the ring of blocks around it, and other tissue.

    Raises ValueError when no body reaches MIN_HEAD_ML.
    """
    # erode first: a one-voxel gap between skin and a headrest must hold a whole block to survive averaging
    raw_share, share, counts = _tissue_shares(tissue, factors)
    coarse = share.astype(np.int32) * 2 >= counts
    # axial cavities first (found before the erosion, which may break their walls), so that a thin wall (neck skin
    # over the airway) is not cut off as a thin part; not coronal ones: a coronal plane cuts a cradle as a ring
    raw = raw_share.astype(np.int32) * 2 >= counts
    solid = _fill_holes_in_slices(raw, int(np.argmax(np.abs(direction[1]))))
    coarse |= solid & _cube_dilated(solid & ~raw)  # with the walls' eroded inner layer
    body, body_ml = _largest_opened_body(coarse, spacing)
    if body_ml < MIN_HEAD_ML:
        raise ValueError(_no_head_message(body_ml, skin_hu))
    residual = coarse & ~body
    attached = _attached_parts(residual, body, spacing)
    head = (body & ~_contact_bumps(body, residual & ~attached, spacing)) | attached
    filled = fill_cavities(head, direction)
    grown = _cube_dilated(filled)
    others = ((raw_share > 0) & ~grown) | (coarse & ~filled)
    return _CoarseHead(filled, grown & ~filled & ~coarse, others, raw_share, counts)


def _near_and_interior(coarse: _CoarseHead) -> tuple[np.ndarray, np.ndarray]:
    """Ring blocks next to other tissue (a headrest, a cable), and the blocks deep in the head."""
    near = coarse.ring & _cube_dilated(coarse.others)
    return near, _cube_eroded(coarse.filled)


def _rough_head(coarse: _CoarseHead, direction: np.ndarray) -> np.ndarray:
    """The head on blocks with its skin where the blocks' tissue puts it (what `_refined` does voxel by voxel).

    Blocks of the head and of the ring count when mostly tissue, except ring blocks next to other tissue; deep
    blocks count whole; cavities are filled again.
    """
    near, interior = _near_and_interior(coarse)
    tissue = coarse.share.astype(np.int32) * 2 >= coarse.counts
    return fill_cavities((tissue & (coarse.filled | (coarse.ring & ~near))) | interior, direction)


def _grid_within(
    volume: Volume, filled: np.ndarray, start: np.ndarray, factors: np.ndarray, grid_factors: np.ndarray
) -> tuple[Volume, np.ndarray]:
    """The CT averaged over blocks of `grid_factors` voxels around the head, and the head (`filled`) on that grid.

    `filled` lies on blocks of `factors` voxels starting at voxel `start`; a grid voxel is in the head when the
    block holding its centre is. The grid covers the head's box with a block to spare.
    """
    coarse_box = _bounding_box(filled, np.ones(3, int))
    lo = start + np.array([b.start for b in coarse_box]) * factors
    hi = np.minimum(start + np.array([b.stop for b in coarse_box]) * factors, volume.shape)
    grid_hu = _block_mean(volume.array[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))], grid_factors)
    grid = Volume(
        grid_hu,
        volume.spacing_mm * grid_factors,
        volume.index_to_world(lo + (grid_factors - 1) / 2.0),
        volume.direction,
    )
    index, valid = [], []
    for axis in range(3):
        centre = lo[axis] + np.arange(grid_hu.shape[axis]) * grid_factors[axis] + (grid_factors[axis] - 1) // 2
        block = (centre - start[axis]) // factors[axis]
        inside = (block >= 0) & (block < filled.shape[axis])
        index.append(np.where(inside, block, 0))
        valid.append(inside)
    within = filled[np.ix_(*index)]
    for axis, inside in enumerate(valid):
        within &= inside.reshape([-1 if a == axis else 1 for a in range(3)])
    return grid, within


def _block_mean(values: np.ndarray, factors: np.ndarray) -> np.ndarray:
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
        out /= _block_counts(values.shape, factors)
    return out


def _refined(
    tissue: np.ndarray, coarse: _CoarseHead, factors: np.ndarray
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The full-resolution head in the box around the coarse head: tissue decides within one block of it.

    Blocks of the coarse head (`filled`) count whole where deep and take their tissue at the surface; blocks
    of the `ring` around it take their tissue, but next to blocks of `others` (a headrest, a cable) only the
    tissue touching the head's own voxels, so that a headrest's shell across a thin gap stays out. Returns the
    box (in `tissue`'s indices) and the mask in it.
    """
    filled, ring = coarse.filled, coarse.ring
    near, interior = _near_and_interior(coarse)
    coarse_box = _bounding_box(filled | ring, np.ones(3, int))
    box = tuple(
        slice(c.start * f, min(c.stop * f, n)) for c, f, n in zip(coarse_box, factors, tissue.shape, strict=True)
    )
    shape = tuple(b.stop - b.start for b in box)

    def up(mask: np.ndarray) -> np.ndarray:
        return _upsample(mask[coarse_box], factors, shape)

    local = tissue[box]
    head = local & up(filled | (ring & ~near))
    head |= local & up(near) & _dilated_once(head | up(filled))
    head |= up(interior)
    return box, head


def block_factors(spacing_mm: np.ndarray, max_voxel_mm: float | None) -> np.ndarray:
    """Voxels averaged per axis so that averaged voxels stay within `max_voxel_mm` (1 where none is needed)."""
    if max_voxel_mm is None:
        return np.ones(3, int)
    if max_voxel_mm <= 0:
        raise ValueError(f"max_voxel_mm {max_voxel_mm} must be positive")
    return np.maximum(1, np.floor(max_voxel_mm / np.asarray(spacing_mm, float) + 1e-6)).astype(int)


def _coarse_factors(spacing_mm: np.ndarray) -> np.ndarray:
    """Voxels per coarse block along each axis, so that blocks are ~COARSE_MM (at least one voxel)."""
    return np.maximum(1, np.floor(COARSE_MM / np.asarray(spacing_mm, float) + 0.5)).astype(int)


def _slice_axis(volume: Volume) -> int:
    """The array axis closest to superior: axial slices (where metal streaks lie) are planes across it."""
    return int(np.argmax(np.abs(volume.direction[1])))


@dataclass(frozen=True)
class _MetalRun:
    """Consecutive axial slices (`first` to `last` along `_slice_axis`) with metal, and the in-plane box around it."""

    first: int
    last: int
    region: tuple[slice, slice]


def _metal_runs(volume: Volume, skin_hu: float) -> list[_MetalRun]:
    """Runs of axial slices with metal inside the body (and the slice on either side), with the box around it.

    Metal counts when tissue fills at least EMBEDDED_SHARE of the EMBEDDED_MM square around it in its slice
    (a filling among teeth, lips and tongue), not a wire in air; the box reaches STREAK_REACH_MM beyond it.
    """
    axis = _slice_axis(volume)
    plane = [a for a in range(3) if a != axis]
    spacing = volume.spacing_mm[plane]
    per_slice = np.moveaxis(volume.array, axis, 0)
    embedded = np.zeros(len(per_slice), bool)
    boxes: dict[int, np.ndarray] = {}
    size = [2 * int(round(EMBEDDED_MM / 2 / h)) + 1 for h in spacing]
    for index in np.flatnonzero(volume.array.max(axis=tuple(plane)) > METAL_HU):
        values = per_slice[index]
        share = ndimage.uniform_filter((values > skin_hu).astype(np.float32), size, mode="constant")
        where = np.argwhere((values > METAL_HU) & (share >= EMBEDDED_SHARE))
        if len(where):
            embedded[index] = True
            boxes[int(index)] = np.array([where.min(axis=0), where.max(axis=0)])
    runs, _ = ndimage.label(ndimage.binary_dilation(embedded))  # the slices beside a filling hold part of it
    margin = np.ceil(STREAK_REACH_MM / spacing).astype(int)
    shape = np.array([volume.shape[a] for a in plane])
    out = []
    for (found,) in ndimage.find_objects(runs):
        corners = np.concatenate([boxes[k] for k in range(found.start, found.stop) if k in boxes])
        lo = np.maximum(corners.min(axis=0) - margin, 0)
        hi = np.minimum(corners.max(axis=0) + margin + 1, shape)
        region = (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])))
        out.append(_MetalRun(int(found.start), int(found.stop) - 1, region))
    return out


def _thresholded(
    hu: np.ndarray,
    level: float,
    volume: Volume,
    metal: list[_MetalRun],
    window_mm: float,
    *,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """HU above `level` (and `within`), with metal streaks voted out of the slices near metal.

    In the slices of a metal run and the one on either side, the in-plane majority of a `window_mm` window
    decides (the threshold of the median: thin streaks lose the vote, edges of anatomy keep their place).
    Within GUIDE_REACH_MM of the metal, in the slices of the run, the outline is held within STREAK_BAND_MM of
    the one interpolated between the slices on either side of the run (shape-based interpolation of signed
    distances), and inside that band the majority is taken along a line across the direction to the metal,
    which crosses its streaks: wide streaks can neither add spikes nor cut notches.
    """
    mask = hu > level
    if within is not None:
        mask &= within
    if not metal:
        return mask
    axis = _slice_axis(volume)
    spacing = volume.spacing_mm[[a for a in range(3) if a != axis]]
    size = [2 * int(round(window_mm / 2 / h)) + 1 for h in spacing]
    slices = np.moveaxis(mask, axis, 0)
    values = np.moveaxis(hu, axis, 0)
    inside = None if within is None else np.moveaxis(within, axis, 0)

    def restricted(index: int, region: tuple[slice, slice], found: np.ndarray) -> np.ndarray:
        return found if inside is None else found & inside[index][region]

    for run in metal:
        for index in range(max(run.first - 1, 0), min(run.last + 2, len(slices))):
            above = (values[index][run.region] > level).astype(np.float32)
            voted = ndimage.uniform_filter(above, size, mode="nearest") > 0.5
            slices[index][run.region] = restricted(index, run.region, voted)
    for run in metal:
        sides = [k for k in (run.first - 1, run.last + 1) if 0 <= k < len(slices)]
        if not sides:
            continue
        guides = {k: _signed_distance(slices[k][run.region], spacing) for k in sides}
        metal_plane = (values[run.first : run.last + 1][(slice(None), *run.region)] > METAL_HU).any(axis=0)
        if not metal_plane.any():
            continue
        distance, nearest = ndimage.distance_transform_edt(~metal_plane, sampling=spacing, return_indices=True)
        close = (distance < GUIDE_REACH_MM) & (distance > 0)
        for index in range(run.first, run.last + 1):
            weights = {k: 1.0 / abs(index - k) for k in guides}  # linear interpolation between the two sides
            guide = sum(w / sum(weights.values()) * guides[k] for k, w in weights.items())
            band = close & (np.abs(guide) <= STREAK_BAND_MM)
            voted = slices[index][run.region].copy()
            voted[band] = _tangential_vote(values[index][run.region] > level, nearest, band, spacing)
            held = (guide > STREAK_BAND_MM) | ((guide > -STREAK_BAND_MM) & voted)
            slices[index][run.region] = restricted(index, run.region, np.where(close, held, voted))
    return mask


def _tangential_vote(above: np.ndarray, nearest: np.ndarray, where: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Majority of `above` along a line across the direction to the nearest metal, at the pixels `where`.

    Streaks run straight out of the metal, so a line across that direction crosses them, while an outline
    facing the metal (lips in front of incisors) runs along it and keeps its place. `nearest` holds the
    pixel indices of the nearest metal pixel, as `distance_transform_edt(..., return_indices=True)` gives.
    """
    pixels = np.argwhere(where)
    if len(pixels) == 0:
        return np.zeros(0, bool)
    radial = (pixels - nearest[:, where].T) * spacing
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    across = np.column_stack([-radial[:, 1], radial[:, 0]]) / spacing  # pixels per mm, across the streaks
    steps = np.linspace(-TANGENTIAL_MM, TANGENTIAL_MM, 2 * int(np.ceil(TANGENTIAL_MM / spacing.min())) + 1)
    coordinates = pixels.T[:, :, None] + across.T[:, :, None] * steps[None, None, :]
    samples = ndimage.map_coordinates(above.astype(np.float32), coordinates.reshape(2, -1), order=1, mode="nearest")
    return samples.reshape(len(pixels), len(steps)).mean(axis=1) > 0.5


def _signed_distance(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """In-plane signed distance (mm) to the mask's outline: positive inside."""
    if not mask.any():
        return np.full(mask.shape, -1e3, np.float32)
    if mask.all():
        return np.full(mask.shape, 1e3, np.float32)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    return (inside - outside).astype(np.float32)


def _bounding_box(mask: np.ndarray, margin: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box of the mask plus `margin` voxels per axis, within the array; None when the mask is empty."""
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=others))
        if len(present) == 0:
            return None
        lo = max(0, int(present[0]) - int(margin[axis]))
        hi = min(mask.shape[axis], int(present[-1]) + 1 + int(margin[axis]))
        box.append(slice(lo, hi))
    return tuple(box)


def _tissue_shares(tissue: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tissue voxels per block of `factors` voxels before and after `_eroded` by `factors - 1`, and voxels per block.

    Works through slabs of SLAB_BLOCKS blocks along the first axis, each with the rows the erosion reaches into
    beside it: the same counts as over the whole array, with small temporaries (fast on large scans).
    """
    steps = np.maximum(factors - 1, 1)
    halo, rows, n = int(steps[0]), SLAB_BLOCKS * int(factors[0]), tissue.shape[0]
    raw, eroded = [], []
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        start, stop = max(lo - halo, 0), min(hi + halo, n)
        raw.append(_block_share(tissue[lo:hi], factors)[0])
        eroded.append(_block_share(_eroded(tissue[start:stop], steps)[lo - start : hi - start], factors)[0])
    return np.concatenate(raw), np.concatenate(eroded), _block_counts(tissue.shape, factors)


def _block_share(mask: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    return total, _block_counts(mask.shape, factors)


def _block_counts(shape: tuple[int, ...], factors: np.ndarray) -> np.ndarray:
    """Voxels in each block of `factors` voxels of an array of `shape` (edge blocks hold fewer), broadcast."""
    dtype = np.uint8 if int(np.prod(factors)) < 256 else np.uint16
    counts = np.ones((1, 1, 1), dtype)
    for axis, (n, f) in enumerate(zip(shape, (int(v) for v in factors), strict=True)):
        blocks = -(-n // f)
        per_axis = np.full(blocks, f, dtype)
        per_axis[-1] = n - (blocks - 1) * f
        counts = counts * per_axis.reshape([-1 if a == axis else 1 for a in range(3)])
    return np.broadcast_to(counts, tuple(-(-n // int(f)) for n, f in zip(shape, factors, strict=True)))


def _eroded(mask: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Erosion by `steps` voxels along each axis (6-neighbourhood steps); the array's border counts as inside."""
    out = mask
    for step in range(int(np.max(steps))):
        shrunk = out.copy()
        for axis in np.flatnonzero(steps > step):
            lead = (slice(None),) * int(axis) + (slice(1, None),)
            trail = (slice(None),) * int(axis) + (slice(None, -1),)
            shrunk[lead] &= out[trail]
            shrunk[trail] &= out[lead]
        out = shrunk
    return out


def _dilated_once(mask: np.ndarray) -> np.ndarray:
    """Dilation by one voxel along the axes (6-neighbourhood)."""
    out = mask.copy()
    for axis in range(3):
        lead = (slice(None),) * axis + (slice(1, None),)
        trail = (slice(None),) * axis + (slice(None, -1),)
        out[lead] |= mask[trail]
        out[trail] |= mask[lead]
    return out


def _cube_dilated(mask: np.ndarray, reach: int = 1) -> np.ndarray:
    """Dilation by the 27-neighbourhood `reach` times (a cube of 2 * reach + 1 voxels), one axis at a time.

    The same as `ndimage.binary_dilation` with the 3 x 3 x 3 structure and `iterations=reach` (outside the
    array counts as empty), in a fraction of the time: the cube is a product of three lines.
    """
    return _along_axes(mask, reach, grow=True)


def _cube_eroded(mask: np.ndarray, reach: int = 1) -> np.ndarray:
    """Erosion by the 27-neighbourhood `reach` times, one axis at a time; the array's border counts as inside.

    The same as `ndimage.binary_erosion` with the 3 x 3 x 3 structure, `iterations=reach` and `border_value=1`.
    """
    return _along_axes(mask, reach, grow=False)


def _along_axes(mask: np.ndarray, reach: int, *, grow: bool) -> np.ndarray:
    """Dilation (`grow`) or erosion by a line of 2 * reach + 1 voxels along each axis in turn."""
    out = mask
    for axis in range(3):
        for _ in range(reach):
            out = _along_axis(out, axis, grow=grow)
    return out if out is not mask else mask.copy()


def _along_axis(mask: np.ndarray, axis: int, *, grow: bool) -> np.ndarray:
    """Dilation (`grow`, outside empty) or erosion (outside full) by three voxels in a line along `axis`."""
    lead = (slice(None),) * axis + (slice(1, None),)
    trail = (slice(None),) * axis + (slice(None, -1),)
    out = mask.copy()
    if grow:
        out[lead] |= mask[trail]
        out[trail] |= mask[lead]
    else:
        out[lead] &= mask[trail]
        out[trail] &= mask[lead]
    return out


def _upsample(coarse: np.ndarray, factors: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Each coarse voxel repeated over its block, cut to `shape`.

    The last axis first, while the array is small: the later repeats copy whole rows.
    """
    out = coarse
    for axis in (2, 1, 0):
        if factors[axis] > 1:
            out = np.repeat(out, int(factors[axis]), axis=axis)
    return out[: shape[0], : shape[1], : shape[2]]


def _ball(radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Structuring element: the voxels of an ellipsoid of `radius_mm` on a grid of `spacing` (mm)."""
    half = np.floor(radius_mm / spacing).astype(int)
    grid = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    return sum((g * s) ** 2 for g, s in zip(grid, spacing, strict=True)) <= radius_mm**2 + 1e-9


def _ball_eroded(mask: np.ndarray, radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Erosion by `_ball(radius_mm, spacing)`; the array's border counts as inside."""
    return _by_ball(mask, _ball(radius_mm, spacing), grow=False)


def _ball_dilated(mask: np.ndarray, radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Dilation by `_ball(radius_mm, spacing)`; outside the array counts as empty."""
    return _by_ball(mask, _ball(radius_mm, spacing), grow=True)


def _by_ball(mask: np.ndarray, ball: np.ndarray, *, grow: bool) -> np.ndarray:
    """Dilation (`grow`) or erosion by a symmetric ball, as `ndimage` gives them, row by row along the last axis.

    The ball is a stack of centred runs along the last axis: the mask grown or shrunk along that axis by each
    run's half-length, shifted to each run's place and combined. A few dozen passes of plain logic instead of a
    visit to every element of the ball at every voxel: several times faster than `ndimage`.
    """
    centre = np.array(ball.shape) // 2
    reach = ball.sum(axis=2) // 2
    lines = [mask]
    for _ in range(int(reach.max())):
        lines.append(_along_axis(lines[-1], 2, grow=grow))
    out = np.full(mask.shape, not grow)
    for i, j in zip(*np.nonzero(ball.any(axis=2)), strict=True):
        shifts = (int(i) - centre[0], int(j) - centre[1])
        if any(abs(shift) >= n for shift, n in zip(shifts, mask.shape, strict=False)):
            continue  # no voxel has this neighbour in the array
        line = lines[reach[i, j]]
        target = tuple(slice(max(0, -k), n - max(0, k)) for k, n in zip(shifts, mask.shape, strict=False))
        source = tuple(slice(max(0, k), n - max(0, -k)) for k, n in zip(shifts, mask.shape, strict=False))
        if grow:
            out[target] |= line[source]
        else:
            out[target] &= line[source]
    return out


def _largest_opened_body(coarse: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, float]:
    """The largest connected body of the mask opened with a ball of OPENING_MM, and its volume (ml).

    Erosion treats the outside of the array as tissue, so a head cut by the field of view keeps its cut face.
    """
    opened = _ball_dilated(_ball_eroded(coarse, OPENING_MM, spacing), OPENING_MM, spacing) & coarse
    labels, count = ndimage.label(opened)
    if count == 0:
        labels, count = ndimage.label(coarse)  # nothing survives the opening: report the raw tissue instead
        if count == 0:
            return np.zeros_like(coarse), 0.0
        sizes = np.bincount(labels.ravel())[1:]
        return np.zeros_like(coarse), float(sizes.max() * np.prod(spacing) / 1000.0)
    sizes = np.bincount(labels.ravel())[1:]
    largest = int(np.argmax(sizes)) + 1
    return labels == largest, float(sizes[largest - 1] * np.prod(spacing) / 1000.0)


def _attached_parts(residual: np.ndarray, body: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Pieces of `residual` that touch `body` and are small and short enough to be the head's (ears).

    A small piece within two voxels of a large or long one goes too, and so on for ATTACHED_ROUNDS: a
    headrest's shell that the erosion broke into bits is judged as a whole, not bit by bit.
    """
    labels, count = ndimage.label(residual)
    if count == 0:
        return residual
    touching = np.zeros(count + 1, bool)
    touching[labels[_dilated_once(body) & residual]] = True
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    small = np.zeros(count + 1, bool)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        extent = max((s.stop - s.start) * h for s, h in zip(found, spacing, strict=True))
        small[index] = sizes[index] * voxel_ml <= ATTACHED_MAX_ML and extent <= ATTACHED_MAX_MM
    small[0] = True
    large = ~small
    for _ in range(ATTACHED_ROUNDS):
        near_large = _cube_dilated(large[labels], 2)
        joining = np.unique(labels[near_large & small[labels]])
        joining = joining[joining > 0]
        if len(joining) == 0:
            break
        large[joining], small[joining] = True, False
    keep = small & touching
    keep[0] = False
    return keep[labels]


def _contact_bumps(body: np.ndarray, dropped: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Thin bumps on `body` where a `dropped` object touches it: what the opening could not cut of that object.

    Where a headrest touches the skull over a patch, balls of the opening still fit through the contact and keep
    the headrest's shell on the patch. Around each contact, the opening of the body with a ball of SMOOTH_MM
    gives the head's smooth outline (such a ball cannot enter a thin plate on a convex head); voxels farther
    than that from the ball centres, in small pieces that touch the object, are the object's.
    """
    contact = _cube_dilated(dropped) & body
    if not contact.any():
        return np.zeros_like(body)
    out = np.zeros_like(body)
    margin = np.ceil(2.5 * SMOOTH_MM / spacing).astype(int)
    tolerance = 0.5 * float(np.mean(spacing))
    labels, _ = ndimage.label(_cube_dilated(contact, 2))
    for found in ndimage.find_objects(labels):
        box = tuple(
            slice(max(0, s.start - m), min(n, s.stop + m)) for s, m, n in zip(found, margin, body.shape, strict=True)
        )
        local = body[box]
        core = ndimage.distance_transform_edt(local, sampling=spacing) > SMOOTH_MM
        if not core.any():
            continue
        bumps = local & (ndimage.distance_transform_edt(~core, sampling=spacing) > SMOOTH_MM + tolerance)
        pieces, count = ndimage.label(bumps)
        touching = np.unique(pieces[contact[box] & bumps])
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)
        remove = np.zeros(count + 1, bool)
        remove[touching] = sizes[touching] * float(np.prod(spacing)) / 1000.0 <= CONTACT_MAX_ML
        remove[0] = False
        out[box] |= remove[pieces]
    return out


def fill_cavities(mask: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The mask with enclosed air filled, slice by slice in coronal, then axial planes.

    A slice-wise fill closes a cavity where it opens to the outside through a ring of tissue in that plane
    (parted lips in coronal slices, nostrils in axial ones); concavities open in the plane stay open. Every
    cavity enclosed in 3D is enclosed in each of its axial slices too, so the last pass fills those as well.
    `direction` is the volume's direction matrix (columns: world directions of the array axes).
    """
    axial = int(np.argmax(np.abs(direction[1])))
    order = np.argsort(-np.abs(direction[2]))
    coronal = int(order[0] if order[0] != axial else order[1])
    return _fill_holes_in_slices(_fill_holes_in_slices(mask, coronal), axial)


def _fill_holes_in_slices(mask: np.ndarray, axis: int) -> np.ndarray:
    """2D hole filling of every slice across `axis` at once (background 4-connected within a slice)."""
    structure = np.zeros((3, 3, 3), bool)
    plane = [slice(None)] * 3
    plane[axis] = 1
    structure[tuple(plane)] = ndimage.generate_binary_structure(2, 1)
    labels, count = ndimage.label(~mask, structure)
    if count == 0:
        return mask
    outside = np.zeros(count + 1, bool)
    for a in range(3):
        if a != axis:
            outside[np.take(labels, 0, axis=a)] = True
            outside[np.take(labels, -1, axis=a)] = True
    outside[0] = False  # label 0 is the mask itself
    return ~outside[labels]


def _without_specks(bone: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Bone without connected pieces smaller than MIN_BONE_MM3."""
    box = _bounding_box(bone, np.ones(3, int))
    if box is None:
        return bone
    labels, count = ndimage.label(bone[box])
    keep = np.bincount(labels.ravel(), minlength=count + 1) * float(np.prod(spacing)) >= MIN_BONE_MM3
    keep[0] = False
    if keep[1:].all():
        return bone
    out = np.zeros_like(bone)
    out[box] = keep[labels]
    return out


def _without_pores(bone: np.ndarray, volume: Volume) -> np.ndarray:
    """Bone with holes smaller than MAX_PORE_MM2 in its axial slices filled: the outline, not the honeycomb."""
    box = _bounding_box(bone, np.ones(3, int))
    if box is None:
        return bone
    axis = _slice_axis(volume)
    structure = np.zeros((3, 3, 3), bool)
    plane = [slice(None)] * 3
    plane[axis] = 1
    structure[tuple(plane)] = ndimage.generate_binary_structure(2, 1)
    local = bone[box]
    labels, count = ndimage.label(~local, structure)
    pixel_mm2 = float(np.prod([h for a, h in enumerate(volume.spacing_mm) if a != axis]))
    small = np.bincount(labels.ravel(), minlength=count + 1) * pixel_mm2 < MAX_PORE_MM2
    for a in range(3):
        if a != axis:  # what reaches the edge of a slice is no pore
            small[np.take(labels, 0, axis=a)] = False
            small[np.take(labels, -1, axis=a)] = False
    small[0] = False
    out = bone.copy()
    out[box] |= small[labels]
    return out


def _no_head_message(found_ml: float, skin_hu: float) -> str:
    """The error text when the volume holds no head."""
    return (
        f"no head found: the largest body of tissue above {skin_hu:g} HU is only {found_ml:.0f} ml "
        f"(a head has at least {MIN_HEAD_ML:.0f} ml); is this a head CT in Hounsfield units?"
    )
