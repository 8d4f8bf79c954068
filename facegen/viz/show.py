"""Pictures of a dataset's subjects: depth maps, tissue depth and shaded 3D views, side by side."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from facegen.data.dataset.reader import Dataset  # noqa: E402
from facegen.data.representations.depth_map import DepthMap, DepthView, render_depth_map  # noqa: E402
from facegen.io.atomic import write_bytes_atomic  # noqa: E402
from facegen.viz.shading import shade_depth_map  # noqa: E402

THREE_QUARTER_DEG = 35.0
MAX_SHOWN_TISSUE_MM = 40.0


def shaded_view(mesh: trimesh.Trimesh, *, yaw_deg: float, view: DepthView | None = None) -> np.ndarray:
    """Shaded picture of a mesh turned by `yaw_deg` about the vertical axis (positive: its left comes forward)."""
    turned = mesh.copy()
    turned.apply_transform(trimesh.transformations.rotation_matrix(np.radians(-yaw_deg), [0, 1, 0]))
    return shade_depth_map(render_depth_map(turned, view or DepthView()))


def _depth_image(depth: DepthMap) -> np.ndarray:
    return np.where(depth.mask, depth.depth_mm, np.nan)


def subject_figure(dataset: Dataset, subject_id: str) -> plt.Figure:
    """Skull depth, face depth, tissue depth and shaded 3/4 views of skull and face for one subject."""
    row = dataset.row(subject_id)
    arrays = dataset.arrays()
    view = dataset.spec.view
    skull = DepthMap(arrays["skull_depth"][row.index], arrays["skull_mask"][row.index].astype(bool), view)
    face = DepthMap(arrays["face_depth"][row.index], arrays["face_mask"][row.index].astype(bool), view)
    region = arrays["face_region"][row.index].astype(bool) & skull.mask
    tissue = face.depth_mm - skull.depth_mm
    # through the orbits and the nasal aperture the view reaches deep bone: not soft-tissue depth
    tissue = np.where(region & (tissue < MAX_SHOWN_TISSUE_MM), tissue, np.nan)
    folder = dataset.paths.subject_dir(subject_id)
    skull_mesh = trimesh.load(folder / "skull.ply", force="mesh")
    face_mesh = trimesh.load(folder / "face.ply", force="mesh")

    fig, axes = plt.subplots(1, 5, figsize=(20, 4.6))
    panels = [
        (_depth_image(skull), "skull depth (mm)", "viridis"),
        (_depth_image(face), "face depth (mm)", "viridis"),
        (tissue, "soft-tissue depth along view (mm, < 40)", "magma"),
    ]
    for ax, (image, title, cmap) in zip(axes[:3], panels, strict=True):
        im = ax.imshow(image, cmap=cmap)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        ax.set_title(title)
    axes[3].imshow(shaded_view(skull_mesh, yaw_deg=THREE_QUARTER_DEG, view=view), cmap="gray", vmin=0, vmax=1)
    axes[3].set_title("skull, three-quarter view")
    axes[4].imshow(shaded_view(face_mesh, yaw_deg=THREE_QUARTER_DEG, view=view), cmap="gray", vmin=0, vmax=1)
    axes[4].set_title("face, three-quarter view")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    s = row.subject
    fig.suptitle(
        f"{s.subject_id}: {s.describe()}, group {s.group or 'unknown'}, split {row.split}; "
        + (f"floor {row.floor_mm:.2f} mm (synthetic data)" if row.floor_mm is not None else "real scan")
    )
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, out: Path, *, dpi: int = 90) -> None:
    """Write a figure as PNG atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    write_bytes_atomic(Path(out), buf.getvalue())


def show_subject(dataset_dir: Path | str, subject_id: str, out: Path | str) -> Path:
    """Draw one subject of a dataset to a PNG file."""
    save_figure(subject_figure(Dataset.open(dataset_dir), subject_id), Path(out))
    return Path(out)
