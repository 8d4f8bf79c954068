"""A self-contained, offline HTML 3D viewer of a case on three.js: one file, any browser, no network.

The skull (shared meshes) is always shown and a menu picks one face variant; the face's transparency, its
colouring (skin or per-vertex values such as the uncertainty, with a colour bar) and the view can be set,
and two clicked points give a distance in mm. A variant may also carry a complete head (`ViewerHead`): one
geometry with several vertex colourings (e.g. one per predicted eye and hair colour), shown instead of the
face. three.js comes from npm (`three`, vendored unchanged under `facegen/assets/vendor/three/`) and is
inlined into every page, so the page runs from file:// offline.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from facegen.io.atomic import write_bytes_atomic

ASSETS = Path(__file__).resolve().parents[1] / "assets"
TEMPLATE = ASSETS / "viewer.html"
APP = ASSETS / "viewer.js"
"""The viewer program: an ES module importing `three`, inlined into the page (a web server can serve it)."""
THREE_DIR = ASSETS / "vendor" / "three"
THREE_VERSION = "0.187.0"
"""The version of the npm package `three` vendored in THREE_DIR."""
THREE_MODULES = ("three.core.js", "three.module.js", "OrbitControls.js")
"""The vendored three.js files the page embeds, unchanged."""
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
_CLOSES_SCRIPT = re.compile(r"</script|<!--|<script", re.IGNORECASE)


def _check_rgb(colour: tuple[float, ...], what: str) -> None:
    """Refuse anything but three finite values in 0-1."""
    if len(colour) != 3 or not all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in colour):
        raise ValueError(f"{what}: colour must be three values in 0-1, got {colour}")


@dataclass(frozen=True)
class ViewerMesh:
    """One surface in the viewer; `transparency_slider` ties its opacity to the page's slider (for the face);
    `vertex_colours` ((N, 3) uint8 RGB, one row per vertex) is what the page's "uncertainty" colouring shows."""

    name: str
    mesh: trimesh.Trimesh
    colour: tuple[float, float, float]
    opacity: float
    transparency_slider: bool
    vertex_colours: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.mesh.vertices) == 0 or len(self.mesh.faces) == 0:
            raise ValueError(f"viewer mesh {self.name!r} is empty")
        _check_rgb(tuple(self.colour), f"viewer mesh {self.name!r}")
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"viewer mesh {self.name!r}: opacity must be in 0-1, got {self.opacity}")
        if not np.isfinite(self.mesh.vertices).all():
            raise ValueError(f"viewer mesh {self.name!r} has non-finite vertices")
        if self.vertex_colours is not None:
            colours = np.asarray(self.vertex_colours)
            if colours.dtype != np.uint8 or colours.shape != (len(self.mesh.vertices), 3):
                raise ValueError(f"viewer mesh {self.name!r}: vertex_colours must be uint8 RGB of shape "
                                 f"({len(self.mesh.vertices)}, 3), got {colours.dtype} {colours.shape}")  # fmt: skip
            colours = colours.copy()
            colours.setflags(write=False)
            object.__setattr__(self, "vertex_colours", colours)


@dataclass(frozen=True)
class ViewerHead:
    """A complete head the page can show instead of a variant's face: one `mesh` (mm) and its `colourings`,
    {label: (N, 3) uint8 RGB per vertex}, the first shown at start; `colour` (RGB 0-1) where no colouring applies
    (the "uncertainty" colouring: the head has no spread values); `note` says what the head is."""

    mesh: trimesh.Trimesh
    colourings: dict[str, np.ndarray]
    name: str = "Complete head"
    colour: tuple[float, float, float] = SKIN
    note: str = ""

    def __post_init__(self) -> None:
        if len(self.mesh.vertices) == 0 or len(self.mesh.faces) == 0:
            raise ValueError(f"viewer head {self.name!r} is empty")
        if not np.isfinite(self.mesh.vertices).all():
            raise ValueError(f"viewer head {self.name!r} has non-finite vertices")
        _check_rgb(tuple(self.colour), f"viewer head {self.name!r}")
        if not self.colourings:
            raise ValueError(f"viewer head {self.name!r} needs at least one colouring")
        checked = {}
        for label, colours in self.colourings.items():
            colours = np.asarray(colours)
            if not label.strip() or colours.dtype != np.uint8 or colours.shape != (len(self.mesh.vertices), 3):
                raise ValueError(f"viewer head {self.name!r}: colouring {label!r} must be named and uint8 RGB "
                                 f"({len(self.mesh.vertices)}, 3), got {colours.dtype} {colours.shape}")  # fmt: skip
            checked[label] = colours.copy()
            checked[label].setflags(write=False)
        object.__setattr__(self, "colourings", checked)


