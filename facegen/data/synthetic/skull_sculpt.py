"""Sculpt a template skull inside a face: bone at the published tissue depth, then the skull's openings.

The outer bone surface lies at the mean soft-tissue depth below the skin (a field interpolated from the
landmark table); the bone is a shell of cortical thickness below it. Anatomy the skin does not show is then
cut or added: orbits (around the eyeballs, Stephan & Davidson 2008), the nasal aperture with nasal bones
above it and the anterior nasal spine below, a bony midface under the soft nose, the dental arches split
into teeth, the mandible separated from the cranium (occlusal plane, ramus, sigmoid notch), a zygomatic arch
standing over the temporal fossa, and no bone below the mandible or in the neck.
Everything is done once, in the ICT model's frame (mm), on a voxel grid, and meshed by marching cubes.
"""

from __future__ import annotations

from dataclasses import dataclass

import fast_simplification
import numpy as np
import trimesh
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure

from facegen.data.representations.voxel_grid import GridSpec, voxelize

BONE_THICKNESS_MM = 5.0
MIN_CLEARANCE_MM = 1.0
CLOSING_RADIUS_MM = 10.0
EYEBALL_ABOVE_ORBIT_CENTRE_MM = 1.4  # Stephan & Davidson 2008
EYEBALL_LATERAL_OF_ORBIT_CENTRE_MM = 2.3
ORBIT_HALF_SIZE_MM = (20.0, 17.0, 24.0)  # orbit breadth ~40, height ~34 (cfr-facts section 5)


@dataclass(frozen=True)
class SculptedSkull:
    """Bone and teeth meshes (ICT frame, mm) and the named points the sculpting used."""

    bone: trimesh.Trimesh
    teeth: trimesh.Trimesh
    points: dict[str, np.ndarray]


def _grid(face: trimesh.Trimesh, voxel_mm: float) -> GridSpec:
    lo, hi = face.bounds[0] - 4.0, face.bounds[1] + 4.0
    shape = tuple(int(np.ceil(s / voxel_mm)) for s in hi - lo)
    extent = tuple(float(n * voxel_mm) for n in shape)
    return GridSpec(shape=shape, extent_mm=extent, centre_mm=tuple((lo + hi) / 2))


def _coords(spec: GridSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.meshgrid(*(spec.axis_centres(a) for a in range(3)), indexing="ij", sparse=True))


def _close_mouth_and_nostrils(inside: np.ndarray, spec: GridSpec, p: dict[str, np.ndarray]) -> None:
    """Fill the lip line and the nostrils (morphological closing), in place, so that depth below the
    skin is measured from the lips' and the nose's front rather than from their grooves and openings."""
    lo = np.array([-30.0, p["occlusal_y"] - 28.0, p["nasospinale"][2] - 15.0])
    hi = np.array([30.0, p["nasospinale"][1] + 12.0, p["nasospinale"][2] + 30.0])
    a = np.clip(np.floor((lo - spec.origin_mm) / spec.spacing_mm).astype(int), 0, None)
    b = np.minimum(np.ceil((hi - spec.origin_mm) / spec.spacing_mm).astype(int), spec.shape)
    box = tuple(slice(i, j) for i, j in zip(a, b, strict=True))
    r = int(round(CLOSING_RADIUS_MM / spec.spacing_mm.min()))
    ball = np.linalg.norm(np.mgrid[-r : r + 1, -r : r + 1, -r : r + 1], axis=0) <= r
    inside[box] |= ndimage.binary_closing(inside[box], structure=ball, border_value=0)


