"""Face and skull surfaces from a CT and its masks: marching cubes on the HU values, in world millimetres.

Marching cubes runs on the Hounsfield units, not on the binary mask, so the surface falls between voxels where
the scan puts it (sub-voxel). The mask decides only what is meshed: a voxel the mask leaves out but whose HU is
above the level (a headrest touching the skin, a metal streak in the air) is pulled below it, and one inside
the mask below the level (a filled air cavity, a dark streak) is lifted above it, both to half-way between the
level and air, so the surface passes midway between such voxels and their neighbours. Big scans are averaged
down to `max_voxel_mm` first; the mesh is padded closed, wound outward, cut to its main component(s), Taubin
smoothed (no shrinkage) and decimated. When only the skull matters, `skull_surfaces` meshes the bone that
`segment_skull` finds on that averaged grid, and a rough skin (for the pose) from the head's ~1.5 mm blocks.
"""

from __future__ import annotations

import fast_simplification
import numpy as np
import trimesh
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from skimage.measure import marching_cubes

from facegen.data.scans.blocks import block_factors
from facegen.data.scans.segment import BONE_HU, SKIN_HU, HeadMasks, SkullMasks
from facegen.io.volume import Volume

AIR_HU = -1000.0
SKULL_COMPONENT_SHARE = 0.02
"""Skull pieces kept besides the largest (the mandible is a separate piece): at least this share of its faces."""
SKULL_TARGET_FACES = 200_000
_TAUBIN_LAMBDA, _TAUBIN_NU = 0.5, 0.53


def extract_surface(
    volume: Volume,
    mask: np.ndarray,
    *,
    level_hu: float,
    smoothing_iterations: int = 10,
    target_faces: int | None = 100_000,
    max_voxel_mm: float | None = 1.0,
    component_share: float | None = None,
) -> trimesh.Trimesh:
    """The closed surface of `mask` at `level_hu` in world mm, normals outward.

    `component_share` None keeps the largest connected piece only; a number keeps every piece with at least
    that share of the largest one's faces. Raises ValueError for an empty mask or one of the wrong shape.
    """
    mask = np.asarray(mask, bool)
    if mask.shape != volume.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the volume's {volume.shape}")
    box = _box(mask)
    if box is None:
        raise ValueError("the mask is empty: there is no surface to extract")
    field = _guided_field(volume.array[box], mask[box], level_hu)
    factors = block_factors(volume.spacing_mm, max_voxel_mm)
    field = _block_mean(field, factors)
    outside = np.float32(min(AIR_HU, level_hu - 1.0))
    field = np.pad(field, 1, constant_values=outside)
    vertices, faces, _, _ = marching_cubes(field, level=level_hu, allow_degenerate=False)
    start = np.array([s.start for s in box], float)
    index = start + (vertices - 1.0) * factors + (factors - 1) / 2.0
    mesh = trimesh.Trimesh(volume.index_to_world(index), faces, process=False)
    mesh = _main_components(mesh, component_share)
    _orient_outward(mesh)
    if smoothing_iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, lamb=_TAUBIN_LAMBDA, nu=_TAUBIN_NU, iterations=smoothing_iterations)
    if target_faces is not None and len(mesh.faces) > target_faces:
        mesh = _decimated(mesh, target_faces)
        _orient_outward(mesh)
    return mesh


def surfaces_from_ct(
    volume: Volume,
    masks: HeadMasks,
    *,
    skin_hu: float = SKIN_HU,
    bone_hu: float = BONE_HU,
    smoothing_iterations: int = 10,
    face_target_faces: int | None = 100_000,
    skull_target_faces: int | None = SKULL_TARGET_FACES,
    max_voxel_mm: float | None = 1.0,
) -> tuple[trimesh.Trimesh | None, trimesh.Trimesh]:
    """(face, skull): the skin of the cavity-filled head and the bone surface, both in world mm.

    The face is the largest piece of the head's surface (None for a dry skull, which has no skin); the skull
    keeps the mandible and any other piece of at least SKULL_COMPONENT_SHARE of the cranium.
    """
    face = None
    if masks.head is not None:
        face = extract_surface(
            volume,
            masks.head,
            level_hu=skin_hu,
            smoothing_iterations=smoothing_iterations,
            target_faces=face_target_faces,
            max_voxel_mm=max_voxel_mm,
        )
    skull = extract_surface(
        volume,
        masks.bone,
        level_hu=bone_hu,
        smoothing_iterations=smoothing_iterations,
        target_faces=skull_target_faces,
        max_voxel_mm=max_voxel_mm,
        component_share=SKULL_COMPONENT_SHARE,
    )
    return face, skull


