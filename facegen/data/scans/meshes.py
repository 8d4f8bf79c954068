"""Read a skull surface (STL, PLY, OBJ) from a laboratory scanner or photogrammetry, with its checks.

A skull mesh has no header that says its units or orientation: the size says the units (a skull is about
180-220 mm long), and orientation comes from the alignment, which tries every way round. Only the axes'
anatomical names may be tagged: 3D Slicer writes `SPACE=RAS` or `SPACE=LPS` into the header of its mesh files.
"""

from __future__ import annotations

from pathlib import Path

import fast_simplification
import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from facegen.data.scans.scan import ScanError, Space

MESH_SUFFIXES = (".stl", ".ply", ".obj")
SKULL_SIZE_MM = (120.0, 320.0)
"""Plausible largest extent of a skull (with or without mandible) in mm."""
MIN_PART_SHARE = 0.002
"""Separate pieces (a mandible, each tooth) are kept when their area is at least this share of the largest."""
UNIT_SCALES = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4}
HEADER_BYTES = 4096
"""The start of a mesh file searched for a SPACE tag (it lies in STL's 80-byte header, PLY's or OBJ's comments)."""
MAX_FACES = 400_000
"""A denser mesh (a scanner at 0.5 mm: millions of triangles) is decimated to this many first: the pose and the
case need no more (about 1 mm triangles on a skull), and every later step runs in a fraction of the time."""
MAX_OPEN_EDGE_SHARE = 0.05
"""A scanned skull may have small holes; more open edges than this and inside/outside is undefined."""


def _units_hint(extent: float, units: str) -> str:
    """Which unit would make this extent (in the file's numbers) a skull, if any."""
    lo, hi = SKULL_SIZE_MM
    for unit, scale in UNIT_SCALES.items():
        if unit != units and lo <= extent * scale <= hi:
            return f"it looks like {unit}: pass --mesh-units {unit} (a skull {extent * scale:.0f} mm across)"
    return f"no unit makes it a skull's size: check that the file holds a whole skull (given in {units})"


def _decimated(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    """The surface simplified (quadric decimation) to about `faces` triangles."""
    vertices, triangles = fast_simplification.simplify(
        np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32), 1.0 - faces / len(mesh.faces)
    )
    return trimesh.Trimesh(vertices.astype(float), triangles)


def _without_specks(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The mesh less its small separate pieces (scanner noise, loose fragments): cranium, mandible and teeth stay.

    Pieces are the connected components of the triangles sharing vertices, weighed by area (no sub-meshes are
    built: a scanner's millions of triangles split in well under a second)."""
    faces = np.asarray(mesh.faces)
    n = len(mesh.vertices)
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    if count == 1:
        return mesh
    piece = labels[faces[:, 0]]
    area = np.bincount(piece, weights=mesh.area_faces, minlength=count)
    kept = mesh.copy()
    kept.update_faces(area[piece] >= MIN_PART_SHARE * area.max())
    kept.remove_unreferenced_vertices()
    return kept


def read_skull_mesh(path: Path | str, *, units: str = "mm") -> trimesh.Trimesh:
    """A skull mesh in mm without loose specks, decimated when very dense, checked for size and closure."""
    path = Path(path)
    if not path.exists():
        raise ScanError(path, "no such file")
    if units not in UNIT_SCALES:
        raise ScanError(path, f"unknown mesh units {units!r}", f"use one of {', '.join(UNIT_SCALES)}")
    try:
        mesh = trimesh.load(path, force="mesh", process=True)
    except Exception as exc:  # trimesh raises many types for broken files
        raise ScanError(path, f"unreadable mesh ({type(exc).__name__})", "check that the file is complete") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ScanError(path, "the mesh is empty (no triangles)", "export the skull surface again")
    if len(mesh.faces) > MAX_FACES:
        mesh = _decimated(mesh, MAX_FACES)
    mesh.apply_scale(UNIT_SCALES[units])
    mesh = _without_specks(mesh)
    extent = float(np.max(mesh.extents))
    lo, hi = SKULL_SIZE_MM
    if not lo <= extent <= hi:
        found = extent / UNIT_SCALES[units]
        raise ScanError(
            path,
            f"wrong units or not a skull: the mesh is {found:.4g} {units} across, and a skull is {lo:g}-{hi:g} mm",
            _units_hint(found, units),
        )
    edges = trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1)
    open_share = len(edges) / max(len(mesh.edges_sorted), 1)
    if open_share > MAX_OPEN_EDGE_SHARE:
        raise ScanError(
            path,
            f"the mesh is not closed enough ({open_share:.0%} of its edges border a hole)",
            "fill the holes (e.g. in MeshLab: Close Holes) or export a watertight surface",
        )
    trimesh.repair.fix_normals(mesh)
    if mesh.volume < 0:  # wound inside out (normals into the bone): fix_normals turns only closed meshes round
        mesh.invert()
    return mesh


def mesh_space(path: Path | str) -> Space | None:
    """The anatomical space a mesh file's header tags (3D Slicer's `SPACE=RAS` / `SPACE=LPS`), or None."""
    with Path(path).open("rb") as fh:
        head = fh.read(HEADER_BYTES)
    ras, lps = head.find(b"SPACE=RAS"), head.find(b"SPACE=LPS")
    if ras < 0 and lps < 0:
        return None
    return "RAS" if lps < 0 or 0 <= ras < lps else "LPS"  # the first tag counts, as in Slicer's reader
