"""A reconstructed face as a 3D mesh: from a frontal depth map, back into the scan's coordinates, to files.

The mesh is the surface the depth map shows (a height field seen from the front), so it has no back or
sides; it is meant to be looked at and overlaid on the CT, not measured for volume. Files are written
atomically and byte-for-byte the same for the same mesh; each names its frame and units in its header (PLY
comment, OBJ comment, STL header, glTF asset extras), with 3D Slicer's `SPACE=` tag for a scan frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from trimesh.exchange.gltf import export_glb
from trimesh.exchange.obj import export_obj
from trimesh.exchange.ply import export_ply
from trimesh.exchange.stl import export_stl

from facegen.data.pose import RigidTransform
from facegen.data.representations.bone_envelope import ball_cap
from facegen.data.representations.depth_map import DepthView
from facegen.data.scans.scan import LPS_TO_PATIENT, UNITS, Space
from facegen.io.atomic import write_bytes_atomic
from facegen.io.volume import PATIENT_TO_RAS

MESH_FORMATS = ("ply", "obj", "stl", "glb")
"""What `export_mesh` writes: binary PLY, OBJ, binary STL (all mm) and GLB (metres, as glTF requires)."""
GLB_SCALE = 1e-3
"""glTF units are metres; the other formats keep the project's mm."""
GLB_UNITS = "m"
STL_HEADER_BYTES = 80


def depth_map_mesh(
    depth_mm: np.ndarray,
    mask: np.ndarray,
    view: DepthView,
    *,
    max_edge_jump_mm: float = 8.0,
    min_component_faces: int | None = None,
) -> trimesh.Trimesh:
    """The triangle mesh of the surface a frontal depth map shows, in the canonical frame (mm), facing +z.

    One vertex per pixel at (x, y, depth), in row-major pixel order; two triangles per 2 x 2 block of masked
    pixels, split along the diagonal with the smaller depth change. Triangles with an edge spanning more than
    `max_edge_jump_mm` of depth (a silhouette: the nose's side, the chin over the neck) are dropped. Only the
    largest connected piece is kept, or, with `min_component_faces`, every piece of at least that many
    triangles; vertices no kept triangle uses are dropped.
    """
    depth = np.asarray(depth_mm, dtype=np.float64)
    mask = np.asarray(mask)
    if depth.ndim != 2 or mask.shape != depth.shape:
        raise ValueError(f"depth map {depth.shape} and mask {mask.shape} must be 2D arrays of the same shape")
    if depth.shape != tuple(view.shape):
        raise ValueError(f"depth map shape {depth.shape} does not match the view's shape {tuple(view.shape)}")
    if not max_edge_jump_mm > 0:
        raise ValueError(f"max_edge_jump_mm must be positive, got {max_edge_jump_mm}")
    if min_component_faces is not None and min_component_faces < 1:
        raise ValueError(f"min_component_faces must be at least 1, got {min_component_faces}")
    mask = mask.astype(bool)
    if not mask.any():
        raise ValueError("the mask is empty: the depth map shows no surface to mesh")
    if not np.isfinite(depth[mask]).all():
        raise ValueError("the depth map has non-finite values inside its mask")

    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    x, y = view.pixel_centres()
    rows, cols = np.nonzero(mask)  # row-major: the vertex order
    vertices = np.stack([x[cols], y[rows], depth[rows, cols]], axis=1)

    # corners of every 2 x 2 block: a top-left, b top-right, c bottom-left, d bottom-right (rows run down, -y)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    full = (a >= 0) & (b >= 0) & (c >= 0) & (d >= 0)
    a, b, c, d = a[full], b[full], c[full], d[full]
    if len(a) == 0:
        raise ValueError("the mask holds no 2x2 block of pixels: there is no surface to triangulate")
    z = vertices[:, 2]
    # counter-clockwise seen from +z (x right, y up), so face normals point to the front
    along_bc = np.abs(z[b] - z[c]) <= np.abs(z[a] - z[d])
    first = np.where(along_bc[:, None], np.stack([a, c, b], 1), np.stack([a, c, d], 1))
    second = np.where(along_bc[:, None], np.stack([b, c, d], 1), np.stack([a, d, b], 1))
    faces = np.stack([first, second], axis=1).reshape(-1, 3)
    fz = z[faces]
    jump = np.max(np.abs(fz - np.roll(fz, 1, axis=1)), axis=1)
    faces = faces[jump <= max_edge_jump_mm]
    if len(faces) == 0:
        raise ValueError(f"every triangle spans a depth jump over {max_edge_jump_mm} mm: no smooth surface is left")

    faces = _kept_components(faces, len(vertices), min_component_faces)
    used = np.zeros(len(vertices), bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used) - 1
    return trimesh.Trimesh(vertices[used], remap[faces], process=False)