def skull_surfaces(
    masks: SkullMasks,
    *,
    skin_hu: float = SKIN_HU,
    bone_hu: float = BONE_HU,
    smoothing_iterations: int = 10,
    skull_target_faces: int | None = SKULL_TARGET_FACES,
) -> tuple[trimesh.Trimesh | None, trimesh.Trimesh]:
    """(rough face, skull) from `segment_skull`'s masks, both in world mm: for when only the skull matters (a case).

    The skull is meshed as `surfaces_from_ct` meshes it, on the averaged grid the bone was found on; the face is
    the skin of the head's ~1.5 mm blocks, placed by their share of tissue: good for pinning the pose, not as a face
    (None for a dry skull).
    """
    face = None
    if masks.skin is not None and masks.head is not None:
        face = extract_surface(
            masks.skin,
            masks.head,
            level_hu=skin_hu,
            smoothing_iterations=smoothing_iterations,
            target_faces=None,
            max_voxel_mm=None,
        )
    skull = extract_surface(
        masks.grid,
        masks.bone,
        level_hu=bone_hu,
        smoothing_iterations=smoothing_iterations,
        target_faces=skull_target_faces,
        max_voxel_mm=None,
        component_share=SKULL_COMPONENT_SHARE,
    )
    return face, skull


def _box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box of the mask with one voxel to spare (for the clamped neighbours); None when empty."""
    box = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if len(present) == 0:
            return None
        box.append(slice(max(0, int(present[0]) - 1), min(mask.shape[axis], int(present[-1]) + 2)))
    return tuple(box)


def _guided_field(hu: np.ndarray, inside: np.ndarray, level: float) -> np.ndarray:
    """HU (float32) where the mask disagrees with the level moved to half-way between the level and air."""
    half = np.float32(0.5 * abs(level - AIR_HU))
    field = hu.astype(np.float32)
    above = field > np.float32(level)
    field[inside & ~above] = np.float32(level) + half
    field[~inside & above] = np.float32(level) - half
    return field


def _block_mean(field: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mean over blocks of `factors` voxels (a box filter and subsampling: anti-aliased); edges padded by copy."""
    if np.all(factors == 1):
        return field
    pad = [(0, (-n) % int(f)) for n, f in zip(field.shape, factors, strict=True)]
    if any(after for _, after in pad):
        field = np.pad(field, pad, mode="edge")
    shape = []
    for n, f in zip(field.shape, factors, strict=True):
        shape += [n // int(f), int(f)]
    return field.reshape(shape).mean(axis=(1, 3, 5), dtype=np.float32)


def _main_components(mesh: trimesh.Trimesh, share: float | None) -> trimesh.Trimesh:
    """The largest connected piece, or every piece with at least `share` of its faces."""
    labels = _face_components(np.asarray(mesh.faces))
    sizes = np.bincount(labels)
    keep = sizes == sizes.max() if share is None else sizes >= share * sizes.max()
    if keep.all():
        return mesh
    if share is None:
        keep[:] = False
        keep[np.argmax(sizes)] = True
    faces = np.flatnonzero(keep[labels])
    part = trimesh.Trimesh(mesh.vertices, mesh.faces[faces], process=False)
    part.remove_unreferenced_vertices()
    return part


def _face_components(faces: np.ndarray) -> np.ndarray:
    """Component label of each face, faces joined across edges that exactly two faces share.

    The same labels as trimesh's `connected_component_labels(face_adjacency)`, in a fraction of the time: the
    edges are keyed by one integer and sorted instead of hashed row by row.
    """
    count = len(faces)
    start, end = faces.astype(np.int64), np.roll(faces, -1, axis=1).astype(np.int64)  # edges (0 1), (1 2), (2 0)
    keys = (np.minimum(start, end) * (int(faces.max(initial=0)) + 1) + np.maximum(start, end)).ravel()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    pairs = starts[sizes == 2]
    first, second = order[pairs] // 3, order[pairs + 1] // 3
    joined = first != second
    graph = csr_matrix((np.ones(int(joined.sum()), np.int8), (first[joined], second[joined])), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def _orient_outward(mesh: trimesh.Trimesh) -> None:
    """Flip the winding when the enclosed volume comes out negative (normals pointing inward)."""
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    v0, v1, v2 = (vertices[faces[:, n]] for n in range(3))
    if np.einsum("ij,ij->", v0, np.cross(v1, v2)) < 0:
        mesh.invert()


def _decimated(mesh: trimesh.Trimesh, target_faces: int) -> trimesh.Trimesh:
    """Quadric decimation to about `target_faces` faces."""
    reduction = 1.0 - target_faces / len(mesh.faces)
    points, faces = fast_simplification.simplify(
        np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64), target_reduction=reduction
    )
    return trimesh.Trimesh(points, faces, process=False)
