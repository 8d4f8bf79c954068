"""A self-contained, offline HTML 3D viewer of a skull and a reconstructed face: one file, any browser, no network."""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from facegen.io.atomic import write_bytes_atomic

TEMPLATE = Path(__file__).resolve().parents[1] / "assets" / "viewer.html"
BONE = (0.89, 0.85, 0.72)
"""Ivory bone colour for skulls (RGB in 0-1)."""
SKIN = (0.88, 0.60, 0.48)
"""Skin colour for faces (RGB in 0-1)."""
BACKGROUND = (0.13, 0.14, 0.16)
"""Viewer background (RGB in 0-1): dark and neutral so both bone and skin stand out."""
# camera yaw of the view buttons, as in `facegen.viz`: positive turns the subject's left (+x) toward the viewer
FRONT_YAW_DEG = 0.0
THREE_QUARTER_YAW_DEG = 35.0
PROFILE_YAW_DEG = 90.0
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


@dataclass(frozen=True)
class ViewerMesh:
    """One surface in the viewer; `transparency_slider` ties its opacity to the page's slider (for the face)."""

    name: str
    mesh: trimesh.Trimesh
    colour: tuple[float, float, float]
    opacity: float
    transparency_slider: bool

    def __post_init__(self) -> None:
        if len(self.mesh.vertices) == 0 or len(self.mesh.faces) == 0:
            raise ValueError(f"viewer mesh {self.name!r} is empty")
        if len(self.colour) != 3 or not all(0.0 <= c <= 1.0 for c in self.colour):
            raise ValueError(f"viewer mesh {self.name!r}: colour must be three values in 0-1, got {self.colour}")
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"viewer mesh {self.name!r}: opacity must be in 0-1, got {self.opacity}")
        if not np.isfinite(self.mesh.vertices).all():
            raise ValueError(f"viewer mesh {self.name!r} has non-finite vertices")


def _b64(array: np.ndarray, dtype: str) -> str:
    """Little-endian bytes of `array` as base64, which the page decodes into a typed array."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _mesh_payload(item: ViewerMesh) -> dict[str, object]:
    faces = np.asarray(item.mesh.faces)
    if faces.min() < 0 or faces.max() >= len(item.mesh.vertices):
        raise ValueError(f"viewer mesh {item.name!r} has face indices outside its vertices")
    return {
        "name": item.name,
        "colour": [round(float(c), 4) for c in item.colour],
        "opacity": round(float(item.opacity), 4),
        "transparency_slider": item.transparency_slider,
        "vertices": _b64(item.mesh.vertices, "<f4"),
        "faces": _b64(faces, "<u4"),
    }


def render_viewer(meshes: list[ViewerMesh], *, title: str, caption: str) -> str:
    """The viewer page as text: the template with the meshes embedded; same meshes, same text."""
    if not meshes:
        raise ValueError("the viewer needs at least one mesh")
    payload = {
        "background": list(BACKGROUND),
        "initial_yaw_deg": FRONT_YAW_DEG,
        "meshes": [_mesh_payload(item) for item in meshes],
    }
    # inside <script>, "<" could close the element or open a comment: escape it in the JSON
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")
    r, g, b = (round(255 * c) for c in BACKGROUND)
    fields = {
        "TITLE": html.escape(title),
        "CAPTION": html.escape(caption),
        "BACKGROUND": f"rgb({r}, {g}, {b})",
        "THREE_QUARTER_DEG": f"{THREE_QUARTER_YAW_DEG:g}",
        "PROFILE_DEG": f"{PROFILE_YAW_DEG:g}",
        "MESHES": data,
    }
    # one pass over the template: text put in (a caption, the data) is never searched for placeholders
    return _PLACEHOLDER.sub(lambda match: fields[match.group(1)], TEMPLATE.read_text(encoding="utf-8"))


def write_viewer(path: Path, meshes: list[ViewerMesh], *, title: str, caption: str) -> Path:
    """Write the viewer page for `meshes` to `path` atomically; it opens offline in any WebGL browser."""
    path = Path(path)
    write_bytes_atomic(path, render_viewer(meshes, title=title, caption=caption).encode("utf-8"))
    return path
