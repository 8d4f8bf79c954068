"""Landmark files an examiner writes: 3D Slicer markups (.mrk.json, .fcsv), CSV tables, facegen's own JSON.

Each names points in an anatomical space (Slicer's RAS or LPS, or facegen's patient axes). The reader brings
them to patient coordinates (facegen's axes x left, y superior, z anterior; the scan's own origin and tilt;
mm): for a CT by the fixed rotation between the spaces, for a skull mesh by the space 3D Slicer reads the
mesh's own coordinates in. Labels may use the usual spellings of the craniometric names ("Porion L",
"po_l", "left porion"); they come back as facegen's names (porion_l).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

LANDMARK_SPACES = {
    "RAS": np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
    "LPS": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    "patient": np.eye(3),
}
"""A CT's landmarks come in 3D Slicer's RAS, DICOM's LPS, or facegen's patient axes (x left, y superior,
z anterior); each maps to facegen's patient axes by this rotation (a CT's world frame is one of them)."""
REQUIRED_LANDMARKS = ("porion_l", "porion_r", "orbitale_l")
"""The Frankfurt frame is built from these three."""
ABBREVIATIONS = {
    "po": "porion", "or": "orbitale", "n": "nasion", "na": "nasion", "g": "glabella", "gl": "glabella",
    "rhi": "rhinion", "sn": "subnasale", "pg": "pogonion", "pog": "pogonion", "gn": "gnathion", "me": "menton",
    "go": "gonion", "zy": "zygion", "t": "tragion",
}  # fmt: skip
"""Craniometric abbreviations read as the names they stand for (Po L = porion_l)."""
SIDES = {"l": "l", "left": "l", "r": "r", "right": "r"}
FCSV_SPACES = {"0": "RAS", "1": "LPS", "RAS": "RAS", "LPS": "LPS"}
"""Slicer's .fcsv files name the space by word, or (before Slicer 4.11) by number: 0 RAS, 1 LPS."""
HOW_TO_NAME = "name them porion_l, porion_r, orbitale_l (Slicer labels such as 'Porion L' or 'Po R' also work)"

ToPatient = Callable[[str], np.ndarray]
"""The 3 x 3 matrix taking a point given in a named space (RAS, LPS, patient) to patient coordinates."""


class LandmarkFileError(ValueError):
    """A landmark file that cannot be used; the message names the file, the problem and the fix."""


def ct_to_patient(space: str) -> np.ndarray:
    """For a CT: the fixed rotation from a named space to facegen's patient axes."""
    return LANDMARK_SPACES[space]


def mesh_to_patient(mesh_space: str, scale: float = 1.0) -> ToPatient:
    """For a skull mesh, whose coordinates 3D Slicer reads in `mesh_space` (LPS unless its file says RAS) and
    whose units are `scale` mm: points placed on it in Slicer become the mesh's own coordinates (in mm)."""

    def to_patient(space: str) -> np.ndarray:
        if space == "patient":
            return np.eye(3)
        flip = np.eye(3) if space == mesh_space else np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS
        return scale * flip

    return to_patient


def landmark_name(label: str) -> str:
    """facegen's name of a landmark label: 'Porion L', 'left porion', 'Po-R', 'orbitale_l' -> porion_l, ..."""
    words = [w for w in re.split(r"[^a-z0-9]+", label.strip().lower()) if w]
    side = ""
    if len(words) > 1 and words[-1] in SIDES:
        side = SIDES[words.pop()]
    elif len(words) > 1 and words[0] in SIDES:
        side = SIDES[words.pop(0)]
    if len(words) == 1:
        words = [ABBREVIATIONS.get(words[0], words[0])]
    return "_".join(words) + (f"_{side}" if side else "")


def read_landmark_file(path: Path | str, to_patient: ToPatient = ct_to_patient) -> dict[str, np.ndarray]:
    """Named points (patient coordinates, mm) from a Slicer markups file (.mrk.json, .fcsv), a CSV table or
    facegen's JSON ({"space": "RAS", "porion_l": [x, y, z], ...}); porions and left orbitale must be among them."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LandmarkFileError(f"{path}: unreadable landmark file ({exc})") from exc
    if path.name.lower().endswith((".csv", ".fcsv", ".txt")):
        space, rows = _csv_points(text, path)
    else:
        space, rows = _json_points(text, path)
    return _checked(rows, space, path, to_patient)


def _checked(rows: list[tuple[str, object]], space: str, path: Path, to_patient: ToPatient) -> dict[str, np.ndarray]:
    """The points by facegen name in patient coordinates; bad values, repeated names and missing ones refused."""
    rotation = to_patient(space)
    out: dict[str, np.ndarray] = {}
    for label, value in rows:
        name = landmark_name(label)
        try:
            point = np.asarray(value, float)
        except (TypeError, ValueError):
            point = np.full(1, np.nan)
        if point.shape != (3,) or not np.all(np.isfinite(point)):
            raise LandmarkFileError(f"{path}: landmark {label!r} must be three numbers (mm), got {value!r}")
        if name in out:
            raise LandmarkFileError(f"{path}: landmark {name} is given twice (label {label!r}); keep one")
        out[name] = rotation @ point
    missing = [k for k in REQUIRED_LANDMARKS if k not in out]
    if missing:
        found = ", ".join(repr(label) for label, _ in rows) or "none"
        raise LandmarkFileError(
            f"{path}: the pose needs {', '.join(REQUIRED_LANDMARKS)}; {', '.join(missing)} not found among the "
            f"labels {found}; {HOW_TO_NAME}"
        )
    return out


def _json_points(text: str, path: Path) -> tuple[str, list[tuple[str, object]]]:
    """(space, [(label, position)]) of a Slicer markups JSON or of facegen's landmark JSON."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LandmarkFileError(f"{path}: not a JSON landmark file ({exc}); give a .mrk.json or a CSV") from exc
    if not isinstance(data, dict):
        raise LandmarkFileError(f"{path}: a landmark file holds a JSON object; give a 3D Slicer .mrk.json or a CSV")
    if "markups" in data:
        return _markups_points(data["markups"], path)
    space = data.get("space", "RAS")
    if space not in LANDMARK_SPACES:
        raise LandmarkFileError(f"{path}: unknown space {space!r}; use one of {', '.join(LANDMARK_SPACES)}")
    return space, [(k, v) for k, v in data.items() if k != "space"]


