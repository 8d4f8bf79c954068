"""Pictures of coloured heads: front and three-quarter views, each labelled with what its colours stand for.

Rays from the front find the first surface (as `facegen.use.renders` does for faces); the colour there is the
vertex colours interpolated across the triangle, lit from the front-left by smoothly interpolated normals
(both sides lit, so that the thin eyelashes show dark from either side). PNG bytes without metadata: the same
heads give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from facegen.data.raycast import first_hits  # noqa: E402
from facegen.use.renders import BACKGROUND, CAPTION  # noqa: E402
from facegen.viz.report_figures import png_bytes  # noqa: E402
from facegen.viz.show import THREE_QUARTER_DEG  # noqa: E402

LIGHT = np.array([-0.4, 0.5, 0.77])
"""Light from the front-left and above, as facegen's shaded pictures use."""
AMBIENT = 0.32
RENDER_PIXEL_MM = 0.8
FRAME_MARGIN_MM = 8.0
RAY_START_MM = 600.0
FIGURE_HEIGHT_IN = 4.0
DPI = 110


def _turn(vertices: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Vertices turned about the vertical axis; positive yaw brings the head's left (+x) toward the viewer."""
    a = np.radians(-yaw_deg)
    rotation = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    return np.asarray(vertices, np.float64) @ rotation.T


def _frame(low: np.ndarray, high: np.ndarray, pixel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre x (cols,) and y (rows,) covering [low, high] with a margin; rows run down."""
    low, high = low - FRAME_MARGIN_MM, high + FRAME_MARGIN_MM
    cols, rows = np.ceil((high - low) / pixel_mm).astype(int)
    x = low[0] + (np.arange(cols) + 0.5) * pixel_mm
    y = high[1] - (np.arange(rows) + 0.5) * pixel_mm
    return x, y


@dataclass(frozen=True)
class ViewHits:
    """Where the rays of one view meet a mesh: the picture's size, which pixels see the surface, and for those
    the hit triangle's corners, barycentric weights and light; recoloured per variant without casting again."""

    shape: tuple[int, int]
    seen: np.ndarray
    corners: np.ndarray
    bary: np.ndarray
    shade: np.ndarray

    def picture(self, colours: np.ndarray) -> np.ndarray:
        """RGB picture (H, W, 3) in 0-1 for vertex colours (V, 3) in 0-1."""
        albedo = np.einsum("nk,nkc->nc", self.bary, np.asarray(colours, np.float64)[self.corners])
        picture = np.broadcast_to(BACKGROUND, (self.seen.size, 3)).copy()
        picture[self.seen] = np.clip(albedo * self.shade[:, None], 0.0, 1.0)
        return picture.reshape(*self.shape, 3)


def view_hits(
    mesh: trimesh.Trimesh, *, yaw_deg: float, pixel_mm: float = RENDER_PIXEL_MM,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> ViewHits:  # fmt: skip
    """Cast the rays of one view at a mesh turned by `yaw_deg`; `bounds` (x, y low and high, mm, after the turn)
    frame the picture, else the turned mesh does."""
    turned = trimesh.Trimesh(_turn(mesh.vertices, yaw_deg), np.asarray(mesh.faces), process=False)
    low, high = bounds if bounds is not None else (turned.bounds[0, :2], turned.bounds[1, :2])
    x, y = _frame(np.asarray(low), np.asarray(high), pixel_mm)
    xx, yy = np.meshgrid(x, y)
    origins = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, RAY_START_MM)], axis=1)
    distance, tri = first_hits(turned, origins, np.array([0.0, 0.0, -1.0]))
    seen = tri >= 0
    hits = origins[seen] - distance[seen, None] * np.array([0.0, 0.0, 1.0])
    corners = turned.faces[tri[seen]]
    bary = trimesh.triangles.points_to_barycentric(turned.triangles[tri[seen]], hits)
    bary = np.clip(np.nan_to_num(bary, nan=1.0 / 3.0), 0.0, 1.0)
    bary /= np.maximum(bary.sum(axis=1, keepdims=True), 1e-12)
    normals = _turn(mesh.vertex_normals, yaw_deg)  # the mesh's own normals (a head sets its lashes' to the lid's)
    normal = np.einsum("nk,nkc->nc", bary, normals[corners])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    light = LIGHT / np.linalg.norm(LIGHT)
    shade = AMBIENT + (1.0 - AMBIENT) * np.abs(normal @ light)
    return ViewHits((len(y), len(x)), seen, corners, bary, shade)


