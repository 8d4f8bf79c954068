"""A picture of a scan's canonical alignment for a person to check: Frankfurt plane, midline, landmarks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import trimesh

from facegen.data.representations.depth_map import DepthView
from facegen.viz.show import save_figure, shaded_view

PROFILE_YAW_DEG = 90.0
_VIEW = DepthView(shape=(300, 300), pixel_mm=1.0, centre_mm=(0.0, -20.0))


def _turn(points: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Points turned like `shaded_view` turns a mesh."""
    matrix = trimesh.transformations.rotation_matrix(np.radians(-yaw_deg), [0, 1, 0])[:3, :3]
    return points @ matrix.T


def alignment_figure(
    skull: trimesh.Trimesh, face: trimesh.Trimesh | None, landmarks: dict[str, np.ndarray], title: str
) -> plt.Figure:
    """Front and profile views of skull (and face) in the canonical frame with the Frankfurt line (y = 0),
    the midsagittal line (x = 0) and the landmarks that defined them."""
    meshes = [("skull", skull)] + ([("face", face)] if face is not None else [])
    fig, axes = plt.subplots(1, 2 * len(meshes), figsize=(5 * 2 * len(meshes), 5.4))
    frankfurt_row = _VIEW.to_pixel(np.zeros(3))[0]
    for m, (name, mesh) in enumerate(meshes):
        for v, yaw in enumerate((0.0, PROFILE_YAW_DEG)):
            ax = axes[2 * m + v]
            ax.imshow(shaded_view(mesh, yaw_deg=yaw, view=_VIEW), cmap="gray", vmin=0, vmax=1)
            ax.axhline(frankfurt_row, color="tab:orange", lw=1, label="Frankfurt horizontal")
            if yaw == 0.0:
                ax.axvline(_VIEW.to_pixel(np.zeros(3))[1], color="tab:cyan", lw=1, label="midsagittal")
            for lm_name, point in sorted(landmarks.items()):
                row, col = _VIEW.to_pixel(_turn(np.asarray(point, float), yaw))
                ax.plot(col, row, "o", ms=5, color="tab:red")
                ax.annotate(lm_name, (col, row), fontsize=7, color="tab:red", xytext=(3, 3), textcoords="offset points")
            ax.set_title(f"{name}, {'front' if yaw == 0.0 else 'profile'}")
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0].legend(loc="lower left", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_alignment_figure(
    skull: trimesh.Trimesh, face: trimesh.Trimesh | None, landmarks: dict[str, np.ndarray], title: str, out: Path
) -> None:
    """`alignment_figure` written as a PNG to OUT: what `facegen ingest` hands the data layer to draw each case."""
    save_figure(alignment_figure(skull, face, landmarks, title), out)