FRONTAL_SLOPE_DEG = 72.0
"""A face pixel counts as seen from the front while its surface turns less than this from the view: beyond it (the
sides of the head, towards the ears) a frontal depth map samples the surface too sparsely to show it whole."""


SKIN_PIT_MM = 10.0
"""Pits in a frontal face depth map narrower than twice this (the nostrils, seen from the front as holes into the
nose, 8-12 mm across) are lidded for the case's meshes: skin seen from the front has no such holes."""
SKIN_LID_RADIUS_MM = 12.0
"""The lid is the surface a ball of this radius rolled over the face leaves (a grey closing by a spherical cap): a
smooth dome over a nostril. A flat disc (the closing used before) lids it with flat steps that the 2 mm pixels turn
into speckles across the nose tip."""


def lidded_skin_pits(depth_mm: np.ndarray, mask: np.ndarray, view: DepthView, *, radius_mm: float = SKIN_PIT_MM,
                     ball_mm: float = SKIN_LID_RADIUS_MM) -> np.ndarray:  # fmt: skip
    """(H, W) the face depth with its narrow pits lidded (a grey closing by a ball of radius `ball_mm`, reaching
    `radius_mm`, over the face's pixels): the face only comes forward, never nearer the bone; pixels outside `mask`
    are left as they are."""
    from scipy import ndimage

    reach, cap = ball_cap(ball_mm, radius_mm, view.pixel_mm)  # the ball's front, <= 0
    depth = np.asarray(depth_mm, np.float64)
    inside = np.where(mask, depth, -np.inf)  # the face's own pixels only: no lid reaches across its outline
    dilated = ndimage.grey_dilation(inside, footprint=reach, structure=cap, mode="constant", cval=-np.inf)
    closed = ndimage.grey_erosion(np.where(np.isfinite(dilated), dilated, np.inf), footprint=reach, structure=cap,
                                  mode="constant", cval=np.inf)  # fmt: skip
    return np.where(mask, np.maximum(depth, np.where(np.isfinite(closed), closed, depth)), depth).astype(np.float32)


def frontal_mask(depth_mm: np.ndarray, mask: np.ndarray, view: DepthView, *,
                 max_slope_deg: float = FRONTAL_SLOPE_DEG) -> np.ndarray:  # fmt: skip
    """(H, W) the pixels of one frontal surface: slope under `max_slope_deg`, the largest connected piece, its holes
    filled and its outline smoothed (an opening by a 2-pixel disc), so that a face mesh has a clean edge."""
    from scipy import ndimage

    depth = np.where(mask, np.asarray(depth_mm, np.float64), np.nan)
    d_row, d_col = np.gradient(depth, view.pixel_mm)
    steep = ~(np.hypot(d_row, d_col) < np.tan(np.radians(max_slope_deg)))  # NaN (edge of the mask) counts as steep
    frontal = mask & ~steep
    labels, count = ndimage.label(frontal)
    if count == 0:
        return frontal
    largest = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    disc = np.hypot(*np.mgrid[-2:3, -2:3]) <= 2.0
    return ndimage.binary_opening(ndimage.binary_fill_holes(largest), structure=disc) & mask