def _markups_points(markups: object, path: Path) -> tuple[str, list[tuple[str, object]]]:
    """The defined control points of a 3D Slicer markups file, in its coordinate system (LPS when unstated,
    as Slicer reads it); every markups node of the file must use the same one."""
    if not isinstance(markups, list) or not markups:
        raise LandmarkFileError(f"{path}: the markups file holds no markups; place the points in 3D Slicer and save")
    spaces, rows = set(), []
    for node in markups:
        if not isinstance(node, dict) or not all(isinstance(p, dict) for p in node.get("controlPoints", [])):
            raise LandmarkFileError(f"{path}: not a 3D Slicer markups file (markups[].controlPoints[]); save it again")
        spaces.add(str(node.get("coordinateSystem", "LPS")).upper())
        units = node.get("coordinateUnits", "mm")  # a string, or a coded entry [value, scheme, meaning]
        if (units[0] if isinstance(units, list) and units else units) != "mm":
            raise LandmarkFileError(f"{path}: coordinate units {units!r}; save the markups in mm")
        for point in node.get("controlPoints", []):
            if point.get("positionStatus", "defined") == "defined":  # not a preview or a point left unplaced
                rows.append((str(point.get("label", "")), point.get("position")))
    if len(spaces) != 1 or not spaces <= {"LPS", "RAS"}:
        raise LandmarkFileError(f"{path}: coordinate systems {sorted(spaces)}; save every markups node in LPS or RAS")
    return spaces.pop(), rows


def _csv_points(text: str, path: Path) -> tuple[str, list[tuple[str, object]]]:
    """(space, [(label, position)]) of a CSV table: a label column (label, name or landmark) and coordinates as
    r,a,s (RAS), l,p,s (LPS) or x,y,z with the space in a `space` column or a '# CoordinateSystem = ' line."""
    comments = {}
    for line in text.splitlines():
        if line.startswith("#") and "=" in line:
            key, value = line[1:].split("=", 1)
            comments[key.strip().lower()] = value.strip()
    body = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    header_line = comments.get("columns") or (body.pop(0) if body else "")
    reader = csv.DictReader(io.StringIO("\n".join([header_line, *body])), skipinitialspace=True)
    header = {h.strip().lower(): h for h in reader.fieldnames or []}
    label = next((header[k] for k in ("label", "name", "landmark") if k in header), None)
    if label is None:
        raise LandmarkFileError(f"{path}: no label column; the CSV needs a header with label (or name), then r,a,s "
                                "or l,p,s (mm)")  # fmt: skip
    space, axes = _csv_space(header, comments, path)
    spaces, rows = {space} - {None}, []
    for row in reader:
        if str(row.get(header.get("defined", ""), "1")).strip().lower() in ("0", "false", "no"):
            continue  # a point listed but not placed in Slicer
        if "space" in header and row.get(header["space"]):
            spaces.add(row[header["space"]].strip().upper())
        rows.append((row[label], [row.get(header[a]) for a in axes]))
    if len(spaces) != 1 or not spaces <= {"RAS", "LPS"}:
        raise LandmarkFileError(f"{path}: the points are given in {sorted(spaces) or 'no stated space'}; give every "
                                "point in one space, RAS or LPS")  # fmt: skip
    return spaces.pop(), rows


def _csv_space(header: dict[str, str], comments: dict[str, str], path: Path) -> tuple[str | None, tuple[str, ...]]:
    """The CSV's space and its coordinate columns: named by the columns, else stated in a comment, else None
    when a space column states it row by row."""
    if {"r", "a", "s"} <= header.keys():
        return "RAS", ("r", "a", "s")
    if {"l", "p", "s"} <= header.keys():
        return "LPS", ("l", "p", "s")
    if not {"x", "y", "z"} <= header.keys():
        raise LandmarkFileError(f"{path}: no coordinate columns; name them r,a,s (RAS) or l,p,s (LPS), in mm")
    stated = comments.get("coordinatesystem")
    if stated is None and path.name.lower().endswith(".fcsv"):
        stated = "RAS"  # Slicer's .fcsv files before version 4.11 stated nothing and meant RAS
    if stated is None and "space" in header:
        return None, ("x", "y", "z")  # every row says
    if stated is None or stated.upper() not in FCSV_SPACES:
        raise LandmarkFileError(
            f"{path}: x,y,z columns but no space: name the columns r,a,s or l,p,s, or add a line "
            "'# CoordinateSystem = LPS' (or RAS) or a space column; left and right would be guessed otherwise"
        )
    return FCSV_SPACES[stated.upper()], ("x", "y", "z")
