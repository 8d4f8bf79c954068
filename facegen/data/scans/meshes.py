"""Read a skull surface (STL, PLY, OBJ) from a laboratory scanner or photogrammetry, with its checks.

A skull mesh has no header that says its units or orientation: the size says the units (a skull is about
180-220 mm long), and orientation comes from the alignment, which tries every way round. Only the axes'
anatomical names may be tagged: 3D Slicer writes `SPACE=RAS` or `SPACE=LPS` into the header of its mesh files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from facegen.data.scans.scan import ScanError, Space

MESH_SUFFIXES = (".stl", ".ply", ".obj")
SKULL_SIZE_MM = (120.0, 320.0)
"""Plausible largest extent of a skull (with or without mandible) in mm."""
MIN_PART_SHARE = 0.002
"""Separate pieces (a mandible, each tooth) are kept when their area is at least this share of the largest."""
UNIT_SCALES = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4}
HEADER_BYTES = 4096
"""The start of a mesh file searched for a SPACE tag (it lies in STL's 80-byte header, PLY's or OBJ's comments)."""
MAX_OPEN_EDGE_SHARE = 0.05
"""A scanned skull may have small holes; more open edges than this and inside/outside is undefined."""


def _units_hint(extent: float) -> str:
    """Which unit would make this extent a skull, if any."""
    for unit, scale in UNIT_SCALES.items():
        lo, hi = SKULL_SIZE_MM
        if unit != "mm" and lo <= extent * scale <= hi:
            return f"it looks like {unit}: pass --mesh-units {unit}"
    return "check that the file holds a whole skull, in mm"


def read_skull_mesh(path: Path | str, *, units: str = "mm") -> trimesh.Trimesh:
    """A skull mesh in mm without loose specks, checked for size and closure."""
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
    mesh.apply_scale(UNIT_SCALES[units])
    parts = mesh.split(only_watertight=False, repair=False)
    if len(parts) > 1:  # keep cranium, mandible and teeth; drop specks (scanner noise, loose fragments)
        largest = max(p.area for p in parts)
        mesh = trimesh.util.concatenate([p for p in parts if p.area >= MIN_PART_SHARE * largest])
    extent = float(np.max(mesh.extents))
    lo, hi = SKULL_SIZE_MM
    if not lo <= extent <= hi:
        raise ScanError(
            path,
            f"the mesh is {extent:.4g} {units} across; a skull is {lo:g}-{hi:g} mm",
            _units_hint(extent / UNIT_SCALES[units]),
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
    return mesh


def mesh_space(path: Path | str) -> Space | None:
    """The anatomical space a mesh file's header tags (3D Slicer's `SPACE=RAS` / `SPACE=LPS`), or None."""
    with Path(path).open("rb") as fh:
        head = fh.read(HEADER_BYTES)
    ras, lps = head.find(b"SPACE=RAS"), head.find(b"SPACE=LPS")
    if ras < 0 and lps < 0:
        return None
    return "RAS" if lps < 0 or 0 <= ras < lps else "LPS"  # the first tag counts, as in Slicer's reader