OUTLINE_SMOOTHING_STEPS = 12
"""Passes of the outline's smoothing (`smoothed_outline`): a frontal mesh's edge follows its pixels in 2 mm steps,
which renders as a torn, saw-toothed silhouette; twelve Taubin passes round it off without shrinking the face."""


def smoothed_outline(mesh: trimesh.Trimesh, steps: int = OUTLINE_SMOOTHING_STEPS) -> trimesh.Trimesh:
    """A copy of the mesh with its open outline smoothed along itself (Taubin lambda/mu passes over the boundary
    vertices only, each moved toward the mean of its two neighbours on the outline): no pixel stair-steps at the
    edge; inner vertices stay where they are."""
    edges = mesh.edges_sorted
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    outline = unique[counts == 1]
    vertices = np.asarray(mesh.vertices, np.float64).copy()
    if len(outline) == 0 or steps < 1:
        return trimesh.Trimesh(vertices, mesh.faces.copy(), process=False)
    n = len(vertices)
    degree = np.bincount(outline.ravel(), minlength=n)
    ends = np.concatenate([outline, outline[:, ::-1]])
    ends = ends[degree[ends[:, 0]] == 2]  # vertices where the outline pinches (degree 4) stay put
    moving = np.unique(ends[:, 0])
    for step in range(2 * steps):
        factor = 0.5 if step % 2 == 0 else -0.53  # Taubin: smooth, then inflate back (no shrinking)
        total = np.zeros_like(vertices)
        np.add.at(total, ends[:, 0], vertices[ends[:, 1]])
        target = total[moving] / 2.0
        vertices[moving] += factor * (target - vertices[moving])
    return trimesh.Trimesh(vertices, mesh.faces.copy(), process=False)


def _kept_components(faces: np.ndarray, n_vertices: int, min_faces: int | None) -> np.ndarray:
    """Faces of the largest edge-connected piece (ties: the one met first), or of every piece >= min_faces."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_vertices, n_vertices))
    _, labels = connected_components(graph, directed=False)
    face_label = labels[faces[:, 0]]
    counts = np.bincount(face_label)
    keep = counts >= min_faces if min_faces is not None else np.arange(len(counts)) == np.argmax(counts)
    kept = faces[keep[face_label]]
    if len(kept) == 0:
        raise ValueError(f"no connected piece of the surface has {min_faces} triangles (largest: {counts.max()})")
    return kept


def to_scan_coordinates(
    mesh: trimesh.Trimesh,
    to_canonical: RigidTransform,
    *,
    patient_axes: Literal["LPS", "RAS"] | None = None,
) -> trimesh.Trimesh:
    """The mesh moved from the canonical frame to the scan frame, the input's own world frame (mm).

    `to_canonical` maps patient coordinates (the scan's points on facegen's axes: x left, y superior,
    z anterior; see `facegen.data.scans.scan`) to canonical. `patient_axes` turns them onto the scan frame's
    axes: "LPS" for DICOM patient and MHA/NRRD world coordinates (what 3D Slicer assumes for model files),
    "RAS" for NIfTI world coordinates, None for a skull mesh, whose own coordinates (in mm, after any
    --mesh-units scaling) are its patient coordinates. `ScanFrame.axes` says which.
    """
    inverse = to_canonical.inverse()
    vertices = inverse.apply(np.asarray(mesh.vertices, dtype=np.float64))
    linear = inverse.rotation
    if patient_axes == "LPS":
        vertices, linear = vertices @ LPS_TO_PATIENT, LPS_TO_PATIENT.T @ linear
    elif patient_axes == "RAS":
        vertices, linear = vertices @ PATIENT_TO_RAS.T, PATIENT_TO_RAS @ linear
    elif patient_axes is not None:
        raise ValueError(f"patient_axes must be 'LPS', 'RAS' or None, got {patient_axes!r}")
    faces = np.asarray(mesh.faces)
    if np.linalg.det(linear) < 0:  # a reflection would turn the surface inside out: keep normals outward
        faces = faces[:, ::-1]
    return trimesh.Trimesh(vertices, faces.copy(), process=False)


def mesh_header(frame: str, space: Space | None, units: str = UNITS) -> str:
    """The one-line header naming a mesh file's frame and units; `space` adds 3D Slicer's SPACE tag."""
    text = f"facegen mesh; frame: {frame}; units: {units}" + (f"; SPACE={space}" if space else "")
    if "\n" in text or not text.isascii():
        raise ValueError(f"a mesh header must be one line of ASCII, got {text!r}")
    return text


def ply_with_comment(data: bytes, comment: str) -> bytes:
    """PLY bytes with a `comment` line added to the header, beside trimesh's own, before the first element."""
    at = data.index(b"\nelement ") + 1
    return data[:at] + f"comment {comment}\n".encode("ascii") + data[at:]


