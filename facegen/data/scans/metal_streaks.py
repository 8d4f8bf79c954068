"""Dental metal in a head CT and the streaks it casts: thresholds that vote the streaks out of the metal slices.

Metal embedded in tissue (fillings, not a wire in air) marks runs of axial slices. In those slices a threshold
is decided by an in-plane majority vote, held near the metal to the outline interpolated between the clean
slices on either side of the run, and decided there along lines across the streaks (see `thresholded`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from facegen.io.volume import Volume

METAL_HU = 3000.0
"""Above enamel (up to ~2900 HU in real scans), below the 3071 HU at which 12-bit scanners clip metal."""
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


def slice_axis(volume: Volume) -> int:
    """The array axis closest to superior: axial slices (where metal streaks lie) are planes across it."""
    return int(np.argmax(np.abs(volume.direction[1])))


@dataclass(frozen=True)
class MetalRun:
    """Consecutive axial slices (`first` to `last` along `slice_axis`) with metal, and the in-plane box around it."""

    first: int
    last: int
    region: tuple[slice, slice]


def metal_runs(volume: Volume, skin_hu: float) -> list[MetalRun]:
    """Runs of axial slices with metal inside the body (and the slice on either side), with the box around it.

    Metal counts when tissue fills at least EMBEDDED_SHARE of the EMBEDDED_MM square around it in its slice
    (a filling among teeth, lips and tongue), not a wire in air; the box reaches STREAK_REACH_MM beyond it.
    """
    axis = slice_axis(volume)
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
        out.append(MetalRun(int(found.start), int(found.stop) - 1, region))
    return out


def thresholded(
    hu: np.ndarray,
    level: float,
    volume: Volume,
    metal: list[MetalRun],
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
    axis = slice_axis(volume)
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
