"""Pictures of a case for people: the reconstructed face from the front, in profile and three-quarter, the
skull under a see-through face, and where the samples disagree (per-point SD).

Every picture is shaded by ray casting (as `facegen.viz.show.shaded_view`), titled plainly, carries the
caption that it is an approximation and not an identification, and is PNG bytes without metadata, so the
same meshes give the same bytes.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from facegen.data.representations.depth_map import DepthView, render_depth_map  # noqa: E402
from facegen.viz.report_figures import png_bytes  # noqa: E402
from facegen.viz.shading import shade_depth_map  # noqa: E402
from facegen.viz.show import THREE_QUARTER_DEG  # noqa: E402

CAPTION = "approximation to aid identification, not an identification"
PROFILE_YAW_DEG = 90.0
"""Yaw of the profile: as in `shaded_view`, positive turns the subject's left toward the viewer."""
FACE_OPACITY = 0.45
"""How much of the face covers the skull in the overlay."""
RENDER_PIXEL_MM = 1.0
MAX_RENDER_PIXELS = 400
"""Shaded pictures are framed on the meshes at 1 mm pixels, coarser only where a side would pass this."""
FRAME_MARGIN = 0.04
SKIN = np.array([0.88, 0.60, 0.48])
BONE = np.array([0.89, 0.85, 0.72])
BACKGROUND = np.array([0.80, 0.83, 0.86])
"""Light blue-grey: both lit bone and shaded skin stand out on it, on screen and printed."""
NO_BONE_COLOUR = "#39d5ff"
"""Outline of face regions with no bone beneath: cyan, apart from every colour of the SD map."""
FIGURE_WIDTH_IN = 4.2
DPI = 100


def _turned(mesh: trimesh.Trimesh, yaw_deg: float) -> trimesh.Trimesh:
    """The mesh turned by `yaw_deg` about the vertical axis, exactly as `shaded_view` turns it."""
    turned = trimesh.Trimesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces), process=False)
    turned.apply_transform(trimesh.transformations.rotation_matrix(np.radians(-yaw_deg), [0, 1, 0]))
    return turned


def _fitted_view(meshes: list[trimesh.Trimesh], pixel_mm: float | None = None) -> DepthView:
    """A frontal view holding every (already turned) mesh with a small margin, at `pixel_mm` (else fitted)."""
    low = np.min([m.bounds[0, :2] for m in meshes], axis=0)
    high = np.max([m.bounds[1, :2] for m in meshes], axis=0)
    extent = (high - low) * (1 + 2 * FRAME_MARGIN) + 2 * RENDER_PIXEL_MM
    pixel = pixel_mm or max(RENDER_PIXEL_MM, float(extent.max()) / MAX_RENDER_PIXELS)
    cols, rows = np.maximum(np.ceil(extent / pixel).astype(int), 8)
    centre = 0.5 * (low + high)
    return DepthView(shape=(int(rows), int(cols)), pixel_mm=pixel, centre_mm=(float(centre[0]), float(centre[1])))