def mesh_file_bytes(
    mesh: trimesh.Trimesh, file_type: str, *, name: str = "face", frame: str | None = None, space: Space | None = None
) -> bytes:
    """One mesh file's bytes; the same vertices and faces give the same bytes whatever the mesh has cached.

    With `frame` (its name) the header says the frame and units, and `space` tags it for 3D Slicer.
    """
    # a bare copy: trimesh's exporters add normals or colours depending on what the mesh has cached
    bare = trimesh.Trimesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64), process=False)
    header = None if frame is None else mesh_header(frame, space, GLB_UNITS if file_type == "glb" else UNITS)
    if file_type == "ply":
        data = export_ply(bare, encoding="binary", vertex_normal=True, include_attributes=False)
        return data if header is None else ply_with_comment(data, header)
    if file_type == "obj":
        text = export_obj(bare, include_normals=True, include_color=False, include_texture=False,
                          **({} if header is None else {"header": header}))  # fmt: skip
        return text.encode("ascii")
    if file_type == "stl":
        data = export_stl(bare)
        if header is None:
            return data
        # SPACE first: 80 bytes may cut a long frame name, never the tag 3D Slicer reads
        short = (f"SPACE={space} " if space else "") + header.split("; SPACE=")[0]
        return short.encode("ascii")[:STL_HEADER_BYTES].ljust(STL_HEADER_BYTES, b"\0") + data[STL_HEADER_BYTES:]
    if file_type == "glb":
        bare.apply_scale(GLB_SCALE)

        def named(tree: dict) -> None:
            tree["asset"]["extras"] = {"facegen": header}

        return export_glb(trimesh.Scene(geometry={name: bare}), include_normals=True,
                          tree_postprocessor=None if header is None else named)  # fmt: skip
    raise ValueError(f"unknown mesh format {file_type!r}; use one of {', '.join(MESH_FORMATS)}")


def export_mesh(mesh: trimesh.Trimesh, folder: Path, stem: str) -> dict[str, Path]:
    """Write `stem`.ply/.obj/.stl/.glb into `folder` atomically and deterministically; paths by format.

    PLY, OBJ and STL hold mm; GLB holds metres, as the glTF standard says (viewers would show a mm head
    1000 times too large).
    """
    if len(mesh.faces) == 0:
        raise ValueError("the mesh has no triangles: nothing to export")
    if not stem or Path(stem).name != stem:
        raise ValueError(f"stem {stem!r} must be a plain file name without folders")
    paths = {}
    for file_type in MESH_FORMATS:
        path = Path(folder) / f"{stem}.{file_type}"
        write_bytes_atomic(path, mesh_file_bytes(mesh, file_type, name=stem))
        paths[file_type] = path
    return paths