def shaded_colour_view(
    mesh: trimesh.Trimesh, colours: np.ndarray, *, yaw_deg: float, pixel_mm: float = RENDER_PIXEL_MM,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:  # fmt: skip
    """RGB picture (H, W, 3) in 0-1 of a mesh with vertex colours (V, 3) in 0-1, turned by `yaw_deg`, lit;
    background where no surface is seen."""
    colours = np.asarray(colours, np.float64)
    if colours.shape != (len(mesh.vertices), 3):
        raise ValueError(f"{colours.shape} colours for a mesh of {len(mesh.vertices)} vertices; one RGB per vertex")
    return view_hits(mesh, yaw_deg=yaw_deg, pixel_mm=pixel_mm, bounds=bounds).picture(colours)


def _two_views(mesh: trimesh.Trimesh) -> list[ViewHits]:
    """Front and three-quarter rays at one scale and one height."""
    turned = [_turn(mesh.vertices, yaw) for yaw in (0.0, THREE_QUARTER_DEG)]
    low_y = min(t[:, 1].min() for t in turned)
    high_y = max(t[:, 1].max() for t in turned)
    return [
        view_hits(mesh, yaw_deg=yaw, bounds=(np.array([t[:, 0].min(), low_y]), np.array([t[:, 0].max(), high_y])))
        for yaw, t in zip((0.0, THREE_QUARTER_DEG), turned, strict=True)
    ]


def _captioned(fig: plt.Figure, title: str) -> bytes:
    fig.suptitle(title, fontsize=10)
    fig.supxlabel(CAPTION, fontsize=8, style="italic", color="0.3")
    return png_bytes(fig, dpi=DPI)


def _head_figure(views: list[ViewHits], colours: np.ndarray, title: str) -> bytes:
    """PNG of one colouring from the front and three-quarter."""
    pictures = [v.picture(colours) for v in views]
    widths = [p.shape[1] for p in pictures]
    size = (FIGURE_HEIGHT_IN * sum(widths) / pictures[0].shape[0], FIGURE_HEIGHT_IN + 0.9)
    fig, axes = plt.subplots(1, 2, figsize=size, layout="compressed", width_ratios=widths)
    quarter = f"three-quarter ({THREE_QUARTER_DEG:g}\N{DEGREE SIGN}, left side forward)"
    for ax, picture, name in zip(axes, pictures, ("front", quarter), strict=True):
        ax.imshow(picture, interpolation="antialiased")
        ax.set_axis_off()
        ax.set_title(name, fontsize=9)
    return _captioned(fig, title)


def _overview_figure(front: ViewHits, colourings: list[tuple[str, np.ndarray, str]], title: str) -> bytes:
    """PNG of every colouring side by side from the front, each under its label."""
    pictures = [front.picture(colours) for _, colours, _ in colourings]
    aspect = pictures[0].shape[1] / pictures[0].shape[0]
    cols = min(len(pictures), 4)
    rows = int(np.ceil(len(pictures) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3.0 * aspect + 0.2, rows * 3.6 + 0.8), layout="compressed",
                             squeeze=False)  # fmt: skip
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, picture, (_, _, label) in zip(axes.ravel(), pictures, colourings, strict=False):
        ax.imshow(picture, interpolation="antialiased")
        ax.set_title(label, fontsize=8)
    return _captioned(fig, title)


def head_renders(
    mesh: trimesh.Trimesh, colourings: list[tuple[str, np.ndarray, str]], *, title: str
) -> dict[str, bytes]:
    """PNG bytes by name: per colouring (name, vertex colours (V, 3) in 0-1, label) its front and three-quarter
    view titled with the label, and "variants": all of them side by side from the front. The rays are cast once
    for all colourings."""
    if not colourings:
        raise ValueError("no colourings of the head to draw")
    for name, colours, _ in colourings:
        if np.shape(colours) != (len(mesh.vertices), 3):
            raise ValueError(f"colouring {name!r}: {np.shape(colours)} colours for {len(mesh.vertices)} vertices")
    views = _two_views(mesh)
    out = {name: _head_figure(views, colours, f"{title}\n{label}") for name, colours, label in colourings}
    wrapped = [(name, colours, label.replace("; ", "\n")) for name, colours, label in colourings]
    out["variants"] = _overview_figure(views[0], wrapped, f"{title}: every variant shown (classes with p >= 0.2)")
    return out