def _coloured(shade: np.ndarray, tint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB (H, W, 3) of a shaded picture in one colour, and where the surface is seen."""
    seen = np.isfinite(shade)
    return np.where(seen, np.nan_to_num(shade), 0.0)[..., None] * tint, seen


def _shaded_pair(
    face: trimesh.Trimesh, skull: trimesh.Trimesh, yaw_deg: float, pixel_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Shaded face and skull (NaN where missed) from one yaw, in one frame holding both, at `pixel_mm`."""
    turned = [_turned(face, yaw_deg), _turned(skull, yaw_deg)]
    view = _fitted_view(turned, pixel_mm)
    face_shade, skull_shade = (shade_depth_map(render_depth_map(m, view)) for m in turned)
    return face_shade, skull_shade


def face_picture(face_shade: np.ndarray) -> np.ndarray:
    """The shaded face in skin colour on the background (H, W, 3)."""
    rgb, seen = _coloured(face_shade, SKIN)
    return np.where(seen[..., None], rgb, BACKGROUND)


def overlay_picture(face_shade: np.ndarray, skull_shade: np.ndarray) -> np.ndarray:
    """The shaded skull with the shaded face over it at `FACE_OPACITY` (H, W, 3)."""
    face_rgb, face_seen = _coloured(face_shade, SKIN)
    skull_rgb, skull_seen = _coloured(skull_shade, BONE)
    under = np.where(skull_seen[..., None], skull_rgb, BACKGROUND)
    return np.where(face_seen[..., None], FACE_OPACITY * face_rgb + (1 - FACE_OPACITY) * under, under)


def _caption(fig: plt.Figure) -> None:
    fig.supxlabel(CAPTION, fontsize=8, style="italic", color="0.3")


def _scale_bar(ax: plt.Axes, picture: np.ndarray, pixel_mm: float) -> None:
    """A bar of a round length in mm at the picture's lower left, labelled, so that sizes can be read off."""
    rows, cols = picture.shape[:2]
    length_mm = 50.0 if cols * pixel_mm >= 150.0 else 20.0
    x0, y0 = 0.05 * cols, 0.95 * rows
    ax.plot([x0, x0 + length_mm / pixel_mm], [y0, y0], color="0.1", linewidth=3, solid_capstyle="butt")
    ax.text(x0 + length_mm / pixel_mm / 2, y0 - 0.02 * rows, f"{length_mm:g} mm", ha="center", va="bottom",
            fontsize=8, color="0.1")  # fmt: skip


def _same_height(pictures: list[np.ndarray]) -> list[np.ndarray]:
    """Pictures padded with background at the bottom to one height, so that side by side they share one scale."""
    rows = max(p.shape[0] for p in pictures)
    return [np.concatenate([p, np.broadcast_to(BACKGROUND, (rows - p.shape[0], p.shape[1], 3))]) for p in pictures]


def _picture_figure(panels: list[tuple[np.ndarray, str]], title: str, *, pixel_mm: float) -> bytes:
    """Pictures side by side at one scale (`pixel_mm` each), each with its subtitle and a scale bar, under one
    title and over the caption."""
    pictures = _same_height([p for p, _ in panels])
    widths = [p.shape[1] for p in pictures]
    size = (FIGURE_WIDTH_IN * sum(widths) / max(widths), FIGURE_WIDTH_IN * pictures[0].shape[0] / max(widths) + 0.6)
    fig, axes = plt.subplots(1, len(panels), figsize=size, layout="compressed", width_ratios=widths)
    for ax, picture, (_, subtitle) in zip(np.atleast_1d(axes), pictures, panels, strict=True):
        ax.imshow(np.clip(picture, 0.0, 1.0), interpolation="antialiased")
        _scale_bar(ax, picture, pixel_mm)
        ax.set_axis_off()
        if subtitle:
            ax.set_title(subtitle, fontsize=10)
    fig.suptitle(title)
    _caption(fig)
    return png_bytes(fig, dpi=DPI)


def _checked_sd(uncertainty_mm: np.ndarray, view: DepthView) -> np.ndarray:
    """The SD map as float64, or a ValueError saying why it cannot be drawn in `view`."""
    sd = np.asarray(uncertainty_mm, dtype=np.float64)
    if sd.shape != tuple(view.shape):
        raise ValueError(f"uncertainty map {sd.shape} does not match the view's shape {tuple(view.shape)}")
    shown = np.isfinite(sd)
    if not shown.any():
        raise ValueError("the uncertainty map has no finite value to show")
    if (sd[shown] < 0).any():
        raise ValueError("the uncertainty map holds negative values; it should be a standard deviation in mm")
    return sd


def uncertainty_figure(
    uncertainty_mm: np.ndarray, face: trimesh.Trimesh, view: DepthView, *, max_mm: float | None = None,
    no_bone: np.ndarray | None = None,
) -> bytes:  # fmt: skip
    """The per-pixel SD map (mm) in the frontal view, with the face's depth contours for orientation; coloured
    from 0 to `max_mm` (a case's one scale for all its faces; None: this map's maximum); `no_bone` (H, W) is
    outlined: face predicted with no bone beneath it."""
    sd = _checked_sd(uncertainty_mm, view)
    shown = np.isfinite(sd)
    x, y = view.pixel_centres()
    half = view.pixel_mm / 2
    extent = (x[0] - half, x[-1] + half, y[-1] - half, y[0] + half)
    depth = render_depth_map(face, view)

    width = FIGURE_WIDTH_IN + 1.0
    fig, ax = plt.subplots(figsize=(width, width * view.shape[0] / view.shape[1] + 0.6), layout="compressed")
    cmap = plt.get_cmap("magma").with_extremes(bad=BACKGROUND)
    vmax = max_mm if max_mm is not None else max(float(sd[shown].max()), 1e-6)
    im = ax.imshow(np.where(shown, sd, np.nan), cmap=cmap, vmin=0.0, vmax=vmax, extent=extent)
    if depth.mask.sum() > 3 and np.ptp(depth.depth_mm[depth.mask]) > 0:
        z = np.where(depth.mask, depth.depth_mm, np.nan)
        levels = np.arange(np.ceil(np.nanmin(z) / 10) * 10, np.nanmax(z), 10.0)
        if len(levels):
            ax.contour(x, y, z, levels=levels, colors="white", linewidths=0.4, alpha=0.5)
    if no_bone is not None and (no_bone & shown).any():
        ax.contourf(x, y, (no_bone & shown).astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
        ax.contour(x, y, (no_bone & shown).astype(float), levels=[0.5], colors=NO_BONE_COLOUR, linewidths=1.2)
        ax.text(0.02, 0.02, "hatched: no bone beneath (missing from the skull)", transform=ax.transAxes,
                fontsize=7, color=NO_BONE_COLOUR)  # fmt: skip
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="SD (mm)")
    ax.set_xlabel("x (mm, toward the subject's left)")
    ax.set_ylabel("y (mm, up)")
    ax.set_title("spread of the face: per-point SD (mm)\nfront view; lines: face depth every 10 mm", fontsize=10)
    _caption(fig)
    return png_bytes(fig, dpi=DPI)


def case_renders(
    face: trimesh.Trimesh, skull: trimesh.Trimesh, *, uncertainty_mm: np.ndarray | None, view: DepthView,
    uncertainty_max_mm: float | None = None, no_bone: np.ndarray | None = None,
) -> dict[str, bytes]:
    """PNG bytes by name: "front", "profile", "front_profile", "three_quarter", "overlay" and, when given,
    "uncertainty"; every shaded picture at one scale, with a scale bar.

    Meshes are in the canonical frame (mm). The shaded pictures are framed on the meshes; `view` is the frame
    of `uncertainty_mm` (per-pixel SD over samples, NaN where not defined).
    """
    if len(face.faces) == 0 or len(skull.faces) == 0:
        raise ValueError("face and skull meshes need triangles to be drawn")
    if uncertainty_mm is not None:
        _checked_sd(uncertainty_mm, view)  # refuse a bad map before the slow part
    groups = [[_turned(face, yaw), _turned(skull, yaw)] for yaw in (0.0, THREE_QUARTER_DEG)]
    pixel = max(_fitted_view(g).pixel_mm for g in [*groups, [_turned(face, PROFILE_YAW_DEG)]])  # one scale for all
    face_front, skull_front = _shaded_pair(face, skull, 0.0, pixel)
    face_quarter, skull_quarter = _shaded_pair(face, skull, THREE_QUARTER_DEG, pixel)
    profile_view = _fitted_view([_turned(face, PROFILE_YAW_DEG)], pixel)
    face_profile = shade_depth_map(render_depth_map(_turned(face, PROFILE_YAW_DEG), profile_view))
    quarter = f"three-quarter view ({THREE_QUARTER_DEG:g}\N{DEGREE SIGN}, left side forward)"
    front, profile = face_picture(face_front), face_picture(face_profile)
    renders = {
        "front": _picture_figure([(front, "")], "reconstructed face, front view", pixel_mm=pixel),
        "profile": _picture_figure([(profile, "")], "reconstructed face, left profile", pixel_mm=pixel),
        "front_profile": _picture_figure([(front, "front"), (profile, "left profile")],
                                         "reconstructed face, front and profile at one scale", pixel_mm=pixel),
        "three_quarter": _picture_figure([(face_picture(face_quarter), "")], f"reconstructed face, {quarter}",
                                         pixel_mm=pixel),
        "overlay": _picture_figure(
            [(overlay_picture(face_front, skull_front), "front"), (overlay_picture(face_quarter, skull_quarter),
                                                                   "three-quarter")],
            f"skull under the reconstructed face (face {FACE_OPACITY:.0%} opaque)", pixel_mm=pixel,
        ),
    }  # fmt: skip
    if uncertainty_mm is not None:
        renders["uncertainty"] = uncertainty_figure(uncertainty_mm, face, view, max_mm=uncertainty_max_mm,
                                                     no_bone=no_bone)  # fmt: skip
    return renders