def _bone_shell(
    face: trimesh.Trimesh, tissue_mm: np.ndarray, spec: GridSpec, p: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Voxels between depth T and T + thickness below the skin, T from the nearest skin vertex.

    Depth is measured with lip line and nostrils filled; no bone comes closer than `MIN_CLEARANCE_MM` to the
    actual skin. Returns the shell and the actual depth below the skin (mm).
    """
    inside = voxelize(face, spec).occupancy.astype(bool)
    skin_depth = ndimage.distance_transform_edt(inside, sampling=spec.spacing_mm)
    _close_mouth_and_nostrils(inside, spec, p)
    depth = ndimage.distance_transform_edt(inside, sampling=spec.spacing_mm)
    candidates = inside & (depth > 0.5) & (depth < tissue_mm.max() + BONE_THICKNESS_MM + 1)
    idx = np.nonzero(candidates)
    points = spec.origin_mm + np.stack(idx, axis=1) * spec.spacing_mm
    _, nearest = cKDTree(face.vertices).query(points, workers=-1)
    t = tissue_mm[nearest]
    d = depth[idx]
    shell = np.zeros_like(inside)
    keep = (d >= t) & (d <= t + BONE_THICKNESS_MM) & (skin_depth[idx] >= MIN_CLEARANCE_MM)
    shell[tuple(i[keep] for i in idx)] = True
    return shell, skin_depth


def _ellipsoid(x, y, z, centre, radii) -> np.ndarray:
    return ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((z - centre[2]) / radii[2]) ** 2


def _orbits(x, y, z, p: dict[str, np.ndarray]) -> np.ndarray:
    """Both orbits: an ellipsoid around each orbit centre, open to the front."""
    cut = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), bool)
    for side in ("l", "r"):
        c = p[f"orbit_centre_{side}"]
        rx, ry, rz = ORBIT_HALF_SIZE_MM
        cut |= _ellipsoid(x, y, z, c, (rx, ry, rz)) < 1.0
        cut |= (((x - c[0]) / (rx * 0.92)) ** 2 + ((y - c[1]) / (ry * 0.92)) ** 2 < 1.0) & (z > c[2])
    return cut


def _pear(x, y, p: dict[str, np.ndarray]) -> np.ndarray:
    """The nasal aperture outline in the frontal plane: narrow under the nasal bones, widest low down."""
    top, bottom = p["rhinion_bone"][1] - 4.0, p["nasospinale"][1]
    s = np.clip((top - y) / (top - bottom), 0.0, 1.0)  # 0 at the top, 1 at the bottom
    half_width = 12.5 * np.sin(np.pi * (0.15 + 0.75 * s)) ** 0.7
    return (np.abs(x) < half_width) & (y < top) & (y > bottom)


def _nose_and_aperture(x, y, z, p: dict[str, np.ndarray]) -> np.ndarray:
    """Nasal aperture through to the nasal cavity (the anterior nasal spine is added separately)."""
    return _pear(x, y, p) & (z > p["nasospinale"][2] - 45.0)


def _teeth_zone(x, y, z, p: dict[str, np.ndarray]) -> np.ndarray:
    """Where the dental arches lie: between the gum lines, in front of the second molars."""
    ug, lg = p["upper_gum_y"], p["lower_gum_y"]
    return (y < ug) & (y > lg) & (z > p["molar_end_z"]) & (np.abs(x) < 48.0)


def _teeth_gaps(x, y, z, p: dict[str, np.ndarray]) -> np.ndarray:
    """Occlusal slit, gum lines and gaps between neighbouring teeth (planes fanned around the arch)."""
    gaps = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), bool)
    gaps |= np.abs(y - p["occlusal_y"]) < 1.2
    gaps |= np.abs(y - p["upper_gum_y"]) < 1.0
    gaps |= np.abs(y - p["lower_gum_y"]) < 1.0
    angle = np.degrees(np.arctan2(x, z - p["arch_centre_z"]))
    gaps |= np.abs(((angle + 5.5) % 11.0) - 5.5) * np.hypot(x, z - p["arch_centre_z"]) * np.pi / 180 < 0.9
    gaps |= np.abs(z - p["molar_end_z"]) < 1.0
    return gaps


def _mandible_cuts(x, y, z, p: dict[str, np.ndarray]) -> np.ndarray:
    """Free the mandible (occlusal line, ramus front, sigmoid notch and joint space) and clear bone below it.

    The ramus stands between `ramus_back_z` and `ramus_front_z`; behind it, on the side of the head, no bone
    below the joint; under the mandible's lower border (menton to gonion) and the skull base, none at all.
    """
    lateral = np.abs(x)
    front, back, occl, notch, arch = (
        p[k] for k in ("ramus_front_z", "ramus_back_z", "occlusal_y", "notch_y", "arch_bottom_y")
    )
    cut = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), bool)
    cut |= (np.abs(y - occl) < 1.2) & (z > front - 1.5)
    cut |= (np.abs(z - front) < 2.0) & (y > occl) & (y < arch) & (lateral > 30)
    cut |= (y > notch) & (y < arch) & (z > back - 8.0) & (z < front + 2.0) & (lateral > 38)
    cut |= (y < notch) & (z < back) & (lateral > 38)
    menton, gonion = p["menton_bone"], p["gonion_bone"]
    s = np.clip((z - gonion[2]) / (menton[2] - gonion[2]), 0.0, 1.0)
    border = gonion[1] + s * (menton[1] - gonion[1])
    cut |= (y < border - 1.0) & (z > back - 6)
    cut |= (y < p["skull_base_y"]) & (z <= back - 6)
    return cut


def _anterior_nasal_spine(x, y, z, p: dict[str, np.ndarray]) -> np.ndarray:
    """A small forward-pointing spine at the bottom of the aperture."""
    tip = p["nasospinale"]
    length = 9.0
    s = np.clip((z - (tip[2] - length)) / length, 0.0, 1.0)
    radius = 2.8 * (1.0 - s) + 0.6
    return (np.hypot(x - tip[0], y - tip[1]) < radius) & (z > tip[2] - length) & (z < tip[2])


def _mesh(mask: np.ndarray, spec: GridSpec, target_faces: int) -> trimesh.Trimesh:
    smooth = ndimage.gaussian_filter(mask.astype(np.float32), 0.8)
    verts, faces, _, _ = measure.marching_cubes(smooth, 0.5, spacing=tuple(spec.spacing_mm))
    verts = verts + spec.origin_mm
    if len(faces) > target_faces:
        verts, faces = fast_simplification.simplify(
            verts.astype(np.float32), faces.astype(np.int32), 1.0 - target_faces / len(faces)
        )
    mesh = trimesh.Trimesh(verts.astype(np.float64), faces.astype(np.int64), process=True)
    mesh.fix_normals(multibody=True)
    return mesh


def sculpt_skull(
    face: trimesh.Trimesh,
    tissue_mm: np.ndarray,
    points: dict[str, np.ndarray],
    *,
    voxel_mm: float = 1.0,
    target_faces: int = 90_000,
) -> SculptedSkull:
    """Build bone and teeth inside `face` (ICT frame) given per-vertex mean tissue depth and anatomy points."""
    spec = _grid(face, voxel_mm)
    shell, skin_depth = _bone_shell(face, tissue_mm, spec, points)
    x, y, z = _coords(spec)
    shell &= ~_orbits(x, y, z, points)
    shell &= ~_nose_and_aperture(x, y, z, points)
    shell |= _anterior_nasal_spine(x, y, z, points) & (skin_depth > MIN_CLEARANCE_MM)
    shell &= ~_mandible_cuts(x, y, z, points)
    zone = _teeth_zone(x, y, z, points)
    teeth = shell & zone & ~_teeth_gaps(x, y, z, points)
    bone = shell & ~zone
    bone = _largest_components(bone, keep=6, min_voxels=100)  # cranium, mandible, nasal bones if detached
    teeth = _largest_components(teeth, keep=32)
    return SculptedSkull(_mesh(bone, spec, target_faces), _mesh(teeth, spec, target_faces // 6), points)


def _largest_components(mask: np.ndarray, *, keep: int, min_voxels: int = 20) -> np.ndarray:
    """Drop specks: keep the `keep` largest connected pieces of at least `min_voxels` voxels."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1][:keep]
    good = [i + 1 for i in order if sizes[i] >= min_voxels]
    return np.isin(labels, good)
