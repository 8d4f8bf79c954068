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


def inside_intervals(
    mesh: trimesh.Trimesh, origins: np.ndarray, direction: np.ndarray, *, rule: str = "winding"
) -> np.ndarray:
    """Entry/exit distances of each ray through a closed mesh, as (N, P, 2) padded with NaN.

    `rule="winding"`: inside where the winding number along the ray is positive (each crossing counts +1
    entering against the outward normal, -1 leaving), so overlapping parts (skull pieces, a scanned ear that
    folds through itself) fill correctly. `rule="parity"`: inside after an odd number of crossings, which
    ignores face orientation. Hits closer than 1e-4 mm on one ray count once; rays start outside.
    """
    if rule not in ("winding", "parity"):
        raise ValueError(f"unknown inside rule {rule!r}; use 'winding' or 'parity'")
    directions = np.broadcast_to(np.asarray(direction, float), origins.shape)
    locations, ray_index, tri_index = mesh.ray.intersects_location(origins, directions, multiple_hits=True)
    t = np.einsum("ij,ij->i", locations - origins[ray_index], directions[ray_index])
    sign = np.where(np.einsum("ij,ij->i", mesh.face_normals[tri_index], directions[ray_index]) < 0, 1, -1)
    if rule == "parity":
        sign = np.ones_like(sign)
    order = np.lexsort((t, ray_index))
    ray_index, t, sign = ray_index[order], t[order], sign[order]
    keep = np.ones(len(t), bool)
    keep[1:] = ~((ray_index[1:] == ray_index[:-1]) & (np.diff(t) < _DUPLICATE_HIT_MM))
    ray_index, t, sign = ray_index[keep], t[keep], sign[keep]
    counts = np.bincount(ray_index, minlength=len(origins))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    winding = np.cumsum(sign) - np.concatenate([[0], np.cumsum(sign)])[start[ray_index]]
    if rule == "parity":
        winding = winding % 2
        sign = np.where(winding == 1, 1, -1)
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


def coverage_along_rays(intervals: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Share of each cell [b_k, b_k+1) that lies inside, per ray: (N, len(boundaries) - 1) in [0, 1]."""
    covered = np.zeros((intervals.shape[0], len(boundaries)))
    for p in range(intervals.shape[1]):
        entry, exit_ = intervals[:, p, 0:1], intervals[:, p, 1:2]
        valid = np.isfinite(entry)
        span = np.where(valid, exit_ - entry, 0.0)
        covered += np.where(valid, np.clip(boundaries[None, :] - np.nan_to_num(entry), 0.0, span), 0.0)
    return np.diff(covered, axis=1) / np.diff(boundaries)[None, :]