@dataclass(frozen=True)
class ColourLegend:
    """The key of the vertex colouring: a colour bar through `stops` (RGB in 0-1) from `min_value` to
    `max_value` in `units`, under `title` (e.g. "spread of the face (SD, mm)")."""

    title: str
    units: str
    min_value: float
    max_value: float
    stops: list[tuple[float, float, float]]

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise ValueError("a colour legend needs a title")
        if not (math.isfinite(self.min_value) and math.isfinite(self.max_value) and self.min_value < self.max_value):
            raise ValueError(f"colour legend range must be finite with min < max: {self.min_value}, {self.max_value}")
        if len(self.stops) < 2:
            raise ValueError(f"a colour bar needs at least two colour stops, got {len(self.stops)}")
        for stop in self.stops:
            _check_rgb(tuple(stop), "colour legend stop")

    def payload(self) -> dict[str, object]:
        """Plain values for the page."""
        return {"title": self.title, "units": self.units, "min_value": float(self.min_value),
                "max_value": float(self.max_value),
                "stops": [[round(float(c), 4) for c in stop] for stop in self.stops]}  # fmt: skip


def _b64(array: np.ndarray, dtype: str) -> str:
    """Little-endian bytes of `array` as base64, which the page decodes into a typed array."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _geometry_payload(name: str, mesh: trimesh.Trimesh) -> dict[str, object]:
    """A surface's float32 vertices and its triangles, as uint16 indices where the vertices allow (half the
    bytes), else uint32; `index_bytes` says which."""
    faces = np.asarray(mesh.faces)
    if faces.min() < 0 or faces.max() >= len(mesh.vertices):
        raise ValueError(f"viewer mesh {name!r} has face indices outside its vertices")
    index_bytes = 2 if len(mesh.vertices) <= 2**16 else 4
    return {"vertices": _b64(mesh.vertices, "<f4"), "faces": _b64(faces, f"<u{index_bytes}"),
            "index_bytes": index_bytes}  # fmt: skip


def _mesh_payload(item: ViewerMesh) -> dict[str, object]:
    """One mesh as the page reads it: colour, opacity and base64 arrays."""
    return {
        "name": item.name,
        "colour": [round(float(c), 4) for c in item.colour],
        "opacity": round(float(item.opacity), 4),
        "transparency_slider": item.transparency_slider,
        **_geometry_payload(item.name, item.mesh),
        "vertex_colours": None if item.vertex_colours is None else _b64(item.vertex_colours, "u1"),
    }


def _head_payload(head: ViewerHead) -> dict[str, object]:
    """A complete head as the page reads it: the geometry once, then one colour array per colouring. Its opacity
    follows the face's transparency slider."""
    return {
        "name": head.name,
        "colour": [round(float(c), 4) for c in head.colour],
        "note": head.note,
        **_geometry_payload(head.name, head.mesh),
        "colourings": [{"label": label, "vertex_colours": _b64(colours, "u1")}
                       for label, colours in head.colourings.items()],  # fmt: skip
    }


