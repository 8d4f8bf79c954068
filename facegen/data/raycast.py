"""Ray casting against triangle meshes (trimesh with Embree): first hits and inside-intervals per ray."""

from __future__ import annotations

import numpy as np
import trimesh

_DUPLICATE_HIT_MM = 1e-4


def first_hits(mesh: trimesh.Trimesh, origins: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance along `direction` (unit) to the first surface hit per ray; NaN where a ray misses.

    Returns (distance (N,), triangle index (N,), -1 where missed).
    """
    directions = np.broadcast_to(np.asarray(direction, float), origins.shape)
    locations, ray_index, tri_index = mesh.ray.intersects_location(origins, directions, multiple_hits=False)
    distance = np.full(len(origins), np.nan)
    triangle = np.full(len(origins), -1, dtype=np.int64)
    distance[ray_index] = np.einsum("ij,ij->i", locations - origins[ray_index], directions[ray_index])
    triangle[ray_index] = tri_index
    return distance, triangle


def inside_intervals(mesh: trimesh.Trimesh, origins: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Entry/exit distances of each ray through a closed mesh, as (N, P, 2) padded with NaN.

    Inside means a positive winding number along the ray (each crossing counts +1 entering against the
    outward normal, -1 leaving), so overlapping parts (skull pieces, a scanned ear that folds through itself)
    fill correctly where plain parity would punch holes. Hits closer than 1e-4 mm on one ray count once;
    rays start outside.
    """
    directions = np.broadcast_to(np.asarray(direction, float), origins.shape)
    locations, ray_index, tri_index = mesh.ray.intersects_location(origins, directions, multiple_hits=True)
    t = np.einsum("ij,ij->i", locations - origins[ray_index], directions[ray_index])
    sign = np.where(np.einsum("ij,ij->i", mesh.face_normals[tri_index], directions[ray_index]) < 0, 1, -1)
    order = np.lexsort((t, ray_index))
    ray_index, t, sign = ray_index[order], t[order], sign[order]
    keep = np.ones(len(t), bool)
    keep[1:] = ~((ray_index[1:] == ray_index[:-1]) & (np.diff(t) < _DUPLICATE_HIT_MM))
    ray_index, t, sign = ray_index[keep], t[keep], sign[keep]
    counts = np.bincount(ray_index, minlength=len(origins))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    winding = np.cumsum(sign) - np.concatenate([[0], np.cumsum(sign)])[start[ray_index]]
    before = winding - sign
    entry = (before <= 0) & (winding > 0)
    leave = (before > 0) & (winding <= 0)
    events = entry | leave
    ray_index, t, entry = ray_index[events], t[events], entry[events]
    counts = np.bincount(ray_index, minlength=len(origins))
    open_at_end = np.zeros(len(origins), bool)
    if len(t):
        last = np.cumsum(counts) - 1
        has = counts > 0
        open_at_end[has] = entry[last[has]]
    if open_at_end.any():  # a ray that grazes out without a recorded exit: drop its last entry
        drop = np.zeros(len(t), bool)
        drop[(np.cumsum(counts) - 1)[open_at_end]] = True
        ray_index, t = ray_index[~drop], t[~drop]
        counts = np.bincount(ray_index, minlength=len(origins))
    n_pairs = int(counts.max(initial=0)) // 2
    out = np.full((len(origins), max(n_pairs, 1), 2), np.nan)
    if len(t) == 0:
        return out
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(t)) - start[ray_index]
    out[ray_index, rank // 2, rank % 2] = t
    return out


def interval_coverage(intervals: np.ndarray, *, first_mm: float, step_mm: float, cells: int) -> np.ndarray:
    """Share of each of `cells` equal cells from `first_mm` that lies inside the (N, P, 2) NaN-padded intervals.

    Exact partial volume along the rays, in O(N x (P + cells)): each interval adds its two end ramps to a
    difference array, and a running sum along the ray gives the coverage.
    """
    steps = np.zeros((len(intervals), cells + 2), np.float32)
    valid = np.isfinite(intervals[:, :, 0])
    row = np.nonzero(valid)[0] * (cells + 2)
    ends = np.clip((intervals[valid] - first_mm) / step_mm, 0.0, cells)  # (M, 2) in cell units
    cell = np.floor(ends).astype(np.int64)
    frac = (ends - cell).astype(np.float32)
    flat = steps.reshape(-1)
    for column, sign in ((0, 1.0), (1, -1.0)):
        np.add.at(flat, row + cell[:, column], np.float32(sign) * (1.0 - frac[:, column]))
        np.add.at(flat, row + cell[:, column] + 1, np.float32(sign) * frac[:, column])
    np.cumsum(steps, axis=1, out=steps)
    coverage = steps[:, :cells]
    return np.clip(coverage, 0.0, 1.0, out=coverage)
