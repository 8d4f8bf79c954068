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

    Hits closer than 1e-4 mm on one ray (a ray through a shared edge) count once; the rays start outside.
    """
    directions = np.broadcast_to(np.asarray(direction, float), origins.shape)
    locations, ray_index, _ = mesh.ray.intersects_location(origins, directions, multiple_hits=True)
    t = np.einsum("ij,ij->i", locations - origins[ray_index], directions[ray_index])
    order = np.lexsort((t, ray_index))
    ray_index, t = ray_index[order], t[order]
    keep = np.ones(len(t), bool)
    keep[1:] = ~((ray_index[1:] == ray_index[:-1]) & (np.diff(t) < _DUPLICATE_HIT_MM))
    ray_index, t = ray_index[keep], t[keep]
    counts = np.bincount(ray_index, minlength=len(origins))
    odd = counts % 2 == 1  # grazing hits: drop the last one so every entry has an exit
    if odd.any():
        last = np.cumsum(counts) - 1
        drop = np.zeros(len(t), bool)
        drop[last[odd]] = True
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


def coverage_along_rays(intervals: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Share of each cell [b_k, b_k+1) that lies inside, per ray: (N, len(boundaries) - 1) in [0, 1]."""
    covered = np.zeros((intervals.shape[0], len(boundaries)))
    for p in range(intervals.shape[1]):
        entry, exit_ = intervals[:, p, 0:1], intervals[:, p, 1:2]
        valid = np.isfinite(entry)
        span = np.where(valid, exit_ - entry, 0.0)
        covered += np.where(valid, np.clip(boundaries[None, :] - np.nan_to_num(entry), 0.0, span), 0.0)
    return np.diff(covered, axis=1) / np.diff(boundaries)[None, :]