def _script_json(value: object) -> str:
    """`value` as JSON that may sit inside <script>: "<" escaped, so nothing closes the element or opens a comment."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")


def three_modules() -> dict[str, str]:
    """The vendored three.js modules the page embeds, by file name, exactly as npm ships them."""
    return {name: (THREE_DIR / name).read_text(encoding="utf-8") for name in THREE_MODULES}


def _app() -> str:
    """The viewer program, checked to be safe inline (it is ours: nothing in it may end the script early)."""
    text = APP.read_text(encoding="utf-8")
    if _CLOSES_SCRIPT.search(text):
        raise ValueError(f"{APP} holds a sequence that would end its inline <script>")
    return text


def render_viewer(
    shared: list[ViewerMesh],
    *,
    variants: dict[str, list[ViewerMesh]] | None = None,
    heads: dict[str, ViewerHead] | None = None,
    title: str,
    caption: str,
    legend: ColourLegend | None = None,
) -> str:
    """The viewer page as text: `shared` always shown, one of `variants` (by name; the first at start) beside
    them, `heads` (by variant name) to show instead of a variant's face, three.js inlined; same meshes, same text."""
    variants, heads = dict(variants or {}), dict(heads or {})
    for name, meshes in variants.items():
        if not name or not meshes:
            raise ValueError(f"viewer variant {name!r} needs a name and at least one mesh")
    if set(heads) - set(variants):
        unknown = sorted(set(heads) - set(variants))
        raise ValueError(f"heads given for no variant: {unknown}; the variants are {list(variants)}")
    every = [*shared, *(item for meshes in variants.values() for item in meshes)]
    if not every:
        raise ValueError("the viewer needs at least one mesh")
    if legend is None and any(item.vertex_colours is not None for item in every):
        raise ValueError("meshes with vertex colours need a ColourLegend saying what the colours mean")
    # the view frames the skull and faces (a head's neck and shoulders may reach the edge): the same view as without
    points = np.concatenate([np.asarray(item.mesh.vertices, np.float64) for item in every])
    low, high = points.min(axis=0), points.max(axis=0)
    payload = {
        "background": list(BACKGROUND),
        "centre": [round(float(c), 4) for c in (low + high) / 2],
        "radius": round(max(1e-3, float(np.linalg.norm(high - low)) / 2), 4),
        "views": {"front": FRONT_YAW_DEG, "three-quarter": THREE_QUARTER_YAW_DEG, "profile": PROFILE_YAW_DEG},
        "shared": [_mesh_payload(item) for item in shared],
        "variants": [{"name": name, "meshes": [_mesh_payload(item) for item in meshes],
                      "head": _head_payload(heads[name]) if name in heads else None}
                     for name, meshes in variants.items()],  # fmt: skip
        "legend": None if legend is None else legend.payload(),
    }
    r, g, b = (round(255 * c) for c in BACKGROUND)
    fields = {
        "TITLE": html.escape(title),
        "CAPTION": html.escape(caption),
        "BACKGROUND": f"rgb({r}, {g}, {b})",
        "THREE_VERSION": THREE_VERSION,
        "DATA": _script_json(payload),
        "MODULES": _script_json(three_modules()),
        "APP": _app(),
    }
    # one pass over the template: text put in (a caption, the data, the library) is never searched for placeholders
    return _PLACEHOLDER.sub(lambda match: fields[match.group(1)], TEMPLATE.read_text(encoding="utf-8"))


def write_viewer(
    path: Path,
    shared: list[ViewerMesh],
    *,
    variants: dict[str, list[ViewerMesh]] | None = None,
    heads: dict[str, ViewerHead] | None = None,
    title: str,
    caption: str,
    legend: ColourLegend | None = None,
) -> Path:
    """Write the viewer page to `path` atomically; it opens offline in any WebGL browser."""
    path = Path(path)
    text = render_viewer(shared, variants=variants, heads=heads, title=title, caption=caption, legend=legend)
    write_bytes_atomic(path, text.encode("utf-8"))
    return path
